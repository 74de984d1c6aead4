// A node's turn: a packet arrives, the node runs on its CPU (a FIFO single server, for as long as
// sim/world/cost.h says the input costs), its Persist records go to its disk, and its effects
// leave when both are done (host::NodeEnv below carries them out).
#include <cassert>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "sim/world/cost.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {

Node* WorldImpl::NodeAt(int ep) const {
  return IsNode(ep) ? nodes_.node(static_cast<size_t>(ep)) : nullptr;
}

ChatServer* WorldImpl::ServerAt(int ep) const {
  return IsNode(ep) ? nodes_.server(static_cast<size_t>(ep)) : nullptr;
}

int WorldImpl::EndpointOfNode(NodeId id) const {
  const int ep = deployment_.IndexOf(id);
  if (ep < 0) {
    // Node ids come from the deployment (the core's topology, the user mapping's answers): a
    // message to any other id is a core or simulator bug, never a silent drop.
    std::fprintf(stderr, "chatlab: a node addressed %s, which the deployment does not have\n",
                 ToString(id).c_str());
    std::abort();
  }
  return ep;
}

int WorldImpl::ServiceEndpoint(const std::string& name) const {
  for (int ep = 0; ep < first_server_ep_; ep++) {
    if (deployment_.slot(static_cast<size_t>(ep)).name == name) return ep;
  }
  return -1;
}

double WorldImpl::CpuSeconds(int ep, const Packet& p, const Effects& effects) const {
  const host::Role role = deployment_.slot(static_cast<size_t>(ep)).role;
  return CpuUs(sc_, role, p.msg, effects) / 1e6 / sc_.cpu_speed_factor;
}

void WorldImpl::HandleAtNode(int ep, std::unique_ptr<Packet> p) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const double now = s4u::Engine::get_clock();
  e.messages_in++;
  events_++;
  WindowMark(ep, now);
  Node* node = NodeAt(ep);
  if (node == nullptr) {
    measures_.faults["dropped_at_crashed_server"]++;
    if (p->kind == Packet::Kind::kOpen) {
      // The host is up but nothing listens: the connection is refused.
      auto reply = std::make_unique<Packet>();
      reply->kind = Packet::Kind::kOpenResult;
      reply->session = p->session;
      reply->user = p->user;
      reply->ok = false;
      Transmit(ep, p->from_ep, std::move(reply));
    }
    return;
  }
  const TimeUs local = LocalNow(e, now);
  Effects effects;
  if (p->kind == Packet::Kind::kNode) {
    Digest(now, ep, 1 + p->msg.index(), static_cast<uint64_t>(p->from_ep), 0);
    if (options_.trace) {
      Trace(now, absl::StrCat(e.name, " <- ", endpoints_[static_cast<size_t>(p->from_ep)].name,
                              " ", DebugString(p->msg)));
    }
    node->OnMessage(local, endpoints_[static_cast<size_t>(p->from_ep)].node, p->msg, effects);
  } else {
    ProcessAtServer(ep, *p, effects, local);
  }
  const double cpu_s = CpuSeconds(ep, *p, effects);
  e.busy_s += cpu_s;
  e.busy_until_s = std::max(now, e.busy_until_s) + cpu_s;
  if (now >= measures_.window.start_s && now < measures_.window.end_s) {  // Little's law
    e.window_arrivals++;
    e.sojourn_s += e.busy_until_s - now;
    e.window_busy_s += cpu_s;
  }
  QueueNodeEffects(ep, effects, e.busy_until_s);
}

