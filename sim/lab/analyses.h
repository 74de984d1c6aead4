// Analyses: each experiment's comparison of simulated figures with theory.
//
// A report names its analysis ([report] analysis = "db-writes"); the analysis returns checks
// (simulated figure, analytic figure, relative error) and may add computed sentences to the
// conclusion. docs/experiments.md states every formula and where it comes from.
#ifndef CHATLAB_SIM_LAB_ANALYSES_H_
#define CHATLAB_SIM_LAB_ANALYSES_H_

#include <string>
#include <vector>

#include "sim/lab/report.h"

namespace chatlab::sim::lab {

struct Check {
  std::string name;     // what is compared, with the formula
  std::string point;    // which grid point ("" = the whole sweep)
  double simulated = 0;
  double analytic = 0;
  double tolerance = 0.10;  // relative
  double RelativeError() const;
  bool Passed() const { return RelativeError() <= tolerance; }
};

struct Analysis {
  std::vector<Check> checks;
  std::vector<std::string> findings;  // computed sentences for the conclusion
  std::string note;                    // why a check does or does not apply
};

// Unknown names give an empty analysis with a note saying so.
Analysis RunAnalysis(const std::string& name, const SweepData& data);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_ANALYSES_H_
