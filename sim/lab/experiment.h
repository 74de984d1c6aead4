// Experiment: a scenario file's [sweep] and [report] sections.
//
// A scenario describes one simulation; its optional [sweep] section turns it into a grid of
// runs (every combination of the values it varies, each for several seeds), and its optional
// [report] section says what question the sweep answers and how to draw it. Both sections are
// read here and ignored by `chatlab run`. docs/experiments.md is the reference.
//
//   [sweep]
//   seeds = 3
//   vary."protocol.forwarding" = ["direct", "buffered", "queue"]
//   vary."faults.delay_ms_max" = [0, 50, 200]
//   set = ["scenario.duration_s=30"]        # fixed overrides for every run
//   [sweep.quick]                           # `--quick`: a small variant for CI
//   seeds = 1
//   vary."faults.delay_ms_max" = [0, 200]
//
//   [report]
//   question = "..."
//   x = "faults.delay_ms_max"               # the x axis; the other varied keys are series
//   x_label = "extra delay (ms)"
//   analysis = "forwarding"                 # named validation against theory (analyses.h)
//   [report.conclusion]
//   metric = "invariants.order_violations"
//   better = "lower"
//   [[report.plot]]
//   metric = "metrics.end_to_end_latency.p99_ms"
//   title = "..."
//   ylabel = "ms"
#ifndef CHATLAB_SIM_LAB_EXPERIMENT_H_
#define CHATLAB_SIM_LAB_EXPERIMENT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chatlab::sim::lab {

struct Axis {
  std::string key;                  // a scenario key, "section.key"
  std::vector<std::string> values;  // as --set values ("direct", "50", "true")
};

struct PlotSpec {
  std::string metric;  // a results.json path, e.g. "metrics.end_to_end_latency.p99_ms"
  std::string title;
  std::string ylabel;
  bool y_log = false;
};

// The most seeds a sweep may run per point (sweep.seeds, --seeds).
inline constexpr int kSweepSeedsMax = 1000;

struct ExperimentSpec {
  std::string scenario_path;
  std::string scenario_name;
  uint64_t base_seed = 1;  // the scenario's seed: a sweep runs base_seed .. base_seed + seeds - 1
  int seeds = 3;
  std::vector<Axis> axes;         // the grid, in file order
  std::vector<std::string> sets;  // fixed overrides
  // [report]
  std::string question;
  std::string x;  // one of the axes' keys ("" = the first axis)
  std::string x_label;
  bool x_log = false;
  std::string analysis;
  std::string conclusion_metric;
  std::string conclusion_label;
  bool lower_is_better = true;
  std::vector<PlotSpec> plots;
};

// One point of the grid: a value per axis.
using Point = std::map<std::string, std::string>;

// Reads the [sweep] and [report] sections of a scenario file; `quick` applies [sweep.quick].
// Extra axes from --vary ("key=v1,v2,...") replace or extend the file's. Errors name the file,
// the line and the key; every varied value is checked against the scenario's key table.
absl::StatusOr<ExperimentSpec> LoadExperiment(const std::string& scenario_path, bool quick,
                                              const std::vector<std::string>& vary);

// Every combination of the axes' values, first axis slowest.
std::vector<Point> Grid(const ExperimentSpec& spec);

// "k1=v1,k2=v2" with keys shortened to their last segment; "" for an empty point.
std::string PointLabel(const Point& p, const std::vector<std::string>& keys);

// A whole file as text ("" if it cannot be read).
std::string ReadTextFile(const std::string& path);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_EXPERIMENT_H_
