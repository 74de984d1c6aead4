// `chatlab compare`: the runs (chatplay, then the simulator) and the calibration. The report is
// vs_real_report.cc.
#include "sim/lab/vs_real.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/child.h"
#include "sim/scenario.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitViolation = 1;
constexpr int kExitBadInput = 2;

int Fail(const std::string& what) {
  std::cerr << "chatlab compare: " << what << "\n";
  return kExitBadInput;
}

// chatplay: the one given, else beside this binary (an installed layout), else in the build
// tree's real-transport/ (chatlab is in sim/).
std::optional<std::string> FindChatplay(const std::string& given) {
  const auto runnable = [](const fs::path& p) {
    return fs::is_regular_file(p) && access(p.c_str(), X_OK) == 0;
  };
  if (!given.empty()) {
    if (runnable(given)) return fs::absolute(given).string();
    return std::nullopt;
  }
  std::error_code ec;
  const fs::path me = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  for (const fs::path& p : {me.parent_path() / "chatplay",
                            me.parent_path().parent_path() / "real-transport/chatplay"}) {
    if (runnable(p)) return p.string();
  }
  return std::nullopt;
}

std::optional<json> ReadResults(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// The last lines of a log, for a failure message.
std::string Tail(const fs::path& log, int lines) {
  std::ifstream in(log);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); i++) absl::StrAppend(&out, "  ", all[i], "\n");
  return out;
}

// compare.json: what `chatlab compare --render DIR` needs to write the report again from the
// runs under DIR (after a change to the report, without running anything).
void WriteManifest(const VsRealRuns& runs) {
  json calibration = json::array();
  for (const CalibratedKey& c : runs.calibration) {
    calibration.push_back(
        {{"key", c.key}, {"value", c.value}, {"formula", c.formula}, {"inputs", c.inputs}});
  }
  const json m{{"format", "chatlab-compare/1"},
               {"scenario_path", runs.scenario_path},
               {"scenario_name", runs.scenario_name},
               {"scenario_text", runs.scenario_text},
               {"sets", runs.sets},
               {"seeds", runs.seeds},
               {"chatplay", runs.chatplay},
               {"command", runs.command},
               {"delay_ms_max", runs.delay_ms_max},
               {"calibration", calibration}};
  std::ofstream(fs::path(runs.dir) / "compare.json") << m.dump(2) << "\n";
}

std::string CommandLine(const VsRealOptions& o) {
  std::string cmd = absl::StrCat("chatlab compare ", o.scenario_path, " --seeds ", o.seeds);
  if (o.seed_start) absl::StrAppend(&cmd, " --seed-start ", *o.seed_start);
  for (const std::string& s : o.sets) absl::StrAppend(&cmd, " --set '", s, "'");
  if (!o.calibrate) absl::StrAppend(&cmd, " --no-calibrate");
  return cmd;
}

}  // namespace

std::vector<CalibratedKey> Calibrate(const std::vector<std::optional<json>>& real,
                                     const std::vector<std::optional<json>>& sim_defaults,
                                     double cpu_speed_factor) {
  double rtt_sum = 0, commit_sum = 0;
  int rtt_n = 0, commit_n = 0;
  // CPU per sent message, pooled over the seeds both sides have.
  double real_cpu = 0, real_sent = 0, sim_cpu = 0, sim_sent = 0;
  int cpu_n = 0;
  for (size_t k = 0; k < real.size() && k < sim_defaults.size(); k++) {
    const auto& r = real[k];
    const auto& d = sim_defaults[k];
    if (!r || !d) continue;
    const json& rm = (*r)["metrics"];
    const json& dm = (*d)["metrics"];
    if (!rm.contains("server") || !rm["server"].value("complete", false) ||
        !rm["server"].contains("cpu_seconds") || !dm.contains("node_load")) {
      continue;
    }
    real_cpu += rm["server"]["cpu_seconds"].get<double>();
    real_sent += rm.value("messages_sent", 0.0);
    for (const json& node : dm["node_load"]) sim_cpu += node.value("busy_s", 0.0);
    sim_sent += dm.value("messages_sent", 0.0);
    cpu_n++;
  }
  for (const auto& r : real) {
    if (!r || !r->contains("metrics")) continue;
    const json& m = (*r)["metrics"];
    if (m.contains("loopback_rtt") && m["loopback_rtt"].contains("p50_ms")) {
      rtt_sum += m["loopback_rtt"]["p50_ms"].get<double>();
      rtt_n++;
    }
    // A run without a commit (its counters unread, or nothing written) says nothing of one.
    if (m.contains("server") && m["server"].contains("commit_ms") &&
        m["server"].value("storage_commits", 0.0) > 0) {
      commit_sum += m["server"]["commit_ms"].get<double>();
      commit_n++;
    }
  }
  std::vector<CalibratedKey> keys;
  if (rtt_n > 0) {
    const double rtt = rtt_sum / rtt_n;
    const std::string inputs = absl::StrFormat(
        "loopback_rtt_p50_ms = %.5f (mean over %d real runs of the median of 100 TCP connects "
        "to each process)",
        rtt, rtt_n);
    // A simulated route crosses two links (the sender's and the receiver's access links), so
    // each link carries a quarter of the round trip: client to server and server to server
    // are both rtt / 2 one way.
    for (const char* key : {"network.client_latency_ms", "network.access_latency_ms"}) {
      keys.push_back({key, rtt / 4, "loopback_rtt_p50_ms / 4", inputs});
    }
  }
  if (commit_n > 0) {
    const double commit = commit_sum / commit_n;
    keys.push_back({"cost.fsync_ms", commit, "commit_ms",
                    absl::StrFormat("commit_ms = %.4f (mean over %d real runs of chatd's mean "
                                    "SQLite commit, fsync included: "
                                    "chatd_storage_commit_latency_seconds sum / count)",
                                    commit, commit_n)});
  }
  if (cpu_n > 0 && real_cpu > 0 && real_sent > 0 && sim_sent > 0 && sim_cpu > 0) {
    const double real_per = real_cpu / real_sent * 1e6;  // microseconds per sent message
    const double sim_per = sim_cpu / sim_sent * 1e6;
    keys.push_back(
        {"cost.cpu_speed_factor", sim_per * cpu_speed_factor / real_per,
         cpu_speed_factor == 1
             ? std::string("sim_cpu_us_per_sent / real_cpu_us_per_sent")
             : absl::StrFormat("sim_cpu_us_per_sent * %g / real_cpu_us_per_sent", cpu_speed_factor),
         absl::StrFormat("real_cpu_us_per_sent = %.1f (chatd's process_cpu_seconds_total over the "
                         "workload, every process, / messages sent; %d runs pooled); "
                         "sim_cpu_us_per_sent = %.1f (the nodes' busy_s at the "
                         "scenario's cost.cpu_speed_factor, / messages sent; the same seeds)",
                         real_per, cpu_n, sim_per)});
  }
  return keys;
}

