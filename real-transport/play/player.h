// Plays a scenario's workload against running chatd processes (docs/sim-vs-real.md).
//
// Every user of the scenario's population is a core ClientSession (outbox, retries,
// de-duplication, gap detection, catch-up, receipts) over a real WebSocket to one of the
// cluster's processes, driven by the workload model the simulator uses (sim/workload_model.h):
// the same population (contacts, groups, home chat server) and the same laws (inter-send
// times, 1:1 or group, typing first, read delays, sessions and offline gaps, reconnecting to
// another process). Every oracle call a client makes is recorded (HistoryRecorder). At
// scenario.duration_s everybody comes online and nobody sends (the heal); after
// scenario.quiet_s the clients disconnect, and the store's final contents are read back through
// chatd's Web Service as the history's truth.
//
// The environment side only: it logs users in, moves frames, fires timers and schedules the
// workload's actions at the times the model draws. No protocol decision lives here.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_PLAYER_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_PLAYER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/util.h"
#include "sim/scenario.h"

namespace chatlab::real {

// Something done to the cluster during the play (the nemesis's kills and restarts), run on the
// player's io thread at at_s seconds from the start, given the time it runs at; it must not
// block for long.
struct PlayFault {
  double at_s = 0;
  std::function<void(double now_s)> act;
};

struct PlayOptions {
  // REQUIRES: AdmitScenario(scenario, cluster.size()) is ok.
  sim::Scenario scenario;
  uint64_t seed = 1;
  // Process i + 1 (its chatd --index) serves the scenario's chat server i.
  std::vector<HostPort> cluster;
  // Population user i + 1 logs in as PREFIX<i + 1> (`chatd adduser --count N PREFIX`).
  std::string user_prefix = "play";
  std::string password = "play";
  // Population group g is chatd group group_base + g (a fresh base keeps a replay on the same
  // cluster out of an earlier run's groups).
  uint64_t group_base = 0;
  // Run at their times while the play runs, in this order when due at once; those due at
  // scenario.duration_s or later run at the heal, before the users come back.
  std::vector<PlayFault> faults;
  // Receives one line per phase (logins, start, heal, end, truth); may be null.
  std::function<void(std::string_view)> progress;
  // Runs once, after the logins and before the workload's clock starts; may be null. chatplay
  // reads the processes' counters here (the logins' password hashing is not the workload's).
  std::function<void()> at_start;
  // Runs once, after the clients disconnected and before the truth is read (whose reads the
  // store counts too); may be null. chatplay reads the processes' counters here.
  std::function<void()> before_truth;
};

// What the clients did, summed over them (ClientSession::Stats), and what the truth held.
struct PlayTotals {
  uint64_t users = 0;
  uint64_t sends = 0;
  uint64_t retries = 0;
  uint64_t acks = 0;
  uint64_t send_failures = 0;
  uint64_t displays_to_others = 0;  // a message shown to a recipient, once each (sim: displays)
  uint64_t catchups = 0;
  uint64_t gaps_detected = 0;
  uint64_t connects = 0;
  uint64_t connects_failed = 0;       // WebSocket connects or upgrades that failed
  uint64_t reconnects_elsewhere = 0;  // connects to another process than the session before
  uint64_t disconnects = 0;
  uint64_t error_replies = 0;       // ErrorReply frames the clients got
  uint64_t frames_undecodable = 0;  // frames the JSON codec refused (a chatd bug)
  uint64_t truth_conversations = 0;
  uint64_t truth_messages = 0;
};

struct PlayResult {
  std::string history;  // chatlab-history/1, with truth
  PlayTotals totals;
  double wall_time_s = 0;
};

// Runs the play; blocks for about duration_s + quiet_s plus the logins and the truth read.
// FailedPrecondition naming the user when a login fails (the accounts must exist) and
// Unavailable when the truth cannot be read; violations are not errors (the history holds them).
absl::StatusOr<PlayResult> Play(const PlayOptions& options);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_PLAYER_H_
