// Unit tests for core/store.h: receipts, group modes, unexpected input and durability, the
// message store driven directly through OnMessage (helpers in store_test_util.h).
#include "core/store.h"

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/snowflake.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace chatlab::store_test {
namespace {


// ---- Receipts ---------------------------------------------------------------------------------

TEST(StoreReceiptTest, DirectWatermarkIsMonotoneAndClamped) {
  MessageStore store(Options(SequenceConfig()));
  for (ClientMsgId cmid = 1; cmid <= 3; ++cmid) Append(store, kT0, Msg(kAliceBob, kAlice, cmid));

  StoreReceiptResult r = Receipt(store, kAliceBob, kBob, ReceiptKind::kDelivered, 2);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.request_id, 5u);
  EXPECT_EQ(r.update, (ReceiptUpdate{kAliceBob, ReceiptKind::kDelivered, kBob, 2}));
  EXPECT_EQ(r.recipients, (std::vector<UserId>{kAlice}));

  r = Receipt(store, kAliceBob, kBob, ReceiptKind::kDelivered, 1);  // backwards: no move
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_TRUE(r.recipients.empty());
  EXPECT_EQ(r.update.up_to, 2u);
  r = Receipt(store, kAliceBob, kBob, ReceiptKind::kDelivered, 2);  // same: no move
  EXPECT_TRUE(r.recipients.empty());

  r = Receipt(store, kAliceBob, kBob, ReceiptKind::kDelivered, 1000);  // clamped to the head
  EXPECT_EQ(r.update.up_to, 3u);
  EXPECT_EQ(r.recipients, (std::vector<UserId>{kAlice}));
  EXPECT_EQ(store.Watermark(kAliceBob, kBob, ReceiptKind::kDelivered), 3u);

  // Kinds are independent; the read watermark has not moved yet.
  EXPECT_EQ(store.Watermark(kAliceBob, kBob, ReceiptKind::kRead), kNoMessage);
  r = Receipt(store, kAliceBob, kBob, ReceiptKind::kRead, 1);
  EXPECT_EQ(r.update, (ReceiptUpdate{kAliceBob, ReceiptKind::kRead, kBob, 1}));
  // The other party's watermark goes to the other peer.
  r = Receipt(store, kAliceBob, kAlice, ReceiptKind::kRead, 3);
  EXPECT_EQ(r.recipients, (std::vector<UserId>{kBob}));
  EXPECT_EQ(store.stats().receipt_ops, 6u);
}

TEST(StoreReceiptTest, Rejections) {
  MessageStore store(Options(SequenceConfig()));
  Append(store, kT0, Msg(kAliceBob, kAlice, 1));
  EXPECT_EQ(Receipt(store, kAliceBob, kCarol, ReceiptKind::kRead, 1).code, Code::kPermissionDenied);
  EXPECT_EQ(Receipt(store, kGroupConv, kCarol, ReceiptKind::kRead, 1).code, Code::kNotFound);
  EXPECT_EQ(Receipt(store, kAliceBob, kAlice, static_cast<ReceiptKind>(9), 1).code,
            Code::kInvalidArgument);
  EXPECT_EQ(Receipt(store, kAliceBob, UserId(), ReceiptKind::kRead, 1).code,
            Code::kInvalidArgument);
  // A receipt on an empty conversation is clamped to nothing and moves nothing.
  const ConversationId empty = ConversationId::Direct(kCarol, kDave);
  const StoreReceiptResult r = Receipt(store, empty, kCarol, ReceiptKind::kRead, 5);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_TRUE(r.recipients.empty());
  EXPECT_EQ(r.update.up_to, kNoMessage);
}

TEST(StoreReceiptTest, GroupAggregateNeverGoesBack) {
  MessageStore store(Options(SequenceConfig()));
  Membership(store, kAlice, kGroup, true);
  Membership(store, kBob, kGroup, true);
  Membership(store, kCarol, kGroup, true);
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) Append(store, kT0, Msg(kGroupConv, kAlice, cmid));
  const std::vector<UserId> members = {kAlice, kBob, kCarol};
  constexpr ReceiptKind kRead = ReceiptKind::kRead;

  // Alice's and Bob's watermarks move but Carol's (0) holds the aggregate at 0.
  EXPECT_TRUE(Receipt(store, kGroupConv, kAlice, kRead, 5).recipients.empty());
  EXPECT_TRUE(Receipt(store, kGroupConv, kBob, kRead, 3).recipients.empty());
  StoreReceiptResult r = Receipt(store, kGroupConv, kCarol, kRead, 4);
  EXPECT_EQ(r.update, (ReceiptUpdate{kGroupConv, kRead, UserId(), 3}));  // min(5, 3, 4)
  EXPECT_EQ(r.recipients, members);
  EXPECT_EQ(store.PublishedAggregate(kGroupConv, kRead), 3u);

  // Delivered is tracked separately.
  EXPECT_EQ(store.PublishedAggregate(kGroupConv, ReceiptKind::kDelivered), kNoMessage);

  // Dave joins with no watermark: the aggregate drops to 0, the published value does not.
  Membership(store, kDave, kGroup, true);
  r = Receipt(store, kGroupConv, kBob, kRead, 5);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_TRUE(r.recipients.empty());
  EXPECT_EQ(r.update.up_to, 3u);
  EXPECT_TRUE(Receipt(store, kGroupConv, kDave, kRead, 2).recipients.empty());  // min is 2
  r = Receipt(store, kGroupConv, kDave, kRead, 5);  // min(5, 5, 4, 5) = 4
  EXPECT_EQ(r.update.up_to, 4u);
  EXPECT_EQ(r.recipients, (std::vector<UserId>{kAlice, kBob, kCarol, kDave}));

  // A member leaving can raise the aggregate of those who remain.
  Membership(store, kCarol, kGroup, false);
  r = Receipt(store, kGroupConv, kAlice, kRead, 5);
  EXPECT_EQ(r.update.up_to, 5u);
  EXPECT_EQ(r.recipients, (std::vector<UserId>{kAlice, kBob, kDave}));
}

