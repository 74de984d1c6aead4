// network.model = "uncontended" (docs/simulator.md, Network model): packets reach their
// endpoint after the route's latencies plus their size over its narrowest bandwidth, without
// SimGrid communications. It must keep every invariant under faults, be as deterministic as the
// SimGrid models, and give the textbook model's latencies where links are not shared.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "chatlab_process.h"
#include "gtest/gtest.h"

namespace {

namespace fs = std::filesystem;
using chatlab_test::Outcome;

std::string Scenario(const std::string& name) {
  return std::string(CHATLAB_SOURCE_DIR) + "/scenarios/" + name + ".toml";
}

Outcome Chatlab(const std::string& args, const fs::path& out_dir) {
  return chatlab_test::RunChatlab(args + " --quiet", out_dir);
}

double Percentile(const nlohmann::json& metrics, const std::string& which, int p) {
  return metrics[which]["percentiles_ms"][static_cast<size_t>(p)].get<double>();  // p0..p100
}

// The fault scenarios (loss, duplication, delay, partitions, crashes of servers and services,
// pauses) hold every invariant under the uncontended model, and a run is a pure function of its
// scenario and seed there too.
TEST(NetworkModel, UncontendedHoldsEveryInvariantUnderFaultsAndIsDeterministic) {
  const fs::path dir = chatlab_test::TempDir("chatlab-netmodel", "faults");
  for (const std::string name : {"faults", "failover", "service-crashes", "demo"}) {
    const std::string run = "run " + Scenario(name) + " --set network.model=uncontended";
    const Outcome a = Chatlab(run, dir / (name + "-a"));
    ASSERT_EQ(a.exit_code, 0) << name << "\n" << a.output;
    EXPECT_EQ(a.results["invariants"]["ok"], true) << name;
    EXPECT_GT(a.results["metrics"]["messages_acked"].get<uint64_t>(), 0u) << name;
    EXPECT_NE(a.results["network_model"].get<std::string>().find("uncontended"), std::string::npos);
    const Outcome b = Chatlab(run, dir / (name + "-b"));
    ASSERT_EQ(b.exit_code, 0) << name << "\n" << b.output;
    EXPECT_EQ(a.results["trace_digest"], b.results["trace_digest"]) << name;
    EXPECT_EQ(a.results["metrics"], b.results["metrics"]) << name;
  }
  fs::remove_all(dir);
}

// Without faults and with links far from full, the two models agree on what happens and on
// typical latencies: the same messages sent and acknowledged, the 10th and 50th percentiles
// within 1%. Their tails differ one way only: SimGrid matches a mailbox's communications to its
// receiver in the order they were sent, so in the SimGrid models a packet that has arrived can
// wait for one sent earlier that is still on a slower link (a store's reply behind a client's
// packet on its 20 ms last mile). The uncontended model has no such wait, so its upper
// percentiles are never above the textbook model's.
TEST(NetworkModel, UncontendedAgreesWithTheTextbookModelWithoutItsHeadOfLineWaits) {
  const fs::path dir = chatlab_test::TempDir("chatlab-netmodel", "agree");
  for (const std::string name : {"tiny", "groups"}) {
    const Outcome textbook = Chatlab("run " + Scenario(name), dir / (name + "-textbook"));
    const Outcome fast = Chatlab("run " + Scenario(name) + " --set network.model=uncontended",
                                 dir / (name + "-uncontended"));
    ASSERT_EQ(textbook.exit_code, 0) << textbook.output;
    ASSERT_EQ(fast.exit_code, 0) << fast.output;
    const nlohmann::json& t = textbook.results["metrics"];
    const nlohmann::json& f = fast.results["metrics"];
    EXPECT_EQ(t["messages_sent"], f["messages_sent"]) << name;
    EXPECT_EQ(t["messages_acked"], f["messages_acked"]) << name;
    for (const std::string which : {"ack_latency", "end_to_end_latency"}) {
      for (int p : {10, 50}) {
        const double a = Percentile(t, which, p), b = Percentile(f, which, p);
        EXPECT_NEAR(b, a, 0.01 * a) << name << " " << which << " p" << p;
      }
      for (int p : {90, 95, 99}) {
        EXPECT_LE(Percentile(f, which, p), Percentile(t, which, p) * 1.001)
            << name << " " << which << " p" << p;
      }
    }
  }
  fs::remove_all(dir);
}

TEST(NetworkModel, AnUnknownModelIsRefusedNamingTheKey) {
  const fs::path dir = chatlab_test::TempDir("chatlab-netmodel", "bad");
  const Outcome o = Chatlab("run " + Scenario("tiny") + " --set network.model=fluid", dir);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.output.find("network.model must be LV08, CM02, textbook or uncontended"),
            std::string::npos)
      << o.output;
  fs::remove_all(dir);
}

}  // namespace
