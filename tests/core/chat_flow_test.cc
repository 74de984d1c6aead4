// End-to-end flows of the chat protocol through the unchanged core state machines, on the
// in-process environment (manual clock, event queue, no sockets, no SimGrid).
#include <optional>
#include <string>

#include "core/codec.h"
#include "gtest/gtest.h"
#include "sim/inproc/cluster.h"

namespace chatlab::inproc {
namespace {

const UserId kAlice(1), kBob(2), kCarol(3), kDave(4);
const GroupId kGroup(77);

ProtocolConfig TestConfig() {
  ProtocolConfig c;
  c.client_sync_interval_us = 5 * kUsPerSecond;
  c.group_poll_interval_us = 1 * kUsPerSecond;
  return c;
}

class ChatFlowTest : public ::testing::Test {
 protected:
  void SetUpCluster(ProtocolConfig config, int servers = 2) {
    ClusterOptions o;
    o.config = config;
    o.servers = servers;
    cluster_ = std::make_unique<Cluster>(o);
    for (UserId u : {kAlice, kBob, kCarol, kDave}) cluster_->AddClient(u);
  }
  Cluster& c() { return *cluster_; }
  NodeId S(int i) { return c().servers()[static_cast<size_t>(i)]; }
  std::vector<std::string> Bodies(UserId viewer, const ConversationId& conv) {
    std::vector<std::string> bodies;
    for (const ChatMessage& m : c().client(viewer).View(conv)) bodies.push_back(m.body);
    return bodies;
  }
  // Alice (on one server) sends Bob (on another) 30 messages 2 ms apart while node messages
  // get up to 50 ms of random extra delay, so deliveries arrive out of order.
  void SendBurstUnderJitter(const ConversationId& conv) {
    c().Connect(kAlice, S(0));
    c().Connect(kBob, S(1));
    c().RunFor(kUsPerSecond);
    c().SetFaults(FaultOptions{.jitter_us = 50 * kUsPerMs});
    for (int i = 0; i < 30; i++) {
      ASSERT_TRUE(c().Send(kAlice, conv, "m" + std::to_string(i)).ok());
      c().RunFor(2 * kUsPerMs);
    }
    c().RunFor(3 * kUsPerSecond);
  }
  void ExpectNoViolations() {
    c().oracle().CheckFinal(c().Truth());
    EXPECT_EQ(c().oracle().counts().total(), 0u)
        << (c().oracle().first_violations().empty() ? ""
                                                     : c().oracle().first_violations()[0]);
  }
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(ChatFlowTest, DirectMessageAcksDeliversAndReceipts) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  ASSERT_TRUE(c().Send(kAlice, conv, "hi bob").ok());
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"hi bob"});
  EXPECT_EQ(Bodies(kAlice, conv), std::vector<std::string>{"hi bob"});
  EXPECT_EQ(c().client(kAlice).outbox_size(), 0u);
  const MessageId id = c().client(kBob).LastShown(conv);
  ASSERT_NE(id, kNoMessage);
  // Bob's device delivered it: Alice sees the delivery receipt, then the read receipt.
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kDelivered, kBob), id);
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kRead, kBob), kNoMessage);
  c().MarkRead(kBob, conv);
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kRead, kBob), id);
  EXPECT_GE(c().server(S(0))->stats().forwards_sent, 1u);
  ExpectNoViolations();
}

// Pushes carry only changes: a viewer away when a contact went offline must not come back
// showing the contact online. Every connect reads the statuses afresh, in fan-out mode too.
TEST_F(ChatFlowTest, ReconnectingViewerReadsPresenceAfresh) {
  ProtocolConfig config = TestConfig();
  config.presence_fanout = PresenceFanout::kAll;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  ASSERT_TRUE(c().Send(kAlice, ConversationId::Direct(kAlice, kBob), "hi").ok());
  c().RunFor(kUsPerSecond);
  c().Disconnect(kBob);
  c().RunFor(kUsPerSecond);
  c().Connect(kBob, S(1));  // pushed to Alice, now a contact
  c().RunFor(kUsPerSecond);
  c().Disconnect(kAlice);
  c().RunFor(kUsPerSecond);
  c().Disconnect(kBob);  // pushed to nobody: Alice is away
  c().RunFor(kUsPerSecond);
  std::optional<PresenceStatus> bob = c().client(kAlice).Presence(kBob);
  ASSERT_TRUE(bob.has_value());
  EXPECT_TRUE(bob->online);  // what Alice saw when she left
  c().Connect(kAlice, S(1));
  c().RunFor(kUsPerSecond);
  bob = c().client(kAlice).Presence(kBob);
  ASSERT_TRUE(bob.has_value());
  EXPECT_FALSE(bob->online);
  EXPECT_GT(bob->last_seen_us, 0);
}

