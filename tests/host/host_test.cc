// The host layer (host/): the deployment registry, the node table, effect dispatch and the
// timer queue, each checked on its own, with no environment around it.
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/batch_writer.h"
#include "core/random.h"
#include "core/store.h"
#include "gtest/gtest.h"
#include "host/deployment.h"
#include "host/dispatch.h"
#include "host/timer_queue.h"
#include "host/truth.h"

namespace chatlab::host {
namespace {

// ---- The registry and the deployment -----------------------------------------------------------

TEST(DeploymentTest, EveryServiceHasOneNameAndOneIdBelowTheChatServers) {
  std::vector<std::string> names;
  for (const ServiceSpec& s : Services()) {
    EXPECT_EQ(FindService(s.name), &s);
    EXPECT_EQ(FindService(s.id), &s);
    EXPECT_LT(s.id.value, kFirstChatServer) << s.name;
    EXPECT_EQ(s.durable, s.restore != nullptr) << s.name;
    names.emplace_back(s.name);
  }
  EXPECT_EQ(ServiceNames(), "store|writer|mapping|presence|notification|broker");
  EXPECT_EQ(FindService("nonsense"), nullptr);
  EXPECT_EQ(FindService(NodeId(999)), nullptr);
}

TEST(DeploymentTest, SlotsAreServicesThenChatServers) {
  Deployment d(Deployment::Options{3, ProtocolConfig{}});
  ASSERT_EQ(d.size(), Services().size() + 3);
  EXPECT_EQ(d.first_server(), static_cast<int>(Services().size()));
  for (size_t i = 0; i < d.size(); i++) {
    EXPECT_EQ(d.IndexOf(d.slot(i).id), static_cast<int>(i)) << d.slot(i).name;
  }
  EXPECT_EQ(d.slot(static_cast<size_t>(d.first_server()) + 2).id, ChatServerId(2));
  EXPECT_EQ(d.slot(static_cast<size_t>(d.first_server()) + 2).name, "server2");
  EXPECT_EQ(d.slot(static_cast<size_t>(d.first_server()) + 2).server_index, 2);
  EXPECT_EQ(d.IndexOf(ChatServerId(3)), -1);  // one past the last server
  EXPECT_EQ(d.IndexOf(NodeId(77)), -1);
  EXPECT_EQ(d.IndexOf(NodeId()), -1);
  const Topology& t = d.topology();
  EXPECT_EQ(t.store, FindService("store")->id);
  EXPECT_EQ(t.writer, FindService("writer")->id);
  EXPECT_EQ(t.broker, FindService("broker")->id);
}

TEST(DeploymentTest, OnlyNeededLeavesOutWhatTheConfigDoesNotUse) {
  ProtocolConfig config;  // direct forwarding, direct writes
  Deployment lean(Deployment::Options{1, config, /*only_needed=*/true});
  EXPECT_EQ(lean.IndexOf(Role::kWriter), -1);
  EXPECT_EQ(lean.IndexOf(Role::kBroker), -1);
  EXPECT_GE(lean.IndexOf(Role::kStore), 0);
  EXPECT_FALSE(lean.topology().writer.valid());
  EXPECT_FALSE(lean.topology().broker.valid());

  config.forwarding = ForwardingStrategy::kQueue;
  config.write_path = WritePath::kBatched;
  Deployment full(Deployment::Options{1, config, /*only_needed=*/true});
  EXPECT_GE(full.IndexOf(Role::kWriter), 0);
  EXPECT_GE(full.IndexOf(Role::kBroker), 0);
  EXPECT_TRUE(full.topology().broker.valid());
}

// Three store shards: three store slots in the store's place, in shard order, each its own node
// with the store's spec; the topology lists them and routes each conversation to one of them.
TEST(DeploymentTest, StoreShardsAreSlotsInTheStoresPlace) {
  ProtocolConfig config;
  config.store_shards = 3;
  Deployment d(Deployment::Options{2, config});
  const ServiceSpec& store = *FindService("store");
  ASSERT_EQ(d.size(), Services().size() + 2 + 2);  // two more store slots
  ASSERT_EQ(d.store_slots(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(d.IndexOf(Role::kStore), 0);  // shard 0
  EXPECT_EQ(d.IndexOf(Role::kWriter), 3);
  EXPECT_EQ(d.first_server(), static_cast<int>(Services().size()) + 2);
  const std::vector<std::string> names = {"store", "store1", "store2"};
  const Topology& t = d.topology();
  ASSERT_EQ(t.stores.size(), 3u);
  for (int k = 0; k < 3; k++) {
    const NodeSlot& slot = d.slot(static_cast<size_t>(d.store_slots()[static_cast<size_t>(k)]));
    EXPECT_EQ(slot.role, Role::kStore);
    EXPECT_EQ(slot.name, names[static_cast<size_t>(k)]);
    EXPECT_EQ(StoreShardName(k), names[static_cast<size_t>(k)]);
    EXPECT_EQ(slot.shard, k);
    EXPECT_EQ(slot.server_index, -1);
    EXPECT_EQ(slot.service, &store);
    EXPECT_EQ(slot.id, StoreShardId(k));
    EXPECT_EQ(ShardOfStore(slot.id), k);
    EXPECT_EQ(FindService(slot.id), &store);  // a shard's id finds the store's spec
    EXPECT_EQ(d.IndexOf(slot.id), d.store_slots()[static_cast<size_t>(k)]);
    EXPECT_EQ(t.stores[static_cast<size_t>(k)], slot.id);
    EXPECT_LT(slot.id.value, kFirstChatServer);
  }
  EXPECT_EQ(StoreShardId(0), store.id);
  EXPECT_EQ(t.store, store.id);
  EXPECT_EQ(d.slot(3).shard, -1);  // the writer is no shard
  // Shard ids collide with no service and no chat server.
  for (const ServiceSpec& s : Services()) {
    if (s.role == Role::kStore) continue;
    EXPECT_EQ(ShardOfStore(s.id), -1) << s.name;
  }
  EXPECT_EQ(ShardOfStore(ChatServerId(0)), -1);
  EXPECT_EQ(ShardOfStore(NodeId(999)), -1);
  EXPECT_EQ(FindService("store1"), nullptr);  // by name, the registry has only "store"
  // Every conversation goes to one of the shards, and some go to each.
  std::vector<int> per_shard(3, 0);
  for (uint64_t u = 1; u <= 60; u++) {
    const ConversationId conv = ConversationId::Group(GroupId(u));
    const NodeId to = t.StoreFor(conv);
    const int k = ShardOfStore(to);
    ASSERT_GE(k, 0);
    EXPECT_EQ(k, static_cast<int>(StoreShardOf(conv, 3)));
    per_shard[static_cast<size_t>(k)]++;
  }
  for (int n : per_shard) EXPECT_GT(n, 0);

  // One shard (the default) is the registry's one store, and the topology lists none.
  Deployment one(Deployment::Options{1, ProtocolConfig{}});
  EXPECT_EQ(one.store_slots(), std::vector<int>{0});
  EXPECT_TRUE(one.topology().stores.empty());
  EXPECT_EQ(one.topology().StoreFor(ConversationId::Group(GroupId(5))), store.id);
  EXPECT_EQ(one.slot(0).shard, 0);
}

TEST(NodeTableTest, IncarnationsAndSeedsFollowTheRule) {
  Deployment d(Deployment::Options{2, ProtocolConfig{}});
  NodeTable nodes(d, 42);
  const auto store = static_cast<size_t>(d.IndexOf(Role::kStore));
  const auto server = static_cast<size_t>(d.first_server());
  EXPECT_FALSE(nodes.up(store));
  nodes.Create(store);
  nodes.Create(server);
  EXPECT_TRUE(nodes.up(store));
  EXPECT_EQ(nodes.incarnation(store), 0u);   // a service's first start
  EXPECT_EQ(nodes.incarnation(server), 1u);  // a chat server's first start
  EXPECT_NE(nodes.server(server), nullptr);
  EXPECT_EQ(nodes.server(store), nullptr);   // not a chat server
  EXPECT_NE(dynamic_cast<MessageStore*>(nodes.node(store)), nullptr);

  nodes.Destroy(store);
  EXPECT_FALSE(nodes.up(store));
  EXPECT_EQ(nodes.incarnation(store), 1u);  // timers armed before the crash are now stale
  nodes.Create(store);
  EXPECT_EQ(nodes.incarnation(store), 2u);
  nodes.Destroy(store);
  nodes.Destroy(store);  // destroying an empty slot changes nothing
  EXPECT_EQ(nodes.incarnation(store), 3u);

  // A service's first incarnation keeps its seed; later ones and chat servers mix theirs in.
  const NodeId id = FindService("store")->id;
  EXPECT_EQ(NodeSeed(42, id, 0, false), MixSeed(42, id.value * 1000003));
  EXPECT_NE(NodeSeed(42, id, 2, false), NodeSeed(42, id, 0, false));
  EXPECT_EQ(NodeSeed(42, ChatServerId(0), 3, true), MixSeed(42, ChatServerId(0).value * 1000003 + 3));
}

TEST(NodeTableTest, DurableServicesRestoreWhatTheyPersisted) {
  Deployment d(Deployment::Options{1, ProtocolConfig{}});
  const ServiceSpec& store = *FindService("store");
  NodeTable nodes(d, 1);
  Node& fresh = nodes.Create(static_cast<size_t>(d.IndexOf(Role::kStore)));
  const absl::Status ok =
      store.restore(fresh, PersistMembership{UserId(7), GroupId(3), /*joined=*/true});
  EXPECT_TRUE(ok.ok()) << ok;
  EXPECT_EQ(static_cast<MessageStore&>(fresh).Members(GroupId(3)), std::vector<UserId>{UserId(7)});
  // The store refuses the writer's records: each node has its own disk.
  EXPECT_FALSE(store.restore(fresh, PersistDequeued{1}).ok());
}

// ---- Dispatch ----------------------------------------------------------------------------------

// Records every call as a line.
class RecordingEnv : public NodeEnv, public ClientEnv {
 public:
  std::vector<std::string> calls;
  void SendToNode(NodeId from, NodeId to, Message msg) override {
    calls.push_back(absl::StrCat("node ", from.value, "->", to.value, " ", MessageName(msg)));
  }
  void SendToClient(NodeId from, SessionId session, Message msg) override {
    calls.push_back(absl::StrCat("client ", from.value, "->s", session.value, " ",
                                 MessageName(msg)));
  }
  void CloseSession(NodeId from, SessionId session) override {
    calls.push_back(absl::StrCat("close ", from.value, " s", session.value));
  }
  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) override {
    calls.push_back(absl::StrCat("timer ", node.value, " #", timer_id, " @", at_us));
  }
  void PushToDevice(NodeId from, const chatlab::PushToDevice& push) override {
    calls.push_back(absl::StrCat("push ", from.value, " u", push.user.value));
  }
  void Persist(NodeId node, PersistRecord record) override {
    calls.push_back(absl::StrCat("persist ", node.value, " kind ", record.index()));
  }
  void LoadHistory(NodeId node, const chatlab::LoadHistory& load) override {
    calls.push_back(absl::StrCat("load ", node.value, " #", load.token, " after ", load.after));
  }
  void LoadDedup(NodeId node, const chatlab::LoadDedup& load) override {
    calls.push_back(absl::StrCat("dedup ", node.value, " #", load.token, " u", load.sender.value,
                                 " c", load.client_msg_id));
  }
  void Unexpected(NodeId from, const Effect& effect) override {
    calls.push_back(absl::StrCat("unexpected ", from.value, " effect ", effect.index()));
  }
  void SendToServer(UserId user, Message msg) override {
    calls.push_back(absl::StrCat("server u", user.value, " ", MessageName(msg)));
  }
  void OpenSession(UserId user, NodeId server) override {
    calls.push_back(absl::StrCat("open u", user.value, " ", server.value));
  }
  void CloseSession(UserId user, SessionId session) override {
    calls.push_back(absl::StrCat("close u", user.value, " s", session.value));
  }
  void ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) override {
    calls.push_back(absl::StrCat("timer u", user.value, " #", timer_id, " @", at_us));
  }
  void Unexpected(UserId user, const Effect& effect) override {
    calls.push_back(absl::StrCat("unexpected u", user.value, " effect ", effect.index()));
  }
};

TEST(DispatchTest, EveryNodeEffectReachesItsCallInOrder) {
  Effects effects;
  effects.push_back(chatlab::Persist{PersistDequeued{2}});
  effects.push_back(SendToNode{NodeId(5), Typing{}});
  effects.push_back(SendToClient{SessionId(9), SessionClosed{}});
  effects.push_back(chatlab::ArmTimer{3, 1000});
  chatlab::PushToDevice push;
  push.user = UserId(4);
  effects.push_back(push);
  effects.push_back(chatlab::CloseSession{SessionId(9)});
  effects.push_back(chatlab::LoadHistory{6, ConversationId::Group(GroupId(3)), 40, 10});
  effects.push_back(chatlab::LoadDedup{7, UserId(8), 9});
  effects.push_back(SendToServer{Typing{}});  // a client's effect from a node: a core bug
  RecordingEnv env;
  Dispatch(NodeId(101), effects, static_cast<NodeEnv&>(env));
  const std::vector<std::string> want = {
      "persist 101 kind 5",        "node 101->5 Typing",  "client 101->s9 SessionClosed",
      "timer 101 #3 @1000",        "push 101 u4",         "close 101 s9",
      "load 101 #6 after 40",      "dedup 101 #7 u8 c9",  "unexpected 101 effect 2"};
  EXPECT_EQ(env.calls, want);
}

TEST(DispatchTest, EveryClientEffectReachesItsCallInOrder) {
  Effects effects;
  effects.push_back(OpenSession{NodeId(102)});
  effects.push_back(SendToServer{Typing{}});
  effects.push_back(chatlab::ArmTimer{8, 50});
  effects.push_back(chatlab::CloseSession{SessionId(2)});
  effects.push_back(chatlab::Persist{PersistDequeued{1}});  // a node's effect from a client
  RecordingEnv env;
  Dispatch(UserId(6), effects, static_cast<ClientEnv&>(env));
  const std::vector<std::string> want = {"open u6 102", "server u6 Typing", "timer u6 #8 @50",
                                         "close u6 s2", "unexpected u6 effect 7"};
  EXPECT_EQ(env.calls, want);
}

TEST(DispatchTest, TakePersistsKeepsBothOrders) {
  Effects effects;
  effects.push_back(chatlab::Persist{PersistDequeued{1}});
  effects.push_back(chatlab::ArmTimer{1, 10});
  effects.push_back(chatlab::Persist{PersistDequeued{2}});
  effects.push_back(chatlab::ArmTimer{2, 20});
  const std::vector<PersistRecord> records = TakePersists(effects);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(std::get<PersistDequeued>(records[0]).count, 1u);
  EXPECT_EQ(std::get<PersistDequeued>(records[1]).count, 2u);
  ASSERT_EQ(effects.size(), 2u);
  EXPECT_EQ(std::get<chatlab::ArmTimer>(effects[0]).timer_id, 1u);
  EXPECT_EQ(std::get<chatlab::ArmTimer>(effects[1]).timer_id, 2u);
}

// ---- The timer queue ---------------------------------------------------------------------------

TEST(TimerQueueTest, DueTimeFirstThenArmingOrder) {
  TimerQueue<double, std::string> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.NextOr(9.0), 9.0);
  q.Arm(2.0, "b1");
  q.Arm(1.0, "a");
  q.Arm(2.0, "b2");
  q.Arm(3.0, "c");
  q.Arm(2.0, "b3");
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.next_at(), 1.0);
  EXPECT_FALSE(q.PopDue(0.5).has_value());  // nothing due yet
  std::vector<std::string> fired;
  while (auto due = q.PopDue(2.0)) fired.push_back(due->second);
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b1", "b2", "b3"}));
  EXPECT_EQ(q.NextOr(9.0), 3.0);
  // An entry armed later for an earlier time still comes first.
  q.Arm(2.5, "late");
  EXPECT_EQ(q.PopDue(10.0)->second, "late");
  EXPECT_EQ(q.PopDue(10.0)->second, "c");
  EXPECT_TRUE(q.empty());
}

