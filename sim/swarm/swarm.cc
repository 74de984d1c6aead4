#include "sim/swarm/swarm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/results.h"
#include "sim/scenario.h"
#include "sim/child.h"
#include "sim/swarm/common.h"
#include "sim/swarm/generate.h"

namespace chatlab::sim::swarm {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

// Without a terminal, a progress line every this many runs (or every failure), so a CI log
// shows the swarm moving without a line per run.
constexpr int kProgressLines = 20;

// How often something happened across the swarm: in how many runs, and how many times.
struct Counted {
  uint64_t runs = 0;
  uint64_t count = 0;
};

// A run that did not pass.
struct Failure {
  uint64_t seed = 0;
  bool crashed = false;  // exit 2 or a signal: the generator or the simulator, not the protocol
  std::vector<std::string> invariants;  // violated, for a failed (not crashed) run
  std::string first;                    // the first violation sentence, or how the run crashed
  std::string file;                     // DIR/failures/seed-K.toml
};

// Everything the summary needs, accumulated run by run (results.json itself is deleted). Every
// map is ordered, so the summary is the same whatever order the runs ended in.
struct Tally {
  uint64_t runs = 0;
  uint64_t passed = 0;
  std::vector<Failure> failures;
  std::map<std::string, Counted> invariants;           // name -> runs violating, violations
  std::map<std::string, Counted> faults;               // kind -> runs fired in, times fired
  std::map<std::string, uint64_t> configured_unfired;  // kind -> runs configured, never fired
  std::map<std::string, Counted> recovery;             // path -> runs reached, times reached
  bool recovery_reported = false;  // some results.json had a recovery_paths object
  // switch -> value -> (runs, failed runs in .count)
  std::map<std::string, std::map<std::string, Counted>> design;

  void Add(const nlohmann::json& results, bool failed);
  std::vector<std::string> FaultsNeverFired() const;
  std::vector<std::string> PathsNeverReached() const;
};

void Tally::Add(const nlohmann::json& r, bool failed) {
  for (const auto& [name, n] : InvariantCounts(r)) {
    Counted& c = invariants[name];
    c.runs += n > 0;
    c.count += n;
  }
  for (const auto& [kind, n] : CountMap(r, "faults_fired")) {
    Counted& c = faults[kind];
    c.runs += n > 0;
    c.count += n;
  }
  if (r.contains("faults_never_fired") && r["faults_never_fired"].is_array()) {
    for (const nlohmann::json& kind : r["faults_never_fired"]) {
      if (!kind.is_string()) continue;
      configured_unfired[kind.get<std::string>()]++;
      faults[kind.get<std::string>()];  // known, even if it never fires anywhere
    }
  }
  if (r.contains("recovery_paths") && r["recovery_paths"].is_object()) {
    recovery_reported = true;
    for (const auto& [path, n] : CountMap(r, "recovery_paths")) {
      Counted& c = recovery[path];
      c.runs += n > 0;
      c.count += n;
    }
  }
  if (r.contains("design") && r["design"].is_object()) {
    for (const auto& [key, value] : r["design"].items()) {
      const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
      Counted& c = design[key][v];
      c.runs++;
      c.count += failed;
    }
  }
}

std::vector<std::string> Tally::FaultsNeverFired() const {
  std::vector<std::string> out;
  for (const auto& [kind, c] : faults) {
    if (c.runs == 0) out.push_back(kind);
  }
  return out;
}

std::vector<std::string> Tally::PathsNeverReached() const {
  std::vector<std::string> out;
  for (const auto& [path, c] : recovery) {
    if (c.runs == 0) out.push_back(path);
  }
  return out;
}

std::string SwarmRepro(const SwarmOptions& o) {
  return absl::StrCat("chatlab swarm --runs ", o.runs, " --seed-start ", o.seed_start, " --out ",
                      o.out_dir);
}

std::string SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  return name != nullptr ? absl::StrCat("SIG", name) : absl::StrCat("signal ", sig);
}