void WorldImpl::QueueNodeEffects(int ep, Effects& effects, double done_s) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const double now = s4u::Engine::get_clock();
  NoteStoreOutput(ep, effects);
  // Effects leave when the CPU is done and, after a Persist, when the disk has it: an answer
  // never reveals state a crash could still lose. FIFO: never before the previous output.
  double ready = WriteToDisk(ep, effects, done_s);
  if (sc_.unsafe_ack_before_sync) ready = done_s;  // broken on purpose
  if (!e.outputs.empty()) ready = std::max(ready, e.outputs.back().at);
  if (ready <= now && e.outputs.empty()) {
    ApplyNodeEffects(ep, effects);
  } else {
    e.outputs.push_back(
        Endpoint::Output{ready, nodes_.incarnation(static_cast<size_t>(ep)), std::move(effects)});
  }
}

double WorldImpl::WriteToDisk(int ep, Effects& effects, double at_s) {
  SimDisk* disk = endpoints_[static_cast<size_t>(ep)].disk.get();
  if (disk == nullptr) return at_s;
  return disk->Write(at_s, host::TakePersists(effects));
}

void WorldImpl::ProcessAtServer(int ep, Packet& p, Effects& effects, TimeUs local) {
  ChatServer* server = ServerAt(ep);
  assert(server != nullptr);
  const double now = s4u::Engine::get_clock();
  SessionInfo* found = sessions_.Find(p.session.value);
  if (p.kind == Packet::Kind::kOpen) {
    absl::Status st = server->OnSessionOpen(local, p.session, p.user, effects);
    Digest(now, ep, 200, p.user.value, st.ok());
    if (options_.trace) {
      Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", p.user.value,
                              " open session s", p.session.value, st.ok() ? "" : " REFUSED"));
    }
    auto reply = std::make_unique<Packet>();
    reply->kind = Packet::Kind::kOpenResult;
    reply->session = p.session;
    reply->user = p.user;
    reply->ok = st.ok();
    if (st.ok()) {
      SessionInfo& s = sessions_.FindOrAdd(p.session.value);
      s.hub = static_cast<uint32_t>(p.from_ep - hub_ep0_);
      s.server_ep = ep;
      s.user = p.user;
      server_sessions_[static_cast<size_t>(ep - first_server_ep_)].insert(p.session.value);
      reply->seq = s.to_client_seq++;
    }
    Transmit(ep, p.from_ep, std::move(reply));
    return;
  }
  if (found == nullptr || !found->open || found->server_ep != ep) return;
  SessionInfo& s = *found;
  if (p.kind == Packet::Kind::kClose) {
    // The client closed first, so both ends are done with the session.
    const UserId user = s.user;
    server_sessions_[static_cast<size_t>(ep - first_server_ep_)].erase(p.session.value);
    sessions_.Erase(p.session.value);
    Digest(now, ep, 201, p.session.value, 0);
    if (options_.trace) {
      Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", user.value,
                              " close session s", p.session.value));
    }
    server->OnSessionClose(local, p.session, effects);
    return;
  }
  // kToServer: restore the session's order (a WebSocket is one ordered stream).
  if (p.seq != s.to_server_expected) {
    s.held.Hold(HeldPackets::kToServer, std::make_unique<Packet>(std::move(p)));
    return;
  }
  Digest(now, ep, 300 + p.msg.index(), p.session.value, p.seq);
  if (options_.trace) {
    Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", s.user.value, " ",
                            DebugString(p.msg)));
  }
  server->OnClientMessage(local, p.session, p.msg, effects);
  s.to_server_expected++;
  while (std::unique_ptr<Packet> next = s.held.Take(HeldPackets::kToServer, s.to_server_expected)) {
    server->OnClientMessage(local, next->session, next->msg, effects);
    s.to_server_expected++;
  }
}

void WorldImpl::ApplyNodeEffects(int ep, Effects& effects) {
  // Persist effects of a message or a look-up's answer were taken out in QueueNodeEffects; any
  // left here come from a timer or Start. Written now, so a disk never misses a record.
  WriteToDisk(ep, effects, s4u::Engine::get_clock());
  host::Dispatch(endpoints_[static_cast<size_t>(ep)].node, effects, *this);
}

// ---- host::NodeEnv -----------------------------------------------------------------------------

