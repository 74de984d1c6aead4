#include "core/queue_broker.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <variant>

namespace chatlab {

QueueBroker::QueueBroker(const NodeOptions& options, size_t destinations_max)
    : options_(options), destinations_max_(destinations_max) {
  assert(options_.self.valid());
  assert(destinations_max_ > 0);
  assert(options_.config.server_tick_us > 0);
}

void QueueBroker::Start(TimeUs now, Effects& out) { ArmTick(now, out); }

void QueueBroker::ArmTick(TimeUs now, Effects& out) {
  tick_at_us_ = now + options_.config.server_tick_us;
  assert(tick_at_us_ > now);
  out.push_back(ArmTimer{kTickTimerId, tick_at_us_});
}

void QueueBroker::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<QueuePublish>(&msg)) {
    OnQueuePublish(now, *m, out);
  } else if (const auto* m = std::get_if<QueueSubscribe>(&msg)) {
    OnQueueSubscribe(now, from, *m, out);
  } else if (const auto* m = std::get_if<QueueAck>(&msg)) {
    OnQueueAck(now, from, *m, out);
  } else {
    stats_.unexpected_messages++;
  }
  assert(queues_.size() <= destinations_max_);
}

void QueueBroker::OnTimer(TimeUs now, uint64_t timer_id, Effects& out) {
  if (timer_id != kTickTimerId || now < tick_at_us_) {
    return;  // not ours, or a duplicate firing of an earlier tick
  }
  for (auto& [dest, q] : queues_) {
    TickQueue(now, dest, q, out);
    CheckInvariants(q);
  }
  ArmTick(now, out);
}

size_t QueueBroker::depth(NodeId dest) const {
  auto it = queues_.find(dest);
  return it == queues_.end() ? 0 : it->second.entries.size();
}

bool QueueBroker::subscribed(NodeId dest) const {
  auto it = queues_.find(dest);
  return it != queues_.end() && it->second.subscribed;
}

uint64_t QueueBroker::in_flight_seq(NodeId dest) const {
  auto it = queues_.find(dest);
  return it == queues_.end() ? 0 : it->second.in_flight_seq;
}

QueueBroker::DestQueue* QueueBroker::FindOrCreate(NodeId dest) {
  assert(dest.valid());
  auto it = queues_.find(dest);
  if (it != queues_.end()) {
    return &it->second;
  }
  if (queues_.size() >= destinations_max_) {
    stats_.queues_refused++;
    return nullptr;
  }
  return &queues_[dest];
}