TEST_F(ChatFlowTest, OfflineRecipientIsNotifiedAndCatchesUpOnReconnect) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  ASSERT_TRUE(c().Send(kAlice, conv, "are you there?").ok());
  ASSERT_TRUE(c().Send(kAlice, conv, "call me").ok());
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().notification().stats().pushed, 2u);
  EXPECT_EQ(c().client(kBob).stats().notifications, 2u);
  EXPECT_TRUE(Bodies(kBob, conv).empty());
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(Bodies(kBob, conv), (std::vector<std::string>{"are you there?", "call me"}));
  EXPECT_GE(c().client(kBob).stats().catchups, 1u);
  ExpectNoViolations();
}

// With a tail of one message per conversation in the store's memory, Bob's catch-up starts
// below it: the store reads the history back from its disk (LoadHistory), and Bob sees all.
TEST_F(ChatFlowTest, CatchUpBelowTheStoresTailIsReadFromDisk) {
  ProtocolConfig config = TestConfig();
  config.store_tail_cache = 1;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  std::vector<std::string> sent;
  for (int i = 0; i < 5; i++) {
    sent.push_back("m" + std::to_string(i));
    ASSERT_TRUE(c().Send(kAlice, conv, sent.back()).ok());
    c().RunFor(10 * kUsPerMs);
  }
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().store().cached_messages(), 1u);
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(Bodies(kBob, conv), sent);
  EXPECT_GE(c().store().stats().history_loads, 1u);
  ExpectNoViolations();
}

TEST_F(ChatFlowTest, GroupJoinSendLeave) {
  SetUpCluster(TestConfig());
  for (UserId u : {kAlice, kBob, kCarol, kDave}) c().Connect(u, S(static_cast<int>(u.value % 2)));
  c().RunFor(kUsPerSecond);
  for (UserId u : {kAlice, kBob, kCarol}) c().JoinGroup(u, kGroup);
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Group(kGroup);
  EXPECT_EQ(c().store().Members(kGroup), (std::vector<UserId>{kAlice, kBob, kCarol}));
  ASSERT_TRUE(c().Send(kAlice, conv, "hello group").ok());
  c().RunFor(kUsPerSecond);
  for (UserId u : {kAlice, kBob, kCarol}) {
    EXPECT_EQ(Bodies(u, conv), std::vector<std::string>{"hello group"}) << ToString(u);
  }
  EXPECT_TRUE(Bodies(kDave, conv).empty());
  // A non-member cannot post.
  ASSERT_TRUE(c().Send(kDave, conv, "let me in").ok());
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().client(kDave).stats().send_failures, 1u);
  // Carol leaves: she gets nothing more; the others do. Group receipts aggregate members.
  c().LeaveGroup(kCarol, kGroup);
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().store().Members(kGroup), (std::vector<UserId>{kAlice, kBob}));
  ASSERT_TRUE(c().Send(kBob, conv, "bye carol").ok());
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(Bodies(kAlice, conv), (std::vector<std::string>{"hello group", "bye carol"}));
  EXPECT_EQ(Bodies(kCarol, conv), std::vector<std::string>{"hello group"});
  // "Delivered to all" covers the first message (every member has it); Bob has not received a
  // message after his own, so his watermark, and the aggregate, stay there.
  EXPECT_EQ(c().client(kBob).ReceiptShown(conv, ReceiptKind::kDelivered, UserId()),
            c().client(kBob).View(conv)[0].message_id);
  ExpectNoViolations();
}

