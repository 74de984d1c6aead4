// The measurement window (docs/results.md, "The measurement window"): what happened in
// [Scenario::window_start_s, window_end_s), so that rates, latency distributions and
// per-message ratios describe the steady state, not the connect ramp or the quiet period.
//
// Everything here observes: it counts packets, displays and acknowledgements as they pass and
// reads the core's counters, and never draws a random number or changes what a node does.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/batch_writer.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {
namespace {

// Forwarding hops, in WindowMeasures::hops order; -1 for any other message.
int HopKind(const Message& msg) {
  if (std::holds_alternative<ForwardBatch>(msg)) return 0;
  if (std::holds_alternative<ForwardResult>(msg)) return 1;
  if (std::holds_alternative<QueuePublish>(msg)) return 2;
  if (std::holds_alternative<QueueDeliver>(msg)) return 3;
  if (std::holds_alternative<QueueAck>(msg)) return 4;
  return -1;
}

// Setup traffic: what connections, presence and syncs cost whether or not anyone sends
// (sessions' joins and syncs, the user mapping, presence, the broker's subscriptions). The rest
// is message traffic: sends, acks, storage, forwarding, deliveries, catch-up and pull reads,
// notifications, receipts and typing (docs/results.md lists both classes).
bool IsSetup(const Message& msg) {
  return std::visit(
      [](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        return std::is_same_v<T, SyncRequest> || std::is_same_v<T, SyncResult> ||
               std::is_same_v<T, StoreSync> || std::is_same_v<T, StoreSyncResult> ||
               std::is_same_v<T, JoinGroup> || std::is_same_v<T, LeaveGroup> ||
               std::is_same_v<T, GroupResult> || std::is_same_v<T, StoreMembership> ||
               std::is_same_v<T, StoreMembershipResult> || std::is_same_v<T, PresenceQuery> ||
               std::is_same_v<T, PresenceUpdate> || std::is_same_v<T, PresenceResult> ||
               std::is_same_v<T, SessionClosed> || std::is_same_v<T, MapRegister> ||
               std::is_same_v<T, MapUnregister> || std::is_same_v<T, MapDisplaced> ||
               std::is_same_v<T, QueueSubscribe> || std::is_same_v<T, PresenceSet> ||
               std::is_same_v<T, PresenceLookup> || std::is_same_v<T, PresenceLookupResult> ||
               std::is_same_v<T, PresencePush>;
      },
      msg);
}

uint64_t ForwardEntries(const ForwardBatch& b) {
  return b.messages.size() + b.receipts.size() + b.typing.size();
}

}  // namespace

void WorldImpl::CountForWindow(const Packet& p, int from_ep, int to_ep, double now) {
  WindowMeasures& w = measures_.window;
  const bool in = now >= w.start_s && now < w.end_s;
  const bool setup = IsSetup(p.msg);
  w.setup_total += setup;
  if (in) {
    w.setup += setup;
    w.traffic += !setup;
    w.node_traffic += !setup && p.kind == Packet::Kind::kNode;
  }
  if (p.kind != Packet::Kind::kNode) return;
  const int hop = HopKind(p.msg);
  if (hop >= 0) {
    w.hops[hop]++;
    if (in) w.window_hops[hop]++;
  }
  if (!in) return;
  if (std::holds_alternative<StoreRead>(p.msg)) w.store_reads++;
  if (const auto* r = std::get_if<StoreReadResult>(&p.msg)) {
    w.store_messages_read += r->messages.size();
  }
  if (std::holds_alternative<WriterEnqueue>(p.msg)) w.writer_enqueues++;
  const bool from_server = from_ep >= first_server_ep_ && from_ep < hub_ep0_;
  if (!from_server) return;
  const ForwardBatch* batch = std::get_if<ForwardBatch>(&p.msg);
  int dest_ep = to_ep;
  if (const auto* q = std::get_if<QueuePublish>(&p.msg)) {
    batch = &q->batch;
    dest_ep = q->dest.valid() ? deployment_.IndexOf(q->dest) : -1;
  }
  if (batch == nullptr) return;
  w.forward_entries += ForwardEntries(*batch);
  w.forward_pairs.insert({from_ep, dest_ep});
}

void WorldImpl::WindowSent(UserId sender, ClientMsgId id, double now) {
  WindowMeasures& w = measures_.window;
  if (now < w.start_s || now >= w.end_s) return;
  w.sent++;
  w.pending.try_emplace({sender.value, id}, WindowMeasures::Sent{now, false, false});
}