// ---- The oracle's truth ------------------------------------------------------------------------

TEST(TruthTest, GroupsListTheirMembersAndDirectChatsTheirTwoUsers) {
  Deployment d(Deployment::Options{1, ProtocolConfig{}});
  NodeTable nodes(d, 1);
  auto& store = static_cast<MessageStore&>(nodes.Create(static_cast<size_t>(d.IndexOf(Role::kStore))));
  ASSERT_TRUE(store.Restore(PersistMembership{UserId(1), GroupId(5), true}).ok());
  ASSERT_TRUE(store.Restore(PersistMembership{UserId(2), GroupId(5), true}).ok());
  ChatMessage group_msg;
  group_msg.conv = ConversationId::Group(GroupId(5));
  group_msg.message_id = 10;
  group_msg.sender = UserId(1);
  group_msg.client_msg_id = 1;
  ChatMessage direct_msg;
  direct_msg.conv = ConversationId::Direct(UserId(3), UserId(4));
  direct_msg.message_id = 11;
  direct_msg.sender = UserId(3);
  direct_msg.client_msg_id = 1;
  ASSERT_TRUE(store.Restore(PersistMessage{group_msg}).ok());
  ASSERT_TRUE(store.Restore(PersistMessage{direct_msg}).ok());
  const std::vector<ConversationTruth> truth = BuildTruth(store);
  ASSERT_EQ(truth.size(), 2u);
  for (const ConversationTruth& t : truth) {
    ASSERT_EQ(t.messages.size(), 1u);
    if (t.conv.is_group()) {
      EXPECT_EQ(t.participants, (std::vector<UserId>{UserId(1), UserId(2)}));
    } else {
      EXPECT_EQ(t.participants, (std::vector<UserId>{UserId(3), UserId(4)}));
    }
  }
}

}  // namespace
}  // namespace chatlab::host
