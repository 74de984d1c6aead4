// The shrinker's reductions (sim/swarm/shrink.h lists them in order): every scenario one
// simplification smaller than a given one.
#ifndef CHATLAB_SIM_SWARM_REDUCE_H_
#define CHATLAB_SIM_SWARM_REDUCE_H_

#include <string>
#include <vector>

#include "sim/scenario.h"

namespace chatlab::sim::swarm {

struct Candidate {
  int rule = 0;      // the reduction rule's position in the fixed order
  std::string what;  // for people: "users 120 -> 60", "removed [[faults.crash]] server:2 at 12 s"
  Scenario scenario;
};

// Every reduction of s, in rule order (within a rule, in entry order). Each candidate passes
// Validate() and differs from s. Deterministic: a function of s alone.
std::vector<Candidate> Reductions(const Scenario& s);

// How many faults a scenario has: fault entries plus the non-zero fault probabilities.
int FaultCount(const Scenario& s);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_REDUCE_H_