void WorldImpl::SendToNode(NodeId from, NodeId to, Message msg) {
  SendNodeMessage(EndpointOfNode(from), EndpointOfNode(to), std::move(msg));
}

void WorldImpl::SendToClient(NodeId from, SessionId session, Message msg) {
  SessionInfo* info = sessions_.Find(session.value);
  if (info == nullptr || !info->open) return;
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kToClient;
  p->session = session;
  p->seq = info->to_client_seq++;
  p->msg = std::move(msg);
  Transmit(EndpointOfNode(from), HubEndpoint(info->hub), std::move(p));
}

void WorldImpl::CloseSession(NodeId from, SessionId session) {
  SessionInfo* info = sessions_.Find(session.value);
  if (info == nullptr || !info->open) return;
  const int ep = EndpointOfNode(from);
  info->open = false;
  server_sessions_[static_cast<size_t>(ep - first_server_ep_)].erase(session.value);
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kClosed;
  p->session = session;
  p->seq = info->to_client_seq++;
  Transmit(ep, HubEndpoint(info->hub), std::move(p));
}

void WorldImpl::ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) {
  const int ep = EndpointOfNode(node);
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  e.timers.Arm(SimTimeOf(e, at_us, s4u::Engine::get_clock()),
               TimerEntry{kNodeTimer, Incarnation32(nodes_.incarnation(static_cast<size_t>(ep))),
                          timer_id, at_us});
}

void WorldImpl::PushToDevice(NodeId from, const chatlab::PushToDevice& push) {
  if (!healed_ && sc_.push_loss > 0 && rng_.Bernoulli(sc_.push_loss)) {
    measures_.faults["push_loss"]++;
    return;
  }
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kPush;
  p->push = push;
  p->user = push.user;
  Transmit(EndpointOfNode(from), HubEndpoint(users_[push.user.value - 1].hub), std::move(p));
}

void WorldImpl::LoadHistory(NodeId node, const chatlab::LoadHistory& load) {
  const int ep = EndpointOfNode(node);
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  assert(e.disk != nullptr);
  assert(IsStore(ep));
  const double now = s4u::Engine::get_clock();
  const uint64_t id = history_answer_next_++;
  history_answers_[id] = {load.token, e.disk->ReadMessages(now, load.conv, load.after, load.limit,
                                                           /*unsynced=*/false)};
  const uint32_t incarnation = Incarnation32(nodes_.incarnation(static_cast<size_t>(ep)));
  e.timers.Arm(now + sc_.store_history_read_us / 1e6 / sc_.cpu_speed_factor,
               TimerEntry{kHistoryLoaded, incarnation, id, 0});
}

void WorldImpl::LoadDedup(NodeId node, const chatlab::LoadDedup& load) {
  const int ep = EndpointOfNode(node);
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  assert(e.disk != nullptr);
  assert(IsStore(ep));
  const double now = s4u::Engine::get_clock();
  const uint64_t id = history_answer_next_++;  // one numbering for both kinds of answer
  dedup_answers_[id] = {load.token, e.disk->FindMessage(now, load.sender, load.client_msg_id)};
  const uint32_t incarnation = Incarnation32(nodes_.incarnation(static_cast<size_t>(ep)));
  e.timers.Arm(now + sc_.store_history_read_us / 1e6 / sc_.cpu_speed_factor,
               TimerEntry{kDedupLoaded, incarnation, id, 0});
}

void WorldImpl::Persist(NodeId node, PersistRecord record) {
  // ApplyNodeEffects took every record out before dispatching; keep the contract regardless.
  const int ep = EndpointOfNode(node);
  std::vector<PersistRecord> records;
  records.push_back(std::move(record));
  if (SimDisk* disk = endpoints_[static_cast<size_t>(ep)].disk.get()) {
    disk->Write(s4u::Engine::get_clock(), std::move(records));
  }
}

}  // namespace chatlab::sim::world
