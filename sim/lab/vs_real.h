// `chatlab compare`: one scenario simulated and played on a real chatd cluster, seed by seed, and
// set side by side (docs/sim-vs-real.md, "Sim against real").
//
// For each seed, in order: `chatplay SCENARIO --launch` (a fresh cluster of one chatd process per
// chat server on this machine, the scenario's [[faults.crash]] as kill -9 and restarts), then
// the simulator twice, `chatlab run` with the scenario as written ("sim, defaults") and with the
// calibration ("sim, calibrated"). The calibration is measured (Calibrate): the loopback round
// trip for the simulated links, chatd's mean SQLite commit for the simulated fsync, and chatd's
// CPU per sent message against the simulator's for the CPU speed. Everything is written under
// DIR:
//   DIR/report.md, report.html   the answer first, the side-by-side table, the CDFs, the
//                                calibration with its formulas, where the two differ and why
//   DIR/data.csv                 one row per (side, seed): every compared metric
//   DIR/calibration.csv          each calibrated key: value, formula, inputs
//   DIR/cdf.csv                  the mean percentile curves the plots draw
//   DIR/summary.json             the answer for `chatlab index`
//   DIR/compare.json             what the report is made from (`chatlab compare --render DIR`)
//   DIR/plots/*.svg              the latency CDFs, overlaid (gnuplot)
//   DIR/real/seed-K/             chatplay's results.json, history.json, log and cluster
//   DIR/sim/seed-K/, DIR/sim-defaults/seed-K/   chatlab run's results.json
//
// The verdict a reader acts on: every side's invariants on every seed, and, for the ack and
// end-to-end latencies, whether the real mean of the per-seed p50 is within 25% of the
// calibrated simulator's and the p99 within 50% (the tolerances).
#ifndef CHATLAB_SIM_LAB_VS_REAL_H_
#define CHATLAB_SIM_LAB_VS_REAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace chatlab::sim::lab {

inline constexpr int kCompareSeedsMax = 100;

struct VsRealOptions {
  std::string scenario_path;      // required: a file chatplay admits (--launch)
  std::vector<std::string> sets;  // --set overrides, for both sides
  int seeds = 10;
  std::optional<uint64_t> seed_start;  // default: the scenario's seed
  std::string out_dir;                 // default out/compare-NAME; must be new or empty
  std::string chatplay;                // default: beside chatlab, then ../real-transport/
  bool calibrate = true;               // false: no calibrated side
  int jobs = 0;                        // simulations at a time (0: the cores)
};

// Runs the comparison; returns the exit code: 0 when every run of both sides held every
// invariant, 1 when some run did not (the report says which), 2 on bad input or a run that
// could not be made (naming its log).
int CompareWithReal(const VsRealOptions& options);

// Writes the report of an earlier comparison again from its DIR/compare.json and runs (no run
// is made): after a change to the report. The same exit codes.
int RenderComparison(const std::string& dir);

// ---- Internal to sim/lab (vs_real.cc and vs_real_report.cc) -----------------------------------

// One calibrated scenario key: its value and how it was measured.
struct CalibratedKey {
  std::string key;  // "network.client_latency_ms"
  double value = 0;
  std::string formula;  // "loopback_rtt_p50_ms / 4"
  std::string inputs;   // "loopback_rtt_p50_ms = 0.0162 (mean of 10 real runs' medians)"
};

// The three sides' results, entry k of each from seed seeds[k] (nullopt: that run failed).
struct VsRealRuns {
  std::string dir;
  std::string scenario_path;
  std::string scenario_name;
  std::string scenario_text;
  std::vector<std::string> sets;
  std::vector<uint64_t> seeds;
  std::vector<std::optional<nlohmann::json>> real, sim, sim_defaults;
  std::vector<CalibratedKey> calibration;  // empty without --calibrate
  std::string chatplay;
  std::string command;      // the `chatlab compare` command line that made it
  double delay_ms_max = 0;  // the scenario's faults.delay_ms_max (0: its delays are of 0 ms)
};

// The calibration, from the real runs' results.json (metrics.loopback_rtt.p50_ms,
// metrics.server.commit_ms and metrics.server.cpu_seconds) and the simulator's runs of the
// scenario as written (the nodes' busy_s): the links, the fsync, and the CPU speed that makes the
// simulated CPU per sent message the real one.
// cpu_speed_factor: the scenario's own (the simulator's runs as written ran at it).
std::vector<CalibratedKey> Calibrate(const std::vector<std::optional<nlohmann::json>>& real,
                                     const std::vector<std::optional<nlohmann::json>>& sim_defaults,
                                     double cpu_speed_factor = 1);

// Writes report.md, report.html, data.csv, cdf.csv, summary.json and plots/ under runs.dir.
// Returns the number of runs (either side) that broke an invariant.
int WriteVsRealReport(const VsRealRuns& runs);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_VS_REAL_H_