void QueueBroker::OnQueuePublish(TimeUs now, const QueuePublish& m, Effects& out) {
  if (!m.dest.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  DestQueue* q = FindOrCreate(m.dest);
  if (q == nullptr) {
    return;
  }
  stats_.published++;
  const size_t entries_max = options_.config.broker_queue_max;
  if (entries_max == 0) {
    stats_.dropped_overflow++;  // a queue that may hold nothing drops every entry
    return;
  }
  if (q->entries.size() >= entries_max) {
    DropOldest(*q);
  }
  assert(q->entries.size() < entries_max);
  q->entries.push_back(Entry{q->seq_next++, now, m.batch});
  stats_.depth_max = std::max<uint64_t>(stats_.depth_max, q->entries.size());
  DeliverHead(now, m.dest, *q, out);
  CheckInvariants(*q);
}

void QueueBroker::DropOldest(DestQueue& q) {
  assert(!q.entries.empty());
  // The in-flight entry is already at the consumer and its ack must still match, so the oldest
  // waiting entry goes. Only when the in-flight entry is alone (broker_queue_max == 1) does it go
  // itself; its ack then counts as stale.
  auto victim = q.entries.begin();
  if (q.in_flight_seq != 0) {
    if (q.entries.size() > 1) {
      victim = std::next(victim);
    } else {
      q.in_flight_seq = 0;
    }
  }
  q.entries.erase(victim);
  stats_.dropped_overflow++;
}

void QueueBroker::OnQueueSubscribe(TimeUs now, NodeId from, const QueueSubscribe& m, Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  DestQueue* q = FindOrCreate(from);
  if (q == nullptr) {
    return;
  }
  stats_.subscribes++;
  q->subscribed = true;
  if (!q->incarnation_known || q->incarnation != m.incarnation) {
    // The consumer (re)started: what it had in flight died with it, and its users have
    // reconnected and caught up from the store, so old entries would only be noise. Recent ones
    // may postdate the catch-up and are kept, in order, starting over from the oldest.
    q->incarnation_known = true;
    q->incarnation = m.incarnation;
    q->in_flight_seq = 0;
    stats_.restarts++;
    DropStale(now, *q);
  }
  DeliverHead(now, from, *q, out);
  CheckInvariants(*q);
}

void QueueBroker::OnQueueAck(TimeUs now, NodeId from, const QueueAck& m, Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  auto it = queues_.find(from);
  if (it == queues_.end() || it->second.in_flight_seq == 0 || it->second.in_flight_seq != m.seq) {
    // A duplicate ack, an ack for a redelivered or dropped entry, or from a purged consumer.
    stats_.stale_acks++;
    return;
  }
  DestQueue& q = it->second;
  assert(q.entries.front().seq == m.seq);
  q.entries.pop_front();
  q.in_flight_seq = 0;
  stats_.acked++;
  DeliverHead(now, from, q, out);
  CheckInvariants(q);
}

void QueueBroker::TickQueue(TimeUs now, NodeId dest, DestQueue& q, Effects& out) {
  const ProtocolConfig& config = options_.config;
  if (q.in_flight_seq != 0) {
    assert(q.subscribed);
    if (now - q.in_flight_since_us > config.queue_consumer_timeout_us) {
      // Presumed dead: its users reconnect elsewhere and catch up from the store, so nothing
      // should pile up for it. It comes back by subscribing again.
      stats_.consumers_dead++;
      stats_.dropped_dead_consumer += q.entries.size();
      q.entries.clear();
      q.in_flight_seq = 0;
      q.subscribed = false;
    } else if (now - q.sent_at_us > config.request_timeout_us) {
      // The deliver or its ack was lost (or the consumer is slow): at least once, again.
      const Entry& head = q.entries.front();
      q.sent_at_us = now;
      stats_.redelivered++;
      out.push_back(SendToNode{dest, QueueDeliver{head.seq, head.enqueued_at_us, head.batch}});
    }
  }
  if (!q.subscribed) {
    DropStale(now, q);
  }
}

void QueueBroker::DeliverHead(TimeUs now, NodeId dest, DestQueue& q, Effects& out) {
  if (!q.subscribed || q.in_flight_seq != 0 || q.entries.empty()) {
    return;
  }
  const Entry& head = q.entries.front();
  q.in_flight_seq = head.seq;
  q.in_flight_since_us = now;
  q.sent_at_us = now;
  stats_.delivered++;
  out.push_back(SendToNode{dest, QueueDeliver{head.seq, head.enqueued_at_us, head.batch}});
}

void QueueBroker::DropStale(TimeUs now, DestQueue& q) {
  assert(q.in_flight_seq == 0);
  const TimeUs stale_after_us = options_.config.queue_stale_after_us;
  // Not just a scan of the front: enqueue times follow the broker's clock, which may step back.
  const auto first_dropped =
      std::remove_if(q.entries.begin(), q.entries.end(),
                     [&](const Entry& e) { return now - e.enqueued_at_us > stale_after_us; });
  stats_.dropped_stale += static_cast<uint64_t>(std::distance(first_dropped, q.entries.end()));
  q.entries.erase(first_dropped, q.entries.end());
}

void QueueBroker::CheckInvariants(const DestQueue& q) const {
  assert(q.entries.size() <= options_.config.broker_queue_max);
  assert(q.entries.empty() || q.entries.back().seq < q.seq_next);
  assert(q.in_flight_seq == 0 || q.subscribed);
  assert(q.in_flight_seq == 0 || !q.entries.empty());
  assert(q.in_flight_seq == 0 || q.entries.front().seq == q.in_flight_seq);
  (void)q;
}

}  // namespace chatlab
