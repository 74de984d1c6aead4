// Sweep: runs an experiment's grid, one `chatlab run` process per point and seed.
//
// SimGrid allows one engine per process, so every run is a child process of this one (the same
// binary), `jobs` at a time. Layout of the output directory:
//   DIR/sweep.json                 the manifest: scenario, grid, seeds, every run's id
//   DIR/runs/p003-s2/results.json  one run (point 3, seed 2)
// Resumable: a run whose results.json exists is not run again. A DIR that holds a different
// sweep (other scenario text, grid or seeds) is refused rather than mixed.
//
// Executors: "local" (the default) runs the children here, `jobs` at a time; "slurm" submits
// each round's runs as one Slurm job array and waits for it (sim/lab/slurm_executor.h; the
// directory must be on a filesystem every node shares), DIR/slurm/round-K holding its scripts.
#ifndef CHATLAB_SIM_LAB_SWEEP_H_
#define CHATLAB_SIM_LAB_SWEEP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/lab/experiment.h"

namespace chatlab::sim::lab {

struct SweepOptions {
  std::string out_dir;
  int jobs = 0;           // 0: the number of cores
  bool progress = false;  // a progress bar on stderr
  bool quick = false;     // recorded in the manifest
  std::vector<std::string> vary;  // the --vary arguments, recorded for the repro command
  std::string executor = "local";  // local | slurm
  std::string slurm_partition;     // with slurm: --partition ("" for the default)
};

struct SweepOutcome {
  int runs = 0;
  int resumed = 0;     // already done before this invocation
  int violated = 0;    // runs whose invariants failed (exit 1)
  std::vector<std::string> violated_ids;
};

// The id of a run: "p<point index, 3 digits>-s<seed>".
std::string RunId(size_t point, uint64_t seed);
// The seeds of a sweep: the scenario's seed and the next seeds - 1.
std::vector<uint64_t> SweepSeeds(const ExperimentSpec& spec);

absl::StatusOr<SweepOutcome> RunSweep(const ExperimentSpec& spec, const SweepOptions& options);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_SWEEP_H_
