// Which of the process's service messages go to an engine instead of a node (docs/engines.md).
//
// With --redis, the user mapping (node n3), presence (n4) and notification (n5) are a
// RedisUserMapping, a RedisPresence and a RedisNotification in every process; with --rabbitmq
// (forwarding=queue) the queue broker is a RabbitQueueBroker in every process. No process hosts
// those nodes, and each process hands its own chat server's messages for them to its engines.
// Without engines every lookup here answers null and chatd routes as before.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/chatd.h"
#include "real-transport/engines/rabbit_queue_broker.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/redis_notification.h"
#include "real-transport/engines/redis_presence.h"
#include "real-transport/engines/redis_user_mapping.h"
#include "real-transport/engines/service_engine.h"

namespace chatlab::real {

class EngineRoutes {
 public:
  // The engines `options` names (none: an empty router). Fails on a malformed address; an
  // engine that is down at start is not an error (the link retries; messages meanwhile are lost
  // and the core repairs them), but is reported through `on_error`.
  // `on_error` receives, on the io thread, why the connection to an engine failed, once per
  // change of reason (chatd logs it). `self` is this process's chat server; `deliver` receives,
  // on the io thread, what an engine sends on its own (the broker's QueueDeliver), with the node
  // the engine stands for as sender.
  static absl::StatusOr<std::unique_ptr<EngineRoutes>> Open(
      const ChatdOptions& options, boost::asio::io_context& io, const Topology& topology,
      NodeId self, std::function<void(std::string)> on_error,
      std::function<void(NodeId, Effects)> deliver);

  // The engine that stands for `node`, or null when a node does (or nothing does).
  ServiceEngine* For(NodeId node) const;
  bool any() const { return mapping_ != nullptr || broker_ != nullptr; }
  // No message handed to an engine is still waiting for its answer (chatd's drain waits for it,
  // so that the offline reports of a shutdown reach Redis).
  bool idle() const {
    return (redis_ == nullptr || redis_->idle()) && (broker_ == nullptr || broker_->idle());
  }
  // Prometheus lines for the engines' counters (empty without engines).
  std::string RenderMetrics() const;

 private:
  std::unique_ptr<RedisLink> redis_;
  std::unique_ptr<RedisUserMapping> mapping_;  // after redis_, which they use
  std::unique_ptr<RedisPresence> presence_;
  std::unique_ptr<RedisNotification> notification_;
  std::unique_ptr<RabbitQueueBroker> broker_;
  NodeId mapping_node_, presence_node_, notification_node_, broker_node_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_
