// The queue broker (core/queue_broker.h) on RabbitMQ, for forwarding=queue: one queue per chat
// server, one entry in flight per consumer (docs/engines.md, "The queue broker on RabbitMQ").
//
// Every chatd process has one: it publishes its own chat server's QueuePublish messages to the
// destination's queue and consumes its own chat server's queue, handing each delivery to the chat
// server as the QueueDeliver the core's broker would send, and turning the chat server's QueueAck
// into a basic.ack. The seed's answers to a queue's problems are RabbitMQ's own features:
//   prefetch 1 (basic.qos)         one entry in flight per consumer
//   x-max-length, drop-head        a full queue drops its oldest waiting entry
//   x-message-ttl                  entries older than queue_stale_after_us are dropped
//   x-expires                      the queue of a consumer gone for queue_consumer_timeout_us is
//                                  deleted with its entries (purge on death)
//   exclusive consume              one consumer per queue
//   requeue on connection loss     the in-flight entry is delivered again (at least once)
// Where these differ from the model, docs/engines.md says so and
// tests/real/broker_conformance_test.cc pins both sides of each difference.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_QUEUE_BROKER_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_QUEUE_BROKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "core/config.h"
#include "real-transport/asio.h"
#include "real-transport/engines/rabbit_link.h"
#include "real-transport/engines/service_engine.h"

namespace chatlab::real {

class RabbitQueueBroker final : public ServiceEngine {
 public:
  struct Stats {
    uint64_t messages = 0;    // messages submitted
    uint64_t published = 0;   // QueuePublish handed to the link
    uint64_t subscribes = 0;  // QueueSubscribe from the chat server
    uint64_t delivered = 0;   // QueueDeliver handed to the chat server
    uint64_t acked = 0;       // QueueAck for an unacked delivery
    uint64_t stale_acks = 0;  // QueueAck for anything else (duplicate, unknown)
    uint64_t malformed = 0;   // deliveries whose body is not a QueueDeliver (acked, dropped)
    uint64_t unexpected = 0;  // messages the model ignores too
  };

  // chatd's queue name prefix (deployments sharing a RabbitMQ use separate vhosts).
  static constexpr const char* kPrefix = "chatlab.";

  // Whether config can be expressed with RabbitMQ's queue arguments (the limits are named).
  static absl::Status Validate(const ProtocolConfig& config);
  // The arguments of every queue of a deployment with this config.
  static RabbitLink::QueueArgs Args(const ProtocolConfig& config);
  // The queue of `server`: `prefix` "q." id, then the arguments, so that a deployment whose
  // config changed declares new queues instead of failing to redeclare the old ones.
  static std::string QueueName(const std::string& prefix, NodeId server,
                               const ProtocolConfig& config);

  // `self` is the chat server whose queue this consumes; `link` says where RabbitMQ is (its
  // queue and args are filled in here). `deliver` receives, on the io thread, the effects the
  // broker emits towards `self` (each a SendToNode of a QueueDeliver).
  // REQUIRES: Validate(config).ok().
  RabbitQueueBroker(boost::asio::io_context& io, RabbitLink::Options link, std::string prefix,
                    NodeId self, const ProtocolConfig& config,
                    std::function<void(Effects)> deliver);

  void Submit(TimeUs now, NodeId from, Message msg, Done done) override;
  const Stats& stats() const { return stats_; }
  const RabbitLink::Stats& link_stats() const { return link_->stats(); }
  bool idle() const { return link_->idle(); }
  // Whether this server's queue is declared and consumed on the current connection.
  bool consuming() const { return link_->consuming(); }

 private:
  void OnDelivery(RabbitLink::Delivery d);

  const std::string prefix_;
  const NodeId self_;
  const ProtocolConfig config_;
  std::function<void(Effects)> deliver_;
  Stats stats_;
  // seq handed to the chat server -> (generation, delivery tag), until its ack. Holds at most
  // one entry per connection (prefetch 1); entries of older connections are forgotten when a
  // newer one delivers.
  absl::btree_map<uint64_t, std::pair<uint64_t, uint64_t>> unacked_;
  uint64_t seq_next_ = 1;
  std::unique_ptr<RabbitLink> link_;  // last: its deliveries use everything above
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_QUEUE_BROKER_H_