// The store keeps each group's aggregate incrementally (a histogram of the members' watermarks).
// Check it against its definition, the minimum over the current members, at every step of a
// random mix of appends, joins, leaves (and rejoins) and receipts; then check that a store
// restored from the records holds the same watermarks and answers the next receipts the same.
TEST(StoreReceiptTest, GroupAggregateIsTheMinimumOverCurrentMembers) {
  constexpr uint64_t kUsers = 12;
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    MessageStore store(Options(SequenceConfig()));
    std::vector<PersistRecord> log;
    auto call = [&](MessageStore& s, const Message& msg, bool record) {
      Effects out;
      s.OnMessage(kT0, kServer, msg, out);
      Message reply;
      for (const Effect& e : out) {
        if (const auto* p = std::get_if<Persist>(&e)) {
          if (record) log.push_back(p->record);
        } else if (const auto* send = std::get_if<SendToNode>(&e)) {
          reply = send->msg;
        }
      }
      return reply;
    };
    std::set<uint64_t> members;
    std::map<std::pair<uint64_t, int>, MessageId> marks;  // (user, kind index) -> watermark
    MessageId published[2] = {kNoMessage, kNoMessage};
    MessageId head = kNoMessage;
    ClientMsgId cmid = 0;
    call(store, StoreMembership{1, UserId(1), kGroup, true}, true);
    members.insert(1);
    for (int step = 0; step < 400; ++step) {
      const uint64_t user = 1 + rng() % kUsers;
      switch (rng() % 5) {
        case 0:  // append by a member
          if (!members.contains(user)) break;
          call(store, StoreAppend{2, Msg(kGroupConv, UserId(user), ++cmid)}, true);
          head = store.Head(kGroupConv);
          break;
        case 1:  // join or leave (the last member stays)
          if (!members.contains(user)) {
            call(store, StoreMembership{3, UserId(user), kGroup, true}, true);
            members.insert(user);
          } else if (members.size() > 1) {
            call(store, StoreMembership{3, UserId(user), kGroup, false}, true);
            members.erase(user);
          }
          break;
        default: {  // a receipt by a member, sometimes beyond the head
          if (!members.contains(user)) break;
          const int k = static_cast<int>(rng() % 2);
          const ReceiptKind kind = k == 0 ? ReceiptKind::kDelivered : ReceiptKind::kRead;
          const MessageId up_to = rng() % (head + 3);
          const Message reply =
              call(store, StoreReceipt{4, kGroupConv, UserId(user), kind, up_to}, true);
          const auto* r = std::get_if<StoreReceiptResult>(&reply);
          ASSERT_NE(r, nullptr);
          ASSERT_EQ(r->code, Code::kOk);
          MessageId& mark = marks[{user, k}];
          mark = std::max(mark, std::min(up_to, head));
          MessageId aggregate = std::numeric_limits<MessageId>::max();
          for (const uint64_t m : members) aggregate = std::min(aggregate, marks[{m, k}]);
          const MessageId expected = std::max(published[k], aggregate);
          EXPECT_EQ(r->update.up_to, expected) << "step " << step;
          EXPECT_EQ(r->recipients.empty(), expected == published[k]) << "step " << step;
          published[k] = expected;
        }
      }
    }
    MessageStore restored(Options(SequenceConfig()));
    for (const PersistRecord& r : log) ASSERT_TRUE(restored.Restore(r).ok());
    for (int k = 0; k < 2; ++k) {
      const ReceiptKind kind = k == 0 ? ReceiptKind::kDelivered : ReceiptKind::kRead;
      EXPECT_EQ(restored.PublishedAggregate(kGroupConv, kind), published[k]);
      for (uint64_t u = 1; u <= kUsers; ++u) {
        const MessageId mark = marks[{u, k}];
        EXPECT_EQ(restored.Watermark(kGroupConv, UserId(u), kind), mark);
      }
      // Every member reads everything: both stores publish the head at the last receipt.
      for (const uint64_t m : members) {
        const Message a = call(store, StoreReceipt{5, kGroupConv, UserId(m), kind, head}, false);
        const Message b =
            call(restored, StoreReceipt{5, kGroupConv, UserId(m), kind, head}, false);
        EXPECT_EQ(std::get<StoreReceiptResult>(a), std::get<StoreReceiptResult>(b));
      }
      EXPECT_EQ(restored.PublishedAggregate(kGroupConv, kind), head);
    }
  }
}

