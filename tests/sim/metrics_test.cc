// The simulator's metrics measure what docs/results.md says: the measurement window, rates per
// second of it, setup traffic apart, per-recipient delivery latency, every forwarding hop, and
// the inputs of the reports' closed-form checks. Each test runs the `chatlab` binary.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "gtest/gtest.h"
#include "chatlab_process.h"

namespace {

namespace fs = std::filesystem;
using chatlab_test::Outcome;

fs::path TempDir(const std::string& tag) {
  return chatlab_test::TempDir("chatlab-metrics", tag);
}

Outcome Chatlab(const std::string& args, const fs::path& out_dir) {
  return chatlab_test::RunChatlab(args + " --quiet", out_dir);
}

// A small fault-free population: 3 chat servers, everyone online throughout.
const char* kSteady =
    "[scenario]\nname = \"steady\"\nduration_s = 12\nquiet_s = 8\n"
    "[topology]\nservers_per_region = 3\n"
    "[workload]\nusers = 60\nonline_fraction = 1.0\nsession_mean_s = 0\nconnect_ramp_s = 2\n"
    "send_rate_hz = 0.2\ngroups = 4\ngroup_size_min = 5\ngroup_size_max = 10\n";

fs::path Write(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

double D(const nlohmann::json& m, const char* key) { return m[key].get<double>(); }
uint64_t U(const nlohmann::json& m, const char* key) { return m[key].get<uint64_t>(); }

TEST(Metrics, RatesAreWindowCountsOverTheWindowLength) {
  const fs::path dir = TempDir("rates");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o = Chatlab("run " + sc.string(), dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  // The default warm-up is the connect ramp; the window ends with the workload.
  EXPECT_EQ(D(m, "window_start_s"), 2);
  EXPECT_EQ(D(m, "window_end_s"), 12);
  EXPECT_EQ(D(m, "window_s"), 10);
  EXPECT_GT(U(m, "messages_sent_window"), 50u);
  EXPECT_LT(U(m, "messages_sent_window"), U(m, "messages_sent"));
  // Latencies follow exactly the messages sent in the window.
  EXPECT_EQ(m["ack_latency"]["count"].get<uint64_t>(), U(m, "messages_sent_window"));
  EXPECT_LE(m["end_to_end_latency"]["count"].get<uint64_t>(), U(m, "messages_sent_window"));
  // Every rate is a window count over the window's length.
  const double w = D(m, "window_s");
  EXPECT_GT(U(m, "inter_server_requests_window"), 0u);
  EXPECT_DOUBLE_EQ(D(m, "inter_server_requests_per_s"),
                   static_cast<double>(U(m, "inter_server_requests_window")) / w);
  EXPECT_DOUBLE_EQ(D(m, "setup_backend_messages_per_s"),
                   static_cast<double>(U(m, "setup_backend_messages_window")) / w);
  const nlohmann::json* store = nullptr;
  for (const auto& n : m["node_load"]) {
    if (n["node"] == "store") store = &n;
  }
  ASSERT_NE(store, nullptr);
  EXPECT_DOUBLE_EQ(D(m, "store_requests_per_s"), D(*store, "arrival_rate_per_s"));
  EXPECT_DOUBLE_EQ(D(*store, "utilization_window"), D(*store, "busy_s_window") / w);
  EXPECT_GT(D(*store, "busy_s_window"), 0);
  EXPECT_LT(D(*store, "busy_s_window"), D(*store, "busy_s"));
  // Per-message ratios: window traffic over window sends.
  EXPECT_DOUBLE_EQ(D(m, "backend_messages_per_sent"),
                   static_cast<double>(U(m, "backend_traffic_window")) /
                       static_cast<double>(U(m, "messages_sent_window")));
  EXPECT_DOUBLE_EQ(D(m, "write_amplification"),
                   static_cast<double>(U(m, "node_traffic_window")) /
                       static_cast<double>(U(m, "messages_sent_window")));
  // Three servers, none crashed.
  EXPECT_EQ(D(m, "chat_servers_up_mean"), 3);
  EXPECT_EQ(U(m, "chat_servers_up_at_window_end"), 3u);

  // An explicit warm-up moves the window's start (and leaves what the run did alone).
  const Outcome late = Chatlab("run " + sc.string() + " --set scenario.warmup_s=6", dir / "late");
  ASSERT_EQ(late.exit_code, 0) << late.output;
  EXPECT_EQ(late.results["trace_digest"], o.results["trace_digest"]);
  EXPECT_EQ(D(late.results["metrics"], "window_s"), 6);
  EXPECT_LT(U(late.results["metrics"], "messages_sent_window"), U(m, "messages_sent_window"));
  const Outcome bad = Chatlab("run " + sc.string() + " --set scenario.warmup_s=12", dir / "bad");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("scenario.warmup_s"), std::string::npos) << bad.output;
  fs::remove_all(dir);
}

// Setup traffic (joins, syncs, the user mapping, presence) is counted apart: at a low send rate
// it dwarfs message traffic, and the per-sent figure no longer carries it.
TEST(Metrics, SetupTrafficIsApartFromThePerSentFigure) {
  const fs::path dir = TempDir("setup");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o =
      Chatlab("run " + sc.string() +
                  " --set workload.send_rate_hz=0.03 --set workload.inter_send=exponential",
              dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  const uint64_t all = U(m, "node_messages") + U(m, "client_messages");
  EXPECT_GT(U(m, "setup_backend_messages"), all / 3);
  EXPECT_LT(U(m, "setup_backend_messages"), all);
  const double all_per_sent =
      static_cast<double>(all) / static_cast<double>(U(m, "messages_sent"));
  EXPECT_LT(D(m, "backend_messages_per_sent"), all_per_sent / 2);
  EXPECT_GT(D(m, "backend_messages_per_sent"), 2);  // at least the send and its ack
  fs::remove_all(dir);
}

// Under pull, a connected member shows a group message at its next poll: about P/2 after the
// send. end_to_end_latency (the fastest member) says far less.
TEST(Metrics, PullGroupsOnlineRecipientsWaitAboutHalfAPollInterval) {
  const fs::path dir = TempDir("pull");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o = Chatlab(
      "run " + sc.string() +
          " --set workload.group_share=1 --set workload.groups=2"
          " --set workload.group_size_min=30 --set workload.group_size_max=30"
          " --set workload.send_rate_hz=0.05 --set workload.typing_probability=0"
          " --set protocol.group_delivery=pull --set protocol.group_poll_interval_us=2000000"
          " --set workload.send_end_s=9",  // sending ends more than P before the heal
      dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  const auto& online = m["delivery_latency_online"];
  EXPECT_GT(online["count"].get<uint64_t>(), 200u);
  EXPECT_NEAR(online["p50_ms"].get<double>(), 1000, 250);
  EXPECT_NEAR(online["mean_ms"].get<double>(), 1000, 200);
  EXPECT_LT(online["p99_ms"].get<double>(), 2300);
  EXPECT_LT(m["end_to_end_latency"]["p50_ms"].get<double>(), 400);
  // Nobody goes offline, and sending ends more than P before the heal: no offline pairs and no
  // wait cut off by the heal. (With sends up to the heal, the last P seconds' waits are
  // censored: delivery_after_heal counts them.)
  EXPECT_EQ(m["delivery_latency_offline"]["count"].get<uint64_t>(), 0u);
  EXPECT_EQ(U(m, "delivery_after_heal"), 0u);
  fs::remove_all(dir);
}

// Offline recipients are apart, and they wait far longer than connected ones.
TEST(Metrics, OfflineRecipientsAreMeasuredApart) {
  const fs::path dir = TempDir("offline");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o = Chatlab("run " + sc.string() +
                                " --set workload.online_fraction=0.6"
                                " --set workload.session_mean_s=4 --set workload.offline_mean_s=3",
                            dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  EXPECT_GT(m["delivery_latency_online"]["count"].get<uint64_t>(), 20u);
  EXPECT_GT(m["delivery_latency_offline"]["count"].get<uint64_t>(), 20u);
  EXPECT_GT(m["delivery_latency_offline"]["mean_ms"].get<double>(),
            5 * m["delivery_latency_online"]["mean_ms"].get<double>());
  fs::remove_all(dir);
}

// Every forwarding hop is counted: the broker's deliveries and the consumers' acks as well as
// the publishes, and the direct designs' results as well as their requests.
TEST(Metrics, ForwardingHopsAreAllCounted) {
  const fs::path dir = TempDir("hops");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome q = Chatlab("run " + sc.string() + " --set protocol.forwarding=queue", dir / "q");
  ASSERT_EQ(q.exit_code, 0) << q.output;
  const auto& mq = q.results["metrics"];
  EXPECT_GT(U(mq, "broker_publishes"), 20u);
  EXPECT_EQ(U(mq, "broker_deliveries"), U(mq, "broker_publishes"));
  EXPECT_EQ(U(mq, "broker_acks"), U(mq, "broker_publishes"));
  EXPECT_EQ(U(mq, "forward_batches"), 0u);
  EXPECT_EQ(U(mq, "inter_server_requests"), 3 * U(mq, "broker_publishes"));
  const Outcome d = Chatlab("run " + sc.string() + " --set protocol.forwarding=direct", dir / "d");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  const auto& md = d.results["metrics"];
  EXPECT_GT(U(md, "forward_batches"), 20u);
  EXPECT_EQ(U(md, "forward_results"), U(md, "forward_batches"));
  EXPECT_EQ(U(md, "broker_publishes"), 0u);
  EXPECT_EQ(U(md, "inter_server_requests"), 2 * U(md, "forward_batches"));
  // Three servers: at most 3 x 2 destination buffers.
  EXPECT_GT(U(md, "forward_buffers_window"), 0u);
  EXPECT_LE(U(md, "forward_buffers_window"), 6u);
  EXPECT_DOUBLE_EQ(D(md, "forward_entries_per_buffer"),
                   static_cast<double>(U(md, "forward_entries_window")) /
                       static_cast<double>(U(md, "forward_buffers_window")));
  EXPECT_EQ(U(md, "buffer_flushes_window"), 0u);
  fs::remove_all(dir);
}

// Buffered forwarding: the measured wait of a buffered entry lies within the flush timer's
// range (F = 50 ms plus up to J = 25 ms), and flushes are the window's forwarding requests.
TEST(Metrics, BufferedForwardingWaitIsMeasured) {
  const fs::path dir = TempDir("buffered");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o =
      Chatlab("run " + sc.string() + " --set protocol.forwarding=buffered", dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  EXPECT_GT(U(m, "buffer_flushes_window"), 20u);
  EXPECT_GE(U(m, "buffer_flushed_entries_window"), U(m, "buffer_flushes_window"));
  EXPECT_GT(D(m, "buffer_mean_wait_ms"), 20);
  EXPECT_LE(D(m, "buffer_mean_wait_ms"), 75);
  // A flush just before the window's end may be sent inside it: the two differ by edge effects.
  EXPECT_NEAR(static_cast<double>(U(m, "buffer_flushes_window")),
              static_cast<double>(U(m, "forward_requests_window")),
              0.1 * static_cast<double>(U(m, "forward_requests_window")) + 3);
  fs::remove_all(dir);
}

// A chat server crash: fewer servers carry the window's traffic, and each cut-off user's
// reconnect time is measured.
TEST(Metrics, CrashLowersServersUpAndMeasuresReconnects) {
  const fs::path dir = TempDir("crash");
  const fs::path sc =
      Write(dir, "crash.toml",
            std::string(kSteady) + "[[faults.crash]]\nnode = \"server:0\"\nat_s = 4\n"
                                   "restart_s = 9\n");
  const Outcome o = Chatlab("run " + sc.string(), dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  EXPECT_NEAR(D(m, "chat_servers_up_mean"), 3 - 5.0 / 10, 1e-9);  // down 5 of 10 s
  EXPECT_EQ(U(m, "chat_servers_up_at_window_end"), 3u);
  const auto& r = m["failover_reconnect"];
  EXPECT_GT(U(m, "failover_affected_users"), 5u);
  EXPECT_EQ(r["count"].get<uint64_t>(),
            U(m, "failover_affected_users") - U(m, "failover_unrecovered_users"));
  EXPECT_GT(r["mean_ms"].get<double>(), 0);
  EXPECT_LE(r["p99_ms"].get<double>(), 1000 * D(m, "failover_reconnect_s") + 1e-6);
  fs::remove_all(dir);
}

// A pause (a stop-the-world GC, SIGSTOP) of the store: nothing is lost and nobody is cut off, the
// sends made while it is paused wait for it (their acks take up to the pause's length), and every
// message still reaches every recipient. The requests the chat servers give up during the pause
// are retried, and the store answers the retries as duplicates of what it then stores: those
// must be fanned out too, or a recipient online throughout sees the message only at its next
// periodic sync, 30 s away (this scenario left 10 messages undelivered at its end before the
// chat server fanned duplicates out).
TEST(Metrics, APauseDelaysButLosesAndCutsOffNothing) {
  const fs::path dir = TempDir("pause");
  const fs::path sc = Write(dir, "pause.toml",
                            std::string(kSteady) +
                                "[[faults.pause]]\nnode = \"store\"\nat_s = 4\nresume_s = 7\n"
                                "[[faults.pause]]\nnode = \"server:1\"\nat_s = 8\n"
                                "resume_s = 9.5\n");
  const Outcome o = Chatlab("run " + sc.string(), dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.results["invariants"]["undelivered_after_heal"], 0);
  EXPECT_EQ(o.results["faults_fired"]["pause"], 2);
  EXPECT_EQ(o.results["faults_fired"]["resume"], 2);
  const auto& m = o.results["metrics"];
  EXPECT_EQ(U(m, "failover_affected_users"), 0u);
  EXPECT_NEAR(D(m, "chat_servers_up_mean"), 3, 1e-9);
  // A send at 4 s waits the 3 s out; none waits longer than the pause and a retry's round.
  EXPECT_GT(m["ack_latency"]["p99_ms"].get<double>(), 2000);
  EXPECT_LT(m["ack_latency"]["p99_ms"].get<double>(), 3500);
  // A pause that overlaps a crash of its node is refused, naming both.
  const fs::path bad = Write(dir, "bad.toml",
                             std::string(kSteady) +
                                 "[[faults.pause]]\nnode = \"server:0\"\nat_s = 4\n"
                                 "[[faults.crash]]\nnode = \"server:0\"\nat_s = 5\n");
  const Outcome refused = Chatlab("run " + bad.string(), dir / "bad");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("faults.pause: server:0 paused at 4 s overlaps its crash at 5 s"),
            std::string::npos)
      << refused.output;
  // So are a pause that starts at the heal or later, and one that resumes as it starts.
  for (const auto& [set, names] : {std::pair<std::string, std::string>{
                                       "faults.pause.0.at_s=12", "must start before the heal"},
                                   {"faults.pause.0.resume_s=4", "resume_s must be > at_s"}}) {
    const Outcome o2 = Chatlab("run " + sc.string() + " --set " + set, dir / "bad2");
    EXPECT_EQ(o2.exit_code, 2) << set;
    EXPECT_NE(o2.output.find(names), std::string::npos) << set << ": " << o2.output;
  }
  fs::remove_all(dir);
}

// The batch writer's figures are the window's: its arrival rate is WriterEnqueue requests in
// the window over its length, its batches and waits those flushed in it.
TEST(Metrics, WriterFiguresAreTheWindows) {
  const fs::path dir = TempDir("writer");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const Outcome o =
      Chatlab("run " + sc.string() + " --set protocol.write_path=batched", dir / "o");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto& m = o.results["metrics"];
  // Every send in the window is one enqueue (no faults, no retries), give or take the edges.
  EXPECT_NEAR(D(m, "writer_arrival_rate_per_s") * D(m, "window_s"),
              static_cast<double>(U(m, "messages_sent_window")),
              0.1 * static_cast<double>(U(m, "messages_sent_window")));
  EXPECT_GE(D(m, "writer_mean_batch"), 1);
  EXPECT_GT(D(m, "writer_mean_wait_ms"), 0);
  fs::remove_all(dir);
}

// workload.introduce_contacts: every user messages each of its contacts in the warm-up, so its
// client knows them (it polls their presence) before the window; the introductions are setup
// traffic, outside the window's sends. Without a warm-up the option is refused by name.
TEST(Metrics, IntroductionsAreSetupTrafficThatMakesContactsKnown) {
  const fs::path dir = TempDir("introduce");
  const fs::path sc = Write(dir, "steady.toml", kSteady);
  const std::string base = "run " + sc.string() +
                           " --set workload.send_rate_hz=0.01 --set workload.group_share=0"
                           " --set workload.contacts_per_user=8 --set scenario.warmup_s=6"
                           " --set protocol.presence_poll_interval_us=2000000";
  const Outcome plain = Chatlab(base, dir / "plain");
  const Outcome intro = Chatlab(base + " --set workload.introduce_contacts=true", dir / "intro");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  ASSERT_EQ(intro.exit_code, 0) << intro.output;
  const auto& p = plain.results["metrics"];
  const auto& m = intro.results["metrics"];
  EXPECT_GE(U(m, "messages_sent") - U(m, "messages_sent_window"), 60u * 8u);
  EXPECT_LT(U(m, "messages_sent_window"), 60u);  // the window's own sends only
  EXPECT_GT(U(m, "presence_polled"), 5 * U(p, "presence_polled"));
  EXPECT_EQ(intro.results["invariants"]["lost_acked"].get<uint64_t>(), 0u);
  const Outcome refused =
      Chatlab(base + " --set workload.introduce_contacts=true --set scenario.warmup_s=0"
                     " --set workload.connect_ramp_s=0",
              dir / "refused");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("workload.introduce_contacts needs a warm-up"),
            std::string::npos)
      << refused.output;
  fs::remove_all(dir);
}

}  // namespace
