// chatlab: the simulator's command line.
//
//   chatlab run [SCENARIO] [--seed N] [--set key=value ...] [--out DIR] [--trace FILE]
//               [--check-determinism] [--progress|--no-progress]
//   chatlab keys
//   chatlab sweep SCENARIO [--seeds K] [--jobs J] [--out DIR] [--vary key=v1,v2 ...] [--quick]
//                [--executor local|slurm] [--partition P]
//   chatlab report DIR
//   chatlab plan [--set name=value ...] [--list]
//   chatlab swarm [--runs N] [--seed-start S] [--jobs J] [--out DIR] [--require-coverage]
//                 [--print-scenario K]
//   chatlab shrink FILE [--out DIR] [--jobs J]
//   chatlab compare SCENARIO [--seeds K] [--seed-start S] [--set key=value ...] [--out DIR]
//                   [--chatplay PATH] [--no-calibrate] [--jobs J]
//   chatlab compare --render DIR
//
// Exit codes: 0 every invariant held, 1 an invariant was violated, 2 bad input.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/lab/experiment.h"
#include "sim/lab/plan.h"
#include "sim/lab/index.h"
#include "sim/lab/report.h"
#include "sim/lab/sweep.h"
#include "sim/lab/vs_real.h"
#include "sim/results.h"
#include "sim/scenario.h"
#include "sim/child.h"
#include "sim/swarm/shrink.h"
#include "sim/swarm/swarm.h"
#include "sim/world.h"

namespace fs = std::filesystem;
using chatlab::sim::Scenario;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitViolation = 1;
constexpr int kExitBadInput = 2;

struct RunArgs {
  std::string scenario_path;
  uint64_t seed = 0;
  bool seed_given = false;
  std::vector<std::string> sets;
  std::string out_dir;
  std::string trace_path;
  bool check_determinism = false;
  bool progress = isatty(STDERR_FILENO) != 0;
  bool quiet = false;
};

std::optional<Scenario> LoadOrExit(const RunArgs& a, int* exit_code) {
  Scenario s = chatlab::sim::DefaultScenario();
  if (!a.scenario_path.empty()) {
    auto loaded = chatlab::sim::LoadScenario(a.scenario_path);
    if (!loaded.ok()) {
      std::cerr << "chatlab: " << loaded.status().message() << "\n";
      *exit_code = kExitBadInput;
      return std::nullopt;
    }
    s = *loaded;
  } else {
    s.name = "builtin";
  }
  for (const std::string& set : a.sets) {
    absl::Status st = chatlab::sim::ApplyOverride(s, set);
    if (!st.ok()) {
      std::cerr << "chatlab: " << st.message() << "\n";
      *exit_code = kExitBadInput;
      return std::nullopt;
    }
  }
  chatlab::sim::ScaleServers(s);
  absl::Status st = chatlab::sim::Validate(s);
  if (!st.ok()) {
    std::cerr << "chatlab: " << st.message() << "\n";
    *exit_code = kExitBadInput;
    return std::nullopt;
  }
  return s;
}

std::string ReadDigest(const std::string& results_path) {
  std::ifstream in(results_path);
  if (!in) return "";
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() && j.contains("trace_digest") ? j["trace_digest"].get<std::string>() : "";
}

