// The queue broker: one ordered incoming queue per chat server (ForwardingStrategy::kQueue).
//
// The seed design's "queue as middleware": a chat server publishes what it forwards to another
// server into that server's queue, and the broker hands the queue to its consumer (the
// destination server) in order, one entry at a time, at least once. The seed calls the queue "a
// devil of its own"; these are its problems, each with a designed answer:
//  - A consumer that is down must not let its queue pile up: its users reconnect elsewhere and
//    catch up from the store. An in-flight entry unacked for queue_consumer_timeout_us marks the
//    consumer dead: it is unsubscribed and its queue purged (dropped_dead_consumer). While a
//    destination has no subscribed consumer, entries older than queue_stale_after_us are dropped
//    every tick (dropped_stale).
//  - A consumer that rejoins (QueueSubscribe with a new incarnation) lost whatever it had in
//    flight, and its users have caught up: entries older than queue_stale_after_us are discarded
//    (dropped_stale) and delivery restarts from the oldest remaining entry.
//  - A full queue (broker_queue_max) drops its oldest waiting entry (dropped_overflow). Clients
//    detect the gap through prev_msg_id and catch up.
//  - A lost QueueDeliver or QueueAck is repaired by redelivery after request_timeout_us, so the
//    consumer must tolerate duplicates (it acks every QueueDeliver, duplicates included).
//
// Consumer contract: subscribe on start with a fresh incarnation; ack every QueueDeliver with its
// seq; re-send QueueSubscribe (same incarnation) periodically, because a consumer presumed dead
// (e.g. behind a partition) receives nothing until it subscribes again. A subscribe with the
// known incarnation is cheap: it changes nothing but the subscribed bit.
//
// The broker's state is not durable: a crash loses every queue (and restarts seqs at 1), which
// clients repair by catching up from the store.
#ifndef CHATLAB_CORE_QUEUE_BROKER_H_
#define CHATLAB_CORE_QUEUE_BROKER_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/container/btree_map.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab {

class QueueBroker : public Node {
 public:
  // The housekeeping timer (redelivery, dead consumers, stale entries), every server_tick_us.
  static constexpr uint64_t kTickTimerId = 1;
  // Default for destinations_max: one queue per chat server of the deployment.
  static constexpr size_t kDestinationsMaxDefault = size_t{1} << 16;

  struct Stats {
    uint64_t published = 0;              // QueuePublish accepted into a queue
    uint64_t subscribes = 0;             // QueueSubscribe handled
    uint64_t restarts = 0;               // QueueSubscribe with a new incarnation
    uint64_t delivered = 0;              // first deliveries of an entry (QueueDeliver)
    uint64_t redelivered = 0;            // QueueDeliver repeated after request_timeout_us
    uint64_t acked = 0;                  // QueueAck for the in-flight entry
    uint64_t stale_acks = 0;             // QueueAck for anything else (duplicate, late, unknown)
    uint64_t dropped_overflow = 0;       // entries dropped at broker_queue_max
    uint64_t dropped_stale = 0;          // entries older than queue_stale_after_us dropped
    uint64_t dropped_dead_consumer = 0;  // entries purged with a consumer presumed dead
    uint64_t consumers_dead = 0;         // consumers presumed dead
    uint64_t queues_refused = 0;         // publish/subscribe needing a queue past destinations_max
    uint64_t depth_max = 0;              // the most entries any one queue ever held
    // Message types this node does not handle, a publish to NodeId(), and a subscribe or ack
    // from an unknown sender.
    uint64_t unexpected_messages = 0;
  };

  // destinations_max bounds the number of queues. A publish or subscribe naming a destination
  // without a queue when destinations_max queues exist is refused (queues_refused; a refused
  // publish drops its batch). REQUIRES: destinations_max > 0, config.server_tick_us > 0.
  explicit QueueBroker(const NodeOptions& options,
                       size_t destinations_max = kDestinationsMaxDefault);

  // Node. Start arms the tick timer; OnTimer ignores ids other than kTickTimerId and ticks that
  // fire before the armed time (duplicates).
  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  // Entries in dest's queue, the in-flight one included (0 for an unknown destination).
  size_t depth(NodeId dest) const;
  // Whether dest's consumer is subscribed.
  bool subscribed(NodeId dest) const;
  // The seq of dest's in-flight entry, or 0 if nothing is in flight.
  uint64_t in_flight_seq(NodeId dest) const;

 private:
  struct Entry {
    uint64_t seq = 0;
    TimeUs enqueued_at_us = 0;  // on the broker's clock
    ForwardBatch batch;
  };
  struct DestQueue {
    // Oldest first; seqs strictly ascending. Invariant: size() <= config.broker_queue_max.
    std::deque<Entry> entries;
    // Invariant: greater than every seq ever assigned in this queue; seqs start at 1.
    uint64_t seq_next = 1;
    bool subscribed = false;
    // The consumer's last incarnation; meaningful only when incarnation_known.
    bool incarnation_known = false;
    uint64_t incarnation = 0;
    // 0 when nothing is in flight. Invariant: when non-zero, subscribed is true and
    // entries.front().seq == in_flight_seq (only the head is ever in flight).
    uint64_t in_flight_seq = 0;
    TimeUs in_flight_since_us = 0;  // first delivery of the in-flight entry
    TimeUs sent_at_us = 0;          // latest (re)delivery of the in-flight entry
  };

  void OnQueuePublish(TimeUs now, const QueuePublish& m, Effects& out);
  void OnQueueSubscribe(TimeUs now, NodeId from, const QueueSubscribe& m, Effects& out);
  void OnQueueAck(TimeUs now, NodeId from, const QueueAck& m, Effects& out);
  // Housekeeping of one queue: dead consumer, redelivery, stale entries.
  void TickQueue(TimeUs now, NodeId dest, DestQueue& q, Effects& out);
  // Sends the head if the consumer is subscribed and nothing is in flight.
  void DeliverHead(TimeUs now, NodeId dest, DestQueue& q, Effects& out);
  // Makes room for one entry. REQUIRES: q.entries not empty.
  void DropOldest(DestQueue& q);
  // Drops entries older than queue_stale_after_us. REQUIRES: nothing in flight.
  void DropStale(TimeUs now, DestQueue& q);
  // The queue of dest, created if absent; nullptr when absent and at destinations_max_.
  DestQueue* FindOrCreate(NodeId dest);
  void ArmTick(TimeUs now, Effects& out);
  void CheckInvariants(const DestQueue& q) const;

  const NodeOptions options_;
  // Invariant: destinations_max_ > 0 and queues_.size() <= destinations_max_.
  const size_t destinations_max_;
  Stats stats_;
  // Ordered by destination so that ticks visit queues (and send) in ascending NodeId order.
  // Queues are never erased: seq_next and the incarnation must outlive a purge, so that a late
  // ack cannot match a newer entry.
  absl::btree_map<NodeId, DestQueue> queues_;
  // When the armed tick is due; a tick firing earlier is a duplicate and is ignored.
  TimeUs tick_at_us_ = 0;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_QUEUE_BROKER_H_