// ---- Group mode -------------------------------------------------------------------------------

TEST(ChooseGroupModeTest, FixedAndHybridThresholds) {
  ProtocolConfig config;
  config.hybrid_push_members_max = 100;
  config.hybrid_push_rate_max = 50;
  config.group_delivery = GroupDelivery::kPush;
  EXPECT_EQ(ChooseGroupMode(config, 100000, 100000), GroupMode::kPush);
  config.group_delivery = GroupDelivery::kPull;
  EXPECT_EQ(ChooseGroupMode(config, 1, 0), GroupMode::kPull);
  // The seed's rule: pull only when the group is large AND active.
  config.group_delivery = GroupDelivery::kHybrid;
  EXPECT_EQ(ChooseGroupMode(config, 100, 50), GroupMode::kPush);  // at both thresholds
  EXPECT_EQ(ChooseGroupMode(config, 101, 51), GroupMode::kPull);  // just over both
  EXPECT_EQ(ChooseGroupMode(config, 101, 0), GroupMode::kPush);   // large but inactive
  EXPECT_EQ(ChooseGroupMode(config, 100000, 50), GroupMode::kPush);
  EXPECT_EQ(ChooseGroupMode(config, 1, 51), GroupMode::kPush);    // active but small
  EXPECT_EQ(ChooseGroupMode(config, 100, 100000), GroupMode::kPush);
  EXPECT_EQ(ChooseGroupMode(config, 0, 0), GroupMode::kPush);
  // The variant: pull when the group is large OR active.
  config.group_delivery = GroupDelivery::kHybridEither;
  EXPECT_EQ(ChooseGroupMode(config, 100, 50), GroupMode::kPush);  // at both thresholds
  EXPECT_EQ(ChooseGroupMode(config, 101, 0), GroupMode::kPull);
  EXPECT_EQ(ChooseGroupMode(config, 1, 51), GroupMode::kPull);
  EXPECT_EQ(ChooseGroupMode(config, 101, 51), GroupMode::kPull);
  EXPECT_EQ(ChooseGroupMode(config, 0, 0), GroupMode::kPush);
}

