// chatplay: plays a simulator scenario against running chatd processes and checks what the users
// saw with the simulator's oracle (docs/sim-vs-real.md).
//
//   chatplay SCENARIO (--cluster H:P,H:P,... | --launch DIR [--chatd PATH]) [--seed N]
//            [--set section.key=value ...] [--users PREFIX] [--password P] [--group_base N]
//            [--out DIR] [--history FILE]
//
// The cluster's process i (chatd --index i) serves the scenario's chat server i - 1, so
// topology.servers_per_region must be the number of processes; the accounts PREFIX1..PREFIXN
// (N = workload.users) must exist (`chatd adduser --count N PREFIX`), and every process must run
// with the flags the scenario's protocol asks for (printed; chatd's defaults otherwise). A
// scenario key the play cannot honour is refused, naming it.
//
// --launch DIR starts the cluster itself instead (LocalCluster: one process per chat server,
// the accounts, the scenario's flags, in the fresh directory DIR, with the chatd next to
// chatplay unless --chatd names one) and stops it at the end; the scenario's [[faults.crash]]
// entries are then played by the nemesis (kill -9, then a restart; play/nemesis.h).
//
// Writes the history (chatlab-history/1, with the store's final contents as truth) and
// results.json (the invariant names of `chatlab run`) to the output directory, prints the
// invariant table, and exits 0 when every promise held, 1 on a violation, 2 on bad input or
// when the play cannot run (no such account, cluster unreachable).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/oracle.h"
#include "nlohmann/json.hpp"
#include "real-transport/history.h"
#include "real-transport/play/admission.h"
#include "real-transport/play/fault_proxy.h"
#include "real-transport/play/local_cluster.h"
#include "real-transport/play/measure.h"
#include "real-transport/play/nemesis.h"
#include "real-transport/play/player.h"
#include "sim/scenario.h"

namespace chatlab::real {
namespace {

using ordered_json = nlohmann::ordered_json;

struct Args {
  std::string scenario;
  std::string cluster;
  std::string launch;  // a fresh directory: chatplay starts the cluster there
  std::string chatd;   // with --launch: the chatd binary ("" = the one next to chatplay)
  std::optional<uint64_t> seed;
  std::vector<std::string> sets;
  std::string users = "play";
  std::string password = "play";
  uint64_t group_base = 0;
  std::string out;
  std::string history;
  bool quiet = false;
};

int Usage(const std::string& problem) {
  std::cerr << "chatplay: " << problem << "\n"
            << "usage: chatplay SCENARIO (--cluster H:P,H:P,... | --launch DIR [--chatd PATH])"
               " [--seed N] [--set section.key=value] [--users PREFIX] [--password P]"
               " [--group_base N] [--out DIR] [--history FILE] [--quiet]\n";
  return 2;
}

// Parses argv into a; returns the exit status of a usage error, or 0. Flags are --name value or
// --name=value; a '-' inside a name reads as '_'.
int ParseArgs(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0) {
      if (!a.scenario.empty()) return Usage("one SCENARIO only, got " + flag);
      a.scenario = flag;
      continue;
    }
    std::optional<std::string> value;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    for (size_t c = 2; c < flag.size(); ++c) flag[c] = flag[c] == '-' ? '_' : flag[c];
    if (flag == "--quiet" && !value) {
      a.quiet = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return Usage(flag + " needs a value");
      value = argv[++i];
    }
    if (flag == "--cluster") {
      a.cluster = *value;
    } else if (flag == "--launch") {
      a.launch = *value;
    } else if (flag == "--chatd") {
      a.chatd = *value;
    } else if (flag == "--seed" || flag == "--group_base") {
      uint64_t number = 0;
      if (!absl::SimpleAtoi(*value, &number)) return Usage(flag + ": bad number " + *value);
      if (flag == "--seed") {
        a.seed = number;
      } else {
        a.group_base = number;
      }
    } else if (flag == "--set") {
      a.sets.push_back(*value);
    } else if (flag == "--users") {
      a.users = *value;
    } else if (flag == "--password") {
      a.password = *value;
    } else if (flag == "--out") {
      a.out = *value;
    } else if (flag == "--history") {
      a.history = *value;
    } else {
      return Usage("unknown flag " + flag);
    }
  }
  if (a.scenario.empty()) return Usage("no SCENARIO");
  if (a.cluster.empty() == a.launch.empty()) {
    return Usage(
        "give --cluster (running chatd processes, in index order) or --launch DIR (a "
        "cluster chatplay starts), not both");
  }
  if (!a.chatd.empty() && a.launch.empty()) return Usage("--chatd goes with --launch");
  return 0;
}