int CheckDeterminism(const RunArgs& a, const Scenario& s, uint64_t seed) {
  const fs::path base = fs::temp_directory_path() / ("chatlab-det-" + std::to_string(getpid()));
  std::string digests[2];
  for (int i = 0; i < 2; i++) {
    const fs::path dir = base / std::to_string(i);
    fs::create_directories(dir);
    std::vector<std::string> args{"chatlab", "run"};
    if (!a.scenario_path.empty()) args.push_back(a.scenario_path);
    args.insert(args.end(), {"--seed", std::to_string(seed), "--out", dir.string(), "--trace",
                             (dir / "trace.txt").string(), "--no-progress", "--quiet"});
    for (const std::string& set : a.sets) args.insert(args.end(), {"--set", set});
    const int rc = chatlab::sim::RunChild({args, ""}).status();
    if (rc == kExitBadInput || rc > kExitViolation) {
      std::cerr << "chatlab: determinism check: run " << i + 1 << " failed (exit " << rc << ")\n";
      return kExitBadInput;
    }
    digests[i] = ReadDigest((dir / "results.json").string());
  }
  const std::string repro = chatlab::sim::ReproCommand(s, seed, a.sets);
  if (digests[0] == digests[1] && !digests[0].empty()) {
    std::cout << "deterministic: two runs in separate processes gave digest " << digests[0]
              << "\nrepro: " << repro << " --check-determinism\n";
    fs::remove_all(base);
    return kExitOk;
  }
  std::cout << "NOT deterministic: digests " << digests[0] << " and " << digests[1] << "\n";
  std::ifstream t0(base / "0" / "trace.txt"), t1(base / "1" / "trace.txt");
  std::string l0, l1;
  for (uint64_t line = 1;; line++) {
    const bool g0 = static_cast<bool>(std::getline(t0, l0));
    const bool g1 = static_cast<bool>(std::getline(t1, l1));
    if (!g0 && !g1) break;
    if (!g0 || !g1 || l0 != l1) {
      std::cout << "first diverging event (line " << line << "):\n  run 1: "
                << (g0 ? l0 : "<end>") << "\n  run 2: " << (g1 ? l1 : "<end>") << "\n";
      break;
    }
  }
  std::cout << "traces kept in " << base.string() << "\nrepro: " << repro
            << " --check-determinism\n";
  return kExitViolation;
}

int Run(const RunArgs& a) {
  int code = kExitOk;
  std::optional<Scenario> s = LoadOrExit(a, &code);
  if (!s) return code;
  const uint64_t seed = a.seed_given ? a.seed : s->seed;
  if (a.check_determinism) return CheckDeterminism(a, *s, seed);
  const std::string out_dir =
      a.out_dir.empty() ? "out/" + s->name + "-seed" + std::to_string(seed) : a.out_dir;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    std::cerr << "chatlab: --out " << out_dir << ": " << ec.message() << "\n";
    return kExitBadInput;
  }
  std::ofstream trace_file;
  chatlab::sim::RunOptions o;
  o.scenario = *s;
  o.seed = seed;
  o.progress = a.progress && !a.quiet;
  if (!a.trace_path.empty()) {
    trace_file.open(a.trace_path);
    if (!trace_file) {
      std::cerr << "chatlab: --trace " << a.trace_path << ": cannot write\n";
      return kExitBadInput;
    }
    o.trace = [&trace_file](const std::string& line) { trace_file << line << "\n"; };
  }
  const std::string repro = chatlab::sim::ReproCommand(*s, seed, a.sets);
  if (!a.quiet) std::cerr << "chatlab: running " << s->name << " seed " << seed << "\n";
  const chatlab::sim::RunResult r = chatlab::sim::RunSimulation(o);
  {
    // Written whole, then renamed: a sweep treats an existing results.json as a finished run.
    const fs::path tmp = fs::path(out_dir) / "results.json.tmp";
    std::ofstream(tmp) << chatlab::sim::ResultsJson(*s, r, repro);
    fs::rename(tmp, fs::path(out_dir) / "results.json");
  }
  if (!a.quiet) {
    std::cout << chatlab::sim::Summary(*s, r, repro);
    std::cout << "results: " << (fs::path(out_dir) / "results.json").string() << "\n";
  }
  if (r.invariants.total() != 0) {
    std::cerr << "chatlab: invariants VIOLATED; repro: " << repro << "\n";
    return kExitViolation;
  }
  return kExitOk;
}

struct SweepArgs {
  std::string scenario_path;
  int seeds = 0;
  int jobs = 0;
  std::string out_dir;
  std::vector<std::string> vary;
  bool quick = false;
  bool progress = isatty(STDERR_FILENO) != 0;
  bool report = false;
  std::string executor = "local";
  std::string partition;
};

