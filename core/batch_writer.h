// The batch writer: the seed design's "queue + dedicated batch writer" in front of the store.
//
// With WritePath::kBatched a chat server does not write each message to the store itself. It
// sends WriterEnqueue to this node, which appends the message to its queue and acks at once
// (WriterEnqueueResult kOk: the queue is modeled as durable, so the server may ack the client).
// The store write happens later, in a batch of up to config.writer_batch_max messages. That gap
// between the ack and the write is the design's read-after-write hazard: a client that reads
// right after its ack may not see its own message yet.
//
// Flushing:
//   * by size: as soon as writer_batch_max items are waiting (and no batch is in flight);
//   * by timer: writer_flush_window_us after the oldest waiting item was enqueued (a timer is
//     armed when an item enters an empty waiting buffer).
// A flush sends one StoreAppendBatch (items in FIFO order) to topology.store. At most one batch
// is in flight, so batches reach the store in queue order (a serial writer keeps each
// conversation's order). Items arriving meanwhile wait; when the result arrives the writer
// flushes again at once if enough items wait or the oldest one's window has passed.
//
// Retry: a periodic tick (config.server_tick_us, armed in Start) resends the in-flight batch
// under a new request id when no result came within config.request_timeout_us. A result for any
// attempt of the in-flight batch commits it (the store answered for exactly these messages; with
// dedup on, a second attempt's outcomes are marked duplicate); a result for an earlier,
// already committed batch, or for an unknown id, is ignored (results_ignored). Resending can
// store a message twice when the store's dedup is off: that is the broken design the oracle
// must catch.
//
// Commit: for each result the writer sends every origin server one WriterCommitted with a
// CommittedItem{request_id, outcome} per item of that origin (in batch order), origins in
// ascending NodeId order, then drops the items from the queue.
//
// Limits: config.writer_queue_max items (waiting + in flight); an enqueue beyond it is refused
// with WriterEnqueueResult kResourceExhausted (the server then refuses the client's message,
// which the client retries).
//
// Durability: the queue is the ack's promise, so it is a log on the writer's disk. An accepted
// item is emitted as Persist{PersistQueued} before its kOk answer, and a committed batch as
// Persist{PersistDequeued} (core/effects.h). After a crash, Restore replays the log and Start
// flushes what it holds again at once: the batch that was in flight is resent (with dedup on the
// store answers duplicates for what it already stored, which origins deliver again: the first
// answer's fan-out cannot be presumed). An
// environment that keeps no disk for the writer must not claim durability for its acks (chatd
// refuses the batched path for that reason).
//
// Duplicated WriterEnqueue messages (the network may duplicate) are queued twice; the store's
// dedup turns the second into a duplicate outcome, and the origin receives both items.
#ifndef CHATLAB_CORE_BATCH_WRITER_H_
#define CHATLAB_CORE_BATCH_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/status/status.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab {

class BatchWriter : public Node {
 public:
  static constexpr uint64_t kTickTimerId = 1;   // periodic retry check
  static constexpr uint64_t kFlushTimerId = 2;  // a waiting buffer's window may have passed

  struct Stats {
    uint64_t enqueued = 0;           // WriterEnqueue accepted
    uint64_t rejected_full = 0;      // WriterEnqueue refused at writer_queue_max
    uint64_t batches_sent = 0;       // distinct batches flushed (retries not included)
    uint64_t items_flushed = 0;      // items in those batches
    uint64_t flushes_by_size = 0;    // flushes because writer_batch_max items waited
    uint64_t flushes_by_timer = 0;   // flushes because the oldest item's window passed
    uint64_t retries = 0;            // resends of an in-flight batch after request_timeout_us
    uint64_t batches_committed = 0;  // results that committed a batch
    uint64_t results_ignored = 0;    // results for no in-flight attempt (late duplicates)
    uint64_t results_malformed = 0;  // results whose outcome count did not match the batch
    uint64_t queue_depth_max = 0;    // the largest queue_depth() seen
    // Sum over flushed items of (first send time - enqueue time), clamped at 0 per item;
    // mean batching delay = wait_us_total / items_flushed.
    uint64_t wait_us_total = 0;
    uint64_t unexpected_messages = 0;
    uint64_t records_restored = 0;   // PersistRecords replayed through Restore
  };

  // REQUIRES: config.writer_batch_max > 0, config.request_timeout_us > 0,
  // config.server_tick_us > 0, config.writer_flush_window_us >= 0.
  explicit BatchWriter(const NodeOptions& options);

  void Start(TimeUs now, Effects& out) override;
  // Rebuilds the queue from one durable record of an earlier incarnation, before Start.
  // REQUIRES: records in the order they were emitted. kInvalidArgument for a record this writer
  // could not have emitted (corrupt storage, or a dequeue of more items than are queued).
  absl::Status Restore(const PersistRecord& record);
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  // Items held: waiting plus in flight. Invariant: <= config.writer_queue_max.
  size_t queue_depth() const { return queue_.size(); }
  // Items in the batch in flight (0 when none).
  size_t in_flight() const { return in_flight_count_; }
  // Items waiting for a flush.
  size_t waiting() const { return queue_.size() - in_flight_count_; }

 private:
  struct Item {
    NodeId origin;            // the chat server that enqueued it
    uint64_t request_id = 0;  // the origin's WriterEnqueue request id
    ChatMessage message;
    TimeUs enqueued_at_us = 0;
  };

  void OnWriterEnqueue(TimeUs now, NodeId from, const WriterEnqueue& m, Effects& out);
  void OnStoreAppendBatchResult(TimeUs now, const StoreAppendBatchResult& m, Effects& out);
  void OnTick(TimeUs now, Effects& out);
  // Flushes when no batch is in flight and writer_batch_max items wait or the window passed.
  void MaybeFlush(TimeUs now, Effects& out);
  // Moves up to writer_batch_max waiting items into flight and sends them.
  void Flush(TimeUs now, bool by_size, Effects& out);
  // Sends the in-flight items as a StoreAppendBatch under a new request id.
  void SendBatch(TimeUs now, Effects& out);
  // When the waiting buffer's window ends. REQUIRES: waiting() > 0.
  TimeUs WindowDeadline() const;

  NodeOptions options_;
  // Every item not yet committed, FIFO. The first in_flight_count_ items are the batch in
  // flight. Invariant: size <= config.writer_queue_max.
  std::deque<Item> queue_;
  // Items of the batch in flight. Invariant: <= min(queue_.size(), writer_batch_max); 0 means
  // no batch in flight.
  size_t in_flight_count_ = 0;
  // The next request id to use. Strictly increasing; never reused.
  uint64_t request_id_next_ = 1;
  // Request ids of the in-flight batch's first and latest attempts (meaningful only while
  // in_flight_count_ > 0). Every id in [first, latest] is an attempt of this batch.
  uint64_t batch_request_id_first_ = 0;
  uint64_t batch_request_id_last_ = 0;
  // When the latest attempt was sent, for the timeout.
  TimeUs batch_sent_at_us_ = 0;
  Stats stats_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_BATCH_WRITER_H_
