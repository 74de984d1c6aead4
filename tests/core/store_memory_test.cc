// The store's bounded memory (core/store.h, "Memory"): the tail cache, reads below it answered
// through LoadHistory, a restart from each conversation's head, and a property: a store with a
// bounded tail gives the same answers as one that keeps every message, when its LoadHistory
// effects are answered from a disk built of its own Persist effects.
#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/btree_map.h"
#include "core/codec.h"
#include "core/store.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace chatlab::store_test {
namespace {

ProtocolConfig TailConfig(uint32_t tail) {
  ProtocolConfig config = SequenceConfig();
  config.store_tail_cache = tail;
  return config;
}

// What an environment keeps: every record in the order written, and the message rows by
// conversation and id (the last write wins), from which it answers LoadHistory.
struct Disk {
  std::vector<PersistRecord> records;
  absl::btree_map<ConversationId, absl::btree_map<MessageId, ChatMessage>> rows;

  // Takes the Persist effects out of effects and writes them.
  void Write(Effects& effects) {
    std::erase_if(effects, [this](Effect& e) {
      auto* p = std::get_if<Persist>(&e);
      if (p == nullptr) return false;
      if (const auto* m = std::get_if<PersistMessage>(&p->record)) {
        rows[m->message.conv][m->message.message_id] = m->message;
      }
      records.push_back(std::move(p->record));
      return true;
    });
  }
  std::vector<ChatMessage> Read(const LoadHistory& load) const {
    std::vector<ChatMessage> out;
    const auto it = rows.find(load.conv);
    if (it == rows.end()) return out;
    for (auto m = it->second.upper_bound(load.after);
         m != it->second.end() && out.size() < load.limit; ++m) {
      out.push_back(m->second);
    }
    return out;
  }
};

// Hands msg to the store, writes its records, answers its LoadHistory effects at once, and
// returns every message it sent (in order).
std::vector<Message> Drive(MessageStore& store, Disk& disk, TimeUs now, const Message& msg,
                           int* loads = nullptr) {
  Effects pending;
  store.OnMessage(now, kServer, msg, pending);
  std::vector<Message> sent;
  while (!pending.empty()) {
    disk.Write(pending);
    Effects next;
    for (Effect& e : pending) {
      if (auto* send = std::get_if<SendToNode>(&e)) {
        EXPECT_EQ(send->to, kServer);
        sent.push_back(std::move(send->msg));
      } else if (auto* load = std::get_if<LoadHistory>(&e)) {
        if (loads != nullptr) ++*loads;
        store.OnHistoryLoaded(now, load->token, disk.Read(*load), next);
      } else {
        ADD_FAILURE() << "unexpected effect " << e.index();
      }
    }
    pending = std::move(next);
  }
  return sent;
}

TEST(StoreMemoryTest, TailKeepsTheNewestAndAReadBelowItGoesToDisk) {
  MessageStore store(Options(TailConfig(3)));
  Disk disk;
  for (ClientMsgId cmid = 1; cmid <= 10; ++cmid) {
    Drive(store, disk, kT0, StoreAppend{cmid, Msg(kAliceBob, kAlice, cmid)});
  }
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{8, 9, 10}));
  EXPECT_EQ(store.cached_messages(), 3u);
  EXPECT_EQ(store.Head(kAliceBob), 10u);

  // From the tail's floor (7) up: answered at once, as before.
  const StoreReadResult cached = Read(store, kAlice, kAliceBob, 7, 10);
  EXPECT_EQ(Ids(cached.messages), (std::vector<MessageId>{8, 9, 10}));
  EXPECT_FALSE(cached.has_more);
  EXPECT_EQ(store.stats().history_loads, 0u);

  // Below it: a LoadHistory, and no reply until it is answered.
  Effects out;
  store.OnMessage(kT0, kServer, StoreRead{9, kBob, kAliceBob, 2, 3}, out);
  ASSERT_EQ(out.size(), 1u);
  const auto* load = std::get_if<LoadHistory>(&out[0]);
  ASSERT_NE(load, nullptr);
  EXPECT_EQ(load->conv, kAliceBob);
  EXPECT_EQ(load->after, 2u);
  EXPECT_EQ(load->limit, 3u);
  EXPECT_EQ(store.pending_loads(), 1u);
  Effects answer;
  store.OnHistoryLoaded(kT0, load->token, disk.Read(*load), answer);
  ASSERT_EQ(answer.size(), 1u);
  const auto& reply = std::get<StoreReadResult>(std::get<SendToNode>(answer[0]).msg);
  EXPECT_EQ(reply.request_id, 9u);
  EXPECT_EQ(reply.code, Code::kOk);
  EXPECT_EQ(Ids(reply.messages), (std::vector<MessageId>{3, 4, 5}));
  EXPECT_TRUE(reply.has_more);
  EXPECT_EQ(store.pending_loads(), 0u);
  EXPECT_EQ(store.stats().history_loads, 1u);
  EXPECT_EQ(store.stats().history_messages_loaded, 3u);
  // A full tail does not grow from a load.
  EXPECT_EQ(store.cached_messages(), 3u);

  // A refused read never reaches the disk.
  const StoreReadResult refused = Read(store, kCarol, kAliceBob, 0, 3);
  EXPECT_EQ(refused.code, Code::kPermissionDenied);
  EXPECT_EQ(store.stats().history_loads, 1u);
}

