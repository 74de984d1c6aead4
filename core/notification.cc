#include "core/notification.h"

#include <cassert>
#include <variant>

namespace chatlab {

NotificationService::NotificationService(const NodeOptions& options) : options_(options) {
  assert(options_.self.valid());
}

void NotificationService::Start(TimeUs /*now*/, Effects& /*out*/) {}

void NotificationService::OnTimer(TimeUs /*now*/, uint64_t /*timer_id*/, Effects& /*out*/) {}

void NotificationService::OnMessage(TimeUs /*now*/, NodeId /*from*/, const Message& msg,
                                    Effects& out) {
  if (const auto* m = std::get_if<Notify>(&msg)) {
    OnNotify(*m, out);
  } else {
    stats_.unexpected_messages++;
  }
  assert(pushed_.size() == order_.size());
  assert(order_.size() <= options_.config.notification_dedup_max);
}

void NotificationService::OnNotify(const Notify& m, Effects& out) {
  if (!m.user.valid() || !m.conv.Valid()) {
    stats_.unexpected_messages++;
    return;
  }
  stats_.notifies++;
  const PushKey key{m.user, m.conv, m.message_id};
  if (pushed_.contains(key)) {
    stats_.deduplicated++;
    return;
  }
  Remember(key);
  out.push_back(PushToDevice{m.user, m.conv, m.message_id, m.sender});
  stats_.pushed++;
}

void NotificationService::Remember(const PushKey& key) {
  const size_t keys_max = options_.config.notification_dedup_max;
  if (keys_max == 0) {
    return;  // de-duplication disabled by configuration: every Notify is pushed
  }
  while (order_.size() >= keys_max) {
    const size_t erased = pushed_.erase(order_.front());
    assert(erased == 1);
    (void)erased;
    order_.pop_front();
  }
  const bool inserted = pushed_.insert(key).second;
  assert(inserted);
  (void)inserted;
  order_.push_back(key);
  assert(order_.size() <= keys_max);
}

}  // namespace chatlab
