// What the run measures: the observers that feed the oracle and the experiment metrics, the
// queue samples (Little's law), recovery paths, the trace digest, and Collect, which checks the
// store shards' final history (host::BuildTruth) and assembles RunResult (docs/results.md).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "absl/strings/str_format.h"
#include "core/batch_writer.h"
#include "core/notification.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "core/store.h"
#include "core/user_mapping.h"
#include "host/truth.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {
namespace {

uint64_t Fnv(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

// ---- Observer ----------------------------------------------------------------------------------

void HubObserver::OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) {
  w_->oracle_.OnSent(now, sender, id, conv);
  w_->WindowSent(sender, id, static_cast<double>(now - kStartUs) / 1e6);
}
void HubObserver::OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) {
  w_->oracle_.OnSendAnswered(now, sender, ack);
}

void HubObserver::OnAcked(TimeUs now, UserId sender, const SendAck& ack) {
  w_->oracle_.OnAcked(now, sender, ack);
  w_->WindowAcked(sender, ack.client_msg_id, static_cast<double>(now - kStartUs) / 1e6);
  w_->CheckReadAfterWrite(sender, ack);
}
void HubObserver::OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                              bool duplicate) {
  w_->oracle_.OnDisplayed(now, viewer, m, out_of_order, duplicate);
  if (!duplicate) w_->ObserveDisplay(viewer, m);
  if (m.sender != viewer) w_->ScheduleRead(hub_, viewer, m.conv);
}
void HubObserver::OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) {
  w_->oracle_.OnReceiptShown(now, viewer, shown);
}
void HubObserver::OnPresenceShown(TimeUs /*now*/, UserId viewer, const PresenceStatus& s,
                                  bool /*pushed*/, std::optional<bool> was_online) {
  w_->ObservePresence(viewer, s, was_online);
}

// ---- Experiment metrics ------------------------------------------------------------------------

void WorldImpl::CheckReadAfterWrite(UserId sender, const SendAck& ack) {
  const double now = s4u::Engine::get_clock();
  const bool in_window = now >= measures_.window.start_s && now < measures_.window.end_s;
  const bool miss = !measures_.committed.contains({sender.value, ack.client_msg_id});
  measures_.raw_checks++;
  if (miss) measures_.raw_misses++;
  if (in_window) {
    measures_.raw_checks_window++;
    if (miss) measures_.raw_misses_window++;
  }
  measures_.committed.erase({sender.value, ack.client_msg_id});
}

void WorldImpl::SetOnline(UserId user, bool online) {
  UserState& us = users_[user.value - 1];
  const double now = s4u::Engine::get_clock();
  if (online) {
    us.last_connect_s = now;
    auto it = measures_.failover_waiting.find(user.value);
    if (it != measures_.failover_waiting.end()) {
      measures_.failover_last_back_s = now;
      measures_.failover_reconnect_us.push_back(std::llround((now - it->second) * 1e6));
      measures_.failover_waiting.erase(it);
    }
  } else if (us.online_truth) {
    us.last_disconnect_s = now;
  }
  if (us.online_truth == online) return;
  us.online_truth = online;
  us.online_changed_s = now;
}

void WorldImpl::ObservePresence(UserId viewer, const PresenceStatus& s,
                                std::optional<bool> was_online) {
  // A change of what the viewer shows: the viewer's client says what it showed before.
  if (!was_online.has_value() || *was_online == s.online) return;
  measures_.presence_view_changes++;
  const UserState& us = users_[s.user.value - 1];
  // Staleness is what a connected viewer puts up with: only changes made while the viewer was
  // connected, seen in that same session. A change made while the viewer was away is read
  // afresh at its connect, and its age then measures the absence, not the presence design.
  // And only changes made at least one poll interval before the heal: a later one's poll may
  // fall after the heal, and counting only those seen in time would bias the figure low.
  const double horizon_s = static_cast<double>(sc_.protocol.presence_poll_interval_us) / 1e6;
  const UserState& vs = users_[viewer.value - 1];
  // And only changes made in the measurement window or after it (not during the warm-up).
  if (s.online == us.online_truth && s4u::Engine::get_clock() < sc_.duration_s &&
      us.online_changed_s >= measures_.window.start_s &&
      us.online_changed_s < sc_.duration_s - horizon_s && vs.online_truth &&
      vs.last_connect_s <= us.online_changed_s) {
    measures_.presence_staleness_us.push_back(
        std::llround((s4u::Engine::get_clock() - us.online_changed_s) * 1e6));
  }
}