// The per-member ticks of a group message, end to end through a real store and the codec: Alice
// sends, Bob reads, Carol only has it on her device; Alice's "Message info" says so, then says
// Carol read it once she has. A non-member is refused. The oracle (whose receipts_unfounded
// check judges every tick shown against what that member displayed) finds nothing wrong.
TEST_F(ChatFlowTest, GroupMessageInfoShowsEachMembersTicks) {
  SetUpCluster(TestConfig());
  for (UserId u : {kAlice, kBob, kCarol, kDave}) c().Connect(u, S(static_cast<int>(u.value % 2)));
  c().RunFor(kUsPerSecond);
  for (UserId u : {kAlice, kBob, kCarol}) c().JoinGroup(u, kGroup);
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, conv, "who has read this?").ok());
  c().RunFor(kUsPerSecond);
  const MessageId id = c().client(kAlice).LastShown(conv);
  ASSERT_NE(id, kNoMessage);
  c().MarkRead(kAlice, conv);  // "read by all" counts every member, the sender too
  c().MarkRead(kBob, conv);
  c().RunFor(kUsPerSecond);
  // Not read by all, so no group ReceiptUpdate told Alice anything about Bob's read.
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kRead, UserId()), kNoMessage);
  EXPECT_NE(c().GetReceipts(kAlice, conv), 0u);
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().client(kAlice).MemberReceiptsShown(conv),
            (std::vector<MemberReceipts>{{kBob, id, id}, {kCarol, id, kNoMessage}}));
  c().MarkRead(kCarol, conv);
  c().RunFor(kUsPerSecond);
  // Read by all now: the aggregate arrived; asked again, Carol's own tick says read too.
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kRead, UserId()), id);
  c().GetReceipts(kAlice, conv);
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().client(kAlice).ReceiptShown(conv, ReceiptKind::kRead, kCarol), id);
  // Dave is not a member: refused, and shown nothing.
  c().GetReceipts(kDave, conv);
  c().RunFor(kUsPerSecond);
  EXPECT_TRUE(c().client(kDave).MemberReceiptsShown(conv).empty());
  EXPECT_EQ(c().client(kDave).ReceiptShown(conv, ReceiptKind::kRead, kBob), kNoMessage);
  EXPECT_EQ(c().store().stats().receipt_reads, 3u);
  ExpectNoViolations();
}

// A join whose request is lost is not forgotten: the client re-sends it when the request times
// out, and after a reconnect if the session died first; a leave likewise.
TEST_F(ChatFlowTest, UnansweredJoinsAndLeavesAreResent) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(0));
  c().RunFor(kUsPerSecond);
  c().SetFaults(FaultOptions{.loss = 1.0});  // every node -> node message is lost
  c().JoinGroup(kAlice, kGroup);
  c().RunFor(kUsPerSecond);
  EXPECT_TRUE(c().store().Members(kGroup).empty());
  c().SetFaults(FaultOptions{});
  c().RunFor(TestConfig().client_request_timeout_us);  // the timeout re-sends it
  EXPECT_EQ(c().store().Members(kGroup), std::vector<UserId>{kAlice});
  EXPECT_TRUE(c().client(kAlice).groups().contains(kGroup));

  // Bob's join is lost and his session dies before it times out: the reconnect re-sends it.
  c().SetFaults(FaultOptions{.loss = 1.0});
  c().JoinGroup(kBob, kGroup);
  c().RunFor(100 * kUsPerMs);
  c().Disconnect(kBob);
  c().RunFor(kUsPerSecond);
  c().SetFaults(FaultOptions{});
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().store().Members(kGroup), (std::vector<UserId>{kAlice, kBob}));

  // A lost leave is re-sent too; once answered, nothing more is sent.
  c().SetFaults(FaultOptions{.loss = 1.0});
  c().LeaveGroup(kAlice, kGroup);
  c().RunFor(kUsPerSecond);
  c().SetFaults(FaultOptions{});
  c().RunFor(TestConfig().client_request_timeout_us);
  EXPECT_EQ(c().store().Members(kGroup), std::vector<UserId>{kBob});
  EXPECT_FALSE(c().client(kAlice).groups().contains(kGroup));
  const uint64_t ops = c().store().stats().membership_ops;
  c().RunFor(3 * TestConfig().client_request_timeout_us);
  EXPECT_EQ(c().store().stats().membership_ops, ops);
  ExpectNoViolations();
}

