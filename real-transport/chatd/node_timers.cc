#include "real-transport/chatd/node_timers.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace chatlab::real {
namespace {

TimeUs SteadyUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void NodeTimers::Arm(TimeUs delay_us, Timer timer) {
  queue_.Arm(SteadyUs() + std::max<TimeUs>(0, delay_us), timer);
  ScheduleWake();
}

void NodeTimers::ScheduleWake() {
  if (queue_.empty()) return;
  const TimeUs next = queue_.next_at();
  if (wake_at_ && *wake_at_ <= next) return;
  wake_at_ = next;
  // Re-arming cancels the wait in progress: its handler then sees operation_aborted.
  wake_.expires_at(std::chrono::steady_clock::time_point(std::chrono::microseconds(next)));
  wake_.async_wait([this](boost::beast::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    wake_at_.reset();
    FireDue();
  });
}

void NodeTimers::FireDue() {
  std::vector<Timer> due;
  const TimeUs now = SteadyUs();
  while (auto entry = queue_.PopDue(now)) due.push_back(entry->second);
  for (const Timer& t : due) fire_(t);
  ScheduleWake();
}

}  // namespace chatlab::real
