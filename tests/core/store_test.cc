// Unit tests for core/store.h: appends, de-duplication, batches, reads, sync and membership,
// the message store driven directly through OnMessage (helpers in store_test_util.h).
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


// ---- Appends: ids, prev_msg_id, recipients ----------------------------------------------------

TEST(StoreAppendTest, SequenceIdsChainPrevMsgId) {
  MessageStore store(Options(SequenceConfig()));
  for (ClientMsgId cmid = 1; cmid <= 3; ++cmid) {
    const AppendOutcome outcome = Append(store, kT0, Msg(kAliceBob, kAlice, cmid));
    EXPECT_EQ(outcome.code, Code::kOk);
    EXPECT_FALSE(outcome.duplicate);
    EXPECT_EQ(outcome.message.message_id, cmid);
    EXPECT_EQ(outcome.message.prev_msg_id, cmid - 1);
    EXPECT_EQ(outcome.message.sender, kAlice);
    EXPECT_EQ(outcome.message.client_msg_id, cmid);
    EXPECT_EQ(outcome.message.sent_at_us, 42);
    EXPECT_EQ(outcome.recipients, (std::vector<UserId>{kAlice, kBob}));
    EXPECT_EQ(outcome.group_mode, GroupMode::kNone);
  }
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{1, 2, 3}));
  EXPECT_EQ(store.Head(kAliceBob), 3u);
  ASSERT_NE(store.Find(kAliceBob, 2), nullptr);
  EXPECT_EQ(store.Find(kAliceBob, 2)->client_msg_id, 2u);
  EXPECT_EQ(store.Find(kAliceBob, 9), nullptr);
  // Another conversation has its own sequence.
  const ConversationId bob_carol = ConversationId::Direct(kCarol, kBob);
  EXPECT_EQ(Append(store, kT0, Msg(bob_carol, kBob, 1)).message.message_id, 1u);
  EXPECT_EQ(store.Conversations(), (std::vector<ConversationId>{kAliceBob, bob_carol}));
  EXPECT_EQ(store.stats().appends, 4u);
  EXPECT_EQ(store.stats().messages_stored, 4u);
  EXPECT_EQ(store.stats().requests, 4u);
}

TEST(StoreAppendTest, SelfChatHasOneRecipient) {
  MessageStore store(Options(SequenceConfig()));
  const ConversationId self = ConversationId::Direct(kAlice, kAlice);
  const AppendOutcome outcome = Append(store, kT0, Msg(self, kAlice, 1));
  EXPECT_EQ(outcome.code, Code::kOk);
  EXPECT_EQ(outcome.recipients, (std::vector<UserId>{kAlice}));
}

TEST(StoreAppendTest, SnowflakeIdsUseStoreNodeBitsAndNeverGoBack) {
  ProtocolConfig config;  // kSnowflake by default
  MessageStore store(Options(config, NodeId(1024 + 77)));
  const AppendOutcome a = Append(store, kT0, Msg(kAliceBob, kAlice, 1));
  const AppendOutcome b = Append(store, kT0 - 5 * kUsPerSecond, Msg(kAliceBob, kBob, 2));
  EXPECT_EQ(SnowflakeGenerator::Decode(a.message.message_id).node, 77u);
  EXPECT_EQ(SnowflakeGenerator::Decode(a.message.message_id).timestamp_ms, kT0SinceEpochMs);
  EXPECT_GT(b.message.message_id, a.message.message_id);
  EXPECT_EQ(b.message.prev_msg_id, a.message.message_id);
  EXPECT_EQ(store.stats().out_of_order_ids, 0u);
  EXPECT_EQ(store.snowflake().stats().clock_backwards, 1u);
}

