// Unit tests for core/store.h: the message store driven directly through OnMessage.
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

namespace chatlab {
namespace {

constexpr NodeId kStoreNode(5);
constexpr NodeId kServer(100);
constexpr UserId kAlice(1);
constexpr UserId kBob(2);
constexpr UserId kCarol(3);
constexpr UserId kDave(4);
constexpr GroupId kGroup(10);

const ConversationId kAliceBob = ConversationId::Direct(kAlice, kBob);
const ConversationId kGroupConv = ConversationId::Group(kGroup);

// 1000 s after the snowflake epoch, in microseconds since the Unix epoch.
constexpr int64_t kT0SinceEpochMs = 1000 * 1000;
constexpr TimeUs kT0 = (kChatLabEpochMs + kT0SinceEpochMs) * kUsPerMs;

ProtocolConfig SequenceConfig() {
  ProtocolConfig config;
  config.id_scheme = IdScheme::kSequence;
  return config;
}

NodeOptions Options(const ProtocolConfig& config, NodeId self = kStoreNode) {
  NodeOptions options;
  options.self = self;
  options.config = config;
  options.topology.store = self;
  return options;
}

ChatMessage Msg(const ConversationId& conv, UserId sender, ClientMsgId cmid,
                std::string body = "hi") {
  ChatMessage m;
  m.conv = conv;
  m.sender = sender;
  m.client_msg_id = cmid;
  m.sent_at_us = 42;
  m.body = std::move(body);
  return m;
}

// Sends msg from kServer and returns the single reply, which must go back to kServer. Persist
// effects (checked by the durability tests below) must all come before the reply.
template <typename Reply>
Reply Call(MessageStore& store, TimeUs now, const Message& msg) {
  Effects all;
  store.OnMessage(now, kServer, msg, all);
  Effects out;
  for (Effect& e : all) {
    if (std::holds_alternative<Persist>(e)) {
      EXPECT_TRUE(out.empty()) << "a Persist effect after the reply";
      continue;
    }
    out.push_back(std::move(e));
  }
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1) return Reply{};
  const auto* send = std::get_if<SendToNode>(&out[0]);
  EXPECT_NE(send, nullptr);
  if (send == nullptr) return Reply{};
  EXPECT_EQ(send->to, kServer);
  const auto* reply = std::get_if<Reply>(&send->msg);
  EXPECT_NE(reply, nullptr);
  return reply == nullptr ? Reply{} : *reply;
}

AppendOutcome Append(MessageStore& store, TimeUs now, const ChatMessage& m,
                     uint64_t request_id = 7) {
  const auto result = Call<StoreAppendResult>(store, now, StoreAppend{request_id, m});
  EXPECT_EQ(result.request_id, request_id);
  return result.outcome;
}

StoreMembershipResult Membership(MessageStore& store, UserId user, GroupId group, bool join,
                                 TimeUs now = kT0) {
  return Call<StoreMembershipResult>(store, now, StoreMembership{3, user, group, join});
}

StoreReadResult Read(MessageStore& store, UserId reader, const ConversationId& conv,
                     MessageId after_id, uint32_t limit, TimeUs now = kT0) {
  return Call<StoreReadResult>(store, now, StoreRead{4, reader, conv, after_id, limit});
}

StoreReceiptResult Receipt(MessageStore& store, const ConversationId& conv, UserId reader,
                           ReceiptKind kind, MessageId up_to) {
  return Call<StoreReceiptResult>(store, kT0, StoreReceipt{5, conv, reader, kind, up_to});
}

std::vector<MessageId> Ids(const std::vector<ChatMessage>& messages) {
  std::vector<MessageId> ids;
  for (const ChatMessage& m : messages) ids.push_back(m.message_id);
  return ids;
}

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
  config.group_delivery = GroupDelivery::kHybrid;
  EXPECT_EQ(ChooseGroupMode(config, 100, 50), GroupMode::kPush);  // at both thresholds
  EXPECT_EQ(ChooseGroupMode(config, 101, 0), GroupMode::kPull);
  EXPECT_EQ(ChooseGroupMode(config, 1, 51), GroupMode::kPull);
  EXPECT_EQ(ChooseGroupMode(config, 0, 0), GroupMode::kPush);
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

TEST(StoreGroupModeTest, HybridSwitchesOnRateAndSize) {
  ProtocolConfig config = SequenceConfig();
  config.group_delivery = GroupDelivery::kHybrid;
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
}  // namespace chatlab