void WorldImpl::WindowAcked(UserId sender, ClientMsgId id, double now) {
  WindowMeasures& w = measures_.window;
  auto it = w.pending.find({sender.value, id});
  if (it == w.pending.end() || it->second.acked) return;
  it->second.acked = true;
  w.ack_us.push_back(std::llround((now - it->second.sent_s) * 1e6));
  if (it->second.shown) w.pending.erase(it);
}

void WorldImpl::WindowDisplayed(UserId viewer, const ChatMessage& m, double now) {
  WindowMeasures& w = measures_.window;
  if (now >= w.start_s && now < w.end_s) w.displays++;
  auto it = w.pending.find({m.sender.value, m.client_msg_id});
  if (it != w.pending.end() && !it->second.shown) {
    it->second.shown = true;
    w.end_to_end_us.push_back(std::llround((now - it->second.sent_s) * 1e6));
    if (it->second.acked) w.pending.erase(it);
  }
  // Per recipient, by the message's own send time (the client's clock is the true one).
  const double sent_s = static_cast<double>(m.sent_at_us - kStartUs) / 1e6;
  if (sent_s < w.start_s || sent_s >= w.end_s) return;
  if (now >= sc_.duration_s) {  // the heal brought everyone online: a censored wait
    w.delivery_after_heal++;
    return;
  }
  // Online: connected at the send instant and without a break until now (online_changed_s is
  // the last change of online_truth, and a display happens on a connection).
  const UserState& us = users_[viewer.value - 1];
  const auto latency_us = std::llround((now - sent_s) * 1e6);
  if (us.online_truth && us.online_changed_s <= sent_s) {
    w.delivery_online_us.push_back(latency_us);
  } else {
    w.delivery_offline_us.push_back(latency_us);
  }
}

void WorldImpl::WindowServersUp(double now) {
  int up = 0;
  for (int s = 0; s < servers_; s++) up += nodes_.up(static_cast<size_t>(ServerEndpoint(s)));
  measures_.window.servers_up.emplace_back(now, up);
}

std::vector<uint64_t> WorldImpl::WindowCounters(int ep) const {
  const host::Role role = deployment_.slot(static_cast<size_t>(ep)).role;
  if (role == host::Role::kChatServer) {
    const ChatServer* cs = ServerAt(ep);
    if (cs == nullptr) return {0, 0, 0};
    return {cs->stats().buffer_flushes, cs->stats().buffer_flushed_entries,
            cs->stats().buffer_wait_us};
  }
  if (role == host::Role::kWriter) {
    const auto* writer = static_cast<const BatchWriter*>(NodeAt(ep));
    if (writer == nullptr) return {0, 0, 0};
    return {writer->stats().batches_sent, writer->stats().items_flushed,
            writer->stats().wait_us_total};
  }
  if (role == host::Role::kBroker) {
    const auto* broker = static_cast<const QueueBroker*>(NodeAt(ep));
    if (broker == nullptr) return {0, 0};
    return {broker->stats().subscribes, broker->stats().redelivered};
  }
  if (role == host::Role::kPresence) {
    const auto* presence = static_cast<const PresenceService*>(NodeAt(ep));
    if (presence == nullptr) return {0, 0};
    return {presence->stats().push_recipients, presence->stats().users_polled};
  }
  return {};
}

void WorldImpl::WindowMark(int ep, double now) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const WindowMeasures& w = measures_.window;
  if (e.window_phase == 0 && now >= w.start_s) {
    e.window_base = WindowCounters(ep);
    e.window_sum.assign(e.window_base.size(), 0);
    e.window_phase = 1;
  }
  if (e.window_phase == 1 && now >= w.end_s) {
    const std::vector<uint64_t> c = WindowCounters(ep);
    for (size_t i = 0; i < c.size(); i++) e.window_sum[i] += c[i] - e.window_base[i];
    e.window_phase = 2;
  }
}

void WorldImpl::WindowCrash(int ep, double now) {
  WindowMark(ep, now);
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  if (e.window_phase != 1) return;
  const std::vector<uint64_t> c = WindowCounters(ep);
  for (size_t i = 0; i < c.size(); i++) e.window_sum[i] += c[i] - e.window_base[i];
  e.window_base.assign(c.size(), 0);  // the next incarnation starts from zero
}