TEST_F(ChatFlowTest, TypingIsRelayedAndExpires) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  c().SetTyping(kAlice, conv, true);
  c().RunFor(100 * kUsPerMs);
  EXPECT_TRUE(c().client(kBob).IsTyping(conv, kAlice, c().now()));
  c().SetTyping(kAlice, conv, false);
  c().RunFor(100 * kUsPerMs);
  EXPECT_FALSE(c().client(kBob).IsTyping(conv, kAlice, c().now()));
  c().SetTyping(kAlice, conv, true);
  c().RunFor(100 * kUsPerMs);
  EXPECT_TRUE(c().client(kBob).IsTyping(conv, kAlice, c().now()));
  // Never refreshed: it expires after typing_ttl on Bob's side.
  c().RunFor(TestConfig().typing_ttl_us + kUsPerSecond);
  EXPECT_FALSE(c().client(kBob).IsTyping(conv, kAlice, c().now()));
  EXPECT_EQ(c().store().stats().appends, 0u);  // typing is never stored
}

TEST_F(ChatFlowTest, PresenceIsPushedToRecentContacts) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  ASSERT_TRUE(c().Send(kAlice, conv, "ping").ok());  // makes them contacts
  c().RunFor(kUsPerSecond);
  c().Disconnect(kBob);
  c().RunFor(kUsPerSecond);
  std::optional<PresenceStatus> bob = c().client(kAlice).Presence(kBob);
  ASSERT_TRUE(bob.has_value());
  EXPECT_FALSE(bob->online);
  EXPECT_GT(bob->last_seen_us, 0);
  c().Connect(kBob, S(0));
  c().RunFor(kUsPerSecond);
  bob = c().client(kAlice).Presence(kBob);
  ASSERT_TRUE(bob.has_value());
  EXPECT_TRUE(bob->online);
}

TEST_F(ChatFlowTest, RetriedSendIsStoredAndShownOnce) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  // Every node message is lost for a while: the store write may happen while its answer is
  // lost, so the client retries the same client message id.
  c().SetFaults(FaultOptions{.loss = 0.5});
  for (int i = 0; i < 10; i++) ASSERT_TRUE(c().Send(kAlice, conv, "m" + std::to_string(i)).ok());
  c().RunFor(10 * kUsPerSecond);
  c().SetFaults(FaultOptions{});
  c().RunFor(30 * kUsPerSecond);
  EXPECT_GT(c().client(kAlice).stats().retries, 0u);
  EXPECT_EQ(c().store().Messages(conv).size(), 10u);
  EXPECT_EQ(Bodies(kBob, conv).size(), 10u);
  ExpectNoViolations();
}

class ForwardingTest : public ChatFlowTest,
                       public ::testing::WithParamInterface<ForwardingStrategy> {};

TEST_P(ForwardingTest, CrossServerDeliveryInOrder) {
  ProtocolConfig config = TestConfig();
  config.forwarding = GetParam();
  SetUpCluster(config, 3);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().Connect(kCarol, S(2));
  c().RunFor(kUsPerSecond);
  const auto ab = ConversationId::Direct(kAlice, kBob);
  for (int i = 0; i < 20; i++) {
    ASSERT_TRUE(c().Send(kAlice, ab, "m" + std::to_string(i)).ok());
    c().RunFor(5 * kUsPerMs);
  }
  c().RunFor(2 * kUsPerSecond);
  std::vector<std::string> expected;
  for (int i = 0; i < 20; i++) expected.push_back("m" + std::to_string(i));
  EXPECT_EQ(Bodies(kBob, ab), expected);
  const auto& st = c().server(S(0))->stats();
  if (GetParam() == ForwardingStrategy::kBuffered) {
    EXPECT_LT(st.forwards_sent, 20u);  // batched into ~50 ms windows
  } else {
    EXPECT_GE(st.forwards_sent, 20u);
  }
  if (GetParam() == ForwardingStrategy::kQueue) {
    EXPECT_GE(c().broker().stats().delivered, 20u);
  }
  ExpectNoViolations();
}

INSTANTIATE_TEST_SUITE_P(AllStrategies, ForwardingTest,
                         ::testing::ValuesIn(AllValues<ForwardingStrategy>()));

