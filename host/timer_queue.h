// The timer store every environment keeps: entries ordered by (due time, arming order).
//
// Ties fire in the order they were armed, so a run is a pure function of its inputs. Time is the
// environment's own: simulated seconds (the SimGrid world), simulated microseconds (the
// in-process cluster, whose whole event queue is one TimerQueue), steady-clock microseconds
// (chatd). Entries are never cancelled (core/effects.h ArmTimer): an owner that no longer cares
// ignores the firing, and an environment drops entries of a crashed incarnation when they fire.
#ifndef CHATLAB_HOST_TIMER_QUEUE_H_
#define CHATLAB_HOST_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

namespace chatlab::host {

template <typename Time, typename Payload>
class TimerQueue {
 public:
  void Arm(Time at, Payload payload) { heap_.push(Entry{at, seq_next_++, std::move(payload)}); }

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // Due time of the earliest entry. Requires !empty().
  Time next_at() const { return heap_.top().at; }
  // The earliest entry's due time, or `otherwise` when there is none.
  Time NextOr(Time otherwise) const { return heap_.empty() ? otherwise : heap_.top().at; }

  // Removes and returns the earliest entry if it is due at or before now.
  std::optional<std::pair<Time, Payload>> PopDue(Time now) {
    if (heap_.empty() || heap_.top().at > now) return std::nullopt;
    Entry e = std::move(const_cast<Entry&>(heap_.top()));
    heap_.pop();
    return std::pair<Time, Payload>(e.at, std::move(e.payload));
  }

 private:
  struct Entry {
    Time at;
    uint64_t seq;
    Payload payload;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> heap_;
  uint64_t seq_next_ = 0;
};

}  // namespace chatlab::host

#endif  // CHATLAB_HOST_TIMER_QUEUE_H_
