// SweepData: a finished sweep directory loaded for the report, the analyses and the index.
//
// Everything a report says comes from DIR/sweep.json (the scenario text, grid and seeds as run)
// and DIR/runs/*/results.json. Runs are held by point and by seed index, and every point ran
// the same seed list, so runs[i][k] and runs[j][k] are the same users, workload and faults under
// two designs (docs/reports-method.md).
#ifndef CHATLAB_SIM_LAB_SWEEP_DATA_H_
#define CHATLAB_SIM_LAB_SWEEP_DATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "sim/lab/experiment.h"
#include "sim/lab/stats.h"
#include "sim/scenario.h"

namespace chatlab::sim::lab {

// A value from a results.json by path: "metrics.end_to_end_latency.p99_ms",
// "metrics.node_load.store.utilization" (arrays of objects are indexed by their "node"), or a
// ratio of two paths "A / B". nullopt if a path does not exist (or a ratio's denominator is 0).
std::optional<double> MetricValue(const nlohmann::json& results, const std::string& path);

// A scenario key's value ("protocol.buffered_flush_interval_us") as a number (booleans 0/1);
// nullopt for an unknown key or a text value (design switches are text: a check that depends
// on one picks its model per point rather than reading it as an input). A fault
// entry's numeric field is a key too: "faults.crash.N.at_s" (the N-th [[faults.crash]]),
// "faults.clock.N.skew_ms" or "faults.clock.server:1.skew_ms" (the [[faults.clock]] entry whose
// node is exactly server:1; 0 skew, drift and step when there is none: that clock is true).
std::optional<double> ScenarioNumber(const Scenario& s, const std::string& key);

struct SweepData {
  std::string dir;
  nlohmann::json manifest;
  ExperimentSpec spec;
  std::vector<Point> points;
  std::vector<uint64_t> seeds;
  std::vector<Scenario> scenarios;                // by point: the scenario each point ran
  std::vector<std::vector<nlohmann::json>> runs;  // by point, then by seed index (a prefix of
                                                  // seeds; shorter where sequential stopped)
  std::string sequential_rule;  // "" unless the sweep sampled sequentially (seeds_run.json)
  // The fewest and most seeds any point ran.
  size_t SeedsMin() const;
  size_t SeedsMax() const;
  // The metric at point i across its seeds.
  Stat At(size_t point, const std::string& metric) const;
  // The metric at point i, one entry per seed of `seeds` (nullopt where the point did not run
  // that seed or its run lacks the metric).
  std::vector<std::optional<double>> BySeed(size_t point, const std::string& metric) const;
};

absl::StatusOr<SweepData> LoadSweep(const std::string& dir);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_SWEEP_DATA_H_
