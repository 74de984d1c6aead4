// Experiment: a scenario file's [sweep] and [report] sections.
//
// A scenario describes one simulation; its optional [sweep] section turns it into a grid of
// runs (every combination of the values it varies, each for several seeds), and its optional
// [report] section says what question the sweep answers and how to draw it. Both sections are
// read here and ignored by `chatlab run`. docs/experiments.md is the reference.
//
//   [sweep]
//   seeds = 10                              # per point (the cap when sequential)
//   seeds_min = 3                           # sequential: stop a cell early once precise
//   target_half_width = 0.05                # ... the headline's 95% half-width / mean
//   vary."protocol.forwarding" = ["direct", "buffered", "queue"]
//   vary."faults.delay_ms_max" = [0, 50, 200]
//   set = ["scenario.duration_s=30"]        # fixed overrides for every run
//   [sweep.quick]                           # `--quick`: a small variant for CI
//   seeds = 1
//   vary."faults.delay_ms_max" = [0, 200]
//
//   [report]
//   question = "..."
//   x = "faults.delay_ms_max"               # the x axis
//   x_label = "extra delay (ms)"
//   design = "protocol.forwarding"          # the alternatives compared; other keys are regimes
//   baseline = "direct"                     # what the paired-difference plot subtracts
//   analysis = "forwarding"                 # named validation against theory (analyses.h)
//   names."protocol.gap_detection_enabled=true" = "gap detection on"   # words for values
//   names."faults.delay_ms_max" = "{} ms jitter"
//   [report.conclusion]
//   metric = "invariants.order_violations"
//   better = "lower"
//   [[report.also]]                         # compared paired too, in the answer
//   metric = "metrics.delivery_latency_online.p50_ms"
//   label = "median delivery latency"
//   better = "lower"
//   [[report.claim]]                        # the seed's claim, tested (docs/reports-method.md)
//   seed = "For smaller groups ... pushing"
//   better = "push"
//   than = "pull"
//   where = ["workload.group_size_max<=100"]
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
// Seeds per point when a [sweep] does not say: enough for a paired interval to mean something
// (docs/reports-method.md). A full report with fewer says so at its top.
inline constexpr int kSweepSeedsDefault = 10;

// A metric compared in the answer besides the headline (conclusion) metric.
struct AlsoMetric {
  std::string metric;
  std::string label;
  bool lower_is_better = true;
};

// One condition on a point's value of an axis: "key<=100", "key=true", "key!=queue".
struct Condition {
  std::string key;
  std::string op;  // = != < <= > >=
  std::string value;
  bool Holds(const std::string& actual) const;
};

// The seed's claim about two values of one axis, in a form the data can test.
struct ClaimSpec {
  std::string seed;     // the seed's words
  std::string axis;     // "" = the design axis
  std::string kind = "better";  // "better": `better` beats `than`; "similar": they do not differ
  std::string metric;   // "" = the conclusion metric
  bool lower_is_better = true;
  std::string better;   // the value claimed better (or, for "similar", the first of the two)
  std::string than;     // ... than this one
  // For "similar": the difference that matters, relative to `than`'s mean (0: any significant
  // difference disagrees).
  double margin = 0;
  std::vector<Condition> where;  // the points it speaks about; empty = all
};

struct ExperimentSpec {
  std::string scenario_path;
  std::string scenario_name;
  uint64_t base_seed = 1;  // the scenario's seed: a sweep runs base_seed .. base_seed + seeds - 1
  int seeds = kSweepSeedsDefault;  // per point; with seeds_min, the cap
  // Sequential sampling (docs/reports-method.md): when > 0, every point first runs seeds_min
  // seeds; a cell (the points that differ only in the design) gets more seeds, in rounds, until
  // the headline metric's 95% half-width is within target_half_width of its mean at every point
  // of the cell, or `seeds` is reached. 0: every point runs `seeds` seeds.
  int seeds_min = 0;
  double target_half_width = 0.05;  // relative to the mean
  std::vector<Axis> axes;         // the grid, in file order
  std::vector<std::string> sets;  // fixed overrides
  // [report]
  std::string question;
  std::string x;  // one of the axes' keys ("" = the first axis)
  std::string x_label;
  bool x_log = false;
  std::string design;    // the design axis ("" = none: every other axis is a regime)
  std::string baseline;  // a value of the design axis ("" = its first)
  std::map<std::string, std::string> names;  // "key=value" or "key" ("{}" = the value) -> words
  std::string analysis;
  std::string conclusion_metric;
  std::string conclusion_label;
  bool lower_is_better = true;
  std::vector<AlsoMetric> also;
  std::vector<ClaimSpec> claims;
  std::vector<PlotSpec> plots;
};

// Words for a metric: the conclusion's label, an [[report.also]] label or a plot's title, else
// the path itself.
std::string MetricWords(const ExperimentSpec& spec, const std::string& metric);

// Words for an axis value: names."key=value", else names."key" with {} replaced by the value,
// else "short_key=value" (the value alone for the design axis).
std::string ValueWords(const ExperimentSpec& spec, const std::string& key,
                       const std::string& value);

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
