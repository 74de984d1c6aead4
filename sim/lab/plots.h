// Plots: gnuplot SVGs of a sweep, drawn from the same Layout the answer uses.
//
// Text is plain (gnuplot's enhanced mode is off, so an underscore is an underscore); series are
// named in words (compare.h SeriesWords: "pull, 0.5 msg/s"). Besides the [[report.plot]]
// metrics, the headline comparison gets a paired-difference plot: each design minus the
// baseline, seed by seed, with its 95% interval, against x, one line per (design, regime).
#ifndef CHATLAB_SIM_LAB_PLOTS_H_
#define CHATLAB_SIM_LAB_PLOTS_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "sim/lab/compare.h"

namespace chatlab::sim::lab {

struct PlotFile {
  std::string title;
  std::string svg;  // relative to the sweep directory: "plots/01_....svg"
};

// Runs gnuplot on DIR/script_name with DIR as its working directory (its stderr appended to
// DIR/plots/gnuplot.log). FailedPrecondition when gnuplot is not installed.
absl::Status RunGnuplot(const std::filesystem::path& dir, const std::string& script_name);

// Draws one [[report.plot]]; n numbers the file.
absl::StatusOr<PlotFile> DrawMetricPlot(const SweepData& data, const Layout& layout,
                                        const PlotSpec& plot, size_t n);

// The headline metric's paired difference against the baseline design. Fails with
// FailedPrecondition when the sweep has no design axis or a single design.
absl::StatusOr<PlotFile> DrawPairedPlot(const SweepData& data, const Layout& layout, size_t n);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_PLOTS_H_