int CompareWithReal(const VsRealOptions& o) {
  if (o.seeds < 1 || o.seeds > kCompareSeedsMax) {
    return Fail(absl::StrCat("--seeds ", o.seeds, ": between 1 and ", kCompareSeedsMax));
  }
  absl::StatusOr<Scenario> loaded = LoadScenario(o.scenario_path);
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  Scenario s = *std::move(loaded);
  for (const std::string& set : o.sets) {
    if (absl::Status st = ApplyOverride(s, set); !st.ok()) return Fail(std::string(st.message()));
  }
  ScaleServers(s);
  if (absl::Status st = Validate(s); !st.ok()) return Fail(std::string(st.message()));
  const std::optional<std::string> chatplay = FindChatplay(o.chatplay);
  if (!chatplay) {
    return Fail(o.chatplay.empty()
                    ? "chatplay not found beside chatlab nor in ../real-transport/: build it "
                      "(cmake --build --preset release) or give --chatplay PATH"
                    : absl::StrCat("--chatplay ", o.chatplay, ": not an executable file"));
  }
  const fs::path dir =
      o.out_dir.empty() ? fs::path("out") / ("compare-" + s.name) : fs::path(o.out_dir);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return Fail(absl::StrCat("--out ", dir.string(),
                             " is not empty: a comparison starts from fresh clusters; give a new "
                             "directory or remove it"));
  }
  fs::create_directories(dir, ec);
  if (ec) return Fail(absl::StrCat("--out ", dir.string(), ": ", ec.message()));

  VsRealRuns runs;
  runs.dir = dir.string();
  runs.scenario_path = o.scenario_path;
  runs.scenario_name = s.name;
  {
    std::ifstream in(o.scenario_path);
    std::stringstream text;
    text << in.rdbuf();
    runs.scenario_text = text.str();
  }
  runs.sets = o.sets;
  runs.chatplay = *chatplay;
  runs.command = CommandLine(o);
  runs.delay_ms_max = s.delay_ms_max;
  const uint64_t first = o.seed_start.value_or(s.seed);
  for (int k = 0; k < o.seeds; k++) runs.seeds.push_back(first + static_cast<uint64_t>(k));
  const size_t n = runs.seeds.size();
  runs.real.resize(n);
  runs.sim.resize(n);
  runs.sim_defaults.resize(n);

  // The real side first, one run at a time (a run owns the machine's cores, as a deployment
  // would): its measurements calibrate the simulated side.
  for (size_t k = 0; k < n; k++) {
    const fs::path run = dir / "real" / absl::StrCat("seed-", runs.seeds[k]);
    fs::create_directories(run, ec);
    std::vector<std::string> args{"chatplay", o.scenario_path,
                                  "--launch", (run / "cluster").string(),
                                  "--seed",   std::to_string(runs.seeds[k]),
                                  "--out",    run.string(),
                                  "--quiet"};
    for (const std::string& set : o.sets) args.insert(args.end(), {"--set", set});
    std::cerr << absl::StrFormat("chatlab compare: real, seed %d (%d of %d): about %.0f s\n",
                                 runs.seeds[k], k + 1, n, s.duration_s + s.quiet_s);
    const ChildExit exit = RunChild({args, (run / "chatplay.log").string()}, *chatplay);
    if (exit.status() != kExitOk && exit.status() != kExitViolation) {
      return Fail(absl::StrCat("chatplay failed on seed ", runs.seeds[k], " (exit ", exit.status(),
                               "); the end of ", (run / "chatplay.log").string(), ":\n",
                               Tail(run / "chatplay.log", 12)));
    }
    runs.real[k] = ReadResults(run / "results.json");
    if (!runs.real[k]) {
      return Fail(absl::StrCat("chatplay wrote no results.json for seed ", runs.seeds[k], "; see ",
                               (run / "chatplay.log").string()));
    }
  }
  // The simulator, `jobs` at a time: the scenario as written, then (with the calibration those
  // runs and the real ones give) calibrated.
  const auto simulate = [&](bool calibrated) {
    std::vector<std::string> failures;
    const std::string side = calibrated ? "sim" : "sim-defaults";
    std::cerr << "chatlab compare: " << n << " simulations (" << side << ")\n";
    RunPool(
        n, o.jobs > 0 ? o.jobs : DefaultJobs(),
        [&](size_t k) {
          const fs::path run = dir / side / absl::StrCat("seed-", runs.seeds[k]);
          fs::create_directories(run);
          std::vector<std::string> args{
              "chatlab", "run",        o.scenario_path, "--seed", std::to_string(runs.seeds[k]),
              "--out",   run.string(), "--no-progress"};
          for (const std::string& set : o.sets) args.insert(args.end(), {"--set", set});
          if (calibrated) {
            for (const CalibratedKey& c : runs.calibration) {
              args.insert(args.end(), {"--set", absl::StrFormat("%s=%.9g", c.key, c.value)});
            }
          }
          return ChildJob{args, (run / "chatlab.log").string()};
        },
        [&](size_t k, ChildExit exit) {
          const fs::path run = dir / side / absl::StrCat("seed-", runs.seeds[k]);
          if (exit.status() != kExitOk && exit.status() != kExitViolation) {
            failures.push_back(absl::StrCat("chatlab run failed (exit ", exit.status(), "): see ",
                                            (run / "chatlab.log").string(), "\n",
                                            Tail(run / "chatlab.log", 8)));
            return;
          }
          (calibrated ? runs.sim : runs.sim_defaults)[k] = ReadResults(run / "results.json");
        });
    return failures;
  };
  if (auto failures = simulate(false); !failures.empty()) {
    return Fail(absl::StrJoin(failures, "\n"));
  }
  if (o.calibrate) {
    runs.calibration = Calibrate(runs.real, runs.sim_defaults, s.cpu_speed_factor);
    for (const CalibratedKey& c : runs.calibration) {
      std::cerr << absl::StrFormat("chatlab compare: calibrated %s = %.5g (%s; %s)\n", c.key,
                                   c.value, c.formula, c.inputs);
    }
    if (auto failures = simulate(true); !failures.empty()) {
      return Fail(absl::StrJoin(failures, "\n"));
    }
  }

  WriteManifest(runs);
  const int violated = WriteVsRealReport(runs);
  std::cout << "report: " << (dir / "report.md").string() << "\n";
  return violated > 0 ? kExitViolation : kExitOk;
}