TEST_F(ChatFlowTest, BatchedWritesAckBeforeTheStoreHasTheMessage) {
  ProtocolConfig config = TestConfig();
  config.write_path = WritePath::kBatched;
  config.writer_flush_window_us = 200 * kUsPerMs;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  ASSERT_TRUE(c().Send(kAlice, conv, "queued").ok());
  c().RunFor(20 * kUsPerMs);  // the ack is back, the flush window is not over
  EXPECT_EQ(c().client(kAlice).outbox_size(), 0u);
  EXPECT_TRUE(c().store().Messages(conv).empty());  // the read-after-write gap
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().store().Messages(conv).size(), 1u);
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"queued"});
  EXPECT_EQ(Bodies(kAlice, conv), std::vector<std::string>{"queued"});
  EXPECT_EQ(c().writer().stats().flushes_by_timer, 1u);
  ExpectNoViolations();
}

// The batched path acks when the writer queues a message, before the store sees it. A group
// message from a non-member used to be acked and then refused by the store: an acknowledged
// message lost (found by a swarm run with a lost JoinGroup). Membership is now asked first.
TEST_F(ChatFlowTest, BatchedGroupSendFromANonMemberIsRefusedNotAcked) {
  ProtocolConfig config = TestConfig();
  config.write_path = WritePath::kBatched;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  c().JoinGroup(kBob, kGroup);
  c().RunFor(kUsPerSecond);
  const auto group = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, group, "not a member").ok());
  c().RunFor(2 * kUsPerSecond);
  EXPECT_EQ(c().client(kAlice).stats().acks, 0u);
  EXPECT_EQ(c().client(kAlice).stats().send_failures, 1u);
  EXPECT_TRUE(c().store().Messages(group).empty());
  ExpectNoViolations();
}

// A member's queued message is stored even if the member leaves before the writer flushes it:
// it was sent, and acked, while the sender was a member.
TEST_F(ChatFlowTest, BatchedGroupMessageSurvivesTheSenderLeavingBeforeTheFlush) {
  ProtocolConfig config = TestConfig();
  config.write_path = WritePath::kBatched;
  config.writer_flush_window_us = 300 * kUsPerMs;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  c().JoinGroup(kAlice, kGroup);
  c().JoinGroup(kBob, kGroup);
  c().RunFor(kUsPerSecond);
  const auto group = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, group, "last words").ok());
  c().RunFor(50 * kUsPerMs);  // acked (queued); the flush window is not over
  EXPECT_EQ(c().client(kAlice).outbox_size(), 0u);
  EXPECT_TRUE(c().store().Messages(group).empty());
  c().LeaveGroup(kAlice, kGroup);
  c().RunFor(2 * kUsPerSecond);
  EXPECT_EQ(c().store().Messages(group).size(), 1u);
  EXPECT_EQ(Bodies(kBob, group), std::vector<std::string>{"last words"});
  ExpectNoViolations();
}

TEST_F(ChatFlowTest, ReorderedDeliveriesAreHeldAndShownInOrder) {
  SetUpCluster(TestConfig());
  const auto conv = ConversationId::Direct(kAlice, kBob);
  SendBurstUnderJitter(conv);
  EXPECT_GT(c().client(kBob).stats().gaps_detected, 0u);
  EXPECT_EQ(c().client(kBob).stats().out_of_order_displayed, 0u);
  EXPECT_EQ(Bodies(kBob, conv).size(), 30u);
  ExpectNoViolations();
}

TEST_F(ChatFlowTest, GapDetectionOffShowsReorderedMessagesOutOfOrder) {
  ProtocolConfig config = TestConfig();
  config.gap_detection_enabled = false;
  SetUpCluster(config);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  SendBurstUnderJitter(conv);
  EXPECT_GT(c().client(kBob).stats().out_of_order_displayed, 0u);
  c().oracle().CheckFinal(c().Truth());
  EXPECT_GT(c().oracle().counts().order_violations, 0u);
}

TEST_F(ChatFlowTest, ServerCrashReconnectElsewhereLosesNothingAcked) {
  SetUpCluster(TestConfig(), 3);
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  for (int i = 0; i < 10; i++) {
    ASSERT_TRUE(c().Send(kAlice, conv, "before" + std::to_string(i)).ok());
    c().RunFor(1 * kUsPerMs);
  }
  c().CrashServer(S(1));  // Bob's server dies with deliveries in flight
  for (int i = 0; i < 10; i++) {
    ASSERT_TRUE(c().Send(kAlice, conv, "after" + std::to_string(i)).ok());
    c().RunFor(1 * kUsPerMs);
  }
  c().RunFor(30 * kUsPerSecond);  // Bob's client reconnects by itself, elsewhere
  EXPECT_TRUE(c().client(kBob).connected());
  EXPECT_NE(c().client(kBob).server(), S(1));
  EXPECT_EQ(Bodies(kBob, conv).size(), 20u);
  c().RestartServer(S(1));
  c().RunFor(kUsPerSecond);
  ExpectNoViolations();
}