// The defaults in numbers: 50 messages in a 10 s window keep a 101-member group pushed, the 51st
// turns it to pull (a steady rate above 5 messages per second), and it is pushed again once a
// whole window has passed below the threshold.
TEST(StoreGroupModeTest, DefaultThresholdsPullALargeGroupAboveFiveMessagesPerSecond) {
  ProtocolConfig config = SequenceConfig();
  config.group_delivery = GroupDelivery::kHybrid;
  ASSERT_EQ(config.hybrid_push_members_max, 100u);
  ASSERT_EQ(config.hybrid_push_rate_max, 50u);
  ASSERT_EQ(config.hybrid_rate_window_us, 10 * kUsPerSecond);
  MessageStore store(Options(config));
  const TimeUs t = 1000 * kUsPerSecond;  // a window boundary
  for (uint64_t u = 1; u <= 101; ++u) Membership(store, UserId(u), kGroup, true, t);
  // 5 messages per second for 10 s: 50 in the window.
  for (ClientMsgId cmid = 1; cmid <= 50; ++cmid) {
    const TimeUs at = t + static_cast<TimeUs>(cmid - 1) * 200 * kUsPerMs;
    EXPECT_EQ(Append(store, at, Msg(kGroupConv, kAlice, cmid)).group_mode, GroupMode::kPush)
        << cmid;
  }
  EXPECT_EQ(Append(store, t + 9990 * kUsPerMs, Msg(kGroupConv, kAlice, 51)).group_mode,
            GroupMode::kPull);
  // The next window still counts the previous one's 51; the one after does not.
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 1, t + 19 * kUsPerSecond).group_mode,
            GroupMode::kPull);
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 1, t + 20 * kUsPerSecond).group_mode,
            GroupMode::kPush);
  // 100 members are not large: the same burst keeps them pushed.
  Membership(store, UserId(101), kGroup, false, t + 30 * kUsPerSecond);
  for (ClientMsgId cmid = 100; cmid < 160; ++cmid) {
    EXPECT_EQ(Append(store, t + 30 * kUsPerSecond, Msg(kGroupConv, kAlice, cmid)).group_mode,
              GroupMode::kPush);
  }
}

TEST(GroupRateTest, MaxOfCurrentAndPreviousWindow) {
  constexpr TimeUs kWindow = 1000;
  GroupRate rate;
  EXPECT_EQ(rate.Rate(0, kWindow), 0u);
  rate.Add(100, kWindow);
  rate.Add(900, kWindow);
  EXPECT_EQ(rate.Rate(999, kWindow), 2u);
  EXPECT_EQ(rate.Rate(1500, kWindow), 2u);  // the previous window still counts
  rate.Add(1200, kWindow);
  EXPECT_EQ(rate.Rate(1200, kWindow), 2u);  // max(1, 2)
  EXPECT_EQ(rate.Rate(2000, kWindow), 1u);
  EXPECT_EQ(rate.Rate(3000, kWindow), 0u);
  rate.Add(500, kWindow);  // a clock that went back stays in the current window
  EXPECT_EQ(rate.Rate(1999, kWindow), 2u);
  rate.Add(5000, kWindow);  // a gap of several windows forgets everything
  EXPECT_EQ(rate.Rate(5000, kWindow), 1u);
  GroupRate negative;
  negative.Add(-1, kWindow);  // floor: window -1
  EXPECT_EQ(negative.Rate(-500, kWindow), 1u);
  EXPECT_EQ(negative.Rate(0, kWindow), 1u);
  EXPECT_EQ(negative.Rate(1000, kWindow), 0u);
}

TEST(StoreGroupModeTest, HybridEitherSwitchesOnRateAndOnSize) {
  ProtocolConfig config = SequenceConfig();
  config.group_delivery = GroupDelivery::kHybridEither;
  config.hybrid_push_rate_max = 3;
  config.hybrid_push_members_max = 2;
  config.hybrid_rate_window_us = kUsPerSecond;
  MessageStore store(Options(config));
  const TimeUs t = 10 * kUsPerSecond;
  EXPECT_EQ(Membership(store, kAlice, kGroup, true, t).group_mode, GroupMode::kPush);
  EXPECT_EQ(Membership(store, kBob, kGroup, true, t).group_mode, GroupMode::kPush);
  for (ClientMsgId cmid = 1; cmid <= 3; ++cmid) {
    EXPECT_EQ(Append(store, t, Msg(kGroupConv, kAlice, cmid)).group_mode, GroupMode::kPush);
  }
  EXPECT_EQ(Append(store, t, Msg(kGroupConv, kAlice, 4)).group_mode, GroupMode::kPull);
  // Next window: the previous window's 4 still count; the one after that, nothing does.
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 1, t + kUsPerSecond).group_mode, GroupMode::kPull);
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 1, t + 2 * kUsPerSecond).group_mode,
            GroupMode::kPush);
  // Size: a third member exceeds hybrid_push_members_max = 2.
  const TimeUs quiet = t + 5 * kUsPerSecond;
  EXPECT_EQ(Membership(store, kCarol, kGroup, true, quiet).group_mode, GroupMode::kPull);
  EXPECT_EQ(Append(store, quiet, Msg(kGroupConv, kCarol, 1)).group_mode, GroupMode::kPull);
  const auto sync = Call<StoreSyncResult>(store, quiet, StoreSync{1, kCarol});
  ASSERT_EQ(sync.heads.size(), 1u);
  EXPECT_EQ(sync.heads[0].group_mode, GroupMode::kPull);
  EXPECT_EQ(Membership(store, kCarol, kGroup, false, quiet).group_mode, GroupMode::kPush);
}

