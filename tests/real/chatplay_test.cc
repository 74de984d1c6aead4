// chatplay against a real 3-process chatd cluster (docs/sim-vs-real.md): a small scenario,
// every user a core ClientSession over a WebSocket, holds every promise by the simulator's
// oracle on the recorded history; and the same play against a chatd broken through its
// configuration (dedup off) is caught by that oracle. Each test starts its own cluster with the
// flags the scenario asks for (AdmitScenario) and runs the chatplay binary.
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "core/oracle.h"
#include "nlohmann/json.hpp"
#include "real-transport/play/admission.h"
#include "sim/scenario.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

const std::string kScenario =
    std::string(CHATLAB_SOURCE_DIR) + "/tests/real/scenarios/play-small.toml";
constexpr int kProcesses = 3;
constexpr int kUsers = 6;  // workload.users of play-small.toml
// Every send is retried at once, before its ack can be back: each message reaches the store
// several times, and only the store's (sender, client_msg_id) de-duplication makes it one.
const std::string kRetryAtOnce = "protocol.client_retry_initial_us=1";

std::vector<std::string> Accounts() {
  std::vector<std::string> names;
  for (int i = 1; i <= kUsers; ++i) names.push_back("play" + std::to_string(i));
  return names;
}

// The chatd flags the scenario asks every process for, as chatplay computes them.
std::vector<std::string> ScenarioFlags() {
  absl::StatusOr<sim::Scenario> s = sim::LoadScenario(kScenario);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  absl::StatusOr<Admission> a = AdmitScenario(*s, kProcesses);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? a->cluster_flags : std::vector<std::string>{};
}

struct Played {
  int status = -1;
  nlohmann::json results;
  std::string log;
};

Played PlayOn(const Cluster& cluster, const TempDir& out) {
  Played p;
  p.status = RunCommand({CHATPLAY_BIN, kScenario, "--cluster", cluster.addresses(), "--users",
                         "play", "--password", "pw", "--set", kRetryAtOnce, "--out", out.path()},
                        out / "chatplay.log");
  std::ifstream log(out / "chatplay.log");
  p.log = std::string(std::istreambuf_iterator<char>(log), {});
  std::ifstream results(out / "results.json");
  p.results = nlohmann::json::parse(results, nullptr, /*allow_exceptions=*/false);
  return p;
}

// chatplay --launch on play-small in DIR/cluster with these --set overrides (results in
// DIR/out, the log in DIR/chatplay.log).
Played PlayLaunched(const TempDir& dir, const std::vector<std::string>& sets) {
  std::vector<std::string> argv = {CHATPLAY_BIN, kScenario, "--launch",  dir / "cluster", "--chatd",
                                   CHATD_BIN,    "--out",   dir / "out", "--quiet"};
  for (const std::string& set : sets) argv.insert(argv.end(), {"--set", set});
  Played p;
  p.status = RunCommand(argv, dir / "chatplay.log");
  std::ifstream log(dir / "chatplay.log");
  p.log = std::string(std::istreambuf_iterator<char>(log), {});
  std::ifstream results(dir / "out/results.json");
  p.results = nlohmann::json::parse(results, nullptr, /*allow_exceptions=*/false);
  return p;
}

// Every invariant 0, and the end-of-run check against the store's truth ran.
void ExpectEveryPromiseHeld(const Played& p) {
  for (const Invariant& invariant : kInvariants) {
    EXPECT_EQ(p.results["invariants"][invariant.name], 0) << invariant.name << "\n" << p.log;
  }
  EXPECT_EQ(p.results["invariants"]["final_checked"], true);
}

