// Report: turns a sweep directory into report.md, report.html and plots/*.svg.
//
// Everything in the report is computed from DIR/sweep.json and DIR/runs/*/results.json: the
// tables (mean and 95% confidence interval across seeds), the plots (drawn by gnuplot), the
// conclusion sentence (which design wins the [report.conclusion] metric at each x, and where
// that changes), and the validation section (analyses.h: simulated figure against the closed
// form, relative error; more than 10% off is flagged at the top). Nothing in it depends on the
// wall clock, so the same sweep gives the same report.
#ifndef CHATLAB_SIM_LAB_REPORT_H_
#define CHATLAB_SIM_LAB_REPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "sim/lab/experiment.h"
#include "sim/scenario.h"

namespace chatlab::sim::lab {

// Mean and 95% confidence interval (Student's t) of a sample.
struct Stat {
  double mean = 0;
  double ci95 = 0;  // half-width; 0 for fewer than two values
  int n = 0;
};
Stat Summarize(const std::vector<double>& values);

// A value from a results.json by path: "metrics.end_to_end_latency.p99_ms",
// "metrics.node_load.store.utilization" (arrays of objects are indexed by their "node"), or a
// ratio of two paths "A / B". nullopt if a path does not exist.
std::optional<double> MetricValue(const nlohmann::json& results, const std::string& path);

// A loaded sweep, for the report and the analyses.
struct SweepData {
  std::string dir;
  nlohmann::json manifest;
  ExperimentSpec spec;
  std::vector<Point> points;
  std::vector<uint64_t> seeds;
  std::vector<Scenario> scenarios;                  // by point: the scenario each point ran
  std::vector<std::vector<nlohmann::json>> runs;    // by point, one results.json per seed
  // The metric at point i across its seeds.
  Stat At(size_t point, const std::string& metric) const;
};

absl::StatusOr<SweepData> LoadSweep(const std::string& dir);

struct ReportOutcome {
  std::string markdown_path;
  std::string html_path;
  std::string conclusion;
  int validation_checks = 0;
  int validation_failures = 0;  // off by more than the tolerance
  int plots = 0;
};

// Writes DIR/report.md, DIR/report.html, DIR/plots/, DIR/data.csv.
absl::StatusOr<ReportOutcome> WriteReport(const std::string& dir);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_REPORT_H_
