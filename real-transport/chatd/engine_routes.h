// Which of the process's service messages go to an engine instead of a node (docs/engines.md).
//
// With --redis, the user mapping (node n3), presence (n4) and notification (n5) are a
// RedisUserMapping, a RedisPresence and a RedisNotification in every process: no process hosts
// them, and each process hands its own chat server's messages for them to its engines. Without
// engines every lookup here answers null and chatd routes as before.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/chatd.h"
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
  // and the core repairs them), but is logged by the caller from `Describe`.
  static absl::StatusOr<std::unique_ptr<EngineRoutes>> Open(const ChatdOptions& options,
                                                            boost::asio::io_context& io,
                                                            const Topology& topology);

  // The engine that stands for `node`, or null when a node does (or nothing does).
  ServiceEngine* For(NodeId node) const;
  bool any() const { return mapping_ != nullptr; }
  // Why an engine did not answer at start (empty when all did): chatd starts anyway, logs it,
  // and the link keeps trying; until then the engine's messages are lost.
  const std::string& start_warning() const { return start_warning_; }
  // Prometheus lines for the engines' counters (empty without engines).
  std::string RenderMetrics() const;

 private:
  std::unique_ptr<RedisLink> redis_;
  std::unique_ptr<RedisUserMapping> mapping_;  // after redis_, which they use
  std::unique_ptr<RedisPresence> presence_;
  std::unique_ptr<RedisNotification> notification_;
  NodeId mapping_node_, presence_node_, notification_node_;
  std::string start_warning_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_ENGINE_ROUTES_H_