TEST(ChatplayTest, SmallScenarioOnThreeProcessesHoldsEveryPromise) {
  Cluster cluster(kProcesses, "direct", Accounts(), ScenarioFlags());
  TempDir out;
  const Played p = PlayOn(cluster, out);
  ASSERT_EQ(p.status, 0) << p.log;
  ASSERT_TRUE(p.results.is_object()) << p.log;
  const nlohmann::json& inv = p.results["invariants"];
  for (const Invariant& invariant : kInvariants) {
    EXPECT_EQ(inv[invariant.name], 0) << invariant.name << "\n" << p.log;
  }
  EXPECT_EQ(inv["ok"], true);
  EXPECT_EQ(inv["final_checked"], true);
  // It was a play, not an idle run: messages went out, came back acked, reached recipients on
  // other processes, users came and went, and the store holds what was sent.
  const nlohmann::json& m = p.results["metrics"];
  EXPECT_EQ(m["users"], kUsers);
  EXPECT_GT(m["messages_sent"].get<uint64_t>(), 5u) << p.log;
  EXPECT_GT(m["messages_acked"].get<uint64_t>(), 5u);
  EXPECT_GT(m["messages_delivered"].get<uint64_t>(), 5u);
  EXPECT_GT(m["displays"].get<uint64_t>(), m["messages_delivered"].get<uint64_t>());
  EXPECT_GT(m["retries"].get<uint64_t>(), 0u);
  EXPECT_GT(m["connects"].get<uint64_t>(), static_cast<uint64_t>(kUsers));
  EXPECT_GT(m["reconnects_elsewhere"].get<uint64_t>(), 0u);
  EXPECT_GE(m["truth_messages"].get<uint64_t>(), m["messages_acked"].get<uint64_t>());
  EXPECT_EQ(m["frames_undecodable"], 0);
}

TEST(ChatplayTest, DedupOffInChatdIsCaughtOnTheRealHistory) {
  std::vector<std::string> flags = ScenarioFlags();
  flags.insert(flags.end(), {"--dedup_enabled", "false"});
  Cluster cluster(kProcesses, "direct", Accounts(), flags);
  TempDir out;
  const Played p = PlayOn(cluster, out);
  EXPECT_EQ(p.status, 1) << p.log;
  ASSERT_TRUE(p.results.is_object()) << p.log;
  EXPECT_GT(p.results["invariants"]["duplicates_shown"].get<uint64_t>(), 0u) << p.log;
  EXPECT_EQ(p.results["invariants"]["ok"], false);
  EXPECT_GT(p.results["metrics"]["messages_sent"].get<uint64_t>(), 5u);
}

