// results.json and the human summary of one run (docs/results.md documents every field).
#ifndef CHATLAB_SIM_RESULTS_H_
#define CHATLAB_SIM_RESULTS_H_

#include <string>

#include "sim/scenario.h"
#include "sim/world.h"

namespace chatlab::sim {

// "0.1.0+<git describe --dirty>" of this build.
std::string ChatlabVersion();
// The one-line command that reproduces the run.
std::string ReproCommand(const Scenario& s, uint64_t seed, const std::vector<std::string>& sets);
// results.json content (pretty-printed, keys in a fixed order).
std::string ResultsJson(const Scenario& s, const RunResult& r, const std::string& repro);
// A table for people: invariants, faults, latencies, load.
std::string Summary(const Scenario& s, const RunResult& r, const std::string& repro);

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_RESULTS_H_
