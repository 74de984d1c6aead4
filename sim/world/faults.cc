// Crashes and restarts. A chat server's crash breaks its clients' sessions; a service's crash
// loses its memory, the effects it had not yet let out and its disk's unsynced writes (a torn
// tail, if asked); a restart replays the durable records (host::ServiceSpec::restore) and starts
// a fresh incarnation (host::NodeTable), whose earlier timers are stale. A pause stops a node
// without losing anything: it sleeps through the window (ActorLoop; under the uncontended model
// its alarm waits for the resume, Step).
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {

void WorldImpl::CrashServer(int s) {
  const int ep = ServerEndpoint(s);
  if (!nodes_.up(static_cast<size_t>(ep))) return;
  AccumulateRecovery(ep);
  WindowCrash(ep, s4u::Engine::get_clock());
  nodes_.Destroy(static_cast<size_t>(ep));
  WindowServersUp(s4u::Engine::get_clock());
  measures_.faults["crash"]++;
  measures_.faults["crash_server"]++;
  if (measures_.failover_crash_s < 0) measures_.failover_crash_s = s4u::Engine::get_clock();
  Digest(s4u::Engine::get_clock(), ep, 400, 0, 0);
  // The clients' connections break: each hub learns it after the packets already in flight.
  // Take the set out first: the server's sessions all end here.
  const absl::btree_set<uint64_t> broken = std::move(server_sessions_[static_cast<size_t>(s)]);
  server_sessions_[static_cast<size_t>(s)].clear();
  for (uint64_t sid : broken) {
    SessionInfo* info = sessions_.Find(sid);
    if (info == nullptr) continue;
    info->open = false;
    if (measures_.failover_waiting.try_emplace(info->user.value, s4u::Engine::get_clock())
            .second) {
      measures_.failover_affected++;
    }
    auto p = std::make_unique<Packet>();
    p->kind = Packet::Kind::kClosed;
    p->session = SessionId(sid);
    p->seq = info->to_client_seq++;
    const int hub_ep = HubEndpoint(info->hub);
    Transmit(ep, hub_ep, std::move(p));
  }
}

void WorldImpl::RestartServer(int s) {
  const int ep = ServerEndpoint(s);
  if (nodes_.up(static_cast<size_t>(ep))) return;
  const double now = s4u::Engine::get_clock();
  WindowMark(ep, now);
  Node& node = nodes_.Create(static_cast<size_t>(ep));
  WindowServersUp(now);
  if (now > 0) measures_.faults["restart"]++;
  Effects effects;
  node.Start(LocalNow(endpoints_[static_cast<size_t>(ep)], now), effects);
  ApplyNodeEffects(ep, effects);
  WakeForNewTimers(ep);
}

void WorldImpl::CrashService(int ep, bool torn_write) {
  const auto i = static_cast<size_t>(ep);
  if (!nodes_.up(i)) return;
  const double now = s4u::Engine::get_clock();
  AccumulateRecovery(ep);
  WindowCrash(ep, now);
  nodes_.Destroy(i);
  Endpoint& e = endpoints_[i];
  e.outputs.clear();  // effects not yet out die with the process
  e.busy_until_s = now;
  measures_.faults["crash"]++;
  measures_.faults[absl::StrCat("crash_", e.name)]++;
  if (e.disk != nullptr) {
    const SimDisk::CrashLoss loss = e.disk->Crash(now, torn_write);
    if (loss.lost > 0) measures_.faults["unsynced_records_lost"] += loss.lost;
    if (loss.torn) {
      measures_.faults["torn_write"]++;
      torn_pending_[i] = true;
    }
  }
  Digest(now, ep, 400, 0, 0);
  if (options_.trace) Trace(now, absl::StrCat(e.name, " CRASH"));
}

void WorldImpl::RestartService(int ep) {
  const auto i = static_cast<size_t>(ep);
  if (nodes_.up(i)) return;
  const double now = s4u::Engine::get_clock();
  Endpoint& e = endpoints_[i];
  WindowMark(ep, now);
  Node& node = nodes_.Create(i);
  if (e.disk != nullptr) {
    const host::ServiceSpec& spec = *deployment_.slot(i).service;
    uint64_t replayed = 0;
    // A store shard with a bounded tail restarts from its heads and dedup window, as chatd's
    // does.
    const ProtocolConfig& p = sc_.protocol;
    std::vector<PersistRecord> hot;
    if (IsStore(ep) && p.store_tail_cache > 0) {
      hot = e.disk->HotRecords(now, p.dedup_enabled ? p.store_dedup_window_max : 0);
    }
    const std::vector<PersistRecord>& records = hot.empty() ? e.disk->Durable(now) : hot;
    for (const PersistRecord& record : records) {
      absl::Status st = spec.restore(node, record);
      if (!st.ok()) {
        // The disk holds exactly what the node persisted: a refusal is a simulator or core bug.
        std::fprintf(stderr, "chatlab: %s: restore failed: %s\n", e.name.c_str(),
                     std::string(st.message()).c_str());
        std::abort();
      }
      replayed++;
    }
    measures_.recovery["restore_after_crash"]++;
    measures_.recovery["records_replayed"] += replayed;
    if (torn_pending_[i]) measures_.recovery["torn_tail_discarded"]++;
    torn_pending_[i] = false;
  }
  measures_.faults["restart"]++;
  Digest(now, ep, 401, 0, 0);
  if (options_.trace) Trace(now, absl::StrCat(e.name, " RESTART"));
  Effects effects;
  node.Start(LocalNow(e, now), effects);
  ApplyNodeEffects(ep, effects);
  WakeForNewTimers(ep);
}

void WorldImpl::PlanPauses() {
  pauses_.assign(static_cast<size_t>(hub_ep0_), {});
  for (const PauseSpec& p : sc_.pauses) {
    CrashSpec as_crash;  // the same node names as a crash's
    as_crash.node = p.node;
    const int server = CrashServerIndex(as_crash);
    const int ep = server >= 0 ? ServerEndpoint(server) : ServiceEndpoint(p.node);
    if (ep < 0) continue;  // Validate accepted only the deployment's nodes
    const double end = PauseEnd(sc_, p);
    if (end > p.at_s) pauses_[static_cast<size_t>(ep)].emplace_back(p.at_s, end);
  }
}

double WorldImpl::PausedUntil(int ep, double now) const {
  if (ep < 0 || static_cast<size_t>(ep) >= pauses_.size()) return now;
  double until = now;
  // Overlapping windows of one node chain: the node resumes when the last of them ends.
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& [at, end] : pauses_[static_cast<size_t>(ep)]) {
      if (at <= until && until < end) {
        until = end;
        grew = true;
      }
    }
  }
  return until;
}

}  // namespace chatlab::sim::world