TEST(StoreAppendTest, TimestampCollisionOverwrites) {
  ProtocolConfig config;
  config.id_scheme = IdScheme::kTimestamp;
  MessageStore store(Options(config));
  const AppendOutcome first = Append(store, 5000, Msg(kAliceBob, kAlice, 1, "first"));
  const AppendOutcome second = Append(store, 5000, Msg(kAliceBob, kBob, 1, "second"));
  EXPECT_EQ(first.message.message_id, 5000u);
  EXPECT_EQ(second.message.message_id, 5000u);
  EXPECT_EQ(second.code, Code::kOk);
  EXPECT_EQ(store.stats().id_collisions, 1u);
  EXPECT_EQ(store.stats().messages_stored, 2u);
  // The first message is gone: that is the failure mode of timestamp ids.
  const std::vector<ChatMessage> messages = store.Messages(kAliceBob);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, "second");
  EXPECT_EQ(messages[0].prev_msg_id, kNoMessage);
  // A retry of the lost message is still answered from the dedup index with the original.
  const AppendOutcome retry = Append(store, 6000, Msg(kAliceBob, kAlice, 1, "first"));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.message, first.message);
}

TEST(StoreAppendTest, TimestampClockGoingBackIsOutOfOrder) {
  ProtocolConfig config;
  config.id_scheme = IdScheme::kTimestamp;
  MessageStore store(Options(config));
  EXPECT_EQ(Append(store, 1000, Msg(kAliceBob, kAlice, 1)).message.message_id, 1000u);
  EXPECT_EQ(Append(store, 2000, Msg(kAliceBob, kAlice, 2)).message.prev_msg_id, 1000u);
  const AppendOutcome back = Append(store, 1500, Msg(kAliceBob, kAlice, 3));
  EXPECT_EQ(back.message.message_id, 1500u);
  EXPECT_EQ(back.message.prev_msg_id, 1000u);  // the greatest id below it
  EXPECT_EQ(store.stats().out_of_order_ids, 1u);
  EXPECT_EQ(store.stats().id_collisions, 0u);
  EXPECT_EQ(Ids(store.Messages(kAliceBob)), (std::vector<MessageId>{1000, 1500, 2000}));
  // The message after it keeps the prev_msg_id that skips it (receivers see a gap).
  EXPECT_EQ(store.Find(kAliceBob, 2000)->prev_msg_id, 1000u);
  EXPECT_EQ(store.Head(kAliceBob), 2000u);
  // A clock at or before 0 still gives a valid id.
  const ConversationId other = ConversationId::Direct(kCarol, kDave);
  EXPECT_EQ(Append(store, -7, Msg(other, kCarol, 1)).message.message_id, 1u);
}

TEST(StoreAppendTest, InvalidArgument) {
  ProtocolConfig config = SequenceConfig();
  config.body_bytes_max = 4;
  MessageStore store(Options(config));
  EXPECT_EQ(Append(store, kT0, Msg(kAliceBob, kAlice, 1, "four")).code, Code::kOk);
  const AppendOutcome too_long = Append(store, kT0, Msg(kAliceBob, kAlice, 2, "fives"));
  EXPECT_EQ(too_long.code, Code::kInvalidArgument);
  EXPECT_EQ(too_long.message.message_id, kNoMessage);
  EXPECT_EQ(too_long.message.client_msg_id, 2u);  // echoed so the server can correlate
  EXPECT_TRUE(too_long.recipients.empty());
  const ConversationId bad_direct{ChannelType::kDirect, 0, 2};
  EXPECT_EQ(Append(store, kT0, Msg(bad_direct, kBob, 3)).code, Code::kInvalidArgument);
  const ConversationId bad_order{ChannelType::kDirect, 2, 1};
  EXPECT_EQ(Append(store, kT0, Msg(bad_order, kBob, 4)).code, Code::kInvalidArgument);
  const ConversationId bad_group{ChannelType::kGroup, 10, 1};
  EXPECT_EQ(Append(store, kT0, Msg(bad_group, kBob, 5)).code, Code::kInvalidArgument);
  EXPECT_EQ(Append(store, kT0, Msg(kAliceBob, UserId(), 6)).code, Code::kInvalidArgument);
  EXPECT_EQ(store.stats().appends_rejected, 5u);
  EXPECT_EQ(store.stats().messages_stored, 1u);
}

