// Store shards by conversation (protocol.store_shards): the placement function is pinned (a
// deployment's data is placed by it), spreads conversations evenly, and the chat servers route
// every request to its conversation's shard and merge a sync over all of them, so a sharded
// deployment behaves as one store for its users (the oracle holds).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "core/store.h"
#include "gtest/gtest.h"
#include "host/deployment.h"
#include "sim/inproc/cluster.h"

namespace chatlab {
namespace {

// These values are a deployment's data placement: a change here moves every conversation to
// another database. Never change them; a new placement needs a new key and a migration.
TEST(StoreShardOf, IsPinned) {
  EXPECT_EQ(StoreShardOf(ConversationId::Direct(UserId(1), UserId(2)), 1), 0u);
  EXPECT_EQ(StoreShardOf(ConversationId::Direct(UserId(1), UserId(2)), 2), 0u);
  EXPECT_EQ(StoreShardOf(ConversationId::Direct(UserId(1), UserId(2)), 3), 2u);
  EXPECT_EQ(StoreShardOf(ConversationId::Direct(UserId(9), UserId(7)), 64), 11u);
  EXPECT_EQ(StoreShardOf(ConversationId::Group(GroupId(77)), 3), 0u);
  EXPECT_EQ(StoreShardOf(ConversationId::Group(GroupId(77)), 64), 0u);
  EXPECT_EQ(StoreShardOf(ConversationId::Direct(UserId(3), UserId(uint64_t{1} << 40)), 5), 3u);
}

TEST(StoreShardOf, SpreadsConversationsEvenly) {
  constexpr uint32_t kShards = 4;
  std::map<uint32_t, int> count;
  for (uint64_t a = 1; a <= 100; a++) {
    for (uint64_t b = a; b <= a + 99; b++) {
      count[StoreShardOf(ConversationId::Direct(UserId(a), UserId(b)), kShards)]++;
    }
  }
  for (uint64_t g = 1; g <= 10000; g++) {
    count[StoreShardOf(ConversationId::Group(GroupId(g)), kShards)]++;
  }
  ASSERT_EQ(count.size(), kShards);
  for (const auto& [shard, n] : count) {
    EXPECT_GT(n, 20000 / 4 * 9 / 10) << "shard " << shard;  // within 10% of an even share
    EXPECT_LT(n, 20000 / 4 * 11 / 10) << "shard " << shard;
  }
}

TEST(StoreConfig, ShardsOutOfRangeOrWithTheBatchWriterAreRefused) {
  ProtocolConfig config;
  for (uint32_t bad : {0u, kStoreShardsMax + 1}) {
    config.store_shards = bad;
    const absl::Status s = ValidateStoreConfig(config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("store_shards"), std::string::npos) << s;
  }
  config.store_shards = 2;
  EXPECT_TRUE(ValidateStoreConfig(config).ok());
  config.write_path = WritePath::kBatched;
  const absl::Status s = ValidateStoreConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("batched"), std::string::npos) << s;
}

// A store refuses a request for a conversation of another shard (the sender routes with another
// shard count) and answers its own; a sync has no conversation and is answered by every shard.
TEST(ShardedStore, RefusesAConversationOfAnotherShard) {
  ProtocolConfig config;
  config.store_shards = 2;
  NodeOptions options;
  options.self = host::StoreShardId(1);
  options.config = config;
  options.topology = host::CoreTopology(config, /*only_needed=*/false);
  MessageStore store(options);
  // Direct conversations of user 1, one on each shard.
  std::optional<ConversationId> mine, other;
  for (uint64_t peer = 2; !(mine && other); peer++) {
    const auto conv = ConversationId::Direct(UserId(1), UserId(peer));
    (StoreShardOf(conv, 2) == 1 ? mine : other) = conv;
  }
  const NodeId server(101);
  const auto append = [&](const ConversationId& conv, ClientMsgId cmid) {
    ChatMessage m;
    m.conv = conv;
    m.sender = UserId(1);
    m.client_msg_id = cmid;
    m.body = "hi";
    Effects out;
    store.OnMessage(1000, server, StoreAppend{cmid, m}, out);
    for (const Effect& e : out) {
      if (const auto* send = std::get_if<SendToNode>(&e)) {
        return std::get<StoreAppendResult>(send->msg).outcome.code;
      }
    }
    ADD_FAILURE() << "no reply";
    return Code::kOk;
  };
  EXPECT_EQ(append(*other, 1), Code::kFailedPrecondition);
  EXPECT_EQ(store.stats().misrouted, 1u);
  EXPECT_EQ(store.stats().messages_stored, 0u);
  EXPECT_EQ(append(*mine, 2), Code::kOk);
  Effects out;
  store.OnMessage(1000, server, StoreRead{7, UserId(1), *other, 0, 10}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<StoreReadResult>(std::get<SendToNode>(out[0]).msg).code,
            Code::kFailedPrecondition);
  out.clear();
  store.OnMessage(1000, server, StoreSync{8, UserId(1)}, out);
  ASSERT_EQ(out.size(), 1u);
  const auto& sync = std::get<StoreSyncResult>(std::get<SendToNode>(out[0]).msg);
  EXPECT_EQ(sync.code, Code::kOk);
  ASSERT_EQ(sync.heads.size(), 1u);
  EXPECT_EQ(sync.heads[0].conv, *mine);
  EXPECT_EQ(store.stats().misrouted, 2u);
}

// Six users on two chat servers over three store shards, with a bounded tail: direct chats with
// Bob land on different shards, a group on its own; Bob, offline meanwhile, syncs once from all
// shards and sees every message; every request went to its conversation's shard.
TEST(ShardedCluster, RoutesByConversationAndSyncsOverEveryShard) {
  ProtocolConfig config;
  config.store_shards = 3;
  config.store_tail_cache = 2;
  config.client_sync_interval_us = 5 * kUsPerSecond;
  config.group_poll_interval_us = kUsPerSecond;
  inproc::ClusterOptions o;
  o.config = config;
  o.servers = 2;
  inproc::Cluster c(o);
  const UserId bob(2);
  const std::vector<UserId> others = {UserId(1), UserId(3), UserId(4), UserId(5), UserId(6)};
  c.AddClient(bob);
  for (UserId u : others) c.AddClient(u);
  c.Connect(bob, c.servers()[1]);
  for (size_t i = 0; i < others.size(); i++) c.Connect(others[i], c.servers()[i % 2]);
  c.RunFor(kUsPerSecond);
  const GroupId group(77);
  for (UserId u : others) c.JoinGroup(u, group);
  c.JoinGroup(bob, group);
  c.RunFor(kUsPerSecond);
  c.Disconnect(bob);
  c.RunFor(kUsPerSecond);

  std::set<uint32_t> shards_used;
  std::map<ConversationId, std::vector<std::string>> sent;
  for (UserId u : others) {
    const auto conv = ConversationId::Direct(u, bob);
    shards_used.insert(StoreShardOf(conv, 3));
    for (int i = 0; i < 4; i++) {
      sent[conv].push_back(absl::StrCat(ToString(u), "-", i));
      ASSERT_TRUE(c.Send(u, conv, sent[conv].back()).ok());
      c.RunFor(5 * kUsPerMs);
    }
  }
  ASSERT_GE(shards_used.size(), 2u) << "the users' chats with Bob all hash to one shard";
  c.RunFor(kUsPerSecond);
  c.Connect(bob, c.servers()[1]);
  c.RunFor(3 * kUsPerSecond);
  for (const auto& [conv, bodies] : sent) {
    std::vector<std::string> seen;
    for (const ChatMessage& m : c.client(bob).View(conv)) seen.push_back(m.body);
    EXPECT_EQ(seen, bodies) << ToString(conv);
  }
  const auto group_conv = ConversationId::Group(group);
  ASSERT_TRUE(c.Send(UserId(1), group_conv, "to the group").ok());
  c.RunFor(2 * kUsPerSecond);
  EXPECT_EQ(c.client(bob).View(group_conv).size(), 1u);

  // Each conversation is held by its shard and no other.
  for (int k = 0; k < 3; k++) {
    for (const ConversationId& conv : c.store(k).Conversations()) {
      EXPECT_EQ(StoreShardOf(conv, 3), static_cast<uint32_t>(k)) << ToString(conv);
    }
  }
  const int group_shard = static_cast<int>(StoreShardOf(group_conv, 3));
  EXPECT_EQ(c.store(group_shard).Members(group).size(), others.size() + 1);
  // Receipts and typing go to the conversation's shard too: a store counts any request for a
  // conversation it does not hold (misrouted), and none may have one.
  for (const auto& [conv, bodies] : sent) c.MarkRead(bob, conv);
  c.SetTyping(UserId(1), group_conv, true);
  c.RunFor(kUsPerSecond);
  for (UserId u : others) {
    const auto conv = ConversationId::Direct(u, bob);
    EXPECT_EQ(c.client(u).ReceiptShown(conv, ReceiptKind::kRead, bob),
              c.client(u).View(conv).back().message_id)
        << ToString(u) << " did not see Bob's read receipt";
  }
  for (int k = 0; k < 3; k++) {
    EXPECT_GT(c.store(k).stats().syncs, 0u) << "store shard " << k << " was never asked";
    EXPECT_EQ(c.store(k).stats().misrouted, 0u) << "store shard " << k;
  }
  c.oracle().CheckFinal(c.Truth());
  EXPECT_EQ(c.oracle().counts().total(), 0u)
      << (c.oracle().first_violations().empty() ? "" : c.oracle().first_violations()[0]);
}

}  // namespace
}  // namespace chatlab