// Writes DIR/failures/seed-K.toml: the scenario with the repro and what went wrong on top.
void WriteFailureFile(const fs::path& dir, uint64_t seed, Failure& f) {
  const fs::path file = dir / "failures" / absl::StrCat("seed-", seed, ".toml");
  f.file = file.string();
  std::string header =
      absl::StrCat("chatlab swarm seed ", seed, ": ",
                   f.crashed ? "CRASHED (a bug in the generator or the simulator, not an invariant)"
                             : absl::StrCat("FAILED ", absl::StrJoin(f.invariants, ", ")),
                   "\n", f.crashed ? "how: " : "first violation: ", f.first,
                   "\nrepro: chatlab run ", f.file, "\nshrink: chatlab shrink ", f.file,
                   "\nthe same scenario again: chatlab swarm --print-scenario ", seed, "\n");
  WriteFileWhole(f.file, CommentLines(header) + "\n" + ScenarioToToml(GenerateScenario(seed)));
}

void PrintProgress(const SwarmOptions& o, const Tally& t, double elapsed_s, bool force) {
  const uint64_t failed = t.failures.size();
  const int every = std::max(1, o.runs / kProgressLines);
  if (!o.progress_tty && !force && t.runs % static_cast<uint64_t>(every) != 0) return;
  std::fprintf(stderr, "%sswarm: %llu/%d runs, %llu failed, %.0f s, %.2f runs/s%s",
               o.progress_tty ? "\r" : "", static_cast<unsigned long long>(t.runs), o.runs,
               static_cast<unsigned long long>(failed), elapsed_s,
               elapsed_s > 0 ? static_cast<double>(t.runs) / elapsed_s : 0.0,
               o.progress_tty ? "   " : "\n");
}

// One run ended: tally it, keep what a failure needs, delete the rest.
void OnRunDone(const SwarmOptions& o, uint64_t seed, ChildExit exit, Tally& t) {
  const fs::path dir(o.out_dir);
  const fs::path run_dir = dir / "runs" / absl::StrCat(seed);
  const nlohmann::json results = ReadJsonFile((run_dir / "results.json").string());
  t.runs++;
  const bool finished = exit.signal == 0 && (exit.code == 0 || exit.code == 1) &&
                        !results.is_discarded() && results.is_object();
  if (finished && exit.code == 0) {
    t.passed++;
    t.Add(results, false);
    fs::remove_all(run_dir);
    return;
  }
  Failure f;
  f.seed = seed;
  if (finished) {
    t.Add(results, true);
    f.invariants = ViolatedInvariants(results);
    const std::vector<std::string> first = FirstViolations(results);
    f.first = first.empty() ? "(results.json names none)" : first.front();
    WriteFailureFile(dir, seed, f);
    std::error_code ec;
    fs::copy_file(run_dir / "results.json",
                  dir / "failures" / absl::StrCat("seed-", seed, ".results.json"),
                  fs::copy_options::overwrite_existing, ec);
  } else {
    f.crashed = true;
    f.first = exit.signal != 0 ? absl::StrCat("killed by ", SignalName(exit.signal))
              : exit.code == 2
                  ? "exit 2: the generated scenario was refused as bad input"
                  : absl::StrCat("exit ", exit.code,
                                 results.is_discarded() ? " without results.json" : "");
    WriteFailureFile(dir, seed, f);
    std::error_code ec;
    fs::copy_file(run_dir / "run.log", dir / "failures" / absl::StrCat("seed-", seed, ".log"),
                  fs::copy_options::overwrite_existing, ec);
  }
  fs::remove_all(run_dir);
  std::fprintf(stderr, "%s%s seed %llu: %s\n  repro: chatlab run %s\n", o.progress_tty ? "\n" : "",
               f.crashed ? "CRASHED" : "FAILED", static_cast<unsigned long long>(seed),
               f.first.c_str(), f.file.c_str());
  t.failures.push_back(std::move(f));
}

ordered_json CountedJson(const std::map<std::string, Counted>& m, const char* runs_name) {
  ordered_json j = ordered_json::object();
  for (const auto& [name, c] : m) j[name] = {{runs_name, c.runs}, {"count", c.count}};
  return j;
}