TEST(StoreAppendTest, PermissionsAndMissingGroup) {
  MessageStore store(Options(SequenceConfig()));
  EXPECT_EQ(Append(store, kT0, Msg(kAliceBob, kCarol, 1)).code, Code::kPermissionDenied);
  EXPECT_EQ(Append(store, kT0, Msg(kGroupConv, kAlice, 2)).code, Code::kNotFound);
  Membership(store, kAlice, kGroup, true);
  EXPECT_EQ(Append(store, kT0, Msg(kGroupConv, kBob, 3)).code, Code::kPermissionDenied);
  EXPECT_EQ(Append(store, kT0, Msg(kGroupConv, kAlice, 4)).code, Code::kOk);
  EXPECT_TRUE(store.Messages(kAliceBob).empty());
  EXPECT_EQ(store.Messages(kGroupConv).size(), 1u);
}

TEST(StoreAppendTest, GroupRecipientsAreMembersAscending) {
  MessageStore store(Options(SequenceConfig()));
  Membership(store, kCarol, kGroup, true);
  Membership(store, kAlice, kGroup, true);
  Membership(store, kBob, kGroup, true);
  const AppendOutcome outcome = Append(store, kT0, Msg(kGroupConv, kBob, 1));
  EXPECT_EQ(outcome.code, Code::kOk);
  EXPECT_EQ(outcome.recipients, (std::vector<UserId>{kAlice, kBob, kCarol}));
  EXPECT_EQ(outcome.group_mode, GroupMode::kPush);
}

// ---- Dedup ------------------------------------------------------------------------------------

TEST(StoreDedupTest, DuplicateReturnsOriginalAndStoresNothing) {
  MessageStore store(Options(SequenceConfig()));
  const AppendOutcome first = Append(store, kT0, Msg(kAliceBob, kAlice, 9, "hello"));
  const AppendOutcome again = Append(store, kT0 + 1, Msg(kAliceBob, kAlice, 9, "hello"));
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.message, first.message);
  EXPECT_EQ(again.recipients, first.recipients);
  EXPECT_EQ(store.Messages(kAliceBob).size(), 1u);
  EXPECT_EQ(store.stats().duplicates, 1u);
  EXPECT_EQ(store.stats().messages_stored, 1u);
  // The key is (sender, client_msg_id): Bob's message 9 is another message.
  const AppendOutcome bobs = Append(store, kT0, Msg(kAliceBob, kBob, 9));
  EXPECT_FALSE(bobs.duplicate);
  EXPECT_EQ(bobs.message.message_id, 2u);
  EXPECT_EQ(store.dedup_size(), 2u);
}

TEST(StoreDedupTest, ReusedIdForAnotherMessageIsRefusedAndTheOriginalStands) {
  MessageStore store(Options(SequenceConfig()));
  Membership(store, kAlice, kGroup, true);
  const AppendOutcome first = Append(store, kT0, Msg(kAliceBob, kAlice, 9, "hello"));
  // Another body, or another conversation, under the same (sender, client_msg_id).
  for (const ChatMessage& reuse :
       {Msg(kAliceBob, kAlice, 9, "goodbye"), Msg(kGroupConv, kAlice, 9, "hello")}) {
    const AppendOutcome refused = Append(store, kT0 + 1, reuse);
    EXPECT_EQ(refused.code, Code::kInvalidArgument);
    EXPECT_FALSE(refused.duplicate);
    EXPECT_EQ(refused.message.message_id, kNoMessage) << "no id of the earlier message";
    EXPECT_TRUE(refused.recipients.empty());
  }
  EXPECT_EQ(store.stats().client_msg_id_reuses, 2u);
  EXPECT_EQ(store.stats().messages_stored, 1u);
  EXPECT_TRUE(store.Messages(kGroupConv).empty());
  // A true retry (same conversation and body; sent_at_us may differ) is still a duplicate.
  ChatMessage retry = Msg(kAliceBob, kAlice, 9, "hello");
  retry.sent_at_us = 99;
  const AppendOutcome again = Append(store, kT0 + 2, retry);
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.message, first.message);
}

