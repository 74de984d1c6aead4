// The nemesis of a real play (docs/sim-vs-real.md, "The nemesis"): the scenario's
// [[faults.crash]] entries as kill -9 and restarts, and its [[faults.pause]] entries as SIGSTOP
// and SIGCONT, of the processes of a cluster chatplay launched (LocalCluster), at the scenario's
// times, with a log of what it did and when.
//
// It acts; it decides nothing the scenario did not. Its actions run on the player's io thread
// (PlayFault), so a kill is reaped and a restart forked there, neither waiting for a server.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_NEMESIS_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_NEMESIS_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "real-transport/play/admission.h"
#include "real-transport/play/local_cluster.h"
#include "real-transport/play/player.h"

namespace chatlab::real {

// One action of the nemesis, as it happened.
struct NemesisEvent {
  double due_s = 0;    // when the scenario asked for it
  double at_s = 0;     // when it was done (the player's clock, seconds from the start)
  std::string action;  // "kill -9", "restart", "kill -STOP" or "kill -CONT"
  int process = 0;
  std::string node;   // the scenario's node it stands for
  std::string error;  // "" when done; why not otherwise (already down, fork failed)
};

class Nemesis {
 public:
  // REQUIRES: cluster outlives the play.
  Nemesis(std::vector<ProcessCrash> crashes, std::vector<ProcessPause> pauses,
          LocalCluster& cluster)
      : crashes_(std::move(crashes)), pauses_(std::move(pauses)), cluster_(cluster) {}
  // The play's faults: a kill at each crash's at_s and a restart at its restart_s, a SIGSTOP at
  // each pause's at_s and a SIGCONT at its resume_s. progress, if
  // given, gets a line per action as it is done; before_kill, if given, runs just before each
  // kill with the process (1-based) about to be killed (chatplay reads its counters there).
  std::vector<PlayFault> Faults(std::function<void(std::string_view)> progress = {},
                                std::function<void(int process)> before_kill = {});
  // What was done, in order; read after the play.
  const std::vector<NemesisEvent>& log() const { return log_; }

 private:
  void Done(NemesisEvent e);

  std::vector<ProcessCrash> crashes_;
  std::vector<ProcessPause> pauses_;
  LocalCluster& cluster_;
  std::function<void(std::string_view)> progress_;
  std::vector<NemesisEvent> log_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_NEMESIS_H_