TEST(StoreGroupModeTest, HybridPullsOnlyWhenLargeAndActive) {
  ProtocolConfig config = SequenceConfig();
  config.group_delivery = GroupDelivery::kHybrid;
  config.hybrid_push_rate_max = 3;
  config.hybrid_push_members_max = 2;
  config.hybrid_rate_window_us = kUsPerSecond;
  MessageStore store(Options(config));
  const TimeUs t = 10 * kUsPerSecond;
  Membership(store, kAlice, kGroup, true, t);
  Membership(store, kBob, kGroup, true, t);
  // Active but small (2 members): still pushed.
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) {
    EXPECT_EQ(Append(store, t, Msg(kGroupConv, kAlice, cmid)).group_mode, GroupMode::kPush);
  }
  // Large (3 members) while active: pull.
  EXPECT_EQ(Membership(store, kCarol, kGroup, true, t).group_mode, GroupMode::kPull);
  EXPECT_EQ(Append(store, t, Msg(kGroupConv, kAlice, 6)).group_mode, GroupMode::kPull);
  // Large but quiet two windows later: pushed again.
  const TimeUs quiet = t + 2 * kUsPerSecond;
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 1, quiet).group_mode, GroupMode::kPush);
  const auto sync = Call<StoreSyncResult>(store, quiet, StoreSync{1, kCarol});
  ASSERT_EQ(sync.heads.size(), 1u);
  EXPECT_EQ(sync.heads[0].group_mode, GroupMode::kPush);
  EXPECT_EQ(Append(store, quiet, Msg(kGroupConv, kCarol, 1)).group_mode, GroupMode::kPush);
}

// ---- Unexpected input -------------------------------------------------------------------------