TEST(StoreDedupTest, RetryAfterLeavingGroupIsStillADuplicate) {
  MessageStore store(Options(SequenceConfig()));
  Membership(store, kAlice, kGroup, true);
  Membership(store, kBob, kGroup, true);
  const AppendOutcome first = Append(store, kT0, Msg(kGroupConv, kAlice, 1));
  Membership(store, kAlice, kGroup, false);
  const AppendOutcome retry = Append(store, kT0, Msg(kGroupConv, kAlice, 1));
  EXPECT_EQ(retry.code, Code::kOk);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.message, first.message);
  EXPECT_EQ(retry.recipients, (std::vector<UserId>{kBob}));  // the current members
  // A new message from the former member is refused.
  EXPECT_EQ(Append(store, kT0, Msg(kGroupConv, kAlice, 2)).code, Code::kPermissionDenied);
}

TEST(StoreDedupTest, DedupOffStoresEveryAppend) {
  ProtocolConfig config = SequenceConfig();
  config.dedup_enabled = false;
  MessageStore store(Options(config));
  const AppendOutcome first = Append(store, kT0, Msg(kAliceBob, kAlice, 9));
  const AppendOutcome again = Append(store, kT0, Msg(kAliceBob, kAlice, 9));
  EXPECT_FALSE(again.duplicate);
  EXPECT_EQ(first.message.message_id, 1u);
  EXPECT_EQ(again.message.message_id, 2u);
  EXPECT_EQ(store.Messages(kAliceBob).size(), 2u);
  EXPECT_EQ(store.stats().duplicates, 0u);
  EXPECT_EQ(store.dedup_size(), 0u);
}

TEST(StoreDedupTest, WindowEvictsOldestFirst) {
  ProtocolConfig config = SequenceConfig();
  config.store_dedup_window_max = 2;
  MessageStore store(Options(config));
  for (ClientMsgId cmid = 1; cmid <= 3; ++cmid) Append(store, kT0, Msg(kAliceBob, kAlice, cmid));
  EXPECT_EQ(store.dedup_size(), 2u);
  EXPECT_EQ(store.stats().dedup_evictions, 1u);
  // 3 and 2 are remembered; 1 was evicted, so its very late retry is stored again.
  EXPECT_TRUE(Append(store, kT0, Msg(kAliceBob, kAlice, 3)).duplicate);
  EXPECT_TRUE(Append(store, kT0, Msg(kAliceBob, kAlice, 2)).duplicate);
  const AppendOutcome late = Append(store, kT0, Msg(kAliceBob, kAlice, 1));
  EXPECT_FALSE(late.duplicate);
  EXPECT_EQ(late.message.message_id, 4u);
  EXPECT_EQ(store.dedup_size(), 2u);
}

// ---- Batches ----------------------------------------------------------------------------------

// A batched group message was checked (StoreCheckMember) and acked before it reached the store:
// the store takes it even if the sender left since, and refuses only what no check could pass.
TEST(StoreBatchTest, PrecheckedGroupMessageOfASenderWhoLeftIsStored) {
  MessageStore store(Options(SequenceConfig()));
  Call<StoreMembershipResult>(store, kT0, StoreMembership{1, kAlice, kGroup, true});
  EXPECT_EQ(Call<StoreCheckMemberResult>(store, kT0, StoreCheckMember{2, kAlice, kGroup, 5}).code,
            Code::kOk);
  EXPECT_EQ(Call<StoreCheckMemberResult>(store, kT0, StoreCheckMember{3, kBob, kGroup, 5}).code,
            Code::kPermissionDenied);
  EXPECT_EQ(
      Call<StoreCheckMemberResult>(store, kT0, StoreCheckMember{4, kAlice, GroupId(99), 5}).code,
      Code::kNotFound);
  Call<StoreMembershipResult>(store, kT0, StoreMembership{5, kAlice, kGroup, false});
  // A direct append from a non-member is refused; a batched (prechecked) one is stored.
  EXPECT_EQ(Call<StoreAppendResult>(store, kT0, StoreAppend{6, Msg(kGroupConv, kAlice, 5)})
                .outcome.code,
            Code::kPermissionDenied);
  StoreAppendBatch batch;
  batch.request_id = 7;
  batch.messages = {Msg(kGroupConv, kAlice, 5), Msg(ConversationId::Group(GroupId(99)), kAlice, 6)};
  const auto result = Call<StoreAppendBatchResult>(store, kT0, batch);
  ASSERT_EQ(result.outcomes.size(), 2u);
  EXPECT_EQ(result.outcomes[0].code, Code::kOk);
  EXPECT_TRUE(result.outcomes[0].recipients.empty());  // the group has no members left
  EXPECT_EQ(result.outcomes[1].code, Code::kNotFound);  // no check passes for a missing group
  EXPECT_EQ(store.Messages(kGroupConv).size(), 1u);
  // Now stored: a retry's check is answered kOk from the dedup index, member or not.
  EXPECT_EQ(Call<StoreCheckMemberResult>(store, kT0, StoreCheckMember{8, kAlice, kGroup, 5}).code,
            Code::kOk);
}