// The nemesis: chatplay starts the cluster itself (--launch) and kills each process in turn
// (kill -9), process 1 (the store and the services) included, each restarted from its disk,
// while the users chat with every send retried at once. Every promise must still hold.
TEST(ChatplayTest, AKillScheduleOnALaunchedClusterHoldsEveryPromise) {
  TempDir dir;
  const std::vector<std::string> schedule = {"faults.crash.0.node=server:1",
                                             "faults.crash.0.at_s=0.8",
                                             "faults.crash.0.restart_s=1.5",
                                             "faults.crash.1.node=server:0",
                                             "faults.crash.1.at_s=1.7",
                                             "faults.crash.1.restart_s=2.3",
                                             "faults.crash.2.node=server:2",
                                             "faults.crash.2.at_s=2.5",  // restarted at the heal
                                             "scenario.quiet_s=6"};
  std::vector<std::string> sets = schedule;
  sets.push_back(kRetryAtOnce);
  const Played p = PlayLaunched(dir, sets);
  const nlohmann::json& r = p.results;
  const std::string& log = p.log;
  ASSERT_EQ(p.status, 0) << log;
  ASSERT_TRUE(r.is_object()) << log;
  ExpectEveryPromiseHeld(p);
  // The nemesis did what the scenario asked, in the order of the times it was due, each action
  // done no earlier than due; every process served again after its restart (two "listening"
  // lines in its log), and none exited unasked.
  const nlohmann::json& nemesis = r["nemesis"];
  ASSERT_EQ(nemesis.size(), 6u) << log;
  std::vector<std::pair<std::string, int>> done;
  for (const auto& e : nemesis) {
    EXPECT_EQ(e["error"], "") << e.dump();
    EXPECT_GE(e["at_s"].get<double>(), e["due_s"].get<double>() - 0.001) << e.dump();
    done.emplace_back(e["action"].get<std::string>(), e["process"].get<int>());
  }
  EXPECT_EQ(done, (std::vector<std::pair<std::string, int>>{{"kill -9", 2},
                                                            {"restart", 2},
                                                            {"kill -9", 1},
                                                            {"restart", 1},
                                                            {"kill -9", 3},
                                                            {"restart", 3}}));
  for (int i = 1; i <= kProcesses; ++i) {
    std::ifstream f(dir / ("cluster/" + std::to_string(i) + "/chatd.log"));
    const std::string text(std::istreambuf_iterator<char>(f), {});
    size_t listening = 0;
    for (size_t at = text.find("\"event\":\"listening\""); at != std::string::npos;
         at = text.find("\"event\":\"listening\"", at + 1)) {
      ++listening;
    }
    EXPECT_EQ(listening, 2u) << "process " << i << "'s log:\n" << text;
  }
  EXPECT_TRUE(r["unexpected_exits"].empty()) << r["unexpected_exits"].dump();
  const nlohmann::json& m = r["metrics"];
  EXPECT_GT(m["messages_acked"].get<uint64_t>(), 5u) << log;
  EXPECT_GT(m["messages_delivered"].get<uint64_t>(), 5u);
  EXPECT_GE(m["truth_messages"].get<uint64_t>(), m["messages_acked"].get<uint64_t>());
  EXPECT_EQ(r["launched"], dir / "cluster");
  // The processes' own counters survive the kills (each killed process is read just before):
  // the store's messages_stored over the play is the truth's count, give or take a message
  // stored between that read and the kill, or appended and lost uncommitted then stored again.
  // Without the carry, what process 1 stored before its kill at 1.7 s would be missing.
  const nlohmann::json& server = m["server"];
  ASSERT_TRUE(server.contains("store_writes")) << server.dump();
  EXPECT_EQ(server["complete"], true);
  const double truth = m["truth_messages"].get<double>();
  EXPECT_GE(server["store_writes"].get<double>(), truth - 3) << server.dump();
  EXPECT_LE(server["store_writes"].get<double>(), truth + 30) << server.dump();
  EXPECT_GT(server["cpu_seconds"].get<double>(), 0);
  EXPECT_GT(server["commit_ms"].get<double>(), 0);
  EXPECT_GT(m["loopback_rtt"]["p50_ms"].get<double>(), 0);
  EXPECT_EQ(m["ack_latency"]["percentiles_ms"].size(), 101u);
}