void WorldImpl::CollectWindow(RunMetrics& m) {
  WindowMeasures& w = measures_.window;
  for (int ep = 0; ep < hub_ep0_; ep++) WindowMark(ep, std::numeric_limits<double>::infinity());
  m.window_start_s = w.start_s;
  m.window_end_s = w.end_s;
  m.window_s = w.end_s - w.start_s;
  m.messages_sent_window = w.sent;
  m.end_to_end = Summarize(std::move(w.end_to_end_us));
  m.ack = Summarize(std::move(w.ack_us));
  m.delivery_online = Summarize(std::move(w.delivery_online_us));
  m.delivery_offline = Summarize(std::move(w.delivery_offline_us));
  m.delivery_after_heal = w.delivery_after_heal;
  m.displays_window = w.displays;
  m.backend_traffic_window = w.traffic;
  m.node_traffic_window = w.node_traffic;
  m.setup_backend_messages = w.setup_total;
  m.setup_backend_messages_window = w.setup;
  m.store_reads_window = w.store_reads;
  m.store_messages_read_window = w.store_messages_read;
  m.forward_batches = w.hops[0];
  m.forward_results = w.hops[1];
  m.broker_publishes = w.hops[2];
  m.broker_deliveries = w.hops[3];
  m.broker_acks = w.hops[4];
  m.broker_publishes_window = w.window_hops[2];
  m.broker_deliveries_window = w.window_hops[3];
  m.broker_acks_window = w.window_hops[4];
  {
    const std::vector<uint64_t>& bc =
        endpoints_[static_cast<size_t>(deployment_.IndexOf(host::Role::kBroker))].window_sum;
    if (bc.size() == 2) {
      m.broker_subscribes_window = bc[0];
      m.broker_redeliveries_window = bc[1];
    }
  }
  {
    const std::vector<uint64_t>& pc = endpoints_[static_cast<size_t>(presence_ep_)].window_sum;
    if (pc.size() == 2) {
      m.presence_statuses_pushed_window = pc[0];
      m.presence_statuses_polled_window = pc[1];
      m.presence_statuses_per_s = PerWindowS(static_cast<double>(pc[0] + pc[1]));
    }
  }
  m.inter_server_requests = 0;
  m.inter_server_requests_window = 0;
  for (int k = 0; k < 5; k++) {
    m.inter_server_requests += w.hops[k];
    m.inter_server_requests_window += w.window_hops[k];
  }
  m.inter_server_requests_per_s = PerWindowS(static_cast<double>(m.inter_server_requests_window));
  m.forward_entries_window = w.forward_entries;
  m.forward_requests_window = w.window_hops[0] + w.window_hops[2];
  m.forward_buffers_window = w.forward_pairs.size();
  uint64_t wait_us = 0;
  for (int s = 0; s < servers_; s++) {
    const std::vector<uint64_t>& c = endpoints_[static_cast<size_t>(ServerEndpoint(s))].window_sum;
    m.buffer_flushes_window += c[0];
    m.buffer_flushed_entries_window += c[1];
    wait_us += c[2];
  }
  m.buffer_mean_wait_ms = m.buffer_flushed_entries_window == 0
                              ? 0 : static_cast<double>(wait_us) /
                                        static_cast<double>(m.buffer_flushed_entries_window) / 1000;
  const std::vector<uint64_t>& wc = endpoints_[static_cast<size_t>(writer_ep_)].window_sum;
  m.writer_mean_batch = wc[0] == 0 ? 0 : static_cast<double>(wc[1]) / static_cast<double>(wc[0]);
  m.writer_mean_wait_ms =
      wc[1] == 0 ? 0 : static_cast<double>(wc[2]) / static_cast<double>(wc[1]) / 1000;
  m.writer_arrival_rate_per_s = PerWindowS(static_cast<double>(w.writer_enqueues));
  // Summed over the store shards: the rate the store tier as a whole serves (a sync reaches
  // every shard, so it counts once per shard, as each shard handles it); node_load has each
  // shard's own rate.
  uint64_t store_arrivals = 0;
  for (const int ep : store_eps_) {
    store_arrivals += endpoints_[static_cast<size_t>(ep)].window_arrivals;
  }
  m.store_requests_per_s = PerWindowS(static_cast<double>(store_arrivals));
  // Chat servers up, averaged over the window (a step function of the crashes and restarts).
  double integral = 0;
  int up = 0;
  double at = w.start_s;
  for (const auto& [t, n] : w.servers_up) {
    if (t >= w.end_s) break;
    if (t > at) {
      integral += up * (t - at);
      at = t;
    }
    up = n;
  }
  integral += up * std::max(0.0, w.end_s - at);
  m.chat_servers_up_mean = m.window_s > 0 ? integral / m.window_s : up;
  m.chat_servers_up_at_window_end = up;
}

}  // namespace chatlab::sim::world