TEST(StoreBatchTest, ItemsAreAppendedInOrder) {
  MessageStore store(Options(SequenceConfig()));
  StoreAppendBatch batch;
  batch.request_id = 77;
  batch.messages = {Msg(kAliceBob, kAlice, 1), Msg(kAliceBob, kCarol, 2), Msg(kAliceBob, kBob, 3),
                    Msg(kAliceBob, kAlice, 1)};
  const auto result = Call<StoreAppendBatchResult>(store, kT0, batch);
  EXPECT_EQ(result.request_id, 77u);
  ASSERT_EQ(result.outcomes.size(), 4u);
  EXPECT_EQ(result.outcomes[0].code, Code::kOk);
  EXPECT_EQ(result.outcomes[0].message.message_id, 1u);
  EXPECT_EQ(result.outcomes[1].code, Code::kPermissionDenied);
  EXPECT_EQ(result.outcomes[2].message.message_id, 2u);
  EXPECT_EQ(result.outcomes[2].message.prev_msg_id, 1u);
  EXPECT_TRUE(result.outcomes[3].duplicate);  // a duplicate inside the same batch
  EXPECT_EQ(result.outcomes[3].message.message_id, 1u);
  EXPECT_EQ(store.stats().batch_requests, 1u);
  EXPECT_EQ(store.stats().appends, 4u);
  EXPECT_EQ(store.stats().messages_stored, 2u);
  EXPECT_EQ(store.stats().requests, 1u);
}

// ---- Reads ------------------------------------------------------------------------------------

TEST(StoreReadTest, RangesHasMoreAndClamping) {
  ProtocolConfig config = SequenceConfig();
  config.get_messages_limit_max = 3;
  MessageStore store(Options(config));
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) Append(store, kT0, Msg(kAliceBob, kAlice, cmid));

  StoreReadResult r = Read(store, kBob, kAliceBob, kNoMessage, 2);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.request_id, 4u);
  EXPECT_EQ(r.conv, kAliceBob);
  EXPECT_EQ(Ids(r.messages), (std::vector<MessageId>{1, 2}));
  EXPECT_TRUE(r.has_more);
  EXPECT_EQ(r.group_mode, GroupMode::kNone);

  r = Read(store, kBob, kAliceBob, 2, 2);
  EXPECT_EQ(Ids(r.messages), (std::vector<MessageId>{3, 4}));
  EXPECT_TRUE(r.has_more);
  r = Read(store, kBob, kAliceBob, 3, 2);  // exactly the rest
  EXPECT_EQ(Ids(r.messages), (std::vector<MessageId>{4, 5}));
  EXPECT_FALSE(r.has_more);
  r = Read(store, kAlice, kAliceBob, 5, 2);  // nothing newer
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.has_more);

  r = Read(store, kBob, kAliceBob, kNoMessage, 0);  // 0 means the max
  EXPECT_EQ(Ids(r.messages), (std::vector<MessageId>{1, 2, 3}));
  EXPECT_TRUE(r.has_more);
  r = Read(store, kBob, kAliceBob, kNoMessage, 1000);  // clamped to the max
  EXPECT_EQ(Ids(r.messages), (std::vector<MessageId>{1, 2, 3}));
  EXPECT_TRUE(r.has_more);
  EXPECT_EQ(store.stats().reads, 6u);
  EXPECT_EQ(store.stats().messages_read, 2u + 2u + 2u + 0u + 3u + 3u);
}

