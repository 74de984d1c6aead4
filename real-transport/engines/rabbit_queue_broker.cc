#include "real-transport/engines/rabbit_queue_broker.h"

#include <iterator>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "real-transport/http_route.h"

namespace chatlab::real {

absl::Status RabbitQueueBroker::Validate(const ProtocolConfig& config) {
  if (config.broker_queue_max < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "broker_queue_max ", config.broker_queue_max,
        ": the queue broker on RabbitMQ needs at least 2 (the entry in flight and one waiting: "
        "RabbitMQ's x-max-length counts only waiting entries)"));
  }
  if (config.queue_stale_after_us < 1000 || config.queue_consumer_timeout_us < 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queue_stale_after_us ", config.queue_stale_after_us, ", queue_consumer_timeout_us ",
        config.queue_consumer_timeout_us,
        ": the queue broker on RabbitMQ needs both at least 1 ms (x-message-ttl and x-expires "
        "are in milliseconds)"));
  }
  return absl::OkStatus();
}

RabbitLink::QueueArgs RabbitQueueBroker::Args(const ProtocolConfig& config) {
  RabbitLink::QueueArgs a;
  a.expires_ms = static_cast<int64_t>(config.queue_consumer_timeout_us / 1000);
  a.message_ttl_ms = static_cast<int64_t>(config.queue_stale_after_us / 1000);
  // The model's bound counts the entry in flight; RabbitMQ's counts only the waiting ones.
  a.max_length = static_cast<int64_t>(config.broker_queue_max) - 1;
  return a;
}

std::string RabbitQueueBroker::QueueName(const std::string& prefix, NodeId server,
                                         const ProtocolConfig& config) {
  const RabbitLink::QueueArgs a = Args(config);
  return absl::StrCat(prefix, "q.", server.value, ".e", a.expires_ms, ".t", a.message_ttl_ms, ".m",
                      a.max_length);
}

RabbitQueueBroker::RabbitQueueBroker(boost::asio::io_context& io, RabbitLink::Options link,
                                     std::string prefix, NodeId self, const ProtocolConfig& config,
                                     std::function<void(Effects)> deliver)
    : prefix_(std::move(prefix)), self_(self), config_(config), deliver_(std::move(deliver)) {
  link.queue = QueueName(prefix_, self_, config_);
  link.args = Args(config_);
  link_ = std::make_unique<RabbitLink>(
      io, std::move(link), [this](RabbitLink::Delivery d) { OnDelivery(std::move(d)); });
}

void RabbitQueueBroker::Submit(TimeUs now, NodeId from, Message msg, Done done) {
  stats_.messages++;
  if (auto* m = std::get_if<QueuePublish>(&msg); m != nullptr && m->dest.valid()) {
    stats_.published++;
    // The body is the QueueDeliver the consumer will get, stamped with the publisher's clock
    // (the model stamps the broker's); seq is the consumer's broker's to assign.
    link_->Publish(QueueName(prefix_, m->dest, config_),
                   Encode(QueueDeliver{0, now, std::move(m->batch)}));
  } else if (std::holds_alternative<QueueSubscribe>(msg) && from == self_) {
    // Any incarnation: a chatd process's chat server lives as long as its link, and what a
    // restarted consumer must not see is RabbitMQ's x-message-ttl's to drop.
    stats_.subscribes++;
    link_->Consume();
  } else if (auto* a = std::get_if<QueueAck>(&msg); a != nullptr && from == self_) {
    auto it = unacked_.find(a->seq);
    if (it == unacked_.end()) {
      stats_.stale_acks++;
    } else {
      stats_.acked++;
      link_->Ack(it->second.first, it->second.second);
      unacked_.erase(it);
    }
  } else {
    stats_.unexpected++;
  }
  done({});
}

void RabbitQueueBroker::OnDelivery(RabbitLink::Delivery d) {
  // Deliveries of an older connection can no longer be acked (RabbitMQ requeued them).
  for (auto it = unacked_.begin(); it != unacked_.end();) {
    it = it->second.first < d.generation ? unacked_.erase(it) : std::next(it);
  }
  // The limits of any node frame between processes, as a peer link's (a body is one forward).
  auto decoded = Decode(d.body, NodeFrameLimits());
  if (!decoded.ok() || !std::holds_alternative<QueueDeliver>(*decoded)) {
    stats_.malformed++;
    link_->Ack(d.generation, d.tag);  // dropped, or it would hold the queue for ever
    return;
  }
  QueueDeliver deliver = std::get<QueueDeliver>(*std::move(decoded));
  deliver.seq = seq_next_++;
  unacked_[deliver.seq] = {d.generation, d.tag};
  stats_.delivered++;
  Effects out;
  out.push_back(SendToNode{self_, std::move(deliver)});
  deliver_(std::move(out));
}

}  // namespace chatlab::real