TEST(StoreMemoryTest, AResendOfAMessageTheTailLetGoIsAnsweredWithTheFirst) {
  // The dedup window names messages in the tail; an evicted one keeps its own copy.
  MessageStore store(Options(TailConfig(2)));
  Disk disk;
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) {
    Drive(store, disk, kT0,
          StoreAppend{cmid, Msg(kAliceBob, kAlice, cmid, "body " + std::to_string(cmid))});
  }
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{4, 5}));
  for (ClientMsgId cmid : {ClientMsgId{1}, ClientMsgId{5}}) {
    const std::vector<Message> sent =
        Drive(store, disk, kT0 + 1,
              StoreAppend{10 + cmid, Msg(kAliceBob, kAlice, cmid, "body " + std::to_string(cmid))});
    ASSERT_EQ(sent.size(), 1u);
    const AppendOutcome& again = std::get<StoreAppendResult>(sent[0]).outcome;
    EXPECT_EQ(again.code, Code::kOk);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.message.message_id, cmid);
    EXPECT_EQ(again.message.body, "body " + std::to_string(cmid));
  }
  // Another body under an evicted message's key is still a reuse, refused.
  const std::vector<Message> reuse =
      Drive(store, disk, kT0 + 2, StoreAppend{20, Msg(kAliceBob, kAlice, 2, "another")});
  ASSERT_EQ(reuse.size(), 1u);
  EXPECT_EQ(std::get<StoreAppendResult>(reuse[0]).outcome.code, Code::kInvalidArgument);
  EXPECT_EQ(store.stats().duplicates, 2u);
  EXPECT_EQ(store.stats().messages_stored, 5u);
}

TEST(StoreMemoryTest, AnAnswerNobodyAskedForIsCountedAndIgnored) {
  MessageStore store(Options(TailConfig(2)));
  Effects out;
  store.OnHistoryLoaded(kT0, 12345, {Msg(kAliceBob, kAlice, 1)}, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(store.stats().history_loads_dropped, 1u);
}

TEST(StoreMemoryTest, RestartFromTheHeadsContinuesEachConversationAndWarmsFromReads) {
  // The first incarnation keeps everything; its records are the disk.
  MessageStore first(Options(SequenceConfig()));
  Disk disk;
  for (ClientMsgId cmid = 1; cmid <= 10; ++cmid) {
    Drive(first, disk, kT0, StoreAppend{cmid, Msg(kAliceBob, kAlice, cmid)});
  }
  Drive(first, disk, kT0, StoreMembership{1, kCarol, kGroup, true});
  for (ClientMsgId cmid = 11; cmid <= 12; ++cmid) {
    Drive(first, disk, kT0, StoreAppend{cmid, Msg(kGroupConv, kCarol, cmid)});
  }

  // A restart replays what a hot Load gives: each head, the newest 2 messages (the window),
  // and the membership.
  ProtocolConfig config = TailConfig(4);
  config.store_dedup_window_max = 2;
  MessageStore store(Options(config));
  for (const ConversationId& conv : {kAliceBob}) {
    ASSERT_TRUE(store.Restore(PersistMessage{disk.rows[conv].rbegin()->second}).ok());
  }
  ASSERT_TRUE(store.Restore(PersistMembership{kCarol, kGroup, true}).ok());
  ASSERT_TRUE(store.Restore(PersistMessage{disk.rows[kGroupConv][1]}).ok());
  ASSERT_TRUE(store.Restore(PersistMessage{disk.rows[kGroupConv][2]}).ok());
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{10}));
  EXPECT_EQ(Ids(store.Messages(kGroupConv)), (std::vector<MessageId>{1, 2}));

  // Appends continue from the head; a retry inside the window is a duplicate.
  const auto appended = Drive(store, disk, kT0, StoreAppend{100, Msg(kAliceBob, kBob, 100)});
  ASSERT_EQ(appended.size(), 1u);
  const AppendOutcome next = std::get<StoreAppendResult>(appended[0]).outcome;
  EXPECT_EQ(next.message.message_id, 11u);
  EXPECT_EQ(next.message.prev_msg_id, 10u);
  const AppendOutcome retry = Append(store, kT0, Msg(kGroupConv, kCarol, 12));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.message.message_id, 2u);

  // A catch-up from 6 reads the disk; the rows that reach down from the tail warm it.
  int loads = 0;
  const auto sent = Drive(store, disk, kT0, StoreRead{5, kBob, kAliceBob, 6, 10}, &loads);
  EXPECT_EQ(loads, 1);
  ASSERT_EQ(sent.size(), 1u);
  const auto& reply = std::get<StoreReadResult>(sent[0]);
  EXPECT_EQ(Ids(reply.messages), (std::vector<MessageId>{7, 8, 9, 10, 11}));
  EXPECT_FALSE(reply.has_more);
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{8, 9, 10, 11}));
  const auto again = Drive(store, disk, kT0, StoreRead{6, kBob, kAliceBob, 7, 10}, &loads);
  EXPECT_EQ(loads, 1);  // from the warmed tail
  EXPECT_EQ(Ids(std::get<StoreReadResult>(again[0]).messages),
            (std::vector<MessageId>{8, 9, 10, 11}));
}