TEST(StoreTest, UnexpectedMessagesAreCountedAndIgnored) {
  MessageStore store(Options(SequenceConfig()));
  Effects out;
  store.Start(kT0, out);
  EXPECT_TRUE(out.empty());
  store.OnMessage(kT0, kServer, SendMessage{1, kAliceBob, 0, "x"}, out);
  store.OnMessage(kT0, kServer, StoreAppendResult{}, out);
  store.OnMessage(kT0, kServer, WriterEnqueue{}, out);
  store.OnTimer(kT0, 1, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(store.stats().unexpected_messages, 3u);
  EXPECT_EQ(store.stats().requests, 0u);
  EXPECT_TRUE(store.Conversations().empty());
}

// ---- Durability: Persist effects and Restore ------------------------------------------------

// Every Persist record msg produces, in order (the reply is dropped).
std::vector<PersistRecord> Records(MessageStore& store, TimeUs now, const Message& msg) {
  Effects out;
  store.OnMessage(now, kServer, msg, out);
  std::vector<PersistRecord> records;
  for (const Effect& e : out) {
    if (const auto* p = std::get_if<Persist>(&e)) records.push_back(p->record);
  }
  return records;
}

TEST(StoreDurabilityTest, EveryStateChangeIsPersistedBeforeTheReply) {
  MessageStore store(Options(SequenceConfig()));
  std::vector<PersistRecord> log;
  auto add = [&](const std::vector<PersistRecord>& r) { log.insert(log.end(), r.begin(), r.end()); };
  add(Records(store, kT0, StoreMembership{1, kAlice, kGroup, true}));
  add(Records(store, kT0, StoreMembership{2, kBob, kGroup, true}));
  ASSERT_EQ(log.size(), 2u);
  add(Records(store, kT0, StoreAppend{3, Msg(kAliceBob, kAlice, 1)}));
  add(Records(store, kT0, StoreAppend{4, Msg(kGroupConv, kBob, 2)}));
  ASSERT_EQ(log.size(), 4u);
  EXPECT_TRUE(std::holds_alternative<PersistMessage>(log[2]));
  // A duplicate changes nothing and persists nothing.
  EXPECT_TRUE(Records(store, kT0, StoreAppend{5, Msg(kAliceBob, kAlice, 1)}).empty());
  add(Records(store, kT0, StoreReceipt{6, kAliceBob, kBob, ReceiptKind::kRead, 1}));
  ASSERT_EQ(log.size(), 5u);
  // The group watermark of alice moves; bob's is still 0, so the aggregate does not move.
  add(Records(store, kT0, StoreReceipt{7, kGroupConv, kAlice, ReceiptKind::kRead, 1}));
  ASSERT_EQ(log.size(), 6u);
  // Bob reads too: his watermark and the published aggregate move.
  add(Records(store, kT0, StoreReceipt{8, kGroupConv, kBob, ReceiptKind::kRead, 1}));
  ASSERT_EQ(log.size(), 8u);
  EXPECT_TRUE(std::holds_alternative<PersistAggregate>(log[7]));
  add(Records(store, kT0, StoreMembership{9, kBob, kGroup, false}));
  ASSERT_EQ(log.size(), 9u);
  // Reads persist nothing.
  EXPECT_TRUE(Records(store, kT0, StoreRead{10, kAlice, kAliceBob, 0, 0}).empty());

  // A new incarnation restored from the log answers exactly like the old one.
  MessageStore restored(Options(SequenceConfig()));
  for (const PersistRecord& r : log) ASSERT_TRUE(restored.Restore(r).ok());
  EXPECT_EQ(restored.stats().records_restored, log.size());
  EXPECT_EQ(restored.Messages(kAliceBob), store.Messages(kAliceBob));
  EXPECT_EQ(restored.Messages(kGroupConv), store.Messages(kGroupConv));
  EXPECT_EQ(restored.Members(kGroup), std::vector<UserId>{kAlice});
  EXPECT_TRUE(restored.GroupsOf(kBob).empty());
  EXPECT_EQ(restored.Watermark(kAliceBob, kBob, ReceiptKind::kRead), 1u);
  EXPECT_EQ(restored.PublishedAggregate(kGroupConv, ReceiptKind::kRead),
            store.PublishedAggregate(kGroupConv, ReceiptKind::kRead));
  // The dedup index survived: a retry is answered with the original.
  const AppendOutcome retry = Append(restored, kT0, Msg(kAliceBob, kAlice, 1));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.message.message_id, 1u);
  // And sequencing continues after the restored head.
  const AppendOutcome next = Append(restored, kT0, Msg(kAliceBob, kBob, 7));
  EXPECT_EQ(next.message.message_id, 2u);
  EXPECT_EQ(next.message.prev_msg_id, 1u);
}

TEST(StoreDurabilityTest, RestoredSnowflakeStoreNeverReusesAnId) {
  MessageStore store(Options(ProtocolConfig{}));
  std::vector<PersistRecord> log = Records(store, kT0, StoreAppend{1, Msg(kAliceBob, kAlice, 1)});
  ASSERT_EQ(log.size(), 1u);
  const MessageId first = std::get<PersistMessage>(log[0]).message.message_id;
  MessageStore restored(Options(ProtocolConfig{}));
  ASSERT_TRUE(restored.Restore(log[0]).ok());
  // The restarted store's clock went back by a second: its ids still grow.
  const AppendOutcome next = Append(restored, kT0 - kUsPerSecond, Msg(kAliceBob, kAlice, 2));
  EXPECT_GT(next.message.message_id, first);
  EXPECT_EQ(next.message.prev_msg_id, first);
}

TEST(StoreDurabilityTest, CorruptRecordsAreRefused) {
  MessageStore store(Options(SequenceConfig()));
  EXPECT_FALSE(store.Restore(PersistMessage{ChatMessage{}}).ok());
  EXPECT_FALSE(store.Restore(PersistMembership{UserId(), kGroup, true}).ok());
  EXPECT_FALSE(store.Restore(PersistWatermark{ConversationId{}, kAlice, ReceiptKind::kRead, 1})
                   .ok());
  EXPECT_FALSE(store.Restore(PersistAggregate{kAliceBob, ReceiptKind::kRead, 1}).ok());
}

}  // namespace
}  // namespace chatlab::store_test
