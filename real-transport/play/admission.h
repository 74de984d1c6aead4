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
//   * anything else (faults, push wakes, background syncs, several regions, protocol keys chatd
//     has no flag for): refused, naming the key, until a later slice honours it.
// A key counts as set when its value differs from the default scenario's.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/scenario.h"

namespace chatlab::real {

struct Admission {
  // "section.key = value" of each set platform key: the real machine stands in for it.
  std::vector<std::string> platform_keys;
  // chatd flags (name, value, name, value, ...) for the set cluster keys: every process of the
  // cluster must run with them (and chatd's defaults otherwise).
  std::vector<std::string> cluster_flags;
};

// Checks s for a play against a cluster of `processes` chatd processes (one chat server each:
// the scenario's chat server i is process i + 1). InvalidArgument naming the first key the play
// cannot honour, with why and, where there is one, what to set instead. REQUIRES: Validate(s) ok.
absl::StatusOr<Admission> AdmitScenario(const sim::Scenario& s, size_t processes);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_ADMISSION_H_
