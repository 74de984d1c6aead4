#include "sim/inproc/cluster.h"

#include <cassert>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/codec.h"

namespace chatlab::inproc {
namespace {

uint64_t Fnv(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)), rng_(options_.seed), now_(options_.start_time_us) {
  assert(options_.servers >= 1);
  topology_ = Topology{kStore, kWriter, kMapping, kPresence, kNotification, kBroker};
  store_ = std::make_unique<MessageStore>(OptionsFor(kStore, 0));
  writer_ = std::make_unique<BatchWriter>(OptionsFor(kWriter, 0));
  mapping_ = std::make_unique<UserMappingService>(OptionsFor(kMapping, 0));
  presence_ = std::make_unique<PresenceService>(OptionsFor(kPresence, 0));
  notification_ = std::make_unique<NotificationService>(OptionsFor(kNotification, 0));
  broker_ = std::make_unique<QueueBroker>(OptionsFor(kBroker, 0));
  const std::pair<NodeId, Node*> services[] = {
      {kStore, store_.get()},       {kWriter, writer_.get()},
      {kMapping, mapping_.get()},   {kPresence, presence_.get()},
      {kNotification, notification_.get()}, {kBroker, broker_.get()}};
  for (const auto& [id, node] : services) {
    Effects effects;
    node->Start(now_, effects);
    ApplyNode(id, effects);
  }
  for (int i = 0; i < options_.servers; i++) {
    const NodeId id(kFirstServer + static_cast<uint64_t>(i));
    server_ids_.push_back(id);
    servers_[id] = ServerSlot{nullptr, 0};
    RestartServer(id);
  }
}

Cluster::~Cluster() = default;

NodeOptions Cluster::OptionsFor(NodeId id, uint64_t incarnation) const {
  return NodeOptions{id, options_.config, topology_,
                     MixSeed(options_.seed, id.value * 1000003 + incarnation)};
}

// ---- Clients -----------------------------------------------------------------------------------

ClientSession& Cluster::AddClient(UserId user) {
  assert(!clients_.contains(user));
  ClientSession::Options o;
  o.user = user;
  o.config = options_.config;
  o.seed = MixSeed(options_.seed, user.value ^ 0xc11e47ULL);
  o.observer = &oracle_;
  o.keep_view = options_.keep_views;
  auto& slot = clients_[user];
  slot = std::make_unique<ClientSession>(o);
  return *slot;
}

ClientSession& Cluster::client(UserId user) {
  auto it = clients_.find(user);
  assert(it != clients_.end());
  return *it->second;
}

void Cluster::Connect(UserId user, NodeId server) {
  Effects effects;
  client(user).Connect(now_, server, effects);
  ApplyClient(user, effects);
}

void Cluster::Disconnect(UserId user) {
  Effects effects;
  client(user).Disconnect(now_, effects);
  ApplyClient(user, effects);
}

absl::StatusOr<ClientMsgId> Cluster::Send(UserId from, const ConversationId& conv,
                                          std::string body) {
  Effects effects;
  auto id = client(from).Send(now_, conv, std::move(body), effects);
  ApplyClient(from, effects);
  return id;
}

uint64_t Cluster::JoinGroup(UserId user, GroupId group) {
  Effects effects;
  const uint64_t req = client(user).JoinGroup(now_, group, effects);
  ApplyClient(user, effects);
  return req;
}

uint64_t Cluster::LeaveGroup(UserId user, GroupId group) {
  Effects effects;
  const uint64_t req = client(user).LeaveGroup(now_, group, effects);
  ApplyClient(user, effects);
  return req;
}

void Cluster::MarkRead(UserId user, const ConversationId& conv) {
  Effects effects;
  client(user).MarkRead(now_, conv, effects);
  ApplyClient(user, effects);
}

void Cluster::SetTyping(UserId user, const ConversationId& conv, bool active) {
  Effects effects;
  client(user).SetTyping(now_, conv, active, effects);
  ApplyClient(user, effects);
}

void Cluster::InjectClientFrame(UserId user, std::string_view bytes) {
  ClientSession& c = client(user);
  auto sit = sessions_.find(c.session());
  if (sit == sessions_.end() || !sit->second.server_open) return;
  ChatServer* s = server(sit->second.server);
  if (s == nullptr) return;
  Effects effects;
  auto decoded = Decode(bytes);
  if (decoded.ok()) {
    s->OnClientMessage(now_, c.session(), *decoded, effects);
  } else {
    s->OnClientFrameError(now_, c.session(), decoded.status(), effects);
  }
  ApplyServerToClient(sit->second.server, effects);
}

// ---- Servers -----------------------------------------------------------------------------------

ChatServer* Cluster::server(NodeId id) {
  auto it = servers_.find(id);
  return it == servers_.end() ? nullptr : it->second.node.get();
}

bool Cluster::IsUp(NodeId id) const {
  auto it = servers_.find(id);
  return it != servers_.end() && it->second.node != nullptr;
}

void Cluster::CrashServer(NodeId id) {
  auto it = servers_.find(id);
  assert(it != servers_.end());
  if (it->second.node == nullptr) return;
  it->second.node.reset();
  it->second.incarnation++;
  counters_.crashes++;
  Digest("crash", id.value, 0, nullptr);
  for (auto& [sid, s] : sessions_) {
    if (s.server != id || !s.server_open) continue;
    s.server_open = false;
    Schedule(SessionArrival(s, /*to_client=*/true), ClientSideClose{sid});
  }
}

void Cluster::RestartServer(NodeId id) {
  auto it = servers_.find(id);
  assert(it != servers_.end());
  if (it->second.node != nullptr) return;
  it->second.incarnation++;
  it->second.node = std::make_unique<ChatServer>(OptionsFor(id, it->second.incarnation));
  Digest("start", id.value, it->second.incarnation, nullptr);
  Effects effects;
  it->second.node->Start(now_, effects);
  ApplyNode(id, effects);
}

Node* Cluster::FindNode(NodeId id) {
  switch (id.value) {
    case 1: return store_.get();
    case 2: return writer_.get();
    case 3: return mapping_.get();
    case 4: return presence_.get();
    case 5: return notification_.get();
    case 6: return broker_.get();
    default: return server(id);
  }
}

uint64_t Cluster::IncarnationOf(NodeId id) const {
  auto it = servers_.find(id);
  return it == servers_.end() ? 0 : it->second.incarnation;
}

// ---- Effects -----------------------------------------------------------------------------------

Message Cluster::ThroughCodec(Message msg) {
  if (!options_.through_codec) return msg;
  const std::string bytes = Encode(msg);
  auto decoded = Decode(bytes);
  if (!decoded.ok()) {
    std::cerr << "codec round trip failed for " << MessageName(msg) << ": " << decoded.status()
              << "\n";
    std::abort();
  }
  return std::move(*decoded);
}

void Cluster::ApplyNode(NodeId from, Effects& effects) {
  for (Effect& e : effects) {
    if (auto* send = std::get_if<SendToNode>(&e)) {
      counters_.node_messages++;
      const auto& f = options_.faults;
      if (f.loss > 0 && rng_.Bernoulli(f.loss)) {
        counters_.lost++;
        continue;
      }
      Message msg = ThroughCodec(std::move(send->msg));
      const int copies = (f.duplicate > 0 && rng_.Bernoulli(f.duplicate)) ? 2 : 1;
      if (copies == 2) counters_.duplicated++;
      for (int i = 0; i < copies; i++) {
        const TimeUs jitter =
            f.jitter_us > 0 ? static_cast<TimeUs>(rng_.Uniform(static_cast<uint64_t>(f.jitter_us)))
                            : 0;
        Schedule(now_ + options_.node_latency_us + jitter, NodeDelivery{from, send->to, msg});
      }
    } else if (auto* timer = std::get_if<ArmTimer>(&e)) {
      Schedule(std::max(timer->at_us, now_), NodeTimer{from, IncarnationOf(from), timer->timer_id});
    } else if (auto* push = std::get_if<PushToDevice>(&e)) {
      counters_.pushes++;
      if (options_.faults.push_loss > 0 && rng_.Bernoulli(options_.faults.push_loss)) {
        counters_.pushes_lost++;
        continue;
      }
      Schedule(now_ + options_.push_latency_us, Push{*push});
    } else if (std::holds_alternative<Persist>(e)) {
      continue;  // the in-process store never restarts, so it keeps nothing durable
    } else if (std::holds_alternative<SendToClient>(e) || std::holds_alternative<CloseSession>(e)) {
      Effects one;
      one.push_back(std::move(e));
      ApplyServerToClient(from, one);
    }
  }
}

void Cluster::ApplyServerToClient(NodeId server, Effects& effects) {
  for (Effect& e : effects) {
    if (auto* send = std::get_if<SendToClient>(&e)) {
      auto it = sessions_.find(send->session);
      if (it == sessions_.end() || !it->second.server_open) continue;
      counters_.client_messages++;
      Message msg = ThroughCodec(std::move(send->msg));
      Schedule(SessionArrival(it->second, true), ToClient{send->session, std::move(msg)});
    } else if (auto* close = std::get_if<CloseSession>(&e)) {
      auto it = sessions_.find(close->session);
      if (it == sessions_.end() || !it->second.server_open) continue;
      it->second.server_open = false;
      Schedule(SessionArrival(it->second, true), ClientSideClose{close->session});
    } else {
      Effects rest;
      rest.push_back(std::move(e));
      ApplyNode(server, rest);
    }
  }
}

void Cluster::ApplyClient(UserId user, Effects& effects) {
  ClientSession& c = client(user);
  for (Effect& e : effects) {
    if (auto* send = std::get_if<SendToServer>(&e)) {
      auto it = sessions_.find(c.session());
      if (it == sessions_.end() || !it->second.client_open) continue;
      counters_.client_messages++;
      Message msg = ThroughCodec(std::move(send->msg));
      Schedule(SessionArrival(it->second, false), ToServer{c.session(), std::move(msg)});
    } else if (auto* open = std::get_if<OpenSession>(&e)) {
      NodeId target = open->server;
      if (!target.valid()) {
        target = server_ids_[rng_.Uniform(server_ids_.size())];
      }
      Schedule(now_ + options_.client_latency_us, SessionOpen{user, target});
    } else if (auto* close = std::get_if<CloseSession>(&e)) {
      auto it = sessions_.find(close->session);
      if (it == sessions_.end() || !it->second.client_open) continue;
      it->second.client_open = false;
      Schedule(SessionArrival(it->second, false), ServerSideClose{close->session});
    } else if (auto* timer = std::get_if<ArmTimer>(&e)) {
      Schedule(std::max(timer->at_us, now_), ClientTimer{user, timer->timer_id});
    }
  }
}

TimeUs Cluster::SessionArrival(SessionState& s, bool to_client) {
  TimeUs& last = to_client ? s.last_to_client_us : s.last_to_server_us;
  last = std::max(last, now_ + options_.client_latency_us);
  return last;
}

// ---- The event loop ----------------------------------------------------------------------------

void Cluster::Schedule(TimeUs at, EventKind what) {
  events_.push(Event{at, seq_next_++, std::move(what)});
}

void Cluster::RunUntil(TimeUs t) {
  while (!events_.empty() && events_.top().at <= t) {
    Event e = std::move(const_cast<Event&>(events_.top()));
    events_.pop();
    now_ = std::max(now_, e.at);
    counters_.events++;
    Process(e);
  }
  now_ = std::max(now_, t);
}

void Cluster::Process(Event& e) {
  if (auto* d = std::get_if<NodeDelivery>(&e.what)) {
    ProcessNodeDelivery(*d);
  } else if (auto* ts = std::get_if<ToServer>(&e.what)) {
    auto it = sessions_.find(ts->session);
    if (it == sessions_.end() || !it->second.server_open) return;
    ChatServer* s = server(it->second.server);
    if (s == nullptr || IncarnationOf(it->second.server) != it->second.server_incarnation) return;
    Digest(MessageName(ts->msg), ts->session.value, it->second.server.value, &ts->msg);
    Effects effects;
    s->OnClientMessage(now_, ts->session, ts->msg, effects);
    ApplyServerToClient(it->second.server, effects);
  } else if (auto* tc = std::get_if<ToClient>(&e.what)) {
    auto it = sessions_.find(tc->session);
    if (it == sessions_.end() || !it->second.client_open) return;
    ClientSession& c = client(it->second.user);
    if (c.session() != tc->session) return;
    Digest(MessageName(tc->msg), it->second.user.value, tc->session.value, &tc->msg);
    Effects effects;
    c.OnServerMessage(now_, tc->msg, effects);
    ApplyClient(it->second.user, effects);
  } else if (auto* nt = std::get_if<NodeTimer>(&e.what)) {
    if (nt->incarnation != IncarnationOf(nt->node)) return;  // died with its node
    Node* n = FindNode(nt->node);
    if (n == nullptr) return;
    Digest("timer", nt->node.value, nt->timer_id, nullptr);
    Effects effects;
    n->OnTimer(now_, nt->timer_id, effects);
    ApplyNode(nt->node, effects);
  } else if (auto* ct = std::get_if<ClientTimer>(&e.what)) {
    Effects effects;
    client(ct->user).OnTimer(now_, ct->timer_id, effects);
    ApplyClient(ct->user, effects);
  } else if (auto* so = std::get_if<SessionOpen>(&e.what)) {
    ClientSession& c = client(so->user);
    Effects client_effects;
    ChatServer* s = server(so->server);
    if (s == nullptr) {
      c.OnConnectFailed(now_, client_effects);
      ApplyClient(so->user, client_effects);
      return;
    }
    const SessionId sid(session_next_++);
    Effects server_effects;
    absl::Status st = s->OnSessionOpen(now_, sid, so->user, server_effects);
    if (st.ok()) {
      sessions_[sid] = SessionState{so->user, so->server, IncarnationOf(so->server)};
    }
    Digest("open", so->user.value, st.ok() ? sid.value : 0, nullptr);
    ApplyServerToClient(so->server, server_effects);
    if (st.ok()) {
      c.OnConnected(now_, sid, so->server, client_effects);
    } else {
      c.OnConnectFailed(now_, client_effects);
    }
    ApplyClient(so->user, client_effects);
  } else if (auto* cc = std::get_if<ClientSideClose>(&e.what)) {
    auto it = sessions_.find(cc->session);
    if (it == sessions_.end()) return;
    it->second.client_open = false;
    ClientSession& c = client(it->second.user);
    Digest("closed", it->second.user.value, cc->session.value, nullptr);
    if (c.session() != cc->session) return;
    Effects effects;
    c.OnDisconnected(now_, effects);
    ApplyClient(it->second.user, effects);
  } else if (auto* sc = std::get_if<ServerSideClose>(&e.what)) {
    auto it = sessions_.find(sc->session);
    if (it == sessions_.end() || !it->second.server_open) return;
    it->second.server_open = false;
    ChatServer* s = server(it->second.server);
    if (s == nullptr || IncarnationOf(it->second.server) != it->second.server_incarnation) return;
    Digest("close", it->second.user.value, sc->session.value, nullptr);
    Effects effects;
    s->OnSessionClose(now_, sc->session, effects);
    ApplyServerToClient(it->second.server, effects);
  } else if (auto* p = std::get_if<Push>(&e.what)) {
    if (!clients_.contains(p->push.user)) return;
    Effects effects;
    client(p->push.user).OnPushNotification(now_, p->push, effects);
    ApplyClient(p->push.user, effects);
  }
}

void Cluster::ProcessNodeDelivery(NodeDelivery& d) {
  Node* n = FindNode(d.to);
  if (n == nullptr) return;  // the destination is down: the message is lost
  Digest(MessageName(d.msg), d.from.value, d.to.value, &d.msg);
  if (options_.trace) {
    options_.trace(absl::StrCat(now_ - options_.start_time_us, "us ", ToString(d.from), "->",
                                ToString(d.to), " ", DebugString(d.msg)));
  }
  Effects effects;
  n->OnMessage(now_, d.from, d.msg, effects);
  ApplyNode(d.to, effects);
}

void Cluster::Digest(std::string_view kind, uint64_t a, uint64_t b, const Message* msg) {
  digest_ = Fnv(digest_, absl::StrCat(now_, " ", absl::string_view(kind.data(), kind.size()),
                                      " ", a, " ", b));
  if (msg != nullptr) digest_ = Fnv(digest_, Encode(*msg));
}

std::vector<ConversationTruth> Cluster::Truth() const {
  std::vector<ConversationTruth> truth;
  for (const ConversationId& conv : store_->Conversations()) {
    ConversationTruth t;
    t.conv = conv;
    t.messages = store_->Messages(conv);
    if (conv.is_group()) {
      t.participants = store_->Members(conv.group());
    } else {
      t.participants.push_back(UserId(conv.low));
      if (conv.high != conv.low) t.participants.push_back(UserId(conv.high));
    }
    truth.push_back(std::move(t));
  }
  return truth;
}

}  // namespace chatlab::inproc