std::string Repro(const Args& a, uint64_t seed) {
  std::string cmd = absl::StrCat(
      "chatplay ", a.scenario,
      a.launch.empty() ? " --cluster " + a.cluster : std::string(" --launch FRESH_DIR"), " --seed ",
      seed, " --users ", a.users, " --group_base ", a.group_base);
  for (const std::string& s : a.sets) absl::StrAppend(&cmd, " --set '", s, "'");
  return cmd;
}

// The simulator's quantiles (sim/world/metrics.cc Summarize): nearest rank, in milliseconds.
ordered_json Quantiles(std::vector<TimeUs> v) {
  ordered_json q{
      {"count", v.size()}, {"mean_ms", 0.0}, {"p50_ms", 0.0}, {"p95_ms", 0.0}, {"p99_ms", 0.0}};
  q["percentiles_ms"] = ordered_json::array();
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double f) {
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(f * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1000.0;
  };
  double sum = 0;
  for (TimeUs x : v) sum += static_cast<double>(x);
  q["mean_ms"] = sum / static_cast<double>(v.size()) / 1000.0;
  q["p50_ms"] = at(0.50);
  q["p95_ms"] = at(0.95);
  q["p99_ms"] = at(0.99);
  std::vector<double> percentiles;  // p0..p100, as the simulator's results.json
  for (int k = 0; k <= 100; ++k) percentiles.push_back(at(k / 100.0));
  q["percentiles_ms"] = percentiles;
  return q;
}

ordered_json ResultsJson(const Args& a, const sim::Scenario& s, uint64_t seed,
                         const Admission& admission, const PlayResult& play,
                         const HistoryVerdict& v, const std::string& history_path,
                         const std::vector<HostPort>& addresses,
                         const std::vector<NemesisEvent>& nemesis) {
  const PlayTotals& t = play.totals;
  const ProtocolConfig& p = s.protocol;
  ordered_json j;
  j["scenario"] = s.name;
  j["scenario_file"] = s.path;
  j["environment"] = "real";
  j["seed"] = seed;
  j["repro"] = Repro(a, seed);
  std::vector<std::string> cluster;
  for (const HostPort& hp : addresses) cluster.push_back(absl::StrCat(hp.host, ":", hp.port));
  j["cluster"] = cluster;
  j["cluster_flags"] = admission.cluster_flags;
  j["platform_keys_not_applicable"] = admission.platform_keys;
  j["launched"] = a.launch;
  ordered_json faults = ordered_json::array();
  for (const NemesisEvent& e : nemesis) {
    faults.push_back({{"action", e.action},
                      {"process", e.process},
                      {"node", e.node},
                      {"due_s", e.due_s},
                      {"at_s", e.at_s},
                      {"error", e.error}});
  }
  j["nemesis"] = faults;
  j["history"] = history_path;
  j["wall_time_s"] = play.wall_time_s;
  j["design"] = {{"id_scheme", std::string(IdSchemeName(p.id_scheme))},
                 {"id_generator", std::string(IdGeneratorName(p.id_generator))},
                 {"forwarding", std::string(ForwardingStrategyName(p.forwarding))},
                 {"group_delivery", std::string(GroupDeliveryName(p.group_delivery))},
                 {"write_path", std::string(WritePathName(p.write_path))},
                 {"presence_fanout", std::string(PresenceFanoutName(p.presence_fanout))},
                 {"dedup_enabled", p.dedup_enabled},
                 {"gap_detection_enabled", p.gap_detection_enabled}};
  ordered_json invariants = ordered_json::object();
  ForEachInvariant(v.counts, [&](const char* name, uint64_t n) { invariants[name] = n; });
  invariants["ok"] = v.ok();
  invariants["first_violations"] = v.violations;
  invariants["final_checked"] = v.final_checked;
  j["invariants"] = invariants;
  j["metrics"] = {{"users", t.users},
                  {"messages_sent", v.sent},
                  {"messages_acked", v.acked},
                  {"messages_delivered", v.delivered},  // whole run, as the simulator's
                  {"displays", t.displays_to_others},
                  {"end_to_end_latency", Quantiles(v.latencies.end_to_end_us)},
                  {"ack_latency", Quantiles(v.latencies.ack_us)},
                  {"catchups", t.catchups},
                  {"gaps_detected", t.gaps_detected},
                  {"retries", t.retries},
                  {"send_failures", t.send_failures},
                  {"connects", t.connects},
                  {"connects_failed", t.connects_failed},
                  {"reconnects_elsewhere", t.reconnects_elsewhere},
                  {"disconnects", t.disconnects},
                  {"error_replies", t.error_replies},
                  {"frames_undecodable", t.frames_undecodable},
                  {"history_events", v.events},
                  {"truth_conversations", t.truth_conversations},
                  {"truth_messages", t.truth_messages}};
  return j;
}