TEST_F(ChatFlowTest, PullGroupsArePolled) {
  ProtocolConfig config = TestConfig();
  config.group_delivery = GroupDelivery::kPull;
  SetUpCluster(config);
  for (UserId u : {kAlice, kBob, kCarol}) c().Connect(u, S(static_cast<int>(u.value % 2)));
  c().RunFor(kUsPerSecond);
  for (UserId u : {kAlice, kBob, kCarol}) c().JoinGroup(u, kGroup);
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, conv, "polled").ok());
  c().RunFor(2 * kUsPerSecond);  // more than one poll interval
  EXPECT_EQ(c().server(S(0))->stats().lookups, 0u);  // no push fan-out at all
  EXPECT_EQ(c().client(kBob).stats().deliveries, 0u);
  EXPECT_GT(c().client(kBob).stats().messages_fetched, 0u);
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"polled"});
  EXPECT_EQ(Bodies(kCarol, conv), std::vector<std::string>{"polled"});
  ExpectNoViolations();
}

// hybrid_either: size alone switches the group to pull (the seed's hybrid would keep pushing an
// inactive group; HybridPullsOnlyWhenLargeAndActive in store_state_test.cc).
TEST_F(ChatFlowTest, HybridEitherGroupsSwitchToPullAboveTheSizeThreshold) {
  ProtocolConfig config = TestConfig();
  config.group_delivery = GroupDelivery::kHybridEither;
  config.hybrid_push_members_max = 2;
  SetUpCluster(config);
  for (UserId u : {kAlice, kBob, kCarol}) c().Connect(u, S(static_cast<int>(u.value % 2)));
  c().RunFor(kUsPerSecond);
  c().JoinGroup(kAlice, kGroup);
  c().JoinGroup(kBob, kGroup);
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, conv, "pushed").ok());
  c().RunFor(100 * kUsPerMs);
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"pushed"});
  c().JoinGroup(kCarol, kGroup);  // 3 members > 2: pull
  c().RunFor(kUsPerSecond);
  ASSERT_TRUE(c().Send(kAlice, conv, "pulled").ok());
  c().RunFor(10 * kUsPerSecond);  // the switch is announced; Bob reads, then polls
  EXPECT_EQ(Bodies(kBob, conv), (std::vector<std::string>{"pushed", "pulled"}));
  ExpectNoViolations();
}

// The seed's hybrid: a group over the size threshold that is not active keeps being pushed.
TEST_F(ChatFlowTest, HybridKeepsPushingALargeQuietGroup) {
  ProtocolConfig config = TestConfig();
  config.group_delivery = GroupDelivery::kHybrid;
  config.hybrid_push_members_max = 2;
  SetUpCluster(config);
  for (UserId u : {kAlice, kBob, kCarol}) c().Connect(u, S(static_cast<int>(u.value % 2)));
  c().RunFor(kUsPerSecond);
  for (UserId u : {kAlice, kBob, kCarol}) c().JoinGroup(u, kGroup);  // 3 members > 2: large
  c().RunFor(kUsPerSecond);
  const auto conv = ConversationId::Group(kGroup);
  ASSERT_TRUE(c().Send(kAlice, conv, "pushed").ok());
  c().RunFor(100 * kUsPerMs);  // well before any poll or sync
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"pushed"});
  EXPECT_EQ(Bodies(kCarol, conv), std::vector<std::string>{"pushed"});
  EXPECT_GT(c().client(kBob).stats().deliveries, 0u);
  ExpectNoViolations();
}