// The network nemesis: on a launched cluster, the node messages between processes pass a proxy
// that loses, duplicates, delays and cuts them as the scenario's [faults] say (two partitions,
// one of them one-way), with a kill and a pause on top: process 1 (the store, the services and
// chat server 0) is stopped (SIGSTOP) for longer than a request's timeout, then continued.
// Every promise must still hold: what a lost message breaks, the protocol's timeouts, retries
// and catch-ups repair.
TEST(ChatplayTest, KillPauseAndNetworkFaultsOnALaunchedClusterHoldEveryPromise) {
  TempDir dir;
  const std::vector<std::string> faults = {"faults.loss=0.1",
                                           "faults.duplicate=0.1",
                                           "faults.delay_probability=0.3",
                                           "faults.delay_ms_max=150",
                                           "faults.partition.0.a=server:1",
                                           "faults.partition.0.b=server:2",
                                           "faults.partition.0.start_s=0.5",
                                           "faults.partition.0.end_s=1.5",
                                           "faults.partition.1.a=server:0",
                                           "faults.partition.1.b=server:1",
                                           "faults.partition.1.one_way=true",
                                           "faults.partition.1.start_s=1.8",
                                           "faults.partition.1.end_s=2.6",
                                           "faults.crash.0.node=server:2",
                                           "faults.crash.0.at_s=2",
                                           "faults.crash.0.restart_s=2.4",
                                           "faults.pause.0.node=store",
                                           "faults.pause.0.at_s=0.8",
                                           "faults.pause.0.resume_s=1.9",
                                           "protocol.request_timeout_us=1000000",
                                           "scenario.quiet_s=8"};
  const std::vector<std::string>& sets = faults;
  const Played p = PlayLaunched(dir, sets);
  const nlohmann::json& r = p.results;
  const std::string& log = p.log;
  ASSERT_EQ(p.status, 0) << log;
  ASSERT_TRUE(r.is_object()) << log;
  ExpectEveryPromiseHeld(p);
  // Every fault kind was done, and the messages that passed reached their receivers.
  const nlohmann::json& n = r["network"];
  ASSERT_TRUE(n.is_object()) << log;
  EXPECT_EQ(n["partitions"].size(), 2u);
  for (const char* kind : {"forwarded", "cut", "lost", "duplicated", "delayed"}) {
    EXPECT_GT(n[kind].get<uint64_t>(), 0u) << kind << ": " << n.dump();
  }
  EXPECT_GT(r["metrics"]["messages_acked"].get<uint64_t>(), 5u) << log;
  EXPECT_GT(r["metrics"]["messages_delivered"].get<uint64_t>(), 5u);
  EXPECT_TRUE(r["unexpected_exits"].empty()) << r["unexpected_exits"].dump();
  // The stop and the continue were done, of process 1, in order with the kill and restart.
  std::vector<std::pair<std::string, int>> done;
  for (const auto& e : r["nemesis"]) {
    EXPECT_EQ(e["error"], "") << e.dump();
    done.emplace_back(e["action"].get<std::string>(), e["process"].get<int>());
  }
  EXPECT_EQ(done, (std::vector<std::pair<std::string, int>>{
                      {"kill -STOP", 1}, {"kill -CONT", 1}, {"kill -9", 3}, {"restart", 3}}))
      << r["nemesis"].dump();
}

