// A chatd cluster that chatplay starts itself (`chatplay --launch DIR`), so that its nemesis can
// kill and restart the processes (docs/sim-vs-real.md, "The nemesis").
//
// Process i (1-based) runs `chatd --data_dir DIR/i --listen 127.0.0.1:PORT --cluster LIST
// --index i --users_db DIR/shared/users.db --key_file DIR/shared/token.key FLAGS...` with its
// stdout and stderr appended to DIR/i/chatd.log, on a port free when the cluster started. A
// killed process restarts with the same command line, from its data directory, as an operator's
// supervisor would restart it. A paused process (SIGSTOP) runs again on Resume (SIGCONT). The
// cluster stops (SIGCONT to any paused, SIGTERM, then SIGKILL after a grace) when the object is
// destroyed.
//
// Not thread-safe: one thread (the player's io thread, once the play runs) calls it.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_LOCAL_CLUSTER_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "real-transport/util.h"

namespace chatlab::real {

struct LocalClusterOptions {
  std::string chatd;                 // the chatd binary
  std::string dir;                   // missing or empty (else refused); DIR/shared, DIR/1 .. N
  int processes = 3;                 // >= 1
  std::vector<std::string> flags;    // for every process (the scenario's cluster flags)
  std::string user_prefix = "play";  // accounts PREFIX1 .. PREFIX<users>, created at Start
  int users = 0;
  std::string password = "play";
  // The --cluster list of process `index` (1-based), given every process's place; null: the
  // places themselves. The network nemesis gives each process its own (FaultProxy::ClusterView).
  std::function<std::string(int index, const std::vector<HostPort>& places)> cluster_view;
};

class LocalCluster {
 public:
  // Creates the accounts, starts every process and waits (up to 30 s) until each answers
  // /healthz. InvalidArgument for bad options (no chatd binary, DIR not empty); Unavailable
  // naming the process and its log when one does not start (those started are stopped again).
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Process i's address (i in 1..processes), in index order.
  const std::vector<HostPort>& addresses() const { return addresses_; }
  // kill -9 of process `index`, reaped before this returns. FailedPrecondition if it is not
  // running, or exited on its own (then also listed by UnexpectedExits).
  absl::Status Kill(int index);
  // Starts process `index` again with its command line; does not wait for it to serve (the
  // clients' retries do). FailedPrecondition if it is running, Internal if fork fails.
  absl::Status Restart(int index);
  // SIGSTOP of process `index`: it keeps its sockets and memory and runs nothing until Resume
  // (the kernel still accepts connections and buffers what peers send). FailedPrecondition if it
  // is not running or already stopped.
  absl::Status Pause(int index);
  // SIGCONT of a process Pause stopped. FailedPrecondition if it is not stopped.
  absl::Status Resume(int index);
  // Every exit this object did not cause (a crash, a start that failed), with its status and
  // log, so far.
  std::vector<std::string> UnexpectedExits();

 private:
  explicit LocalCluster(LocalClusterOptions options) : o_(std::move(options)) {}
  absl::Status Spawn(size_t i);
  // Reaps process i if it exited (recording it in exits_); whether it had.
  bool ExitedOnItsOwn(size_t i);
  void StopAll();

  LocalClusterOptions o_;
  std::vector<HostPort> addresses_;
  std::vector<std::vector<std::string>> argv_;  // process i + 1's command line
  std::vector<pid_t> pids_;                     // 0: not running
  std::vector<bool> stopped_;                   // by Pause, until Resume, a kill or the stop
  std::vector<std::string> exits_;              // UnexpectedExits
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_LOCAL_CLUSTER_H_