// "network": what the network nemesis was asked to do and what it did.
ordered_json NetworkJson(const NetworkFaults& n, const FaultProxy::Stats& st) {
  ordered_json cuts = ordered_json::array();
  for (const ProcessCut& c : n.cuts) {
    cuts.push_back({{"start_s", c.start_s},
                    {"end_s", c.end_s},
                    {"a", c.a},
                    {"b", c.b},
                    {"one_way", c.one_way}});
  }
  return {{"loss", n.loss},
          {"duplicate", n.duplicate},
          {"delay_probability", n.delay_probability},
          {"delay_ms_max", n.delay_ms_max},
          {"partitions", cuts},
          {"notes", n.notes},
          {"messages", st.messages.load()},
          {"forwarded", st.forwarded.load()},
          {"cut", st.cut.load()},
          {"lost", st.lost.load()},
          {"duplicated", st.duplicated.load()},
          {"delayed", st.delayed.load()},
          {"forward_failed", st.forward_failed.load()},
          {"resent", st.resent.load()},
          {"overflowed", st.overflowed.load()}};
}

// metrics.server: the cluster's counts over the play (ServerCounts), or why there are none.
ordered_json ServerJson(const absl::Status& error) {
  return {{"error", std::string(error.message())}};
}
ordered_json ServerJson(const ServerCounts& c) {
  ordered_json j = ordered_json::object();
  for (const auto& [name, value] : c.counts) j[name] = value;
  j["commit_ms"] = c.commit_ms;
  j["server_ack_ms"] = c.server_ack_ms;
  // JSON has no infinity: a p99 past the histogram's last bound (10 s) is written as null.
  const auto bound = [](double ms) { return std::isinf(ms) ? ordered_json() : ordered_json(ms); };
  j["commit_p99_ms_at_most"] = bound(c.commit_p99_ms_at_most);
  j["server_ack_p99_ms_at_most"] = bound(c.server_ack_p99_ms_at_most);
  j["complete"] = c.complete;
  return j;
}