void WorldImpl::ObserveDisplay(UserId viewer, const ChatMessage& m) {
  if (m.sender == viewer) return;
  measures_.displays++;
  const UserState& us = users_[viewer.value - 1];
  const double now = s4u::Engine::get_clock();
  const double sent_s = static_cast<double>(m.sent_at_us - kStartUs) / 1e6;
  // Sent in the window while the viewer was offline (its latest offline period), shown before
  // the heal.
  if (now < sc_.duration_s && us.last_disconnect_s >= 0 && sent_s >= us.last_disconnect_s &&
      sent_s < us.last_connect_s && sent_s >= measures_.window.start_s &&
      sent_s < measures_.window.end_s) {
    measures_.offline_delivery_us.push_back(std::llround((now - sent_s) * 1e6));
    measures_.offline_fetch_us.push_back(std::llround((now - us.open_started_s) * 1e6));
  }
  WindowDisplayed(viewer, m, now);
}

void WorldImpl::SampleQueues() {
  const double now = s4u::Engine::get_clock();
  // Little's law over the measurement window: only its samples count.
  if (now < measures_.window.start_s || now >= measures_.window.end_s) return;
  measures_.samples++;
  for (int ep = 0; ep < hub_ep0_; ep++) {
    Endpoint& e = endpoints_[static_cast<size_t>(ep)];
    size_t n = 0;
    for (auto it = e.outputs.rbegin(); it != e.outputs.rend() && it->at > now; ++it) n++;
    e.sampled_in_system += static_cast<double>(n);
  }
  if (const auto* writer = static_cast<BatchWriter*>(NodeAt(writer_ep_))) {
    endpoints_[static_cast<size_t>(writer_ep_)].sampled_writer_waiting +=
        static_cast<double>(writer->waiting());
  }
}

void WorldImpl::AccumulateRecovery(int ep) {
  Node* node = NodeAt(ep);
  if (node == nullptr) return;
  std::map<std::string, uint64_t>& r = measures_.recovery;
  switch (deployment_.slot(static_cast<size_t>(ep)).role) {
    case host::Role::kStore:
      r["retry_deduplicated"] += static_cast<MessageStore*>(node)->stats().duplicates;
      r["history_read_from_disk"] += static_cast<MessageStore*>(node)->stats().history_loads;
      r["dedup_found_on_disk"] += static_cast<MessageStore*>(node)->stats().dedup_found_on_disk;
      break;
    case host::Role::kWriter:
      r["writer_batch_resent"] += static_cast<BatchWriter*>(node)->stats().retries;
      break;
    case host::Role::kBroker: {
      const QueueBroker::Stats& b = static_cast<QueueBroker*>(node)->stats();
      r["broker_dead_consumer_purged"] += b.consumers_dead;
      r["broker_stale_dropped"] += b.dropped_stale;
      r["broker_redelivered"] += b.redelivered;
      break;
    }
    case host::Role::kMapping:
      r["displacement"] += static_cast<UserMappingService*>(node)->stats().displacements;
      break;
    case host::Role::kChatServer: {
      const ChatServer::Stats& c = static_cast<ChatServer*>(node)->stats();
      r["contradicting_ack_withheld"] += c.acks_withheld;
      r["retry_after_ack_absorbed"] += c.retries_after_ack;
      r["forward_failed_to_notification"] += c.forward_failures;
      r["batched_group_send_checked"] += c.member_checks;
      break;
    }
    case host::Role::kPresence:
    case host::Role::kNotification:
      break;
  }
}

