// The simulator's cost model (sim/world/cost.h, docs/cost-model.md): what an input costs each
// role, that batching saves the store's per-request cost, and that the retired flops keys fail
// naming their replacements.
#include <string>

#include "gtest/gtest.h"
#include "sim/scenario.h"
#include "sim/world/cost.h"

namespace chatlab::sim::world {
namespace {

ChatMessage Message(uint64_t i) {
  ChatMessage m;
  m.conv = ConversationId::Direct(UserId(1), UserId(2));
  m.sender = UserId(1);
  m.message_id = i;
  return m;
}

// What the store emits for an append of n messages: n rows persisted and one answer.
Effects StoreAppendEffects(size_t n) {
  Effects out;
  for (size_t i = 0; i < n; i++) out.push_back(Persist{PersistMessage{Message(i + 1)}});
  out.push_back(SendToNode{NodeId(101), StoreAppendBatchResult{}});
  return out;
}

TEST(CostModel, StoreAppendIsOneRequestAndOneRow) {
  const Scenario sc = DefaultScenario();
  StoreAppend append;
  append.message = Message(0);
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kStore, append, StoreAppendEffects(1)),
                   sc.store_request_us + sc.store_commit_us + sc.store_item_write_us + sc.send_us);
}

TEST(CostModel, BatchingSavesTheStoresPerRequestCost) {
  const Scenario sc = DefaultScenario();
  StoreAppendBatch batch;
  for (uint64_t i = 0; i < 100; i++) batch.messages.push_back(Message(i));
  const double batch_us = CpuUs(sc, host::Role::kStore, batch, StoreAppendEffects(100));
  EXPECT_DOUBLE_EQ(batch_us, sc.store_request_us + sc.store_commit_us +
                                 100 * sc.store_item_write_us + sc.send_us);
  StoreAppend append;
  const double direct_us = CpuUs(sc, host::Role::kStore, append, StoreAppendEffects(1));
  // Per message, a batch of 100 costs the store less than 100 direct appends: the request cost
  // (and the answer) is paid once. Before issue 13 it cost more (a batch overhead on top).
  EXPECT_LT(batch_us / 100, direct_us);
  EXPECT_GT(sc.store_request_us + sc.store_commit_us, 0);
}

// A retry the store de-duplicates is answered from its index: no row, no transaction.
TEST(CostModel, DuplicateAppendWritesNoRow) {
  const Scenario sc = DefaultScenario();
  Effects out;
  out.push_back(SendToNode{NodeId(101), StoreAppendResult{}});  // a retry: answered, not stored
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kStore, StoreAppend{}, out),
                   sc.store_request_us + sc.send_us);
}

TEST(CostModel, StoreReadCostsPerRowReturned) {
  const Scenario sc = DefaultScenario();
  StoreReadResult result;
  for (uint64_t i = 0; i < 50; i++) result.messages.push_back(Message(i));
  Effects out;
  out.push_back(SendToNode{NodeId(101), result});
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kStore, StoreRead{}, out),
                   sc.store_request_us + 50 * sc.store_item_read_us + sc.send_us);
}

TEST(CostModel, StoreMembershipAndReceiptRowsHaveTheirOwnCosts) {
  const Scenario sc = DefaultScenario();
  Effects join;
  join.push_back(Persist{PersistMembership{UserId(1), GroupId(2), true}});
  join.push_back(SendToNode{NodeId(101), StoreMembershipResult{}});
  EXPECT_DOUBLE_EQ(
      CpuUs(sc, host::Role::kStore, StoreMembership{}, join),
      sc.store_request_us + sc.store_commit_us + sc.store_item_membership_us + sc.send_us);
  Effects receipt;
  receipt.push_back(Persist{PersistWatermark{}});
  receipt.push_back(Persist{PersistAggregate{}});
  receipt.push_back(SendToNode{NodeId(101), StoreReceiptResult{}});
  EXPECT_DOUBLE_EQ(
      CpuUs(sc, host::Role::kStore, StoreReceipt{}, receipt),
      sc.store_request_us + sc.store_commit_us + 2 * sc.store_item_receipt_us + sc.send_us);
}

TEST(CostModel, ChatServerPaysPerEntryAndPerMessageSent) {
  const Scenario sc = DefaultScenario();
  ForwardBatch buffer;
  for (uint64_t i = 0; i < 10; i++) {
    buffer.messages.push_back(Routed<ChatMessage>{{UserId(2)}, Message(i)});
  }
  buffer.typing.push_back(Routed<TypingUpdate>{});
  Effects out;
  for (uint64_t i = 0; i < 10; i++) out.push_back(SendToClient{SessionId(1), Deliver{}});
  out.push_back(SendToNode{NodeId(101), ForwardResult{}});
  out.push_back(ArmTimer{});  // not a message sent
  EXPECT_EQ(ItemsOf(buffer), 11u);
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kChatServer, buffer, out),
                   sc.server_request_us + 11 * sc.server_item_us + 11 * sc.send_us);
  // A plain message is one item.
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kChatServer, SendMessage{}, {}),
                   sc.server_request_us + sc.server_item_us);
}

TEST(CostModel, ServicesPayTheirOwnRequestAndItemCosts) {
  Scenario sc = DefaultScenario();
  sc.mapping_request_us = 7;
  sc.mapping_item_us = 0.5;
  sc.send_us = 2;
  MapLookup lookup;
  lookup.users = {UserId(1), UserId(2), UserId(3), UserId(4)};
  Effects out;
  out.push_back(SendToNode{NodeId(101), MapLookupResult{}});
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kMapping, lookup, out), 7 + 4 * 0.5 + 2);
  sc.broker_request_us = 3;
  sc.broker_item_us = 1;
  QueuePublish publish;
  publish.batch.messages.resize(5);
  EXPECT_DOUBLE_EQ(CpuUs(sc, host::Role::kBroker, publish, {}), 3 + 5 * 1);
}

TEST(CostModel, RetiredFlopsKeysNameTheirReplacement) {
  auto parsed = ParseScenario("[cost]\nstore_write_flops = 20e3\n", "old.toml");
  ASSERT_FALSE(parsed.ok());
  const std::string message(parsed.status().message());
  EXPECT_NE(message.find("old.toml:2"), std::string::npos) << message;
  EXPECT_NE(message.find("cost.store_item_write_us"), std::string::npos) << message;
  EXPECT_NE(message.find("docs/cost-model.md"), std::string::npos) << message;
  Scenario s = DefaultScenario();
  const absl::Status st = ApplyOverride(s, "cost.host_speed_gflops=2");
  EXPECT_NE(st.message().find("cost.cpu_speed_factor"), std::string::npos) << st.message();
}

TEST(CostModel, NegativeCostsAreRefused) {
  Scenario s = DefaultScenario();
  ASSERT_TRUE(ApplyOverride(s, "cost.store_item_read_us=-1").ok());
  const absl::Status st = Validate(s);
  EXPECT_NE(st.message().find("cost.store_item_read_us must be >= 0"), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace chatlab::sim::world