std::string Summary(const ordered_json& r) {
  std::string out = absl::StrCat("\ninvariants (", r["scenario"].get<std::string>(),
                                 " on a real cluster, seed ", r["seed"].get<uint64_t>(), ")\n");
  for (const Invariant& invariant : kInvariants) {
    const char* name = invariant.name;
    const uint64_t n = r["invariants"][name].get<uint64_t>();
    absl::StrAppend(&out,
                    absl::StrFormat("  %-24s %10d  %s\n", name, n, n == 0 ? "ok" : "VIOLATED"));
  }
  for (const auto& v : r["invariants"]["first_violations"]) {
    absl::StrAppend(&out, "  first: ", v.get<std::string>(), "\n");
  }
  const ordered_json& m = r["metrics"];
  absl::StrAppend(
      &out, "\nmetrics\n",
      absl::StrFormat("  users                          %d\n", m["users"].get<uint64_t>()),
      absl::StrFormat("  messages sent/acked/delivered  %d / %d / %d\n",
                      m["messages_sent"].get<uint64_t>(), m["messages_acked"].get<uint64_t>(),
                      m["messages_delivered"].get<uint64_t>()),
      absl::StrFormat("  displays to recipients         %d\n", m["displays"].get<uint64_t>()),
      absl::StrFormat("  end-to-end ms p50/p95/p99      %.1f / %.1f / %.1f\n",
                      m["end_to_end_latency"]["p50_ms"].get<double>(),
                      m["end_to_end_latency"]["p95_ms"].get<double>(),
                      m["end_to_end_latency"]["p99_ms"].get<double>()),
      absl::StrFormat("  ack ms p50/p95/p99             %.1f / %.1f / %.1f\n",
                      m["ack_latency"]["p50_ms"].get<double>(),
                      m["ack_latency"]["p95_ms"].get<double>(),
                      m["ack_latency"]["p99_ms"].get<double>()),
      absl::StrFormat("  gaps / catch-ups / retries     %d / %d / %d\n",
                      m["gaps_detected"].get<uint64_t>(), m["catchups"].get<uint64_t>(),
                      m["retries"].get<uint64_t>()),
      absl::StrFormat("  connects (elsewhere) / failed  %d (%d) / %d\n",
                      m["connects"].get<uint64_t>(), m["reconnects_elsewhere"].get<uint64_t>(),
                      m["connects_failed"].get<uint64_t>()),
      absl::StrFormat("  truth: conversations/messages  %d / %d\n",
                      m["truth_conversations"].get<uint64_t>(),
                      m["truth_messages"].get<uint64_t>()),
      absl::StrFormat("  wall time                      %.1f s\n", r["wall_time_s"].get<double>()));
  if (m.contains("server") && m["server"].contains("error")) {
    absl::StrAppend(&out, "  server counts                  not read: ",
                    m["server"]["error"].get<std::string>(), "\n");
  } else if (m.contains("server")) {
    const ordered_json& sv = m["server"];
    absl::StrAppend(
        &out,
        absl::StrFormat("  store requests/writes          %.0f / %.0f\n",
                        sv["store_requests"].get<double>(), sv["store_writes"].get<double>()),
        absl::StrFormat("  forward requests/notifications %.0f / %.0f%s\n",
                        sv["forward_requests"].get<double>(), sv["notifications"].get<double>(),
                        sv["complete"].get<bool>() ? "" : "  (a restart lost earlier counts)"),
        absl::StrFormat("  commit / server ack ms (mean)  %.2f / %.2f\n",
                        sv["commit_ms"].get<double>(), sv["server_ack_ms"].get<double>()));
  }
  if (r.contains("network")) {
    const ordered_json& n = r["network"];
    absl::StrAppend(&out,
                    absl::StrFormat("\nnetwork nemesis (node messages between processes)\n"
                                    "  messages %d: forwarded %d, cut %d, lost %d, duplicated "
                                    "%d, delayed %d, receiver down or refused %d\n",
                                    n["messages"].get<uint64_t>(), n["forwarded"].get<uint64_t>(),
                                    n["cut"].get<uint64_t>(), n["lost"].get<uint64_t>(),
                                    n["duplicated"].get<uint64_t>(), n["delayed"].get<uint64_t>(),
                                    n["forward_failed"].get<uint64_t>()));
  }
  if (!r["nemesis"].empty()) absl::StrAppend(&out, "\nnemesis\n");
  for (const auto& e : r["nemesis"]) {
    absl::StrAppend(&out, absl::StrFormat("  %6.2f s  %-8s process %d (%s)%s\n",
                                          e["at_s"].get<double>(), e["action"].get<std::string>(),
                                          e["process"].get<int>(), e["node"].get<std::string>(),
                                          e["error"].get<std::string>().empty()
                                              ? ""
                                              : ": not done, " + e["error"].get<std::string>()));
  }
  return out;
}

// Loads the scenario as `chatlab run` does: the file, the overrides, the derived server count,
// the validation; then admits it for a play on the cluster.
absl::StatusOr<sim::Scenario> LoadForPlay(const Args& a) {
  absl::StatusOr<sim::Scenario> s = sim::LoadScenario(a.scenario);
  if (!s.ok()) return s.status();
  for (const std::string& set : a.sets) {
    if (absl::Status st = sim::ApplyOverride(*s, set); !st.ok()) return st;
  }
  sim::ScaleServers(*s);
  if (absl::Status st = sim::Validate(*s); !st.ok()) return st;
  return s;
}

// The chatd next to this chatplay (both in the build's real-transport/).
std::string ChatdBesideMe() {
  std::error_code ec;
  const std::filesystem::path me = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "chatd" : (me.parent_path() / "chatd").string();
}

