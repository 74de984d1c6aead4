// Exact de-duplication beyond the window (config.store_dedup_lookup): a resend whose key has left
// the window is looked up on disk (LoadDedup) and answered as the window would have answered it.
//
// The disk here is the store's own Persist records, kept by the test (Disk): what every
// environment must answer from (core/effects.h). Each test drives the store through OnMessage
// and OnDedupLoaded and reads every reply.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/store.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace chatlab::store_test {
namespace {

ProtocolConfig LookupConfig(uint32_t window) {
  ProtocolConfig config = SequenceConfig();
  config.store_dedup_window_max = window;
  config.store_dedup_lookup = true;
  return config;
}

// The store's disk: every PersistMessage it emitted, in order.
struct Disk {
  std::vector<ChatMessage> rows;
  // LoadDedup's answer: the first row written with the key (no overwrites in these tests).
  std::optional<ChatMessage> Find(UserId sender, ClientMsgId client_msg_id) const {
    for (const ChatMessage& m : rows) {
      if (m.sender == sender && m.client_msg_id == client_msg_id) return m;
    }
    return std::nullopt;
  }
};

// One store call's effects, sorted: records go to the disk, replies and look-ups are returned.
struct Out {
  std::vector<StoreAppendResult> replies;
  std::vector<LoadDedup> lookups;
};
Out Take(Effects& effects, Disk& disk) {
  Out out;
  for (Effect& e : effects) {
    if (auto* p = std::get_if<Persist>(&e)) {
      if (auto* m = std::get_if<PersistMessage>(&p->record)) disk.rows.push_back(m->message);
    } else if (auto* l = std::get_if<LoadDedup>(&e)) {
      out.lookups.push_back(*l);
    } else if (auto* s = std::get_if<SendToNode>(&e)) {
      EXPECT_EQ(s->to, kServer);
      const auto* r = std::get_if<StoreAppendResult>(&s->msg);
      EXPECT_NE(r, nullptr) << "unexpected reply";
      if (r != nullptr) out.replies.push_back(*r);
    } else {
      ADD_FAILURE() << "unexpected effect " << e.index();
    }
  }
  return out;
}

Out Send(MessageStore& store, Disk& disk, const ChatMessage& m, uint32_t attempt,
         uint64_t request_id = 7) {
  Effects effects;
  store.OnMessage(kT0, kServer, StoreAppend{request_id, m, attempt}, effects);
  return Take(effects, disk);
}

Out Answer(MessageStore& store, Disk& disk, const LoadDedup& lookup) {
  Effects effects;
  store.OnDedupLoaded(kT0, lookup.token, disk.Find(lookup.sender, lookup.client_msg_id), effects);
  return Take(effects, disk);
}

// Stores cmids first..last from Alice (first attempts), each answered at once.
void Fill(MessageStore& store, Disk& disk, ClientMsgId first, ClientMsgId last) {
  for (ClientMsgId c = first; c <= last; ++c) {
    const Out out = Send(store, disk, Msg(kAliceBob, kAlice, c), 0);
    ASSERT_EQ(out.replies.size(), 1u);
    ASSERT_EQ(out.replies[0].outcome.code, Code::kOk);
  }
}

TEST(StoreDedupLookupTest, AResendBeyondTheWindowIsAnsweredFromDisk) {
  MessageStore store(Options(LookupConfig(2)));
  Disk disk;
  Fill(store, disk, 1, 5);
  EXPECT_EQ(store.dedup_size(), 2u);
  const ChatMessage first = disk.rows[0];

  const Out asked = Send(store, disk, Msg(kAliceBob, kAlice, 1), /*attempt=*/1);
  EXPECT_TRUE(asked.replies.empty()) << "answered before the disk";
  ASSERT_EQ(asked.lookups.size(), 1u);
  EXPECT_EQ(asked.lookups[0].sender, kAlice);
  EXPECT_EQ(asked.lookups[0].client_msg_id, 1u);
  EXPECT_EQ(store.pending_dedup_loads(), 1u);

  const Out answered = Answer(store, disk, asked.lookups[0]);
  ASSERT_EQ(answered.replies.size(), 1u);
  const AppendOutcome& outcome = answered.replies[0].outcome;
  EXPECT_EQ(outcome.code, Code::kOk);
  EXPECT_TRUE(outcome.duplicate);
  EXPECT_EQ(outcome.message, first);
  EXPECT_EQ(outcome.recipients, (std::vector<UserId>{kAlice, kBob}));
  EXPECT_EQ(disk.rows.size(), 5u) << "nothing stored again";
  EXPECT_EQ(store.stats().dedup_loads, 1u);
  EXPECT_EQ(store.stats().dedup_found_on_disk, 1u);
  EXPECT_EQ(store.pending_dedup_loads(), 0u);
  // The key is back in the window: the next resend needs no disk.
  const Out again = Send(store, disk, Msg(kAliceBob, kAlice, 1), 2);
  EXPECT_TRUE(again.lookups.empty());
  ASSERT_EQ(again.replies.size(), 1u);
  EXPECT_TRUE(again.replies[0].outcome.duplicate);
  EXPECT_EQ(again.replies[0].outcome.message, first);
}

TEST(StoreDedupLookupTest, AResendOfAMessageNeverStoredIsStoredOnce) {
  MessageStore store(Options(LookupConfig(2)));
  Disk disk;
  Fill(store, disk, 1, 3);
  // The first attempt of 9 was lost: its resend is looked up, not found, then stored.
  const Out asked = Send(store, disk, Msg(kAliceBob, kAlice, 9), 1);
  ASSERT_EQ(asked.lookups.size(), 1u);
  const Out answered = Answer(store, disk, asked.lookups[0]);
  ASSERT_EQ(answered.replies.size(), 1u);
  EXPECT_EQ(answered.replies[0].outcome.code, Code::kOk);
  EXPECT_FALSE(answered.replies[0].outcome.duplicate);
  EXPECT_EQ(answered.replies[0].outcome.message.message_id, 4u);
  EXPECT_EQ(disk.rows.size(), 4u);
  EXPECT_EQ(store.stats().dedup_found_on_disk, 0u);
}

// A key whose look-up is out: its other copies wait, whatever their attempt, and are answered in
// arrival order after it: the first stores the message, the next are its duplicates (even with a
// window of one entry that other keys push out meanwhile). Other keys are not held up.
TEST(StoreDedupLookupTest, CopiesOfAKeyWaitBehindItsLookup) {
  MessageStore store(Options(LookupConfig(1)));
  Disk disk;
  Fill(store, disk, 1, 2);
  const Out asked = Send(store, disk, Msg(kAliceBob, kAlice, 9), 1, /*request_id=*/11);
  ASSERT_EQ(asked.lookups.size(), 1u);
  const Out behind_first = Send(store, disk, Msg(kAliceBob, kAlice, 9), 0, 12);
  const Out behind_second = Send(store, disk, Msg(kAliceBob, kAlice, 9), 3, 13);
  EXPECT_TRUE(behind_first.replies.empty() && behind_first.lookups.empty());
  EXPECT_TRUE(behind_second.replies.empty() && behind_second.lookups.empty());
  EXPECT_EQ(store.stats().appends_behind_lookup, 2u);
  const Out other = Send(store, disk, Msg(kAliceBob, kBob, 9), 0, 14);  // Bob's 9: another key
  ASSERT_EQ(other.replies.size(), 1u);
  EXPECT_EQ(other.replies[0].outcome.message.message_id, 3u);

  const Out answered = Answer(store, disk, asked.lookups[0]);
  ASSERT_EQ(answered.replies.size(), 3u);
  EXPECT_EQ(answered.replies[0].request_id, 11u);
  EXPECT_EQ(answered.replies[1].request_id, 12u);
  EXPECT_EQ(answered.replies[2].request_id, 13u);
  EXPECT_FALSE(answered.replies[0].outcome.duplicate);
  EXPECT_EQ(answered.replies[0].outcome.message.message_id, 4u);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(answered.replies[i].outcome.duplicate);
    EXPECT_EQ(answered.replies[i].outcome.message, answered.replies[0].outcome.message);
  }
  EXPECT_EQ(disk.rows.size(), 4u);
}