ordered_json SummaryJson(const SwarmOptions& o, int jobs, const Tally& t, double wall_s,
                         bool coverage_ok) {
  ordered_json j;
  j["chatlab_version"] = ChatlabVersion();
  j["seed_start"] = o.seed_start;
  j["seed_end"] = o.seed_start + static_cast<uint64_t>(o.runs) - 1;
  j["jobs"] = jobs;
  j["repro"] = SwarmRepro(o);
  j["runs"] = t.runs;
  j["passed"] = t.passed;
  uint64_t crashed = 0;
  for (const Failure& f : t.failures) crashed += f.crashed;
  j["failed"] = t.failures.size() - crashed;
  j["crashed"] = crashed;
  j["wall_time_s"] = wall_s;
  j["runs_per_s"] = wall_s > 0 ? static_cast<double>(t.runs) / wall_s : 0.0;
  ordered_json failures = ordered_json::array();
  for (const Failure& f : t.failures) {
    failures.push_back({{"seed", f.seed},
                        {"kind", f.crashed ? "crash" : "violation"},
                        {"invariants", f.invariants},
                        {"first_violation", f.first},
                        {"file", f.file},
                        {"repro", absl::StrCat("chatlab run ", f.file)}});
  }
  j["failures"] = failures;
  j["failures_by_invariant"] = CountedJson(t.invariants, "runs");
  ordered_json faults = ordered_json::object();
  for (const auto& [kind, c] : t.faults) {
    auto it = t.configured_unfired.find(kind);
    faults[kind] = {
        {"runs_fired", c.runs},
        {"count", c.count},
        {"runs_configured_never_fired", it == t.configured_unfired.end() ? 0 : it->second}};
  }
  j["faults"] = faults;
  j["faults_never_fired"] = t.FaultsNeverFired();
  j["recovery_paths_reported"] = t.recovery_reported;
  j["recovery_paths"] = CountedJson(t.recovery, "runs");
  j["recovery_paths_never_reached"] = t.PathsNeverReached();
  ordered_json design = ordered_json::object();
  for (const auto& [key, values] : t.design) {
    for (const auto& [value, c] : values) {
      design[key][value] = {{"runs", c.runs}, {"failed", c.count}};
    }
  }
  j["design"] = design;
  j["require_coverage"] = o.require_coverage;
  j["coverage_ok"] = coverage_ok;
  return j;
}

std::string ListOrNone(const std::vector<std::string>& v) {
  return v.empty() ? "(none)" : absl::StrJoin(v, ", ");
}

std::string SummaryText(const SwarmOptions& o, const Tally& t, double wall_s) {
  std::string out;
  uint64_t crashed = 0;
  for (const Failure& f : t.failures) crashed += f.crashed;
  absl::StrAppend(
      &out, absl::StrFormat("swarm: %d runs (seeds %d-%d) in %.1f s, %.2f runs/s\n", t.runs,
                            o.seed_start, o.seed_start + static_cast<uint64_t>(o.runs) - 1, wall_s,
                            wall_s > 0 ? static_cast<double>(t.runs) / wall_s : 0.0));
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "passed %d, failed %d (an invariant violated), crashed %d (generator or simulator bug)\n",
          t.passed, t.failures.size() - crashed, crashed));
  absl::StrAppend(&out, "\nfailures by invariant            runs      count\n");
  for (const auto& [name, c] : t.invariants) {
    absl::StrAppend(&out, absl::StrFormat("  %-28s %6d %10d\n", name, c.runs, c.count));
  }
  if (!t.failures.empty()) absl::StrAppend(&out, "\nfailing seeds\n");
  for (const Failure& f : t.failures) {
    absl::StrAppend(&out, absl::StrFormat("  seed %d %s: %s\n    repro: chatlab run %s\n", f.seed,
                                          f.crashed ? "CRASHED" : "FAILED", f.first, f.file));
  }
  absl::StrAppend(&out,
                  "\nfaults                      runs fired      count  "
                  "runs configured, never fired\n");
  for (const auto& [kind, c] : t.faults) {
    auto it = t.configured_unfired.find(kind);
    absl::StrAppend(&out, absl::StrFormat("  %-28s %8d %10d %6d\n", kind, c.runs, c.count,
                                          it == t.configured_unfired.end() ? 0 : it->second));
  }
  absl::StrAppend(&out, "fault kinds never fired anywhere: ", ListOrNone(t.FaultsNeverFired()),
                  "\n");
  absl::StrAppend(&out, "\nrecovery paths                   runs      count\n");
  if (!t.recovery_reported) {
    absl::StrAppend(&out,
                    "  (no results.json had recovery_paths: this simulator does not "
                    "report them)\n");
  }
  for (const auto& [path, c] : t.recovery) {
    absl::StrAppend(&out, absl::StrFormat("  %-28s %6d %10d\n", path, c.runs, c.count));
  }
  absl::StrAppend(&out, "recovery paths never reached: ", ListOrNone(t.PathsNeverReached()), "\n");
  absl::StrAppend(&out, "\ndesign switches                  runs     failed\n");
  for (const auto& [key, values] : t.design) {
    for (const auto& [value, c] : values) {
      absl::StrAppend(&out, absl::StrFormat("  %-28s %6d %10d\n", absl::StrCat(key, "=", value),
                                            c.runs, c.count));
    }
  }
  return out;
}

}  // namespace

