#include "core/batch_writer.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/btree_map.h"

namespace chatlab {

BatchWriter::BatchWriter(const NodeOptions& options) : options_(options) {
  assert(options_.config.writer_batch_max > 0);
  assert(options_.config.request_timeout_us > 0);
  assert(options_.config.server_tick_us > 0);
  assert(options_.config.writer_flush_window_us >= 0);
}

void BatchWriter::Start(TimeUs now, Effects& out) {
  request_id_next_ = FirstRequestId(options_.seed, now);
  out.push_back(ArmTimer{kTickTimerId, now + options_.config.server_tick_us});
  // A restored queue is flushed at once: its items were acked long ago.
  if (waiting() > 0) out.push_back(ArmTimer{kFlushTimerId, now});
}

absl::Status BatchWriter::Restore(const PersistRecord& record) {
  assert(in_flight_count_ == 0);
  if (const auto* q = std::get_if<PersistQueued>(&record)) {
    if (!q->origin.valid() || queue_.size() >= options_.config.writer_queue_max) {
      return absl::InvalidArgumentError("restore: queued item without origin, or queue over max");
    }
    queue_.push_back(Item{q->origin, q->request_id, q->message, q->enqueued_at_us});
  } else if (const auto* d = std::get_if<PersistDequeued>(&record)) {
    if (d->count > queue_.size()) {
      return absl::InvalidArgumentError("restore: dequeue of more items than are queued");
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(d->count));
  } else {
    return absl::InvalidArgumentError("restore: a store's record is not the batch writer's");
  }
  stats_.records_restored++;
  return absl::OkStatus();
}

void BatchWriter::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<WriterEnqueue>(&msg)) {
    OnWriterEnqueue(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreAppendBatchResult>(&msg)) {
    OnStoreAppendBatchResult(now, *m, out);
  } else {
    stats_.unexpected_messages++;
  }
}

void BatchWriter::OnTimer(TimeUs now, uint64_t timer_id, Effects& out) {
  if (timer_id == kTickTimerId) {
    OnTick(now, out);
  } else if (timer_id == kFlushTimerId) {
    MaybeFlush(now, out);  // a stale flush timer finds the window not passed and does nothing
  }
}

void BatchWriter::OnWriterEnqueue(TimeUs now, NodeId from, const WriterEnqueue& m, Effects& out) {
  if (!from.valid()) {
    // No origin to send the commit to: not a request this writer can serve.
    stats_.unexpected_messages++;
    return;
  }
  if (queue_.size() >= options_.config.writer_queue_max) {
    stats_.rejected_full++;
    out.push_back(SendToNode{from, WriterEnqueueResult{m.request_id, Code::kResourceExhausted}});
    return;
  }
  const bool buffer_was_empty = waiting() == 0;
  queue_.push_back(Item{from, m.request_id, m.message, now});
  stats_.enqueued++;
  stats_.queue_depth_max = std::max<uint64_t>(stats_.queue_depth_max, queue_.size());
  assert(queue_.size() <= options_.config.writer_queue_max);
  // The ack goes out before any store write: the queue's log is the durability point.
  out.push_back(Persist{PersistQueued{from, m.request_id, m.message, now}});
  out.push_back(SendToNode{from, WriterEnqueueResult{m.request_id, Code::kOk}});
  if (buffer_was_empty) {
    out.push_back(ArmTimer{kFlushTimerId, now + options_.config.writer_flush_window_us});
  }
  MaybeFlush(now, out);
}

TimeUs BatchWriter::WindowDeadline() const {
  assert(waiting() > 0);
  return queue_[in_flight_count_].enqueued_at_us + options_.config.writer_flush_window_us;
}

void BatchWriter::MaybeFlush(TimeUs now, Effects& out) {
  if (in_flight_count_ > 0) return;  // one batch at a time; the result handler flushes next
  if (waiting() == 0) return;
  if (waiting() >= options_.config.writer_batch_max) {
    Flush(now, /*by_size=*/true, out);
  } else if (now >= WindowDeadline()) {
    Flush(now, /*by_size=*/false, out);
  }
}

void BatchWriter::Flush(TimeUs now, bool by_size, Effects& out) {
  assert(in_flight_count_ == 0);
  assert(waiting() > 0);
  const size_t count = std::min<size_t>(queue_.size(), options_.config.writer_batch_max);
  in_flight_count_ = count;
  for (size_t i = 0; i < count; ++i) {
    stats_.wait_us_total +=
        static_cast<uint64_t>(std::max<TimeUs>(0, now - queue_[i].enqueued_at_us));
  }
  stats_.items_flushed += count;
  stats_.batches_sent++;
  if (by_size) {
    stats_.flushes_by_size++;
  } else {
    stats_.flushes_by_timer++;
  }
  batch_request_id_first_ = request_id_next_;
  SendBatch(now, out);
  assert(batch_request_id_last_ == batch_request_id_first_);
}

void BatchWriter::SendBatch(TimeUs now, Effects& out) {
  assert(in_flight_count_ > 0);
  assert(in_flight_count_ <= queue_.size());
  batch_request_id_last_ = request_id_next_++;
  batch_sent_at_us_ = now;
  StoreAppendBatch batch;
  batch.request_id = batch_request_id_last_;
  batch.messages.reserve(in_flight_count_);
  for (size_t i = 0; i < in_flight_count_; ++i) batch.messages.push_back(queue_[i].message);
  out.push_back(SendToNode{options_.topology.store, std::move(batch)});
}

void BatchWriter::OnStoreAppendBatchResult(TimeUs now, const StoreAppendBatchResult& m,
                                           Effects& out) {
  if (in_flight_count_ == 0 || m.request_id < batch_request_id_first_ ||
      m.request_id > batch_request_id_last_) {
    stats_.results_ignored++;  // a late answer to a committed batch, or an unknown id
    return;
  }
  if (m.outcomes.size() != in_flight_count_) {
    stats_.results_malformed++;  // the tick resends the batch
    return;
  }
  // Group by origin; btree_map so that origins are served in ascending NodeId order.
  absl::btree_map<NodeId, WriterCommitted> committed;
  for (size_t i = 0; i < in_flight_count_; ++i) {
    const Item& item = queue_[i];
    committed[item.origin].items.push_back(CommittedItem{item.request_id, m.outcomes[i]});
  }
  out.push_back(Persist{PersistDequeued{in_flight_count_}});
  for (auto& [origin, message] : committed) {
    out.push_back(SendToNode{origin, std::move(message)});
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_count_));
  in_flight_count_ = 0;
  stats_.batches_committed++;

  MaybeFlush(now, out);
  if (in_flight_count_ == 0 && waiting() > 0) {
    // The waiting items' window has not passed yet; make sure a timer covers it (items that
    // entered an empty buffer armed one, the remainder of a size flush did not).
    out.push_back(ArmTimer{kFlushTimerId, WindowDeadline()});
  }
}

void BatchWriter::OnTick(TimeUs now, Effects& out) {
  out.push_back(ArmTimer{kTickTimerId, now + options_.config.server_tick_us});
  if (in_flight_count_ == 0) return;
  if (now - batch_sent_at_us_ < options_.config.request_timeout_us) return;
  stats_.retries++;
  SendBatch(now, out);
}

}  // namespace chatlab
