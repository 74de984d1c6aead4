// What a real play honours of a scenario, and what it refuses (docs/sim-vs-real.md).
//
// A scenario was written for the simulator. Played against running chatd processes, each of its
// keys is one of:
//   * honoured by the player: the run's length, the population and every workload law
//     (sim/workload_model.h), and the protocol keys only clients read (retries, syncs, polls),
//     which the player's ClientSessions use;
//   * honoured by the cluster: protocol keys the chat servers and the store read, which chatd
//     takes as flags; the play names the flags the cluster must have been started with
//     (ClusterFlags), and a test starts its cluster with exactly those;
//   * the simulated platform ([network], [cost], client hosts, queue sampling): a real run has
//     a real machine instead; such keys are accepted and listed, never silently dropped;
//   * [[faults.crash]] and [[faults.pause]] entries: played by the nemesis (kill -9, then a
//     restart; SIGSTOP, then SIGCONT) when chatplay launched the cluster, refused otherwise;
//   * anything else (network and clock faults, push wakes, background syncs, several regions,
//     protocol keys chatd has no flag for): refused, naming the key, until a later slice
//     honours it.
// A key counts as set when its value differs from the default scenario's.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/play/fault_proxy.h"
#include "sim/scenario.h"

namespace chatlab::real {

// A [[faults.crash]] entry as the nemesis plays it on a cluster chatplay launched: kill -9 of the
// chatd process hosting the node, then a restart from its data directory.
struct ProcessCrash {
  std::string node;  // the scenario's node: "server:N", "store", "mapping", ...
  int process = 0;   // the chatd process hosting it (1-based)
  double at_s = 0;
  double restart_s = 0;  // the entry's restart_s, or the heal (duration_s) when it has none
  std::string also;      // what else the kill takes down ("" when only the node)
};

// A [[faults.pause]] entry as the nemesis plays it on a cluster chatplay launched: SIGSTOP of
// the chatd process hosting the node, then SIGCONT.
struct ProcessPause {
  std::string node;  // the scenario's node
  int process = 0;   // the chatd process hosting it (1-based)
  double at_s = 0;
  double resume_s = 0;  // the entry's resume_s, or the heal (duration_s) when it has none
  std::string also;     // what else the stop freezes ("" when only the node)
};

// The scenario's network faults as the nemesis plays them on a launched cluster: on the node
// messages between processes (FaultProxy), with the partitions' selectors mapped to processes.
struct NetworkFaults {
  double loss = 0;
  double duplicate = 0;
  double delay_probability = 0;
  double delay_ms_max = 0;
  std::vector<ProcessCut> cuts;
  std::vector<std::string> notes;  // what the real faults reach that the simulated do not, or
                                   // the reverse
  bool any() const {
    return loss > 0 || duplicate > 0 || (delay_probability > 0 && delay_ms_max > 0) ||
           !cuts.empty();
  }
};

struct Admission {
  // "section.key = value" of each set key with nothing to play: a platform key (the real machine
  // stands in for it), or a fault that draws nothing (a delay of at most 0 ms).
  std::vector<std::string> platform_keys;
  // chatd flags (name, value, name, value, ...) for the set cluster keys: every process of the
  // cluster must run with them (and chatd's defaults otherwise).
  std::vector<std::string> cluster_flags;
  // The scenario's crashes, in the scenario's order (only when the play can kill processes).
  std::vector<ProcessCrash> crashes;
  // The scenario's pauses (only when the play can signal processes), each process's overlapping
  // windows merged into one (node then names them all), ordered by process and then time.
  std::vector<ProcessPause> pauses;
  // The scenario's network faults (only when the play launched the cluster).
  NetworkFaults network;
};

// Checks s for a play against a cluster of `processes` chatd processes (one chat server each:
// the scenario's chat server i is process i + 1). InvalidArgument naming the first key the play
// cannot honour, with why and, where there is one, what to set instead. can_kill: the play
// launched the cluster itself (chatplay --launch), so [[faults.crash]] and [[faults.pause]]
// entries are played (as ProcessCrash and ProcessPause: a pause may not overlap a crash of the
// same process, which a restart would end), and faults.loss, duplicate, delay and
// [[faults.partition]] entries between processes (as NetworkFaults); otherwise they are refused.
// REQUIRES: Validate(s) ok.
absl::StatusOr<Admission> AdmitScenario(const sim::Scenario& s, size_t processes,
                                        bool can_kill = false);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_