TEST(StoreDedupLookupTest, AReuseFoundOnDiskIsRefused) {
  MessageStore store(Options(LookupConfig(1)));
  Disk disk;
  Fill(store, disk, 1, 3);
  // Alice's id 1 with another body: refused as the window would refuse it, nothing stored.
  const Out asked = Send(store, disk, Msg(kAliceBob, kAlice, 1, "another body"), 1);
  ASSERT_EQ(asked.lookups.size(), 1u);
  const Out answered = Answer(store, disk, asked.lookups[0]);
  ASSERT_EQ(answered.replies.size(), 1u);
  EXPECT_EQ(answered.replies[0].outcome.code, Code::kInvalidArgument);
  EXPECT_EQ(answered.replies[0].outcome.message.message_id, kNoMessage);
  EXPECT_EQ(store.stats().client_msg_id_reuses, 1u);
  EXPECT_EQ(disk.rows.size(), 3u);
}

// What needs no disk: a resend inside the window, a first attempt (the window alone: a network
// duplicate of it beyond the window is stored again, the limit the window is sized for), a
// malformed resend, and every resend when the switch is off.
TEST(StoreDedupLookupTest, OnlyResendsThatMissTheWindowGoToDisk) {
  MessageStore store(Options(LookupConfig(2)));
  Disk disk;
  Fill(store, disk, 1, 3);
  const Out inside = Send(store, disk, Msg(kAliceBob, kAlice, 3), 1);
  ASSERT_EQ(inside.replies.size(), 1u);
  EXPECT_TRUE(inside.replies[0].outcome.duplicate);
  const Out first_attempt = Send(store, disk, Msg(kAliceBob, kAlice, 1), 0);
  ASSERT_EQ(first_attempt.replies.size(), 1u);
  EXPECT_FALSE(first_attempt.replies[0].outcome.duplicate);
  const Out malformed = Send(store, disk, Msg(ConversationId(), kAlice, 50), 1);
  ASSERT_EQ(malformed.replies.size(), 1u);
  EXPECT_EQ(malformed.replies[0].outcome.code, Code::kInvalidArgument);
  EXPECT_EQ(store.stats().dedup_loads, 0u);

  ProtocolConfig off = LookupConfig(2);
  off.store_dedup_lookup = false;
  MessageStore window_only(Options(off));
  Disk disk2;
  Fill(window_only, disk2, 1, 3);
  const Out late = Send(window_only, disk2, Msg(kAliceBob, kAlice, 1), 5);
  ASSERT_EQ(late.replies.size(), 1u);
  EXPECT_FALSE(late.replies[0].outcome.duplicate) << "stored again: the window alone decides";
  EXPECT_EQ(window_only.stats().dedup_loads, 0u);
}