TEST(StoreMemoryTest, ARestoredMessageThatDoesNotFollowTheTailStartsItAgain) {
  MessageStore store(Options(TailConfig(4)));
  ChatMessage a = Msg(kAliceBob, kAlice, 1);
  a.message_id = 5;
  a.prev_msg_id = 4;
  ChatMessage b = Msg(kAliceBob, kAlice, 2);
  b.message_id = 9;
  b.prev_msg_id = 8;  // 6..8 were not replayed
  ASSERT_TRUE(store.Restore(PersistMessage{a}).ok());
  ASSERT_TRUE(store.Restore(PersistMessage{b}).ok());
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{9}));
  // So a read from 5 is not answered from the tail (which would skip 6..8).
  Effects out;
  store.OnMessage(kT0, kServer, StoreRead{1, kAlice, kAliceBob, 5, 10}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<LoadHistory>(out[0]));
}

TEST(StoreMemoryTest, BoundedTailNeedsIdsAboveTheHead) {
  ProtocolConfig config;
  config.store_tail_cache = 8;
  config.id_generator = IdGenerator::kStore;
  config.id_scheme = IdScheme::kTimestamp;
  const absl::Status s = ValidateStoreConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("store_tail_cache"), std::string::npos) << s.message();
  config.id_generator = IdGenerator::kChatServer;  // lifted to the head: append-only
  EXPECT_TRUE(ValidateStoreConfig(config).ok());
  config.id_generator = IdGenerator::kStore;
  config.store_tail_cache = 0;
  EXPECT_TRUE(ValidateStoreConfig(config).ok());
}

