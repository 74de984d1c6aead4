#include "real-transport/play/nemesis.h"

#include <string>
#include <utility>

#include "absl/strings/str_format.h"

namespace chatlab::real {

std::vector<PlayFault> Nemesis::Faults(std::function<void(std::string_view)> progress,
                                       std::function<void(int process)> before_kill) {
  progress_ = std::move(progress);
  std::vector<PlayFault> faults;
  // Pauses first: at one instant, a SIGCONT comes before a kill (PlayFaults keep their order).
  for (const ProcessPause& p : pauses_) {
    faults.push_back(PlayFault{
        p.at_s, [this, p](double now_s) {
          const absl::Status s = cluster_.Pause(p.process);
          Done({p.at_s, now_s, "kill -STOP", p.process, p.node, std::string(s.message())});
        }});
    faults.push_back(PlayFault{
        p.resume_s, [this, p](double now_s) {
          const absl::Status s = cluster_.Resume(p.process);
          Done({p.resume_s, now_s, "kill -CONT", p.process, p.node, std::string(s.message())});
        }});
  }
  for (const ProcessCrash& c : crashes_) {
    faults.push_back(
        PlayFault{c.at_s, [this, c, before_kill](double now_s) {
                    if (before_kill) before_kill(c.process);
                    const absl::Status s = cluster_.Kill(c.process);
                    Done({c.at_s, now_s, "kill -9", c.process, c.node, std::string(s.message())});
                  }});
    faults.push_back(PlayFault{
        c.restart_s, [this, c](double now_s) {
          const absl::Status s = cluster_.Restart(c.process);
          Done({c.restart_s, now_s, "restart", c.process, c.node, std::string(s.message())});
        }});
  }
  return faults;
}

void Nemesis::Done(NemesisEvent e) {
  if (progress_) {
    progress_(absl::StrFormat("nemesis: %s process %d (%s) at %.2f s (due %.2f s)%s", e.action,
                              e.process, e.node, e.at_s, e.due_s,
                              e.error.empty() ? "" : ": not done, " + e.error));
  }
  log_.push_back(std::move(e));
}

}  // namespace chatlab::real
