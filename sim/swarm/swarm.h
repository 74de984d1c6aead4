// `chatlab swarm`: many generated scenarios (sim/swarm/generate.h), each run in its own
// `chatlab run` process, checked and tallied. TigerBeetle's VOPR habit: every failure is a
// standalone file with a one-line repro, and the summary says which faults and recovery paths
// the swarm actually reached, because a swarm that never crashed a store proves nothing about
// crashing a store.
//
// Layout of the output directory:
//   DIR/runs/K/          the run of seed K while it runs (scenario.toml, results.json, run.log);
//                        deleted once it passes, so disk use stays bounded
//   DIR/failures/seed-K.toml          a failing seed's scenario, its header the repro and the
//                                     first violation; .results.json beside it
//   DIR/failures/seed-K.log           a crashed run's output (exit 2 or a signal: a bug in the
//                                     generator or the simulator, not in the protocol)
//   DIR/summary.json                  the tally (docs/swarm.md describes every field)
// A swarm empties DIR/runs and DIR/failures first, so every file there is its own.
#ifndef CHATLAB_SIM_SWARM_SWARM_H_
#define CHATLAB_SIM_SWARM_SWARM_H_

#include <cstdint>
#include <string>

namespace chatlab::sim::swarm {

// At most this many runs in one swarm (the tally is kept in memory).
inline constexpr int kSwarmRunsMax = 10'000'000;

struct SwarmOptions {
  int runs = 1000;
  uint64_t seed_start = 1;
  int jobs = 0;  // runs at a time; 0: the number of cores
  std::string out_dir = "out/swarm";
  // Also fail when a fault kind or a recovery path was never reached by any run.
  bool require_coverage = false;
  bool progress_tty = false;  // redraw one progress line (else print a line now and then)
};

// Runs the swarm, prints the repro up front, progress to stderr and the summary to stdout,
// writes DIR/summary.json. Returns the exit code: 0 all passed (and, with require_coverage,
// everything was reached), 1 otherwise, 2 if DIR cannot be written.
int RunSwarm(const SwarmOptions& options);

// `chatlab swarm --print-scenario K`: the scenario of seed K as a standalone TOML file.
std::string SwarmScenarioFile(uint64_t seed);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_SWARM_H_