int RenderComparison(const std::string& dir_arg) {
  const fs::path dir(dir_arg);
  std::optional<json> m = ReadResults(dir / "compare.json");
  if (!m || m->value("format", "") != "chatlab-compare/1") {
    return Fail(absl::StrCat(dir_arg, ": no compare.json of chatlab compare"));
  }
  VsRealRuns runs;
  runs.dir = dir.string();
  runs.scenario_path = m->value("scenario_path", "");
  runs.scenario_name = m->value("scenario_name", "");
  runs.scenario_text = m->value("scenario_text", "");
  runs.sets = m->value("sets", std::vector<std::string>{});
  runs.seeds = m->value("seeds", std::vector<uint64_t>{});
  runs.chatplay = m->value("chatplay", "");
  runs.command = m->value("command", "");
  runs.delay_ms_max = m->value("delay_ms_max", 0.0);
  for (const json& c : m->value("calibration", json::array())) {
    runs.calibration.push_back(
        {c.value("key", ""), c.value("value", 0.0), c.value("formula", ""), c.value("inputs", "")});
  }
  if (runs.seeds.empty()) return Fail(absl::StrCat(dir_arg, "/compare.json: no seeds"));
  for (uint64_t seed : runs.seeds) {
    const std::string run = absl::StrCat("seed-", seed);
    runs.real.push_back(ReadResults(dir / "real" / run / "results.json"));
    runs.sim.push_back(ReadResults(dir / "sim" / run / "results.json"));
    runs.sim_defaults.push_back(ReadResults(dir / "sim-defaults" / run / "results.json"));
  }
  const int violated = WriteVsRealReport(runs);
  std::cout << "report: " << (dir / "report.md").string() << "\n";
  return violated > 0 ? kExitViolation : kExitOk;
}

}  // namespace chatlab::sim::lab
