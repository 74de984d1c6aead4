// Child `chatlab` processes: SimGrid allows one engine per process, so every simulation a
// command runs besides its own is this same binary started again (/proc/self/exe). Used by
// `chatlab swarm`, `chatlab shrink`, `chatlab sweep`, `chatlab compare` (which also runs
// chatplay: RunChild's program) and --check-determinism.
//
// RunChild runs one and waits; RunPool runs many, at most `parallel` at a time, and reports each
// as it ends. Neither throws; a fork or exec failure shows as exit code 127 (the shell's
// "command not found").
#ifndef CHATLAB_SIM_CHILD_H_
#define CHATLAB_SIM_CHILD_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace chatlab::sim {

struct ChildJob {
  std::vector<std::string> args;  // argv, args[0] included ("chatlab")
  std::string log_path;           // the child's stdout and stderr go here; "" keeps ours
};

// How a child ended: exited with a code, or was killed by a signal (a crash).
struct ChildExit {
  int code = 0;    // the exit code, when signal == 0
  int signal = 0;  // the signal that killed it, or 0
  bool ok() const { return signal == 0 && code == 0; }
  // The shell's single-number form: code, or 128 + signal.
  int status() const { return signal != 0 ? 128 + signal : code; }
};

// Runs one child and waits for it: this binary again, or `program` when given.
ChildExit RunChild(const ChildJob& job, const std::string& program = "");

// Runs jobs 0..count-1 in index order, at most `parallel` (>= 1) at a time. make_job(i) is called
// just before job i starts (so 10,000 jobs need not exist at once); on_done(i, exit) is called
// in the parent as each ends, in the order they end. Returns when all have ended.
void RunPool(size_t count, int parallel, const std::function<ChildJob(size_t)>& make_job,
             const std::function<void(size_t, ChildExit)>& on_done);

// The number of jobs to run at once when the user gives none: the cores this process may use.
int DefaultJobs();

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_CHILD_H_
