// The node timers of one chatd process: one host::TimerQueue, ordered by steady-clock due time
// (ties in arming order), served by one asio::steady_timer armed at the earliest entry.
//
// The core's ArmTimer is "call OnTimer once at or after at_us; never cancelled"
// (core/effects.h). A timer is kept on the steady clock, converted once from its delay, so a
// jump of the system clock neither fires it early nor holds it back. When the steady_timer
// fires, every entry due by then is taken out first and then handed to `fire`, one by one: a
// timer that a firing arms for "now" waits for the next wake, a fresh input, instead of running
// inside the same loop. Entries are never removed otherwise; the owner drops what it no longer
// wants when it fires (a timer of a node's earlier incarnation).
//
// Threading: the io_context thread only.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_NODE_TIMERS_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_NODE_TIMERS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "core/types.h"
#include "host/timer_queue.h"
#include "real-transport/asio.h"

namespace chatlab::real {

class NodeTimers {
 public:
  struct Timer {
    size_t slot;           // the node's slot in the deployment
    uint64_t incarnation;  // the node's incarnation when it armed the timer
    uint64_t timer_id;
  };
  using Fire = std::function<void(const Timer&)>;

  NodeTimers(boost::asio::io_context& io, Fire fire) : wake_(io), fire_(std::move(fire)) {}

  // Arms timer to fire delay_us from now (at once, as a fresh input, when delay_us <= 0).
  void Arm(TimeUs delay_us, Timer timer);
  size_t size() const { return queue_.size(); }

 private:
  // Arms wake_ at the earliest entry, unless it already waits for that time or earlier.
  void ScheduleWake();
  void FireDue();

  host::TimerQueue<TimeUs, Timer> queue_;  // by steady-clock microseconds
  boost::asio::steady_timer wake_;
  std::optional<TimeUs> wake_at_;  // set while wake_ waits: its expiry
  Fire fire_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_NODE_TIMERS_H_