void WorldImpl::NoteStoreOutput(int ep, const Effects& effects) {
  if (!IsStore(ep)) return;
  for (const Effect& ef : effects) {
    const auto* send = std::get_if<chatlab::SendToNode>(&ef);
    if (send == nullptr) continue;
    if (const auto* r = std::get_if<StoreAppendResult>(&send->msg)) {
      const auto& m = r->outcome.message;
      measures_.committed.insert({m.sender.value, m.client_msg_id});
    } else if (const auto* b = std::get_if<StoreAppendBatchResult>(&send->msg)) {
      for (const auto& o : b->outcomes) {
        measures_.committed.insert({o.message.sender.value, o.message.client_msg_id});
      }
    }
  }
}

void WorldImpl::Digest(double t, int ep, uint64_t kind, uint64_t a, uint64_t b) {
  digest_ = Fnv(digest_, static_cast<uint64_t>(std::llround(t * 1e9)));
  digest_ = Fnv(digest_, static_cast<uint64_t>(ep));
  digest_ = Fnv(digest_, kind);
  digest_ = Fnv(digest_, a);
  digest_ = Fnv(digest_, b);
}

void WorldImpl::Trace(double t, const std::string& line) {
  options_.trace(absl::StrFormat("%.6f %s", t, line));
}

Quantiles Summarize(std::vector<TimeUs> v) {
  Quantiles q;
  q.count = v.size();
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double f) {
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(f * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1000.0;
  };
  q.p50_ms = at(0.50);
  q.p95_ms = at(0.95);
  q.p99_ms = at(0.99);
  for (int k = 0; k <= 100; k++) q.percentiles_ms.push_back(at(k / 100.0));
  double sum = 0;
  for (TimeUs x : v) sum += static_cast<double>(x);
  q.mean_ms = sum / static_cast<double>(v.size()) / 1000.0;
  return q;
}

