// The chat server's forwarding strategies (direct, buffered, queue) between chat servers: one
// half of core/chat_server.h, split from chat_server.cc along its banner.
#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/chat_server.h"

namespace chatlab {
namespace {

uint64_t FlushTimer(NodeId dest) {
  assert(dest.value <= ChatServer::kTimerPayloadMask);
  return (ChatServer::kFlushTimerKind << ChatServer::kTimerKindShift) | dest.value;
}

size_t EntryCount(const ForwardBatch& b) {
  return b.messages.size() + b.receipts.size() + b.typing.size() + b.modes.size();
}

template <typename T>
std::vector<Routed<T>>& RoutedList(ForwardBatch& b);
template <>
std::vector<Routed<ChatMessage>>& RoutedList(ForwardBatch& b) { return b.messages; }
template <>
std::vector<Routed<ReceiptUpdate>>& RoutedList(ForwardBatch& b) { return b.receipts; }
template <>
std::vector<Routed<TypingUpdate>>& RoutedList(ForwardBatch& b) { return b.typing; }
template <>
std::vector<Routed<GroupModeUpdate>>& RoutedList(ForwardBatch& b) { return b.modes; }

}  // namespace

// ---- Forwarding strategies ---------------------------------------------------------------------

ForwardBatch& ChatServer::BufferFor(NodeId dest) { return buffers_[dest]; }

void ChatServer::Forward(TimeUs now, NodeId dest, const Payload& payload,
                         std::vector<UserId> recipients, Effects& out) {
  assert(dest.valid());
  assert(dest != options_.self);
  const auto& config = options_.config;
  ForwardBatch single;
  ForwardBatch& batch =
      config.forwarding == ForwardingStrategy::kBuffered ? BufferFor(dest) : single;
  const bool was_empty = EntryCount(batch) == 0;
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        RoutedList<T>(batch).push_back(Routed<T>{std::move(recipients), p});
      },
      payload);
  switch (config.forwarding) {
    case ForwardingStrategy::kDirect:
      SendForwardBatch(now, dest, std::move(single), out);
      return;
    case ForwardingStrategy::kQueue:
      stats_.forwards_sent++;
      stats_.forward_entries_sent += EntryCount(single);
      out.push_back(
          SendToNode{options_.topology.broker, QueuePublish{dest, std::move(single)}});
      return;
    case ForwardingStrategy::kBuffered:
      buffer_entered_us_sum_[dest] += now;
      if (EntryCount(batch) >= config.server_forward_buffer_max) {
        FlushBuffer(now, dest, out);  // a full buffer goes now; its timer finds it empty
      } else if (was_empty) {
        const TimeUs jitter =
            config.buffered_flush_jitter_us > 0
                ? static_cast<TimeUs>(rng_.Uniform(
                      static_cast<uint64_t>(config.buffered_flush_jitter_us)))
                : 0;
        out.push_back(
            ArmTimer{FlushTimer(dest), now + config.buffered_flush_interval_us + jitter});
      }
      return;
  }
}

void ChatServer::FlushBuffer(TimeUs now, NodeId dest, Effects& out) {
  auto it = buffers_.find(dest);
  if (it == buffers_.end()) return;
  ForwardBatch batch = std::move(it->second);
  buffers_.erase(it);
  const TimeUs entered_sum = buffer_entered_us_sum_[dest];
  buffer_entered_us_sum_.erase(dest);
  if (EntryCount(batch) == 0) return;
  const auto entries = static_cast<TimeUs>(EntryCount(batch));
  stats_.buffer_flushes++;
  stats_.buffer_flushed_entries += static_cast<uint64_t>(entries);
  stats_.buffer_wait_us += static_cast<uint64_t>(std::max<TimeUs>(0, entries * now - entered_sum));
  SendForwardBatch(now, dest, std::move(batch), out);
}

void ChatServer::SendForwardBatch(TimeUs now, NodeId dest, ForwardBatch batch, Effects& out) {
  ForwardOp op{dest, {}};
  for (const auto& r : batch.messages) {
    for (UserId u : r.recipients) {
      if (u == r.payload.sender) continue;
      op.notify_on_failure.push_back(
          Notify{u, r.payload.conv, r.payload.message_id, r.payload.sender});
    }
  }
  batch.request_id = NewRequest(now, std::move(op));
  stats_.forwards_sent++;
  stats_.forward_entries_sent += EntryCount(batch);
  out.push_back(SendToNode{dest, std::move(batch)});
}

void ChatServer::OnForwardResult(TimeUs now, const ForwardResult& m, Effects& out) {
  (void)now;
  (void)out;
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;
  if (!std::holds_alternative<ForwardOp>(it->second.op)) {
    stats_.unexpected_messages++;
    return;
  }
  pending_.erase(it);
}

void ChatServer::OnForwardBatch(TimeUs now, NodeId from, const ForwardBatch& m, Effects& out) {
  (void)now;
  stats_.forwards_received++;
  for (const auto& r : m.messages) {
    for (UserId u : r.recipients) {
      if (DeliverLocal(r.payload, u, SessionId(), out) == 0) NotifyOffline(r.payload, u, out);
    }
  }
  for (const auto& r : m.receipts) {
    for (UserId u : r.recipients) DeliverLocal(r.payload, u, SessionId(), out);
  }
  for (const auto& r : m.typing) {
    for (UserId u : r.recipients) DeliverLocal(r.payload, u, SessionId(), out);
  }
  for (const auto& r : m.modes) {
    for (UserId u : r.recipients) DeliverLocal(r.payload, u, SessionId(), out);
  }
  if (from.valid() && m.request_id != 0) {
    out.push_back(SendToNode{from, ForwardResult{m.request_id, Code::kOk}});
  }
}

void ChatServer::OnQueueDeliver(TimeUs now, NodeId from, const QueueDeliver& m, Effects& out) {
  ForwardBatch batch = m.batch;
  batch.request_id = 0;  // the broker, not the publisher, gets the acknowledgement
  OnForwardBatch(now, NodeId(), batch, out);
  out.push_back(SendToNode{from, QueueAck{m.seq}});
}

void ChatServer::OnPresencePush(TimeUs now, const PresencePush& m, Effects& out) {
  (void)now;
  for (UserId u : m.recipients) {
    auto it = users_.find(u);
    if (it == users_.end()) continue;
    for (SessionId s : it->second) {
      out.push_back(SendToClient{s, PresenceUpdate{m.status}});
      stats_.local_deliveries++;
    }
  }
}

}  // namespace chatlab
