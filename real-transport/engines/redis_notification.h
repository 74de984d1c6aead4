// The notification service (core/notification.h) on Redis: every chatd process hands its own chat
// server's Notify messages to it, and the de-duplication window is one for the whole deployment
// (docs/engines.md, "Notification on Redis").
//
// A Notify is one run of one Lua script: if its (user, conv, message_id) key PREFIX "n:" ... is
// remembered, nothing; otherwise it is remembered (the oldest forgotten first once
// notification_dedup_max are, FIFO, as in the model) and the answer is the PushToDevice effect the
// environment carries out. tests/real/notification_conformance_test.cc holds it to the model.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_NOTIFICATION_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_NOTIFICATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/service_engine.h"

namespace chatlab::real {

class RedisNotification final : public ServiceEngine {
 public:
  struct Stats {
    uint64_t messages = 0;      // messages submitted
    uint64_t failed = 0;        // not carried out: Redis unreachable or refusing (lost)
    uint64_t pushed = 0;        // PushToDevice answered
    uint64_t deduplicated = 0;  // a Notify whose key was remembered
    uint64_t unexpected = 0;    // messages the model ignores too
  };

  static std::vector<std::string> Scripts();
  // `link` must outlive this and load Scripts(). Keys start with `prefix`.
  RedisNotification(RedisLink& link, std::string prefix, const ProtocolConfig& config);

  void Submit(TimeUs now, NodeId from, Message msg, Done done) override;
  const Stats& stats() const { return stats_; }

 private:
  RedisLink& link_;
  const std::string prefix_;
  const ProtocolConfig config_;
  const std::string sha_;
  Stats stats_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_NOTIFICATION_H_