namespace {

uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace

double WorldImpl::PerWindowS(double count) const {
  const double window_s = measures_.window.end_s - measures_.window.start_s;
  return window_s > 0 ? count / window_s : 0;
}

void WorldImpl::CheckFinalTruth() {
  // Every shard is up: the heal restarted the crashed ones.
  std::vector<const MessageStore*> stores;
  for (const int ep : store_eps_) stores.push_back(static_cast<const MessageStore*>(NodeAt(ep)));
  // One conversation's truth at a time (host::ForEachTruth): a whole copy of the history would
  // be the run's peak.
  const auto check = [this](const ConversationTruth& t) { oracle_.CheckFinalConversation(t); };
  if (sc_.protocol.store_tail_cache == 0) {
    host::ForEachTruth(stores, nullptr, check);
    oracle_.EndFinal();
    return;
  }
  // A shard's memory holds only each conversation's tail: the truth is on the disk of the shard
  // that holds the conversation (the one the chat servers route it to).
  const Topology& topology = deployment_.topology();
  const double now = s4u::Engine::get_clock();
  const host::HistoryOf history = [&](const ConversationId& conv) {
    const int ep = EndpointOfNode(topology.StoreFor(conv));
    return endpoints_[static_cast<size_t>(ep)].disk->ReadMessages(
        now, conv, kNoMessage, std::numeric_limits<uint32_t>::max(), /*unsynced=*/true);
  };
  host::ForEachTruth(stores, history, check);
  oracle_.EndFinal();
}

RunResult WorldImpl::Collect(double wall_s) {
  // The final check against the stores' history, with each conversation's participants.
  CheckFinalTruth();
  RunResult r;
  r.scenario = sc_.name;
  r.seed = seed_;
  r.trace_digest = digest_;
  r.events = events_;
  r.sim_time_s = end_s_;
  r.wall_time_s = wall_s;
  r.wall_time_load_s = wall_at_load_end_s_ - wall_at_load_start_s_;
  r.invariants = oracle_.counts();
  r.first_violations = oracle_.first_violations();
  RunMetrics& m = r.metrics;
  m.messages_sent = oracle_.sent();
  m.messages_acked = oracle_.acked();
  // Whole run: messages shown to another participant (the oracle's count).
  m.messages_delivered = oracle_.latencies().end_to_end_us.size();
  m.catchups += client_stats_->catchups;
  m.gaps_detected += client_stats_->gaps_detected;
  m.retries += client_stats_->retries;
  for (int s = 0; s < servers_; s++) {
    if (ChatServer* cs = ServerAt(ServerEndpoint(s))) {
      m.forward_entries += cs->stats().forward_entries_sent;
    }
    const ChatServer* cs = ServerAt(ServerEndpoint(s));
    m.ids_minted.push_back(cs == nullptr ? 0 : cs->stats().ids_minted);
  }
  m.node_messages = measures_.node_messages;
  m.client_messages = measures_.client_messages;
  m.displays = measures_.displays;
  m.node_bytes = measures_.node_bytes;
  // The store tier's totals: each shard's last incarnation, summed (the largest lift: the
  // largest of any shard).
  for (const int ep : store_eps_) {
    const MessageStore::Stats& st = static_cast<MessageStore*>(NodeAt(ep))->stats();
    m.store_requests += st.requests;
    m.store_writes += st.messages_stored;
    m.store_writes_by_shard.push_back(st.messages_stored);
    m.store_reads += st.reads;
    m.store_messages_read += st.messages_read;
    m.id_collisions += st.id_collisions;
    m.out_of_order_ids += st.out_of_order_ids;
    m.ids_lifted += st.ids_lifted;
    m.id_lift_max = std::max(m.id_lift_max, st.id_lift_max);
  }
  m.read_after_write_checks = measures_.raw_checks;
  m.read_after_write_misses = measures_.raw_misses;
  m.read_after_write_checks_window = measures_.raw_checks_window;
  m.read_after_write_misses_window = measures_.raw_misses_window;
  const auto* notification = static_cast<NotificationService*>(NodeAt(deployment_.IndexOf(host::Role::kNotification)));
  m.notifications = notification->stats().pushed;
  const auto* presence = static_cast<PresenceService*>(NodeAt(presence_ep_));
  m.presence_pushes = presence->stats().pushes_sent;
  m.presence_push_recipients = presence->stats().push_recipients;
  m.presence_polled = presence->stats().users_polled;
  const auto* writer = static_cast<BatchWriter*>(NodeAt(writer_ep_));
  m.writer_batches = writer->stats().batches_sent;
  const auto* broker = static_cast<QueueBroker*>(NodeAt(deployment_.IndexOf(host::Role::kBroker)));
  m.broker_dropped = broker->stats().dropped_overflow + broker->stats().dropped_stale +
                     broker->stats().dropped_dead_consumer;
  for (int ep = 0; ep < hub_ep0_; ep++) {
    const Endpoint& e = endpoints_[static_cast<size_t>(ep)];
    NodeLoad l{e.name, e.messages_in, e.busy_s, e.busy_s / end_s_};
    l.messages_out = e.messages_out;
    // Little's law over the measurement window: L (sampled) against lambda * W (measured).
    l.arrival_rate_per_s = PerWindowS(static_cast<double>(e.window_arrivals));
    l.mean_sojourn_ms = e.window_arrivals == 0
                            ? 0 : e.sojourn_s / static_cast<double>(e.window_arrivals) * 1000;
    l.mean_in_system_sampled =
        measures_.samples == 0 ? 0 : e.sampled_in_system / static_cast<double>(measures_.samples);
    l.mean_in_system_little = PerWindowS(e.sojourn_s);
    l.busy_s_window = e.window_busy_s;
    l.utilization_window = PerWindowS(e.window_busy_s);
    m.node_load.push_back(l);
  }
  m.writer_items = writer->stats().items_flushed;
  m.writer_mean_waiting_sampled =
      measures_.samples == 0 ? 0
                    : endpoints_[static_cast<size_t>(writer_ep_)].sampled_writer_waiting /
                          static_cast<double>(measures_.samples);
  m.queue_samples = measures_.samples;
  m.presence_staleness = Summarize(measures_.presence_staleness_us);
  m.presence_view_changes = measures_.presence_view_changes;
  {
    const Endpoint& pe = endpoints_[static_cast<size_t>(presence_ep_)];
    m.presence_messages = pe.messages_in + pe.messages_out;
    m.presence_messages_per_s = PerWindowS(static_cast<double>(pe.window_arrivals + pe.window_out));
  }
  m.offline_delivery = Summarize(measures_.offline_delivery_us);
  m.offline_fetch = Summarize(measures_.offline_fetch_us);
  m.background_wakes = measures_.background_wakes;
  m.failover_affected_users = measures_.failover_affected;
  m.failover_unrecovered_users = measures_.failover_waiting.size();
  m.failover_reconnect = Summarize(measures_.failover_reconnect_us);
  m.failover_reconnect_s = measures_.failover_crash_s < 0 || measures_.failover_last_back_s < 0
                               ? 0 : measures_.failover_last_back_s - measures_.failover_crash_s;
  if (measures_.failover_crash_s >= 0) {
    const auto t0 = static_cast<size_t>(measures_.failover_crash_s);
    const size_t end = measures_.node_msgs_per_s.size();
    double before = 0, after = 0;
    for (size_t t = t0 >= kFailoverWindowS ? t0 - kFailoverWindowS : 0; t < t0 && t < end; t++) {
      before += measures_.node_msgs_per_s[t];
    }
    for (size_t t = t0; t < t0 + kFailoverWindowS && t < end; t++) after += measures_.node_msgs_per_s[t];
    m.failover_load_ratio = before > 0 ? after / before : 0;
  }
  // Faults: what fired (kinds with a count), and what was configured but never fired.
  size_t steps = 0;
  for (const ClockSpec& c : sc_.clocks) steps += c.step_at_s >= 0 && c.step_at_s < end_s_;
  if (steps > 0) measures_.faults["clock_step"] = steps;
  for (const auto& [kind, n] : measures_.faults) {
    if (n > 0) r.faults_fired[kind] = n;
  }
  auto never = [&](const char* kind, bool configured) {
    if (configured && !r.faults_fired.contains(kind)) r.faults_never_fired.push_back(kind);
  };
  never("loss", sc_.loss > 0);
  never("duplicate", sc_.duplicate > 0);
  never("delay", sc_.delay_probability > 0);
  never("push_loss", sc_.push_loss > 0);
  never("partition_drop", !sc_.partitions.empty());
  never("crash", !sc_.crashes.empty());
  never("pause", !sc_.pauses.empty());
  bool torn_configured = false;  // on a node with a disk (a store shard or the writer)
  for (const CrashSpec& c : sc_.crashes) {
    const int ep = c.torn_write ? ServiceEndpoint(CrashNode(c)) : -1;
    torn_configured = torn_configured || (ep >= 0 && endpoints_[static_cast<size_t>(ep)].disk);
  }
  never("torn_write", torn_configured);
  for (int ep = 0; ep < hub_ep0_; ep++) AccumulateRecovery(ep);
  measures_.recovery["gap_catch_up"] += client_stats_->gaps_detected;
  measures_.recovery["hybrid_mode_change"] += client_stats_->group_mode_changes;
  // Every path is listed, reached or not: a path never reached is a finding (docs/results.md).
  for (const char* path : kRecoveryPaths) r.recovery_paths[path] = 0;
  for (const auto& [path, n] : measures_.recovery) r.recovery_paths[path] += n;
  CollectWindow(m);
  r.peak_rss_bytes = PeakRss();
  return r;
}

}  // namespace chatlab::sim::world