TEST(StoreReadTest, PermissionsAndEmptyConversation) {
  MessageStore store(Options(SequenceConfig()));
  Append(store, kT0, Msg(kAliceBob, kAlice, 1));
  EXPECT_EQ(Read(store, kCarol, kAliceBob, 0, 10).code, Code::kPermissionDenied);
  EXPECT_TRUE(Read(store, kCarol, kAliceBob, 0, 10).messages.empty());
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 10).code, Code::kNotFound);
  Membership(store, kBob, kGroup, true);
  EXPECT_EQ(Read(store, kAlice, kGroupConv, 0, 10).code, Code::kPermissionDenied);
  const StoreReadResult member = Read(store, kBob, kGroupConv, 0, 10);
  EXPECT_EQ(member.code, Code::kOk);
  EXPECT_TRUE(member.messages.empty());
  EXPECT_EQ(member.group_mode, GroupMode::kPush);
  // A direct conversation without messages is readable by its parties, and empty.
  const StoreReadResult empty = Read(store, kCarol, ConversationId::Direct(kCarol, kDave), 0, 10);
  EXPECT_EQ(empty.code, Code::kOk);
  EXPECT_TRUE(empty.messages.empty());
  EXPECT_EQ(Read(store, UserId(), kAliceBob, 0, 10).code, Code::kInvalidArgument);
  const ConversationId bad{ChannelType::kDirect, 0, 0};
  EXPECT_EQ(Read(store, kAlice, bad, 0, 10).code, Code::kInvalidArgument);
}

// ---- Sync -------------------------------------------------------------------------------------

TEST(StoreSyncTest, HeadsOfDirectsAndGroupsOrdered) {
  MessageStore store(Options(SequenceConfig()));
  const ConversationId alice_dave = ConversationId::Direct(kDave, kAlice);
  const GroupId g20(20);
  Membership(store, kAlice, g20, true);
  Membership(store, kAlice, kGroup, true);
  Append(store, kT0, Msg(alice_dave, kDave, 1));
  Append(store, kT0, Msg(kAliceBob, kBob, 1));
  Append(store, kT0, Msg(kAliceBob, kAlice, 2));
  Append(store, kT0, Msg(kGroupConv, kAlice, 3));
  Append(store, kT0, Msg(ConversationId::Direct(kBob, kCarol), kBob, 4));  // not Alice's

  const auto sync = Call<StoreSyncResult>(store, kT0, StoreSync{11, kAlice});
  EXPECT_EQ(sync.request_id, 11u);
  EXPECT_EQ(sync.code, Code::kOk);
  const std::vector<ConversationHead> expected = {
      {kAliceBob, 2, GroupMode::kNone},
      {alice_dave, 1, GroupMode::kNone},
      {kGroupConv, 1, GroupMode::kPush},
      {ConversationId::Group(g20), kNoMessage, GroupMode::kPush},
  };
  EXPECT_EQ(sync.heads, expected);

  // Leaving a group drops it from the sync; a user with nothing gets no heads.
  Membership(store, kAlice, g20, false);
  EXPECT_EQ(Call<StoreSyncResult>(store, kT0, StoreSync{12, kAlice}).heads.size(), 3u);
  EXPECT_TRUE(Call<StoreSyncResult>(store, kT0, StoreSync{13, UserId(99)}).heads.empty());
  EXPECT_EQ(Call<StoreSyncResult>(store, kT0, StoreSync{14, UserId()}).code,
            Code::kInvalidArgument);
  EXPECT_EQ(store.stats().syncs, 4u);
}

// ---- Membership -------------------------------------------------------------------------------