TEST(ChatplayTest, RefusesWhatItCannotPlayNamingTheKey) {
  absl::StatusOr<sim::Scenario> s = sim::LoadScenario(kScenario);
  ASSERT_TRUE(s.ok()) << s.status();
  auto refused = [&](const std::string& set, size_t processes) -> std::string {
    sim::Scenario copy = *s;
    EXPECT_TRUE(sim::ApplyOverride(copy, set).ok()) << set;
    absl::StatusOr<Admission> a = AdmitScenario(copy, processes);
    return a.ok() ? "" : std::string(a.status().message());
  };
  EXPECT_EQ(refused("workload.users=6", kProcesses), "");
  const struct {
    const char* set;
    size_t processes;
    const char* names;  // what the refusal must say
  } cases[] = {
      {"faults.loss=0.01", kProcesses,
       "faults.loss = 0.01: network faults need a cluster chatplay starts itself"},
      {"faults.push_loss=0.1", kProcesses, "faults.push_loss = 0.1: chatd's push notifications"},
      {"faults.crash.0.node=store", kProcesses,
       "faults.crash = 1 entry: kill -9, restarts and SIGSTOP need a cluster chatplay starts "
       "itself"},
      {"workload.wake_on_push=true", kProcesses, "workload.wake_on_push = true"},
      {"protocol.server_tick_us=50000", kProcesses,
       "protocol.server_tick_us = 50000: the cluster's nodes read it"},
      {"protocol.write_path=batched", kProcesses, "protocol.write_path = batched"},
      {"protocol.request_timeout_us=1500", kProcesses, "whole milliseconds"},
      {"topology.regions=2", kProcesses, "topology.regions = 2"},
      {"workload.users=6", 2, "set topology.servers_per_region = 2"},
  };
  for (const auto& c : cases) {
    const std::string why = refused(c.set, c.processes);
    EXPECT_TRUE(absl::StrContains(why, c.names)) << c.set << ": " << why;
  }
  // A partition is played between processes of a launched cluster (the proxy on their links),
  // never between nodes one process hosts, nor on the clients' links.
  const auto partition = [&](const char* a, const char* b, bool launched) {
    sim::Scenario copy = *s;
    copy.partitions.push_back(sim::PartitionSpec{1, 2, a, b, false});
    return AdmitScenario(copy, kProcesses, launched);
  };
  const absl::StatusOr<Admission> cut = partition("server:0", "server:1", true);
  ASSERT_TRUE(cut.ok()) << cut.status();
  ASSERT_EQ(cut->network.cuts.size(), 1u);
  EXPECT_EQ(cut->network.cuts[0].a, std::vector<int>{1});
  EXPECT_EQ(cut->network.cuts[0].b, std::vector<int>{2});
  EXPECT_TRUE(cut->network.any());
  for (const auto& [a, b, launched, names] :
       std::vector<std::tuple<const char*, const char*, bool, std::string>>{
           {"server:0", "server:1", false, "faults.partition = 1 entry: network faults need"},
           {"store", "server:0", true, "are both on process 1"},
           {"clients", "server:1", true, "the clients' links are not cut"},
           {"writer", "server:1", true, "\"writer\": no process"}}) {
    const absl::StatusOr<Admission> refused_cut = partition(a, b, launched);
    EXPECT_TRUE(!refused_cut.ok() && absl::StrContains(refused_cut.status().message(), names))
        << a << " | " << b << ": " << refused_cut.status();
  }
  // With a launched cluster, a crash is a kill -9 of the process hosting the node, then a
  // restart (at the heal when the entry has none); a node no process hosts alone is refused.
  const auto crashes = [&](const std::vector<std::string>& sets) -> absl::StatusOr<Admission> {
    sim::Scenario copy = *s;
    for (const std::string& set : sets) EXPECT_TRUE(sim::ApplyOverride(copy, set).ok()) << set;
    return AdmitScenario(copy, kProcesses, /*can_kill=*/true);
  };
  absl::StatusOr<Admission> killed =
      crashes({"faults.crash.0.node=server:2", "faults.crash.0.at_s=1", "faults.crash.1.node=store",
               "faults.crash.1.at_s=2", "faults.crash.1.restart_s=2.5"});
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(killed->crashes.size(), 2u);
  EXPECT_EQ(killed->crashes[0].process, 3);
  EXPECT_EQ(killed->crashes[0].restart_s, s->duration_s);
  EXPECT_EQ(killed->crashes[0].also, "");
  EXPECT_EQ(killed->crashes[1].process, 1);
  EXPECT_EQ(killed->crashes[1].restart_s, 2.5);
  EXPECT_EQ(killed->crashes[1].also,
            "process 1 hosts store, mapping, presence, notification, server0: all go down "
            "together");
  for (const auto& [sets, names] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"faults.crash.0.node=writer"}, "faults.crash.0: node = \"writer\": no process"},
           {{"faults.crash.0.node=broker"}, "node = \"broker\": no process"},  // direct
           {{"faults.crash.0.node=server:3"}, "node = \"server:3\""},
           {{"faults.crash.0.node=server:1", "faults.crash.0.torn_write=true"}, "torn_write"}}) {
    const absl::StatusOr<Admission> a = crashes(sets);
    EXPECT_TRUE(!a.ok() && absl::StrContains(a.status().message(), names))
        << sets[0] << ": " << a.status();
  }
  // A pause is a SIGSTOP of the process hosting the node, then a SIGCONT (at the heal when the
  // entry has none); one that overlaps a kill of its process is refused, as is one not launched.
  absl::StatusOr<Admission> paused = crashes(
      {"faults.pause.0.node=mapping", "faults.pause.0.at_s=1", "faults.pause.1.node=server:1",
       "faults.pause.1.at_s=0.5", "faults.pause.1.resume_s=1"});
  ASSERT_TRUE(paused.ok()) << paused.status();
  ASSERT_EQ(paused->pauses.size(), 2u);
  EXPECT_EQ(paused->pauses[0].process, 1);
  EXPECT_EQ(paused->pauses[0].resume_s, s->duration_s);
  EXPECT_EQ(paused->pauses[0].also,
            "process 1 hosts store, mapping, presence, notification, server0: all stop together");
  EXPECT_EQ(paused->pauses[1].process, 2);
  EXPECT_EQ(paused->pauses[1].resume_s, 1);
  for (const auto& [sets, names] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"faults.pause.0.node=store", "faults.pause.0.at_s=1", "faults.crash.0.node=server:0",
             "faults.crash.0.at_s=1.5", "faults.crash.0.restart_s=2"},
            "faults.pause.0: node = \"store\": process 1 is stopped from 1 s to 3 s and killed "
            "(server:0) from 1.5 s to 2 s"},
           {{"faults.pause.0.node=writer"}, "faults.pause.0: node = \"writer\": no process"}}) {
    const absl::StatusOr<Admission> a = crashes(sets);
    EXPECT_TRUE(!a.ok() && absl::StrContains(a.status().message(), names))
        << sets[0] << ": " << a.status();
  }
  // Pauses of one process play as the union of their windows (one stop, one continue).
  absl::StatusOr<Admission> merged = crashes(
      {"faults.pause.0.node=store", "faults.pause.0.at_s=1", "faults.pause.0.resume_s=2",
       "faults.pause.1.node=mapping", "faults.pause.1.at_s=1.5", "faults.pause.1.resume_s=2.5",
       "faults.pause.2.node=store", "faults.pause.2.at_s=2.5", "faults.pause.2.resume_s=2.8"});
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->pauses.size(), 1u);
  EXPECT_EQ(merged->pauses[0].node, "store, mapping");
  EXPECT_EQ(merged->pauses[0].at_s, 1);
  EXPECT_EQ(merged->pauses[0].resume_s, 2.8);
  // A pause that ends as a kill of its process starts is refused: the kill's read would wait.
  const absl::StatusOr<Admission> touching =
      crashes({"faults.pause.0.node=server:1", "faults.pause.0.at_s=1", "faults.pause.0.resume_s=2",
               "faults.crash.0.node=server:1", "faults.crash.0.at_s=2"});
  EXPECT_TRUE(!touching.ok() && absl::StrContains(touching.status().message(),
                                                  "process 2 is "
                                                  "stopped from 1 s"))
      << touching.status();
  EXPECT_TRUE(absl::StrContains(refused("faults.pause.0.node=store", kProcesses),
                                "faults.pause = 1 entry: kill -9, restarts and SIGSTOP need"));
  // A cluster key becomes a chatd flag; a platform key is listed, not dropped.
  sim::Scenario buffered = *s;
  ASSERT_TRUE(sim::ApplyOverride(buffered, "protocol.forwarding=buffered").ok());
  ASSERT_TRUE(sim::ApplyOverride(buffered, "protocol.request_timeout_us=3000000").ok());
  ASSERT_TRUE(sim::ApplyOverride(buffered, "network.client_latency_ms=30").ok());
  absl::StatusOr<Admission> a = AdmitScenario(buffered, kProcesses);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->cluster_flags,
            (std::vector<std::string>{"--forwarding", "buffered", "--request_timeout_ms", "3000"}));
  EXPECT_EQ(a->platform_keys, (std::vector<std::string>{"network.client_latency_ms = 30"}));
}

}  // namespace
}  // namespace chatlab::real::testing