int ReportCommand(const std::string& dir) {
  auto r = chatlab::sim::lab::WriteReport(dir);
  if (!r.ok()) {
    std::cerr << "chatlab: report: " << r.status().message() << "\n";
    return r.status().code() == absl::StatusCode::kNotFound ||
                   r.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitBadInput
               : kExitViolation;
  }
  std::cout << "answer:";
  for (const std::string& sentence : r->answer) std::cout << "\n  " << sentence;
  std::cout << "\nvalidation: " << r->validation_checks - r->validation_failures << " of "
            << r->validation_checks << " checks within tolerance\n"
            << "report: " << r->markdown_path << "\n        " << r->html_path << "\n";
  return kExitOk;
}

int RecheckCommand(const std::string& dir) {
  auto r = chatlab::sim::lab::RecheckFromCsv(dir);
  if (!r.ok()) {
    std::cerr << "chatlab: report --recheck: " << r.status().message() << "\n";
    return r.status().code() == absl::StatusCode::kFailedPrecondition ? kExitViolation
                                                                      : kExitBadInput;
  }
  std::cout << "recheck: " << *r << " checks re-evaluated from " << dir
            << "/data.csv give the report's figures\n";
  return kExitOk;
}

int IndexCommand(const std::string& dir) {
  auto r = chatlab::sim::lab::WriteIndex(dir);
  if (!r.ok()) {
    std::cerr << "chatlab: index: " << r.status().message() << "\n";
    return kExitBadInput;
  }
  std::cout << "index: " << r->reports << " reports in " << r->markdown_path << " and "
            << r->html_path << "\n";
  return kExitOk;
}

int Sweep(const SweepArgs& a) {
  auto spec = chatlab::sim::lab::LoadExperiment(a.scenario_path, a.quick, a.vary);
  if (!spec.ok()) {
    std::cerr << "chatlab: " << spec.status().message() << "\n";
    return kExitBadInput;
  }
  if (a.seeds > 0) spec->seeds = a.seeds;
  if (spec->seeds_min >= spec->seeds) spec->seeds_min = 0;  // too few seeds to stop early
  chatlab::sim::lab::SweepOptions o;
  o.out_dir = a.out_dir.empty() ? "out/sweep-" + spec->scenario_name + (a.quick ? "-quick" : "")
                                : a.out_dir;
  o.jobs = a.jobs;
  o.progress = a.progress;
  o.quick = a.quick;
  o.vary = a.vary;
  o.executor = a.executor;
  o.slurm_partition = a.partition;
  const size_t points = chatlab::sim::lab::Grid(*spec).size();
  std::cerr << "chatlab: sweep " << spec->scenario_name << ": " << points << " points x "
            << spec->seeds << " seeds into " << o.out_dir << "\n";
  auto r = chatlab::sim::lab::RunSweep(*spec, o);
  if (!r.ok()) {
    std::cerr << "chatlab: sweep: " << r.status().message() << "\n";
    return r.status().code() == absl::StatusCode::kFailedPrecondition ||
                   r.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitBadInput
               : kExitViolation;
  }
  std::cout << "sweep: " << r->runs << " runs (" << r->resumed << " already done) in "
            << o.out_dir << "\n";
  if (r->violated > 0) {
    std::cout << "sweep: " << r->violated << " runs violated an invariant:";
    for (const std::string& id : r->violated_ids) std::cout << " " << id;
    std::cout << " (see their results.json)\n";
  }
  if (a.report) return ReportCommand(o.out_dir);
  return kExitOk;
}

