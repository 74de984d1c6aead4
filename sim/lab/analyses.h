// Analyses: each experiment's comparison of simulated figures with closed-form models.
//
// A report names its analysis ([report] analysis = "db-writes"); the analysis returns checks
// and may add computed findings. A check is written so that a reader can redo it from data.csv
// alone (docs/reports-method.md): every input is a named data.csv column at a named point (a
// scenario key, or a metric averaged over the point's seeds), and both the model and the
// measured figure are functions of those inputs only. docs/experiments.md states every formula
// and where it comes from.
#ifndef CHATLAB_SIM_LAB_ANALYSES_H_
#define CHATLAB_SIM_LAB_ANALYSES_H_

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/lab/sweep_data.h"

namespace chatlab::sim::lab {

// One input of a check: data.csv column `column` averaged over point `point`'s rows.
struct CheckInput {
  std::string name;    // the formula's symbol ("lambda", "T_us")
  std::string column;  // a scenario key ("protocol.buffered_flush_interval_us") or a metric
  bool is_param = false;  // a scenario key (one value per point) rather than a measured metric
  size_t point = 0;
  double value = 0;
};

using Vars = std::map<std::string, double>;  // symbol -> value

struct Check {
  std::string name;     // what is compared
  std::string formula;  // the model, in the inputs' symbols
  std::string point;    // which grid point, in words ("" = the whole sweep)
  std::vector<CheckInput> inputs;
  std::function<double(const Vars&)> measured;  // the simulated figure from the inputs
  std::function<double(const Vars&)> model;     // the closed form from the inputs
  double simulated = 0;  // measured(inputs)
  double analytic = 0;   // model(inputs)
  double tolerance = 0.10;  // relative
  std::string tolerance_why;  // why this tolerance (sampling noise, a known approximation)
  // The simulated figure's seed-to-seed spread: `measured` evaluated on each seed's own metric
  // values (seed k of every point an input reads, so a difference of two points is paired),
  // as a 95% half-width (Student's t) over the sim_seeds seeds where every input is present.
  double sim_ci95 = 0;
  int sim_seeds = 0;
  double RelativeError() const;
  bool Passed() const { return RelativeError() <= tolerance; }
  // The model lies within the simulated figure's 95% interval: the difference is within the
  // seed-to-seed noise. A check can hold on its tolerance and still sit outside it: then the
  // model has a bias the tolerance allows, and the report says so.
  // Agreement to 1 part in 10^4 counts as inside (every seed gave the same figure: CI 0).
  bool ModelInsideCi() const {
    const double floor = 1e-4 * std::max(std::fabs(simulated), std::fabs(analytic));
    return sim_seeds >= 2 && std::fabs(simulated - analytic) <= std::max(sim_ci95, floor);
  }
  Vars Values() const;  // the inputs by symbol
  std::string InputsText() const;  // "lambda = 3.2 (metrics.x at p004); T_us = 50000 (...)"
};

struct Analysis {
  std::vector<Check> checks;
  std::vector<std::string> findings;  // computed sentences for the conclusions
  // Computed sentences the answer itself carries (before "How sure"), for a result the paired
  // design comparison cannot state: one design at one x against another at another x.
  std::vector<std::string> headline;
  std::string note;                    // the models, and why a check does or does not apply
  // Scenario keys a finding or headline computes with (beyond the checks' inputs): data.csv
  // carries them too, so that every figure can be recomputed from it.
  std::vector<std::string> finding_params;
};

// Unknown names give an empty analysis with a note saying so.
Analysis RunAnalysis(const std::string& name, const SweepData& data);

// Every data.csv column the checks read: metrics (per run) and scenario keys (per point), the
// findings' scenario keys included.
void CheckColumns(const Analysis& a, std::vector<std::string>* metrics,
                  std::vector<std::string>* params);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_ANALYSES_H_
