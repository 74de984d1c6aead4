// The Slurm executor of `chatlab sweep --executor slurm` (docs/experiments.md, "Executors"): a
// round of a sweep's runs submitted as one Slurm job array, each array task one `chatlab run`,
// waited for, and each task's exit status read back from its run directory.
//
// How: for a round, DIR/slurm/round-K/ holds task-I.sh (the run's command line, its output to
// the run's run.log, then its exit status to the run's exit_status and the Slurm job id to
// slurm_job) and array.sh (exec task-$SLURM_ARRAY_TASK_ID.sh). `sbatch --wait --array=0-(N-1)`
// submits it and returns when every task has ended. The sweep directory, the scenario file and
// this binary must be at the same paths on every node (a shared filesystem); paths are made
// absolute before they are written.
//
// Limits: a task Slurm never ran (cancelled, its node failed) has no exit_status and fails the
// round, naming its Slurm output file; resuming the sweep submits only the runs without a
// results.json. A sweep interrupted while its array runs leaves the array running: cancel it
// (scancel; the job id is in DIR/slurm/round-K/sbatch.log) before resuming, or two tasks may write
// one run directory.
#ifndef CHATLAB_SIM_LAB_SLURM_EXECUTOR_H_
#define CHATLAB_SIM_LAB_SLURM_EXECUTOR_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chatlab::sim::lab {

struct SlurmTask {
  std::string id;                 // the run's id ("p003-s2")
  std::vector<std::string> args;  // its chatlab argv, args[0] included
  std::string dir;                // its run directory
};

struct SlurmOptions {
  std::string partition;  // --partition; "" for the cluster's default
  int max_parallel = 0;   // array throttle (%N); 0: as many as Slurm schedules
  std::string name;       // the job's name (chatlab-NAME)
  bool progress = false;  // the submission and where sbatch's log is, on stderr
};

// The sbatch that RunOnSlurm would run: the first on PATH. InvalidArgument saying what to
// install when there is none.
absl::StatusOr<std::string> FindSbatch();

// Submits tasks as one job array under sweep_dir/slurm/round-K and waits for it; on_done(i,
// status) for each task in index order once the array has ended (status: the run's exit code,
// or 128 + signal). InvalidArgument when sbatch is not on PATH; Internal, naming the file to
// read, when sbatch fails or a task left no exit status.
absl::Status RunOnSlurm(const std::vector<SlurmTask>& tasks, const std::string& sweep_dir,
                        const SlurmOptions& options,
                        const std::function<void(size_t, int status)>& on_done);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_SLURM_EXECUTOR_H_
