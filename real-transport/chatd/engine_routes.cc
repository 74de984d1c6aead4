#include "real-transport/chatd/engine_routes.h"

#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"

namespace chatlab::real {

absl::StatusOr<std::unique_ptr<EngineRoutes>> EngineRoutes::Open(
    const ChatdOptions& options, boost::asio::io_context& io, const Topology& topology, NodeId self,
    std::function<void(std::string)> on_error, std::function<void(NodeId, Effects)> deliver) {
  auto routes = std::make_unique<EngineRoutes>();
  if (!options.rabbitmq.empty()) {
    if (options.config.forwarding != ForwardingStrategy::kQueue) {
      return absl::InvalidArgumentError(
          absl::StrCat("--rabbitmq holds the queue broker of forwarding=queue, and forwarding is ",
                       std::string(ForwardingStrategyName(options.config.forwarding))));
    }
    auto address = ParseRabbitUrl(options.rabbitmq);
    if (!address.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--rabbitmq: ", address.status().message()));
    }
    if (absl::Status s = RabbitQueueBroker::Validate(options.config); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--rabbitmq: ", s.message()));
    }
    RabbitLink::Options link;
    link.address = *address;
    link.on_error = on_error;
    routes->broker_node_ = topology.broker;
    routes->broker_ = std::make_unique<RabbitQueueBroker>(
        io, std::move(link), RabbitQueueBroker::kPrefix, self, options.config,
        [deliver, from = topology.broker](Effects out) { deliver(from, std::move(out)); });
  }
  if (options.redis.empty()) return routes;
  auto address = ParseHostPort(options.redis);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--redis ", options.redis, ": ", address.status().message()));
  }
  RedisLink::Options link;
  link.address = *address;
  link.on_error = std::move(on_error);
  link.scripts = RedisUserMapping::Scripts();
  for (std::string& s : RedisPresence::Scripts()) link.scripts.push_back(std::move(s));
  for (std::string& s : RedisNotification::Scripts()) link.scripts.push_back(std::move(s));
  routes->redis_ = std::make_unique<RedisLink>(io, link);
  routes->mapping_ =
      std::make_unique<RedisUserMapping>(*routes->redis_, options.redis_prefix, options.config);
  routes->mapping_node_ = topology.mapping;
  if (topology.presence.valid()) {
    routes->presence_ =
        std::make_unique<RedisPresence>(*routes->redis_, options.redis_prefix, options.config);
    routes->presence_node_ = topology.presence;
  }
  if (topology.notification.valid()) {
    routes->notification_ =
        std::make_unique<RedisNotification>(*routes->redis_, options.redis_prefix, options.config);
    routes->notification_node_ = topology.notification;
  }
  return routes;
}

ServiceEngine* EngineRoutes::For(NodeId node) const {
  if (mapping_ != nullptr && node == mapping_node_) return mapping_.get();
  if (presence_ != nullptr && node == presence_node_) return presence_.get();
  if (notification_ != nullptr && node == notification_node_) return notification_.get();
  if (broker_ != nullptr && node == broker_node_) return broker_.get();
  return nullptr;
}

std::string EngineRoutes::RenderMetrics() const {
  // Prometheus's text format wants one TYPE line per family and a family's samples together.
  absl::btree_map<std::string, std::string> families;
  const auto line = [&](const char* name, const char* labels, uint64_t value) {
    absl::StrAppend(&families[name], name, labels, " ", value, "\n");
  };
  const auto render = [&] {
    std::string out;
    for (const auto& [name, samples] : families) {
      absl::StrAppend(&out, "# TYPE ", name, " counter\n", samples);
    }
    return out;
  };
  if (broker_ != nullptr) {
    const RabbitLink::Stats& l = broker_->link_stats();
    const RabbitQueueBroker::Stats& b = broker_->stats();
    line("chatlab_engine_connects_total", "{engine=\"rabbitmq\"}", l.connects.load());
    line("chatlab_engine_errors_total", "{engine=\"rabbitmq\"}", l.errors.load());
    line("chatlab_engine_messages_total", "{service=\"broker\"}", b.messages);
    line("chatlab_engine_messages_lost_total", "{service=\"broker\"}", l.publishes_lost.load());
    line("chatlab_engine_deliveries_total", "{service=\"broker\"}", b.delivered);
    line("chatlab_engine_acks_total", "{service=\"broker\"}", l.acked.load());
  }
  if (mapping_ == nullptr) return render();
  const RedisLink::Stats& l = redis_->stats();
  const RedisUserMapping::Stats& m = mapping_->stats();
  line("chatlab_engine_calls_total", "{engine=\"redis\"}", l.calls.load());
  line("chatlab_engine_errors_total", "{engine=\"redis\"}", l.errors.load());
  line("chatlab_engine_connects_total", "{engine=\"redis\"}", l.connects.load());
  line("chatlab_engine_messages_total", "{service=\"mapping\"}", m.messages);
  line("chatlab_engine_messages_lost_total", "{service=\"mapping\"}", m.failed);
  line("chatlab_engine_displacements_total", "{service=\"mapping\"}", m.displacements);
  if (presence_ != nullptr) {
    const RedisPresence::Stats& p = presence_->stats();
    line("chatlab_engine_messages_total", "{service=\"presence\"}", p.messages);
    line("chatlab_engine_messages_lost_total", "{service=\"presence\"}", p.failed);
    line("chatlab_engine_pushes_total", "{service=\"presence\"}", p.pushes);
  }
  if (notification_ != nullptr) {
    const RedisNotification::Stats& n = notification_->stats();
    line("chatlab_engine_messages_total", "{service=\"notification\"}", n.messages);
    line("chatlab_engine_messages_lost_total", "{service=\"notification\"}", n.failed);
    line("chatlab_engine_pushes_total", "{service=\"notification\"}", n.pushed);
    line("chatlab_engine_deduplicated_total", "{service=\"notification\"}", n.deduplicated);
  }
  return render();
}

}  // namespace chatlab::real