int Main(int argc, char** argv) {
  Args a;
  if (const int usage = ParseArgs(argc, argv, a); usage != 0) return usage;
  PlayOptions o;
  for (absl::string_view part : absl::StrSplit(a.cluster, ',', absl::SkipEmpty())) {
    absl::StatusOr<HostPort> hp = ParseHostPort(std::string_view(part.data(), part.size()));
    if (!hp.ok()) return Usage(absl::StrCat("--cluster: ", hp.status().message()));
    o.cluster.push_back(*hp);
  }
  absl::StatusOr<sim::Scenario> s = LoadForPlay(a);
  if (!s.ok()) return Usage(std::string(s.status().message()));
  const bool launch = !a.launch.empty();
  const size_t processes = launch ? static_cast<size_t>(s->servers()) : o.cluster.size();
  absl::StatusOr<Admission> admission = AdmitScenario(*s, processes, /*can_kill=*/launch);
  if (!admission.ok()) return Usage(std::string(admission.status().message()));
  const uint64_t seed = a.seed.value_or(s->seed);
  const std::string repro = Repro(a, seed);
  std::cerr << "chatplay: " << s->name << " seed " << seed << " on " << processes
            << " processes\nrepro: " << repro << "\n";
  for (const std::string& k : admission->platform_keys) {
    std::cerr << "chatplay: " << k << ": the simulated platform's; this run has the real one\n";
  }
  std::cerr << "chatplay: the cluster " << (launch ? "runs" : "must run")
            << " with chatd's defaults"
            << (admission->cluster_flags.empty()
                    ? std::string()
                    : " and " + absl::StrJoin(admission->cluster_flags, " "))
            << "\n";
  for (const ProcessCrash& c : admission->crashes) {
    std::cerr << "chatplay: nemesis: kill -9 of process " << c.process << " (" << c.node << ") at "
              << c.at_s << " s, restarted at " << c.restart_s << " s"
              << (c.also.empty() ? "" : "; " + c.also) << "\n";
  }
  for (const ProcessPause& p : admission->pauses) {
    std::cerr << "chatplay: nemesis: kill -STOP of process " << p.process << " (" << p.node
              << ") at " << p.at_s << " s, kill -CONT at " << p.resume_s << " s"
              << (p.also.empty() ? "" : "; " + p.also) << "\n";
  }
  // The network nemesis: a proxy on every link between the processes, which each process dials
  // for its peers (FaultProxy). Only when the scenario has network faults: it adds a hop.
  std::unique_ptr<FaultProxy> proxy;
  if (launch && admission->network.any()) {
    const NetworkFaults& n = admission->network;
    absl::StatusOr<std::unique_ptr<FaultProxy>> listening =
        FaultProxy::Listen({static_cast<int>(processes), n.loss, n.duplicate,
                            n.delay_probability, n.delay_ms_max, n.cuts, seed});
    if (!listening.ok()) {
      std::cerr << "chatplay: " << listening.status().message() << "\n";
      return 2;
    }
    proxy = *std::move(listening);
    std::cerr << "chatplay: nemesis: on the links between processes, loss " << n.loss
              << ", duplicate " << n.duplicate << ", delay " << n.delay_probability
              << " up to " << n.delay_ms_max << " ms, " << n.cuts.size() << " partition(s)\n";
    for (const std::string& note : n.notes) std::cerr << "chatplay: nemesis: " << note << "\n";
  }
  std::unique_ptr<LocalCluster> cluster;
  if (launch) {
    LocalClusterOptions lo;
    lo.chatd = a.chatd.empty() ? ChatdBesideMe() : a.chatd;
    lo.dir = a.launch;
    lo.processes = static_cast<int>(processes);
    lo.flags = admission->cluster_flags;
    lo.user_prefix = a.users;
    lo.users = s->users;
    lo.password = a.password;
    if (proxy) {
      lo.cluster_view = [&proxy](int index, const std::vector<HostPort>& places) {
        return proxy->ClusterView(index, places);
      };
    }
    absl::StatusOr<std::unique_ptr<LocalCluster>> started = LocalCluster::Start(lo);
    if (!started.ok()) {
      std::cerr << "chatplay: cannot launch the cluster: " << started.status().message() << "\n";
      return 2;
    }
    cluster = *std::move(started);
    o.cluster = cluster->addresses();
    std::cerr << "chatplay: launched " << processes << " chatd processes in " << a.launch
              << " (logs in " << a.launch << "/N/chatd.log)\n";
  }
  // The processes' own counters over the play (docs/sim-vs-real.md): read at the workload's
  // start (after the logins), just before each kill and before the truth. A failed read is
  // recorded, not fatal: they are measurements, the verdict does not rest on them.
  CountsOverPlay counts;
  absl::Status counts_error;
  std::optional<Nemesis> nemesis;
  if (cluster) {
    nemesis.emplace(admission->crashes, admission->pauses, *cluster);
    o.faults =
        nemesis->Faults([](std::string_view line) { std::cerr << "chatplay: " << line << "\n"; },
                        [&](int process) {
                          absl::StatusOr<ServerScrape> s =
                              ScrapeCluster({o.cluster[static_cast<size_t>(process - 1)]});
                          // A blocking read of one process (a millisecond on loopback) on the
                          // player's io thread; if it fails, the counts are marked incomplete.
                          if (s.ok()) {
                            counts.BeforeKill(static_cast<size_t>(process - 1), s->processes[0]);
                          } else {
                            counts.MarkIncomplete();
                          }
                        });
  }
  o.scenario = *s;
  o.seed = seed;
  o.user_prefix = a.users;
  o.password = a.password;
  o.group_base = a.group_base;
  if (!a.quiet)
    o.progress = [](std::string_view line) { std::cerr << "chatplay: " << line << "\n"; };
  const std::string out = a.out.empty() ? absl::StrCat("out/real-", s->name, "-seed", seed) : a.out;
  const std::string history_path = a.history.empty() ? out + "/history.json" : a.history;
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Usage(absl::StrCat("--out ", out, ": ", ec.message()));
  absl::StatusOr<RttProbe> rtt = ProbeRtt(o.cluster, 100);
  if (proxy) {  // the faults stop at the heal, as the simulator's
    o.faults.push_back(PlayFault{s->duration_s, [&proxy](double) { proxy->Heal(); }});
  }
  o.at_start = [&] {
    if (absl::StatusOr<ServerScrape> before = ScrapeCluster(o.cluster); before.ok()) {
      counts.Start(*before);
    } else {
      counts_error = before.status();
    }
    if (proxy) proxy->Start();  // last: the player's clock starts right after
  };
  absl::StatusOr<ServerScrape> after = absl::UnavailableError("the play ended early");
  o.before_truth = [&] { after = ScrapeCluster(o.cluster); };
  absl::StatusOr<PlayResult> play = Play(o);
  // A launched process that exited unasked (a crash, a restart that failed) fails the run.
  std::vector<std::string> exits;
  if (cluster) exits = cluster->UnexpectedExits();
  cluster.reset();  // stops the launched cluster: the truth is read
  for (const std::string& e : exits) std::cerr << "chatplay: " << e << "\n";
  if (!play.ok()) {
    std::cerr << "chatplay: cannot play: " << play.status().message() << "\nrepro: " << repro
              << "\n";
    return 2;
  }
  std::ofstream(history_path, std::ios::binary) << play->history;
  absl::StatusOr<HistoryVerdict> verdict = CheckHistory(play->history);
  if (!verdict.ok()) {  // the recorder wrote something the checker cannot read: a bug here
    std::cerr << "chatplay: the recorded history does not check: " << verdict.status().message()
              << "\n";
    return 2;
  }
  ordered_json results =
      ResultsJson(a, *s, seed, *admission, *play, *verdict, history_path, o.cluster,
                  nemesis ? nemesis->log() : std::vector<NemesisEvent>{});
  results["unexpected_exits"] = exits;
  if (counts_error.ok() && !after.ok()) counts_error = after.status();
  if (proxy) results["network"] = NetworkJson(admission->network, proxy->stats());
  results["metrics"]["server"] =
      counts_error.ok() ? ServerJson(counts.End(*after)) : ServerJson(counts_error);
  if (rtt.ok()) {
    results["metrics"]["loopback_rtt"] = {
        {"p50_ms", rtt->p50_ms}, {"p90_ms", rtt->p90_ms}, {"samples", rtt->samples}};
  } else {
    results["metrics"]["loopback_rtt"] = {{"error", std::string(rtt.status().message())}};
  }
  std::ofstream(out + "/results.json") << results.dump(2) << "\n";
  std::cout << Summary(results) << "\nresults: " << out
            << "/results.json, history: " << history_path << "\nrepro: " << repro << "\n";
  if (!exits.empty()) {
    std::cout << "a chatd process exited unasked (above): the run fails\n";
    return 1;
  }
  return verdict->ok() ? 0 : 1;
}

}  // namespace
}  // namespace chatlab::real

int main(int argc, char** argv) { return chatlab::real::Main(argc, argv); }