std::string SwarmScenarioFile(uint64_t seed) {
  return CommentLines(absl::StrCat("chatlab swarm seed ", seed,
                                   " (sim/swarm/generate.h draws it from the seed alone)",
                                   "\nrepro: chatlab swarm --print-scenario ", seed, " > seed-",
                                   seed, ".toml && chatlab run seed-", seed, ".toml")) +
         "\n" + ScenarioToToml(GenerateScenario(seed));
}

int RunSwarm(const SwarmOptions& o) {
  const fs::path dir(o.out_dir);
  std::error_code ec;
  // A previous swarm's failures in the same DIR would read as this one's.
  fs::remove_all(dir / "runs", ec);
  fs::remove_all(dir / "failures", ec);
  fs::remove(dir / "summary.json", ec);
  ec.clear();
  fs::create_directories(dir / "runs", ec);
  if (!ec) fs::create_directories(dir / "failures", ec);
  if (ec) {
    std::cerr << "chatlab: swarm: --out " << o.out_dir << ": " << ec.message() << "\n";
    return 2;
  }
  const int jobs = o.jobs > 0 ? o.jobs : DefaultJobs();
  std::cerr << "chatlab swarm: seeds " << o.seed_start << "-"
            << o.seed_start + static_cast<uint64_t>(o.runs) - 1 << " (" << o.runs << " runs), "
            << jobs << " at a time, into " << o.out_dir << "\nrepro: " << SwarmRepro(o)
            << "\none seed: chatlab swarm --print-scenario K > k.toml && chatlab run k.toml\n";
  Tally t;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto make_job = [&](size_t i) {
    const uint64_t seed = o.seed_start + i;
    const fs::path run_dir = dir / "runs" / absl::StrCat(seed);
    fs::create_directories(run_dir);
    const std::string file = (run_dir / "scenario.toml").string();
    WriteFileWhole(file, SwarmScenarioFile(seed));
    return ChildJob{{"chatlab", "run", file, "--out", run_dir.string(), "--quiet", "--no-progress"},
                    (run_dir / "run.log").string()};
  };
  auto on_done = [&](size_t i, ChildExit exit) {
    const size_t failures_before = t.failures.size();
    OnRunDone(o, o.seed_start + i, exit, t);
    PrintProgress(o, t, elapsed(), t.failures.size() != failures_before);
  };
  RunPool(static_cast<size_t>(o.runs), jobs, make_job, on_done);
  if (o.progress_tty) std::fprintf(stderr, "\n");
  const double wall_s = elapsed();
  std::sort(t.failures.begin(), t.failures.end(),
            [](const Failure& a, const Failure& b) { return a.seed < b.seed; });
  const bool coverage_ok = t.FaultsNeverFired().empty() && t.PathsNeverReached().empty();
  std::cout << SummaryText(o, t, wall_s);
  WriteFileWhole((dir / "summary.json").string(),
                 SummaryJson(o, jobs, t, wall_s, coverage_ok).dump(2) + "\n");
  std::cout << "summary: " << (dir / "summary.json").string() << "\n";
  std::error_code ignored;
  fs::remove(dir / "runs", ignored);  // empty unless something could not be deleted
  if (!t.failures.empty()) {
    std::cout << "swarm: FAILED (" << t.failures.size() << " runs); repro: " << SwarmRepro(o)
              << "\n";
    return 1;
  }
  if (o.require_coverage && !coverage_ok) {
    std::cout << "swarm: coverage FAILED (--require-coverage): fault kinds never fired: "
              << ListOrNone(t.FaultsNeverFired())
              << "; recovery paths never reached: " << ListOrNone(t.PathsNeverReached()) << "\n";
    return 1;
  }
  std::cout << "swarm: ok\n";
  return 0;
}

}  // namespace chatlab::sim::swarm