// A member told "push" when it joined learns that the group went pull from the server's
// GroupModeUpdate, sent once, at the append that switched it: with no periodic sync and no mode
// check it reads that message at once (well before any poll) and polls from then on. The mode
// check, when on, is a backstop and changes nothing here.
TEST_F(ChatFlowTest, HybridSwitchToPullIsAnnouncedToTheMembers) {
  for (const TimeUs check : {TimeUs{0}, 3 * kUsPerSecond}) {
    SCOPED_TRACE(testing::Message() << "hybrid_mode_check_us " << check);
    ProtocolConfig config = TestConfig();
    config.client_sync_interval_us = 0;
    config.group_poll_interval_us = 5 * kUsPerSecond;
    config.group_delivery = GroupDelivery::kHybridEither;  // size alone switches it
    config.hybrid_push_members_max = 2;
    config.hybrid_mode_check_us = check;
    SetUpCluster(config);
    for (UserId u : {kAlice, kBob, kCarol}) c().Connect(u, S(static_cast<int>(u.value % 2)));
    c().RunFor(kUsPerSecond);
    c().JoinGroup(kAlice, kGroup);
    c().JoinGroup(kBob, kGroup);  // told "push"
    c().RunFor(kUsPerSecond);
    const auto conv = ConversationId::Group(kGroup);
    ASSERT_TRUE(c().Send(kAlice, conv, "pushed").ok());
    c().RunFor(100 * kUsPerMs);
    c().JoinGroup(kCarol, kGroup);  // 3 members > 2: pull from the next append on
    c().RunFor(100 * kUsPerMs);
    ASSERT_TRUE(c().Send(kAlice, conv, "pulled").ok());
    c().RunFor(200 * kUsPerMs);  // a poll is seconds away
    EXPECT_EQ(Bodies(kBob, conv), (std::vector<std::string>{"pushed", "pulled"}));
    EXPECT_EQ(c().server(S(0))->stats().mode_updates + c().server(S(1))->stats().mode_updates,
              1u);
    EXPECT_EQ(c().client(kBob).stats().group_mode_changes, 1u);
    // Still pull: not announced again, not pushed; Bob's poll finds it.
    ASSERT_TRUE(c().Send(kAlice, conv, "polled").ok());
    c().RunFor(200 * kUsPerMs);
    EXPECT_EQ(Bodies(kBob, conv).size(), 2u);
    c().RunFor(6 * kUsPerSecond);
    EXPECT_EQ(Bodies(kBob, conv), (std::vector<std::string>{"pushed", "pulled", "polled"}));
    // Told "pull" when she joined: she polls (and reads what came before her join).
    ASSERT_GE(Bodies(kCarol, conv).size(), 2u);
    EXPECT_EQ(Bodies(kCarol, conv).back(), "polled");
    EXPECT_EQ(c().server(S(0))->stats().mode_updates + c().server(S(1))->stats().mode_updates,
              1u);
    ExpectNoViolations();
  }
}

TEST_F(ChatFlowTest, MalformedFramesGetAnErrorAndTheSessionGoesOn) {
  SetUpCluster(TestConfig());
  c().Connect(kAlice, S(0));
  c().Connect(kBob, S(1));
  c().RunFor(kUsPerSecond);
  c().InjectClientFrame(kAlice, std::string("\x01\xff\xff\xff", 4));
  c().InjectClientFrame(kAlice, std::string("\x09\x01", 2));  // unknown version
  c().InjectClientFrame(kAlice, Encode(Message{StoreSync{1, kBob}}));  // not a client request
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().client(kAlice).stats().errors, 3u);
  EXPECT_EQ(c().server(S(0))->stats().client_errors, 3u);
  EXPECT_TRUE(c().client(kAlice).connected());
  const auto conv = ConversationId::Direct(kAlice, kBob);
  ASSERT_TRUE(c().Send(kAlice, conv, "still here").ok());
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(Bodies(kBob, conv), std::vector<std::string>{"still here"});
}

TEST_F(ChatFlowTest, OversizedAndForeignSendsAreRefused) {
  ProtocolConfig config = TestConfig();
  config.body_bytes_max = 16;
  SetUpCluster(config);
  c().Connect(kAlice, S(0));
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().Send(kAlice, ConversationId::Direct(kAlice, kBob), std::string(17, 'x'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c().Send(kAlice, ConversationId::Direct(kBob, kCarol), "spoof").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A hand-made frame that bypasses the client's checks is refused by the server.
  c().InjectClientFrame(kAlice, Encode(Message{SendMessage{
                                    9, ConversationId::Direct(kBob, kCarol), 0, "spoof"}}));
  c().RunFor(kUsPerSecond);
  EXPECT_EQ(c().server(S(0))->stats().sends_rejected, 1u);
  EXPECT_EQ(c().store().stats().appends, 0u);
}

}  // namespace
}  // namespace chatlab::inproc