int Plan(const std::vector<std::string>& sets, bool list) {
  chatlab::sim::lab::PlanAssumptions a;
  for (const std::string& s : sets) {
    absl::Status st = chatlab::sim::lab::SetPlan(a, s);
    if (!st.ok()) {
      std::cerr << "chatlab: plan: " << st.message() << "\n";
      return kExitBadInput;
    }
  }
  if (list) {
    for (const std::string& k : chatlab::sim::lab::PlanKeys(a)) std::cout << k << "\n";
    return kExitOk;
  }
  std::cout << chatlab::sim::lab::FormatPlan(a, chatlab::sim::lab::ComputePlan(a));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chatlab: deterministic simulation of a WhatsApp-style messaging design on "
               "SimGrid"};
  app.require_subcommand(1);
  RunArgs a;
  CLI::App* run = app.add_subcommand("run", "run one simulation and check its invariants");
  run->add_option("scenario", a.scenario_path,
                  "scenario file (TOML); omitted: the embedded defaults")
      ->check(CLI::ExistingFile);
  run->add_option("--seed", a.seed, "seed (default: the scenario's scenario.seed)")
      ->each([&a](const std::string&) { a.seed_given = true; });
  run->add_option("--set", a.sets, "override a scenario key: section.key=value (repeatable)");
  run->add_option("--out", a.out_dir, "where results.json goes (default out/NAME-seedN)");
  run->add_option("--trace", a.trace_path, "write the ordered event trace to this file");
  run->add_flag("--check-determinism", a.check_determinism,
                "run twice in separate processes and compare trace digests");
  run->add_flag("--progress,!--no-progress", a.progress, "progress bar on stderr");
  run->add_flag("--quiet", a.quiet, "print nothing but errors");
  CLI::App* keys = app.add_subcommand("keys", "list every scenario key with its type");
  SweepArgs sw;
  CLI::App* sweep = app.add_subcommand(
      "sweep", "run a scenario's grid ([sweep] section or --vary), one process per point and seed");
  sweep->add_option("scenario", sw.scenario_path, "scenario file with a [sweep] section")
      ->required()
      ->check(CLI::ExistingFile);
  sweep->add_option("--seeds", sw.seeds, "seeds per point (default: the file's sweep.seeds)")
      ->check(CLI::Range(1, chatlab::sim::lab::kSweepSeedsMax));
  sweep->add_option("--jobs,-j", sw.jobs, "runs at a time (default: the number of cores)")
      ->check(CLI::Range(1, 256));
  sweep->add_option("--out", sw.out_dir, "sweep directory (default out/sweep-NAME); resumable");
  sweep->add_option("--vary", sw.vary,
                    "vary a key: section.key=v1,v2,... (repeatable; adds to or replaces the "
                    "file's axes)");
  sweep->add_flag("--quick", sw.quick, "use the file's [sweep.quick] variant (small, for CI)");
  sweep->add_flag("--report", sw.report, "write the report when the sweep is done");
  sweep->add_option("--executor", sw.executor,
                    "local (default) or slurm: each round of runs as one Slurm job array (sbatch "
                    "on PATH; the output directory on a filesystem every node shares); --jobs "
                    "then throttles the array");
  sweep->add_option("--partition", sw.partition, "with --executor slurm: the Slurm partition");
  sweep->add_flag("--progress,!--no-progress", sw.progress, "progress bar on stderr");
  std::string report_dir;
  CLI::App* report = app.add_subcommand(
      "report", "turn a sweep directory into report.md, report.html and plots");
  report->add_option("dir", report_dir, "a `chatlab sweep` output directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  bool recheck = false;
  report->add_flag("--recheck", recheck,
                   "re-evaluate every check of an existing report from its data.csv alone");
  std::string index_dir;
  CLI::App* index = app.add_subcommand(
      "index", "gather every report's answer under DIR into DIR/index.md and DIR/index.html");
  index->add_option("dir", index_dir, "a directory of report directories (reports/)")
      ->required()
      ->check(CLI::ExistingDirectory);
  std::vector<std::string> plan_sets;
  bool plan_list = false;
  CLI::App* plan = app.add_subcommand(
      "plan", "the seed's back-of-the-envelope capacity chain from stated assumptions");
  plan->add_option("--set", plan_sets, "override an assumption: name=value (repeatable)");
  plan->add_flag("--list", plan_list, "list the assumptions and their values");
  chatlab::sim::swarm::SwarmOptions swarm_opts;
  swarm_opts.progress_tty = isatty(STDERR_FILENO) != 0;
  int64_t print_scenario = -1;
  CLI::App* swarm = app.add_subcommand(
      "swarm", "run many generated scenarios (every design, fault and workload mix), one process "
               "each, and tally failures and coverage");
  swarm->add_option("--runs", swarm_opts.runs, "how many seeds (default 1000)")
      ->check(CLI::Range(1, chatlab::sim::swarm::kSwarmRunsMax));
  swarm->add_option("--seed-start", swarm_opts.seed_start, "the first swarm seed (default 1)");
  swarm->add_option("--jobs,-j", swarm_opts.jobs, "runs at a time (default: the number of cores)")
      ->check(CLI::Range(1, 256));
  swarm->add_option("--out", swarm_opts.out_dir, "output directory (default out/swarm)");
  swarm->add_flag("--require-coverage", swarm_opts.require_coverage,
                  "also fail if a fault kind or recovery path was never reached");
  swarm->add_option("--print-scenario", print_scenario,
                    "print the scenario of swarm seed K as TOML and exit")
      ->check(CLI::NonNegativeNumber);
  chatlab::sim::lab::VsRealOptions vs;
  uint64_t vs_seed_start = 0;
  bool vs_no_calibrate = false;
  CLI::App* compare = app.add_subcommand(
      "compare", "run a scenario in the simulator and on a real chatd cluster chatplay launches, "
                 "seed by seed, and set counts, verdicts and latencies side by side");
  std::string vs_render;
  compare->add_option("scenario", vs.scenario_path, "scenario file chatplay admits")
      ->check(CLI::ExistingFile);
  compare->add_option("--render", vs_render,
                      "write an earlier comparison's report again from DIR (runs nothing)")
      ->check(CLI::ExistingDirectory);
  compare->add_option("--seeds", vs.seeds, "seeds per side (default 10)")
      ->check(CLI::Range(1, chatlab::sim::lab::kCompareSeedsMax));
  compare->add_option("--seed-start", vs_seed_start, "the first seed (default: the scenario's)")
      ->each([&vs, &vs_seed_start](const std::string&) { vs.seed_start = vs_seed_start; });
  compare->add_option("--set", vs.sets, "override a scenario key on both sides (repeatable)");
  compare->add_option("--out", vs.out_dir, "a new directory (default out/compare-NAME)");
  compare->add_option("--chatplay", vs.chatplay,
                      "the chatplay binary (default: beside chatlab, then ../real-transport/)");
  compare->add_flag("--no-calibrate", vs_no_calibrate,
                    "simulate the scenario as written only (no calibrated side)");
  compare->add_option("--jobs,-j", vs.jobs, "simulations at a time (default: the cores)")
      ->check(CLI::Range(1, 256));
  chatlab::sim::swarm::ShrinkOptions shrink_opts;
  CLI::App* shrink = app.add_subcommand(
      "shrink", "reduce a failing scenario to a minimal one that fails the same way, and tell "
                "the story of its first offending message");
  shrink->add_option("scenario", shrink_opts.scenario_path, "a scenario file that fails (exit 1)")
      ->required()
      ->check(CLI::ExistingFile);
  shrink->add_option("--out", shrink_opts.out_dir, "output directory (default out/shrink-NAME)");
  shrink->add_option("--jobs,-j", shrink_opts.jobs,
                     "candidates run at a time (default: the number of cores)")
      ->check(CLI::Range(1, 256));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  if (keys->parsed()) {
    for (const std::string& k : chatlab::sim::DescribeKeys()) std::cout << k << "\n";
    return kExitOk;
  }
  if (sweep->parsed()) return Sweep(sw);
  if (compare->parsed()) {
    if (!vs_render.empty()) return chatlab::sim::lab::RenderComparison(vs_render);
    if (vs.scenario_path.empty()) {
      std::cerr << "chatlab compare: give a SCENARIO (or --render DIR)\n";
      return kExitBadInput;
    }
    vs.calibrate = !vs_no_calibrate;
    return chatlab::sim::lab::CompareWithReal(vs);
  }
  if (report->parsed()) return recheck ? RecheckCommand(report_dir) : ReportCommand(report_dir);
  if (index->parsed()) return IndexCommand(index_dir);
  if (plan->parsed()) return Plan(plan_sets, plan_list);
  if (swarm->parsed()) {
    if (print_scenario >= 0) {
      std::cout << chatlab::sim::swarm::SwarmScenarioFile(static_cast<uint64_t>(print_scenario));
      return kExitOk;
    }
    return chatlab::sim::swarm::RunSwarm(swarm_opts);
  }
  if (shrink->parsed()) return chatlab::sim::swarm::Shrink(shrink_opts);
  return Run(a);
}
