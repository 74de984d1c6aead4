#include "sim/lab/sweep.h"


#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "sim/child.h"
#include "sim/lab/slurm_executor.h"
#include "sim/lab/stats.h"
#include "sim/lab/sweep_data.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

std::string RunId(size_t point, uint64_t seed) {
  return absl::StrFormat("p%03d-s%d", point, seed);
}

std::vector<uint64_t> SweepSeeds(const ExperimentSpec& spec) {
  std::vector<uint64_t> seeds;
  for (int i = 0; i < spec.seeds; i++) seeds.push_back(spec.base_seed + static_cast<uint64_t>(i));
  return seeds;
}

namespace {

struct Job {
  std::string id;
  std::vector<std::string> args;
  std::string dir;
};

void Progress(int done, int total, int resumed, double elapsed_s) {
  const int width = 40;
  const int filled = total == 0 ? width : width * done / total;
  const int fresh = done - resumed;
  const double eta = fresh > 0 ? elapsed_s / fresh * (total - done) : 0;
  std::fprintf(stderr, "\r[%s%s] %d/%d runs (%d resumed)  %.0f s elapsed, ~%.0f s left  ",
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(width - filled), '.').c_str(), done, total,
               resumed, elapsed_s, eta);
}

}  // namespace

absl::StatusOr<SweepOutcome> RunSweep(const ExperimentSpec& spec, const SweepOptions& options) {
  if (options.executor != "local" && options.executor != "slurm") {
    return absl::InvalidArgumentError(
        absl::StrCat("--executor ", options.executor, ": expected local or slurm"));
  }
  if (options.executor == "slurm") {
    if (absl::StatusOr<std::string> sbatch = FindSbatch(); !sbatch.ok()) return sbatch.status();
  }
  const fs::path dir(options.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "runs", ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--out ", options.out_dir, ": ", ec.message()));

  const std::vector<Point> grid = Grid(spec);
  const std::vector<uint64_t> seeds = SweepSeeds(spec);
  ordered_json manifest;
  manifest["scenario_file"] = spec.scenario_path;
  manifest["scenario_name"] = spec.scenario_name;
  manifest["scenario_text"] = ReadTextFile(spec.scenario_path);
  manifest["quick"] = options.quick;
  manifest["vary"] = options.vary;
  manifest["sets"] = spec.sets;
  manifest["seeds"] = seeds;
  manifest["seeds_min"] = spec.seeds_min;
  manifest["target_half_width"] = spec.target_half_width;
  ordered_json axes = ordered_json::array();
  for (const Axis& a : spec.axes) axes.push_back({{"key", a.key}, {"values", a.values}});
  manifest["axes"] = axes;
  ordered_json points = ordered_json::array();
  for (size_t i = 0; i < grid.size(); i++) {
    ordered_json values = ordered_json::object();
    for (const auto& [k, v] : grid[i]) values[k] = v;
    points.push_back({{"index", i}, {"values", values}});
  }
  manifest["points"] = points;

  const fs::path manifest_path = dir / "sweep.json";
  if (fs::exists(manifest_path)) {
    std::ifstream in(manifest_path);
    const nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
    const nlohmann::json now = nlohmann::json::parse(manifest.dump());
    for (const char* k : {"scenario_text", "sets", "seeds", "axes", "seeds_min"}) {
      if (old.is_discarded() || !old.contains(k) || old[k] != now[k]) {
        return absl::FailedPreconditionError(absl::StrCat(
            manifest_path.string(), " holds a different sweep (its ", k,
            " differ); give another --out or delete that directory"));
      }
    }
  }
  std::ofstream(manifest_path) << manifest.dump(2) << "\n";

  const bool sequential = spec.seeds_min > 0 && spec.seeds_min < spec.seeds;
  SweepOutcome outcome;
  std::string failure;
  const int parallel = options.jobs > 0 ? options.jobs : DefaultJobs();
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // Runs every (point, seed index < counts[point]) that has no results.json yet.
  std::vector<int> counts(grid.size(), sequential ? spec.seeds_min : spec.seeds);
  std::vector<int> scheduled(grid.size(), 0);
  auto run_round = [&]() {
    std::vector<Job> jobs;
    int round_runs = 0, round_resumed = 0;
    for (size_t i = 0; i < grid.size(); i++) {
      for (int k = scheduled[i]; k < counts[i]; k++) {
        const uint64_t seed = seeds[static_cast<size_t>(k)];
        const std::string id = RunId(i, seed);
        const fs::path run_dir = dir / "runs" / id;
        round_runs++;
        if (fs::exists(run_dir / "results.json")) {
          round_resumed++;
          continue;
        }
        fs::create_directories(run_dir);
        Job job{id, {"chatlab", "run", spec.scenario_path, "--seed", std::to_string(seed),
                     "--out", run_dir.string(), "--no-progress"},
                run_dir.string()};
        for (const std::string& set : spec.sets) job.args.insert(job.args.end(), {"--set", set});
        for (const auto& [key, v] : grid[i]) {
          // A linked axis ("a,b") sets every key it names to the same value.
          for (absl::string_view part : absl::StrSplit(key, ',')) {
            job.args.insert(job.args.end(), {"--set", absl::StrCat(part, "=", v)});
          }
        }
        jobs.push_back(std::move(job));
      }
      scheduled[i] = counts[i];
    }
    outcome.runs += round_runs;
    outcome.resumed += round_resumed;
    int done = round_resumed;
    if (options.progress) Progress(done, round_runs, round_resumed, elapsed());
    // The child's own chatter goes to its run directory, not to the sweep's terminal.
    auto make_job = [&jobs](size_t i) { return ChildJob{jobs[i].args, jobs[i].dir + "/run.log"}; };
    auto on_done = [&](size_t i, int status) {
      const Job& job = jobs[i];
      if (status == 1) {
        outcome.violated++;
        outcome.violated_ids.push_back(job.id);
      } else if (status != 0 && failure.empty()) {
        failure = absl::StrCat("run ", job.id, " failed (exit ", status, "); its log: ", job.dir,
                               "/run.log");
      }
      done++;
      if (options.progress) Progress(done, round_runs, round_resumed, elapsed());
    };
    if (options.executor == "slurm") {
      std::vector<SlurmTask> tasks;
      for (const Job& j : jobs) tasks.push_back(SlurmTask{j.id, j.args, j.dir});
      const absl::Status st = RunOnSlurm(
          tasks, options.out_dir,
          SlurmOptions{options.slurm_partition, options.jobs, spec.scenario_name, options.progress},
          on_done);
      if (!st.ok() && failure.empty()) failure = std::string(st.message());
    } else {
      RunPool(jobs.size(), parallel, make_job,
              [&](size_t i, ChildExit exit) { on_done(i, exit.status()); });
    }
    if (options.progress) std::fprintf(stderr, "\n");
  };
  run_round();
  while (sequential && failure.empty()) {
    // Cells: the points that differ only in the design get the same seeds (they are compared
    // seed by seed). A cell grows until every point's headline half-width is on target.
    std::map<Point, std::vector<size_t>> cells;
    for (size_t i = 0; i < grid.size(); i++) {
      Point cell = grid[i];
      cell.erase(spec.design);
      cells[cell].push_back(i);
    }
    bool grew = false;
    for (const auto& [cell, members] : cells) {
      bool precise = true;
      for (size_t i : members) {
        std::vector<double> values;
        for (int k = 0; k < counts[i]; k++) {
          std::ifstream in(dir / "runs" / RunId(i, seeds[static_cast<size_t>(k)]) / "results.json");
          const nlohmann::json r = nlohmann::json::parse(in, nullptr, false);
          if (auto x = r.is_discarded() ? std::nullopt : MetricValue(r, spec.conclusion_metric)) {
            values.push_back(*x);
          }
        }
        const Stat st = Summarize(values);
        precise = precise && st.n >= 2 && st.ci95 <= spec.target_half_width * std::fabs(st.mean);
      }
      const int now = counts[members.front()];
      if (precise || now >= spec.seeds) continue;
      // Grow by half again (at least 2): few rounds, each using both cores.
      const int next = std::min(spec.seeds, now + std::max(2, now / 2));
      for (size_t i : members) counts[i] = next;
      grew = true;
    }
    if (!grew) break;
    run_round();
  }
  if (!failure.empty()) return absl::InternalError(failure);
  if (sequential) {
    ordered_json run_counts = ordered_json::array();
    for (size_t i = 0; i < grid.size(); i++) run_counts.push_back(counts[i]);
    std::ofstream(dir / "seeds_run.json")
        << ordered_json{{"seeds_per_point", run_counts},
                        {"rule", absl::StrFormat("sequential: from %d seeds, more until the 95%% "
                                                 "half-width of %s is within %g of its mean, at "
                                                 "most %d",
                                                 spec.seeds_min, spec.conclusion_metric,
                                                 spec.target_half_width, spec.seeds)}}
               .dump(2)
        << "\n";
  }
  return outcome;
}

}  // namespace chatlab::sim::lab
