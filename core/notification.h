// The notification service: best-effort pushes to an offline user's phone.
//
// The seed design's "Notification Service": when a recipient has no connected session, its chat
// server sends Notify here, and the service hands the push to the phone vendor (APNs/FCM) as a
// PushToDevice effect. Nothing is guaranteed (the vendor and the device may lose it); the store
// and the client's catch-up are what make delivery reliable.
//
// Chat servers may send the same Notify more than once (a retried forward, a duplicate on the
// network, several servers failing over), and a phone buzzing twice for one message is a visible
// bug, so pushes are de-duplicated on (user, conv, message_id) within a bounded window.
#ifndef CHATLAB_CORE_NOTIFICATION_H_
#define CHATLAB_CORE_NOTIFICATION_H_

#include <cstdint>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab {

class NotificationService : public Node {
 public:
  struct Stats {
    uint64_t notifies = 0;      // Notify messages received (valid ones)
    uint64_t pushed = 0;        // PushToDevice effects emitted
    uint64_t deduplicated = 0;  // Notify for a (user, conv, message_id) already pushed
    // Message types this node does not handle, and Notify naming UserId() or an invalid conv.
    uint64_t unexpected_messages = 0;
  };

  explicit NotificationService(const NodeOptions& options);

  // Node. The service arms no timers; OnTimer ignores every id.
  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  // How many pushed keys are remembered for de-duplication.
  size_t remembered() const { return order_.size(); }

 private:
  // What identifies one push: the same message to the same user.
  struct PushKey {
    UserId user;
    ConversationId conv;
    MessageId message_id = kNoMessage;

    friend bool operator==(const PushKey&, const PushKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const PushKey& k) {
      return H::combine(std::move(h), k.user, k.conv, k.message_id);
    }
  };

  void OnNotify(const Notify& m, Effects& out);
  // Remembers key, forgetting the oldest remembered key first when the window is full.
  void Remember(const PushKey& key);

  const NodeOptions options_;
  Stats stats_;
  // The de-duplication window, at most config.notification_dedup_max keys. At the limit the
  // oldest key is forgotten (FIFO), so a duplicate that arrives after that many newer pushes is
  // pushed again: a second buzz, never a lost push.
  // Invariant: pushed_ and order_ hold the same keys, each once; order_ is oldest first.
  absl::flat_hash_set<PushKey> pushed_;
  std::deque<PushKey> order_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_NOTIFICATION_H_