// The property: the same requests, with retries, joins and leaves, and reads from anywhere in
// the history, get the same answers from a store whose tail holds 1, 2 or 5 messages as from one
// that keeps them all. Then both restart (the bounded one from its heads and window only) and
// answer alike again.
TEST(StoreMemoryTest, BoundedStoreAnswersAsOneThatKeepsEverything) {
  const ConversationId kAliceCarol = ConversationId::Direct(kAlice, kCarol);
  const std::vector<ConversationId> convs = {kAliceBob, kAliceCarol, kGroupConv};
  const std::vector<UserId> users = {kAlice, kBob, kCarol, kDave};
  for (const IdGenerator generator : {IdGenerator::kStore, IdGenerator::kChatServer}) {
    for (const uint32_t tail : {1u, 2u, 5u}) {
      for (uint64_t seed = 1; seed <= 4; ++seed) {
        SCOPED_TRACE(testing::Message() << "tail " << tail << " seed " << seed << " generator "
                                        << static_cast<int>(generator));
        ProtocolConfig full_config = SequenceConfig();
        full_config.id_generator = generator;
        full_config.id_scheme = IdScheme::kSnowflake;
        full_config.store_dedup_window_max = 64;
        ProtocolConfig bounded_config = full_config;
        bounded_config.store_tail_cache = tail;
        auto full = std::make_unique<MessageStore>(Options(full_config));
        auto bounded = std::make_unique<MessageStore>(Options(bounded_config));
        Disk full_disk, bounded_disk;
        std::mt19937_64 rng(seed);
        auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
        uint64_t request = 1;
        ClientMsgId cmid = 1;
        TimeUs now = kT0;
        int loads = 0;
        auto both = [&](const Message& m) {
          const auto a = Drive(*full, full_disk, now, m);
          const auto b = Drive(*bounded, bounded_disk, now, m, &loads);
          ASSERT_EQ(a, b) << DebugString(m);
        };
        for (int op = 0; op < 1500; ++op) {
          now += static_cast<TimeUs>(pick(3000));
          const ConversationId conv = convs[pick(convs.size())];
          const UserId user = users[pick(users.size())];
          switch (pick(6)) {
            case 0:
              both(StoreMembership{request++, user, kGroup, pick(4) != 0});
              break;
            case 1:
            case 2: {
              ChatMessage m = Msg(conv, conv.is_group() ? user : UserId(conv.low),
                                  pick(5) == 0 && cmid > 1 ? 1 + pick(cmid - 1) : cmid++,
                                  "b" + std::to_string(pick(3)));
              if (generator == IdGenerator::kChatServer) m.message_id = now - pick(2000);
              both(StoreAppend{request++, m});
              break;
            }
            default: {
              const MessageId head = full->Head(conv);
              const MessageId after = pick(3) == 0 ? head : (head == 0 ? 0 : pick(head + 1));
              // Chat-server ids are timestamps: read from an existing id or 0.
              const std::vector<ChatMessage> all = full->Messages(conv);
              const MessageId from = generator == IdGenerator::kStore || all.empty() || pick(3) == 0
                                         ? after
                                         : all[pick(all.size())].message_id;
              both(StoreRead{request++, user, conv, from, static_cast<uint32_t>(1 + pick(6))});
              break;
            }
          }
          ASSERT_LE(bounded->cached_messages(), tail * convs.size());
        }
        EXPECT_GT(loads, 0);  // the property was tested where it matters
        // Restart: the full store replays everything; the bounded one each head and the window.
        auto full2 = std::make_unique<MessageStore>(Options(full_config));
        for (const PersistRecord& r : full_disk.records) ASSERT_TRUE(full2->Restore(r).ok());
        auto bounded2 = std::make_unique<MessageStore>(Options(bounded_config));
        std::vector<const PersistRecord*> hot;
        size_t messages_seen = 0;
        size_t messages_total = 0;
        for (const PersistRecord& r : bounded_disk.records) {
          messages_total += std::holds_alternative<PersistMessage>(r);
        }
        for (const PersistRecord& r : bounded_disk.records) {
          const auto* m = std::get_if<PersistMessage>(&r);
          if (m == nullptr) {
            hot.push_back(&r);
            continue;
          }
          ++messages_seen;
          const bool head =
              bounded_disk.rows[m->message.conv].rbegin()->first == m->message.message_id;
          const bool recent = messages_total - messages_seen < 64;
          if (head || recent) hot.push_back(&r);
        }
        for (const PersistRecord* r : hot) ASSERT_TRUE(bounded2->Restore(*r).ok());
        full = std::move(full2);
        bounded = std::move(bounded2);
        for (int op = 0; op < 300; ++op) {
          now += static_cast<TimeUs>(pick(3000));
          const ConversationId conv = convs[pick(convs.size())];
          const UserId user = users[pick(users.size())];
          if (pick(2) == 0) {
            ChatMessage m = Msg(conv, conv.is_group() ? user : UserId(conv.low), cmid++);
            if (generator == IdGenerator::kChatServer) m.message_id = now;
            both(StoreAppend{request++, m});
          } else {
            // From 0, or from one of the newest ids (where the restarted tail warms).
            const std::vector<ChatMessage> all = full->Messages(conv);
            const MessageId from =
                all.empty() || pick(3) == 0
                    ? kNoMessage
                    : all[all.size() - 1 - pick(std::min<size_t>(all.size(), 8))].message_id;
            both(StoreRead{request++, user, conv, from, static_cast<uint32_t>(1 + pick(6))});
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace chatlab::store_test
