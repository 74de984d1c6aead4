// Sharded message stores in the simulator (protocol.store_shards, docs/store-scaling.md step 2):
// each shard is its own node with its own disk, and the oracle's final check reads every shard.
// Each test runs the `chatlab` binary on tests/sim/scenarios/sharded-store.toml (three shards).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "chatlab_process.h"
#include "gtest/gtest.h"

namespace {

namespace fs = std::filesystem;
using chatlab_test::Outcome;

const std::string kShardedStore =
    std::string(CHATLAB_SOURCE_DIR) + "/tests/sim/scenarios/sharded-store.toml";
const std::string kTiny = std::string(CHATLAB_SOURCE_DIR) + "/scenarios/tiny.toml";

fs::path TempDir(const std::string& tag) { return chatlab_test::TempDir("chatlab-shards", tag); }

Outcome Chatlab(const std::string& args, const fs::path& out_dir) {
  return chatlab_test::RunChatlab(args + " --quiet", out_dir);
}

// Every shard stored messages, and the per-shard counts add up to the store's total.
void ExpectEveryShardStored(const Outcome& o, int shards) {
  const nlohmann::json& m = o.results["metrics"];
  const nlohmann::json& by_shard = m["store_writes_by_shard"];
  ASSERT_EQ(static_cast<int>(by_shard.size()), shards) << by_shard.dump();
  uint64_t total = 0;
  for (int k = 0; k < shards; k++) {
    const std::string name = k == 0 ? "store" : "store" + std::to_string(k);
    ASSERT_TRUE(by_shard.contains(name)) << by_shard.dump();
    EXPECT_GT(by_shard[name].get<uint64_t>(), 0u) << name;
    total += by_shard[name].get<uint64_t>();
  }
  EXPECT_EQ(total, m["store_writes"].get<uint64_t>());
  // Each shard is a node of its own (node_load names it as fault entries do).
  int store_nodes = 0;
  for (const nlohmann::json& load : m["node_load"]) {
    const std::string node = load["node"].get<std::string>();
    if (node.rfind("store", 0) != 0) continue;
    store_nodes++;
    EXPECT_GT(load["messages_in"].get<uint64_t>(), 0u) << node;
  }
  EXPECT_EQ(store_nodes, shards);
}

// Three shards hold every invariant, conversations land on every shard, and a sharded run is as
// deterministic as any other.
TEST(StoreShards, ThreeShardsHoldEveryInvariantAndEachStoresMessages) {
  const fs::path dir = TempDir("three");
  const Outcome a = Chatlab("run " + kShardedStore, dir / "a");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.results["invariants"]["ok"], true);
  EXPECT_EQ(a.results["design"]["store_shards"], "3");
  EXPECT_GT(a.results["metrics"]["messages_acked"].get<uint64_t>(), 100u);
  ExpectEveryShardStored(a, 3);
  const Outcome b = Chatlab("run " + kShardedStore, dir / "b");
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(a.results["trace_digest"], b.results["trace_digest"]);
  EXPECT_EQ(a.results["metrics"], b.results["metrics"]);
  fs::remove_all(dir);
}

// A bounded tail cache (history read back from each shard's own disk) and a crash of shard 2
// with a torn write: the shard replays its disk and every invariant holds. Acknowledging before
// the disk has the records (broken on purpose) loses acknowledged messages of shard 2's
// conversations, and the oracle, reading every shard, says so.
TEST(StoreShards, CrashOfOneShardWithATailCacheHoldsAndAckingBeforeSyncIsCaught) {
  const fs::path dir = TempDir("crash");
  const std::string crash =
      " --set protocol.store_tail_cache=2 --set faults.crash.0.node=store2"
      " --set faults.crash.0.at_s=8 --set faults.crash.0.restart_s=11"
      " --set faults.crash.0.torn_write=true --set cost.fsync_ms=500"
      " --set workload.send_rate_hz=3";
  for (int seed = 1; seed <= 2; seed++) {
    const Outcome o =
        Chatlab("run " + kShardedStore + crash + " --seed " + std::to_string(seed), dir / "safe");
    ASSERT_EQ(o.exit_code, 0) << "seed " << seed << ":\n" << o.output;
    EXPECT_EQ(o.results["invariants"]["ok"], true);
    EXPECT_EQ(o.results["faults_fired"]["crash_store2"], 1);
    EXPECT_FALSE(o.results["faults_fired"].contains("crash_store"));
    EXPECT_GT(o.results["faults_fired"]["unsynced_records_lost"].get<uint64_t>(), 0u);
    const nlohmann::json& paths = o.results["recovery_paths"];
    EXPECT_EQ(paths["restore_after_crash"], 1);
    EXPECT_GT(paths["records_replayed"].get<uint64_t>(), 0u);
    EXPECT_GT(paths["history_read_from_disk"].get<uint64_t>(), 0u);
    EXPECT_EQ(o.results["design"]["store_memory"], "tail");
    ExpectEveryShardStored(o, 3);
  }
  const Outcome unsafe = Chatlab(
      "run " + kShardedStore + crash + " --set faults.unsafe_ack_before_sync=true", dir / "unsafe");
  EXPECT_EQ(unsafe.exit_code, 1) << unsafe.output;
  EXPECT_GT(unsafe.results["invariants"]["lost_acked"].get<uint64_t>(), 0u);
  fs::remove_all(dir);
}

// Bad shard counts and crash targets are bad input (exit 2), and the message names the key or
// lists the nodes that exist.
TEST(StoreShards, BadValuesAreRefusedNamingTheKey) {
  const fs::path dir = TempDir("bad");
  for (const char* set : {"protocol.store_shards=0", "protocol.store_shards=65"}) {
    const Outcome o = Chatlab("run " + kTiny + " --set " + set, dir / "o");
    EXPECT_EQ(o.exit_code, 2) << set << "\n" << o.output;
    EXPECT_NE(o.output.find("protocol.store_shards"), std::string::npos) << o.output;
    EXPECT_NE(o.output.find("expected 1 to 64"), std::string::npos) << o.output;
  }
  {
    const Outcome o =
        Chatlab("run " + kTiny + " --set protocol.store_shards=2 --set protocol.write_path=batched",
                dir / "o");
    EXPECT_EQ(o.exit_code, 2) << o.output;
    EXPECT_NE(o.output.find("protocol.store_shards > 1 with write_path = batched"),
              std::string::npos)
        << o.output;
  }
  {
    // Shards are store, store1, store2: a fourth does not exist.
    const Outcome o =
        Chatlab("run " + kShardedStore + " --set faults.crash.0.node=store3", dir / "o");
    EXPECT_EQ(o.exit_code, 2) << o.output;
    EXPECT_NE(o.output.find("unknown node 'store3' (server:N|store|store1|store2|writer|"),
              std::string::npos)
        << o.output;
  }
  {
    const Outcome o = Chatlab("run " + kTiny + " --set faults.crash.0.node=store1", dir / "o");
    EXPECT_EQ(o.exit_code, 2) << o.output;
    EXPECT_NE(o.output.find("unknown node 'store1' (server:N|store|writer|"), std::string::npos)
        << o.output;
  }
  fs::remove_all(dir);
}

}  // namespace