TEST(StoreMembershipTest, JoinLeaveUpdateBothTables) {
  MessageStore store(Options(SequenceConfig()));
  StoreMembershipResult r = Membership(store, kBob, kGroup, true);  // creates the group
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.request_id, 3u);
  EXPECT_EQ(r.group, kGroup);
  EXPECT_TRUE(r.joined);
  EXPECT_EQ(r.group_mode, GroupMode::kPush);
  EXPECT_EQ(Membership(store, kBob, kGroup, true).joined, true);  // idempotent
  Membership(store, kAlice, kGroup, true);
  Membership(store, kAlice, GroupId(20), true);
  EXPECT_EQ(store.Members(kGroup), (std::vector<UserId>{kAlice, kBob}));
  EXPECT_EQ(store.GroupsOf(kAlice), (std::vector<GroupId>{kGroup, GroupId(20)}));
  EXPECT_EQ(store.GroupsOf(kBob), (std::vector<GroupId>{kGroup}));

  r = Membership(store, kBob, kGroup, false);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.joined);
  EXPECT_EQ(store.Members(kGroup), (std::vector<UserId>{kAlice}));
  EXPECT_TRUE(store.GroupsOf(kBob).empty());
  r = Membership(store, kBob, kGroup, false);  // leave of a non-member
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.joined);
  r = Membership(store, kBob, GroupId(99), false);  // leave of an unknown group
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.joined);
  EXPECT_EQ(r.group_mode, GroupMode::kNone);
  // The last member leaving keeps the group and its history.
  Membership(store, kAlice, kGroup, false);
  EXPECT_TRUE(store.Members(kGroup).empty());
  EXPECT_EQ(store.Groups(), (std::vector<GroupId>{kGroup, GroupId(20)}));
  EXPECT_EQ(store.stats().membership_ops, 8u);
}

TEST(StoreMembershipTest, MemberLimitRefusesJoin) {
  ProtocolConfig config = SequenceConfig();
  config.store_group_members_max = 2;
  MessageStore store(Options(config));
  EXPECT_TRUE(Membership(store, kAlice, kGroup, true).joined);
  EXPECT_TRUE(Membership(store, kBob, kGroup, true).joined);
  const StoreMembershipResult full = Membership(store, kCarol, kGroup, true);
  EXPECT_EQ(full.code, Code::kResourceExhausted);
  EXPECT_FALSE(full.joined);
  EXPECT_TRUE(store.GroupsOf(kCarol).empty());
  // A member re-joining at the limit is fine (idempotent); a freed seat can be taken.
  EXPECT_EQ(Membership(store, kBob, kGroup, true).code, Code::kOk);
  Membership(store, kBob, kGroup, false);
  EXPECT_TRUE(Membership(store, kCarol, kGroup, true).joined);
  EXPECT_EQ(store.Members(kGroup), (std::vector<UserId>{kAlice, kCarol}));
}

TEST(StoreMembershipTest, InvalidArguments) {
  MessageStore store(Options(SequenceConfig()));
  EXPECT_EQ(Membership(store, UserId(), kGroup, true).code, Code::kInvalidArgument);
  EXPECT_EQ(Membership(store, kAlice, GroupId(), true).code, Code::kInvalidArgument);
  EXPECT_TRUE(store.Groups().empty());
}

TEST(StoreMembersTest, ListsMembersAscending) {
  MessageStore store(Options(SequenceConfig()));
  Membership(store, kCarol, kGroup, true);
  Membership(store, kAlice, kGroup, true);
  auto r = Call<StoreMembersResult>(store, kT0, StoreMembers{8, kGroup});
  EXPECT_EQ(r.request_id, 8u);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.group, kGroup);
  EXPECT_EQ(r.members, (std::vector<UserId>{kAlice, kCarol}));
  r = Call<StoreMembersResult>(store, kT0, StoreMembers{9, GroupId(99)});
  EXPECT_EQ(r.code, Code::kNotFound);
  EXPECT_TRUE(r.members.empty());
  EXPECT_EQ(Call<StoreMembersResult>(store, kT0, StoreMembers{9, GroupId()}).code,
            Code::kInvalidArgument);
  EXPECT_EQ(store.stats().members_queries, 3u);
}
}  // namespace
}  // namespace chatlab::store_test