// An answer nobody waits for (a token never issued, or answered twice) changes nothing.
TEST(StoreDedupLookupTest, AnUnknownAnswerIsCountedAndIgnored) {
  MessageStore store(Options(LookupConfig(1)));
  Disk disk;
  Fill(store, disk, 1, 2);
  const Out asked = Send(store, disk, Msg(kAliceBob, kAlice, 1), 1);
  ASSERT_EQ(asked.lookups.size(), 1u);
  ASSERT_EQ(Answer(store, disk, asked.lookups[0]).replies.size(), 1u);
  EXPECT_TRUE(Answer(store, disk, asked.lookups[0]).replies.empty());
  EXPECT_TRUE(Answer(store, disk, LoadDedup{999, kAlice, 1}).replies.empty());
  EXPECT_EQ(store.stats().dedup_loads_dropped, 2u);
}

TEST(StoreDedupLookupTest, ABatchedWritePathIsRefused) {
  ProtocolConfig config = LookupConfig(16);
  EXPECT_TRUE(ValidateStoreConfig(config).ok());
  config.write_path = WritePath::kBatched;
  const absl::Status s = ValidateStoreConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("store_dedup_lookup"), std::string::npos) << s;
}

TEST(StoreDedupLookupTest, ATransportMarksOnlyAppendsAsRedelivered) {
  Message append = StoreAppend{1, Msg(kAliceBob, kAlice, 1), 0};
  EXPECT_TRUE(MarkRedelivered(append));
  EXPECT_EQ(std::get<StoreAppend>(append).attempt, 1u);
  Message resent = StoreAppend{1, Msg(kAliceBob, kAlice, 1), 4};
  EXPECT_TRUE(MarkRedelivered(resent));
  EXPECT_EQ(std::get<StoreAppend>(resent).attempt, 4u) << "a count is kept";
  Message read = StoreRead{};
  EXPECT_FALSE(MarkRedelivered(read));
}

}  // namespace
}  // namespace chatlab::store_test
