// Report: turns a sweep directory into report.md, report.html, plots/, data.csv, checks.csv and
// summary.json.
//
// Everything in the report is computed from DIR/sweep.json and DIR/runs/*/results.json
// (sweep_data.h). It opens with "The answer" (answer.h: the paired comparisons of compare.h),
// then the seed's claims and their verdicts, the conclusions per regime, the plots (plots.h),
// the table (mean and 95% interval per point), the validation against theory (analyses.h: each
// check with its formula, inputs, tolerance and verdict) and how it was made. Nothing in it
// depends on the wall clock, so the same sweep gives the same report. docs/reports-method.md
// is the method.
#ifndef CHATLAB_SIM_LAB_REPORT_H_
#define CHATLAB_SIM_LAB_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/lab/sweep_data.h"

namespace chatlab::sim::lab {

struct ReportOutcome {
  std::string markdown_path;
  std::string html_path;
  std::vector<std::string> answer;  // The answer's sentences
  std::string confidence;
  int validation_checks = 0;
  int validation_failures = 0;  // off by more than the tolerance
  int validation_outside_ci = 0;  // hold on tolerance, model outside the seeds' 95% interval
  int plots = 0;
};

// Writes DIR/report.md, DIR/report.html, DIR/plots/, DIR/data.csv, DIR/checks.csv and
// DIR/summary.json.
absl::StatusOr<ReportOutcome> WriteReport(const std::string& dir);

// Re-evaluates every check of DIR's report from DIR/data.csv alone: each input is recomputed
// as the mean of its column over the point's rows, then the check's model and measured figure
// are evaluated again. Returns how many checks were re-evaluated; FailedPrecondition naming the
// check when a column is missing or a figure differs from the report's (relative 1e-6).
absl::StatusOr<int> RecheckFromCsv(const std::string& dir);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_REPORT_H_
