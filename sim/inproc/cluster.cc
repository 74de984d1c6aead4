#include "sim/inproc/cluster.h"

#include <cassert>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "host/truth.h"

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
    : options_(std::move(options)),
      rng_(options_.seed),
      now_(options_.start_time_us),
      deployment_(host::Deployment::Options{options_.servers, options_.config}),
      nodes_(deployment_, options_.seed) {
  // Services first (every one the registry has), then the chat servers.
  for (int i = 0; i < deployment_.first_server(); i++) nodes_.Create(static_cast<size_t>(i));
  for (int i = 0; i < deployment_.first_server(); i++) {
    Effects effects;
    nodes_.node(static_cast<size_t>(i))->Start(now_, effects);
    ApplyNode(deployment_.slot(static_cast<size_t>(i)).id, effects);
  }
  for (int i = 0; i < options_.servers; i++) {
    const NodeId id = host::ChatServerId(i);
    server_ids_.push_back(id);
    RestartServer(id);
  }
}

Cluster::~Cluster() = default;

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

uint64_t Cluster::GetReceipts(UserId user, const ConversationId& conv) {
  Effects effects;
  const uint64_t request = client(user).GetReceipts(now_, conv, effects);
  ApplyClient(user, effects);
  return request;
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
  ApplyNode(sit->second.server, effects);
}

// ---- Servers -----------------------------------------------------------------------------------

ChatServer* Cluster::server(NodeId id) {
  const int slot = deployment_.IndexOf(id);
  return slot < 0 ? nullptr : nodes_.server(static_cast<size_t>(slot));
}

bool Cluster::IsUp(NodeId id) const {
  const int slot = deployment_.IndexOf(id);
  return slot >= deployment_.first_server() && nodes_.up(static_cast<size_t>(slot));
}

void Cluster::CrashServer(NodeId id) {
  const int slot = deployment_.IndexOf(id);
  assert(slot >= deployment_.first_server());
  if (!nodes_.up(static_cast<size_t>(slot))) return;
  nodes_.Destroy(static_cast<size_t>(slot));
  counters_.crashes++;
  Digest("crash", id.value, 0, nullptr);
  for (auto& [sid, s] : sessions_) {
    if (s.server != id || !s.server_open) continue;
    s.server_open = false;
    Schedule(SessionArrival(s, /*to_client=*/true), ClientSideClose{sid});
  }
}

void Cluster::RestartServer(NodeId id) {
  const int slot = deployment_.IndexOf(id);
  assert(slot >= deployment_.first_server());
  if (nodes_.up(static_cast<size_t>(slot))) return;
  Node& node = nodes_.Create(static_cast<size_t>(slot));
  Digest("start", id.value, nodes_.incarnation(static_cast<size_t>(slot)), nullptr);
  Effects effects;
  node.Start(now_, effects);
  ApplyNode(id, effects);
}

Node* Cluster::FindNode(NodeId id) {
  const int slot = deployment_.IndexOf(id);
  return slot < 0 ? nullptr : nodes_.node(static_cast<size_t>(slot));
}

uint64_t Cluster::IncarnationOf(NodeId id) const {
  const int slot = deployment_.IndexOf(id);
  return slot < 0 ? 0 : nodes_.incarnation(static_cast<size_t>(slot));
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

void Cluster::SendToNode(NodeId from, NodeId to, Message msg) {
  counters_.node_messages++;
  const auto& f = options_.faults;
  if (f.loss > 0 && rng_.Bernoulli(f.loss)) {
    counters_.lost++;
    return;
  }
  msg = ThroughCodec(std::move(msg));
  const int copies = (f.duplicate > 0 && rng_.Bernoulli(f.duplicate)) ? 2 : 1;
  if (copies == 2) counters_.duplicated++;
  for (int i = 0; i < copies; i++) {
    const TimeUs jitter =
        f.jitter_us > 0 ? static_cast<TimeUs>(rng_.Uniform(static_cast<uint64_t>(f.jitter_us)))
                        : 0;
    Schedule(now_ + options_.node_latency_us + jitter, NodeDelivery{from, to, msg});
  }
}

void Cluster::ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) {
  Schedule(std::max(at_us, now_), NodeTimer{node, IncarnationOf(node), timer_id});
}

void Cluster::PushToDevice(NodeId /*from*/, const chatlab::PushToDevice& push) {
  counters_.pushes++;
  if (options_.faults.push_loss > 0 && rng_.Bernoulli(options_.faults.push_loss)) {
    counters_.pushes_lost++;
    return;
  }
  Schedule(now_ + options_.push_latency_us, Push{push});
}

void Cluster::SendToClient(NodeId /*from*/, SessionId session, Message msg) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.server_open) return;
  counters_.client_messages++;
  msg = ThroughCodec(std::move(msg));
  Schedule(SessionArrival(it->second, true), ToClient{session, std::move(msg)});
}

void Cluster::CloseSession(NodeId /*from*/, SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.server_open) return;
  it->second.server_open = false;
  Schedule(SessionArrival(it->second, true), ClientSideClose{session});
}

void Cluster::SendToServer(UserId user, Message msg) {
  ClientSession& c = client(user);
  auto it = sessions_.find(c.session());
  if (it == sessions_.end() || !it->second.client_open) return;
  counters_.client_messages++;
  msg = ThroughCodec(std::move(msg));
  Schedule(SessionArrival(it->second, false), ToServer{c.session(), std::move(msg)});
}

void Cluster::OpenSession(UserId user, NodeId server) {
  NodeId target = server;
  if (!target.valid()) target = server_ids_[rng_.Uniform(server_ids_.size())];
  Schedule(now_ + options_.client_latency_us, SessionOpen{user, target});
}

void Cluster::CloseSession(UserId /*user*/, SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.client_open) return;
  it->second.client_open = false;
  Schedule(SessionArrival(it->second, false), ServerSideClose{session});
}

void Cluster::ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) {
  Schedule(std::max(at_us, now_), ClientTimer{user, timer_id});
}

TimeUs Cluster::SessionArrival(SessionState& s, bool to_client) {
  TimeUs& last = to_client ? s.last_to_client_us : s.last_to_server_us;
  last = std::max(last, now_ + options_.client_latency_us);
  return last;
}

// ---- The event loop ----------------------------------------------------------------------------

void Cluster::RunUntil(TimeUs t) {
  while (auto due = events_.PopDue(t)) {
    now_ = std::max(now_, due->first);
    counters_.events++;
    Process(due->second);
  }
  now_ = std::max(now_, t);
}

void Cluster::Process(EventKind& what) {
  if (auto* d = std::get_if<NodeDelivery>(&what)) {
    ProcessNodeDelivery(*d);
  } else if (auto* ts = std::get_if<ToServer>(&what)) {
    auto it = sessions_.find(ts->session);
    if (it == sessions_.end() || !it->second.server_open) return;
    ChatServer* s = server(it->second.server);
    if (s == nullptr || IncarnationOf(it->second.server) != it->second.server_incarnation) return;
    Digest(MessageName(ts->msg), ts->session.value, it->second.server.value, &ts->msg);
    Effects effects;
    s->OnClientMessage(now_, ts->session, ts->msg, effects);
    ApplyNode(it->second.server, effects);
  } else if (auto* tc = std::get_if<ToClient>(&what)) {
    auto it = sessions_.find(tc->session);
    if (it == sessions_.end() || !it->second.client_open) return;
    ClientSession& c = client(it->second.user);
    if (c.session() != tc->session) return;
    Digest(MessageName(tc->msg), it->second.user.value, tc->session.value, &tc->msg);
    Effects effects;
    c.OnServerMessage(now_, tc->msg, effects);
    ApplyClient(it->second.user, effects);
  } else if (auto* nt = std::get_if<NodeTimer>(&what)) {
    if (nt->incarnation != IncarnationOf(nt->node)) return;  // died with its node
    Node* n = FindNode(nt->node);
    if (n == nullptr) return;
    Digest("timer", nt->node.value, nt->timer_id, nullptr);
    Effects effects;
    n->OnTimer(now_, nt->timer_id, effects);
    ApplyNode(nt->node, effects);
  } else if (auto* ct = std::get_if<ClientTimer>(&what)) {
    Effects effects;
    client(ct->user).OnTimer(now_, ct->timer_id, effects);
    ApplyClient(ct->user, effects);
  } else if (auto* so = std::get_if<SessionOpen>(&what)) {
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
    ApplyNode(so->server, server_effects);
    if (st.ok()) {
      c.OnConnected(now_, sid, so->server, client_effects);
    } else {
      c.OnConnectFailed(now_, client_effects);
    }
    ApplyClient(so->user, client_effects);
  } else if (auto* cc = std::get_if<ClientSideClose>(&what)) {
    auto it = sessions_.find(cc->session);
    if (it == sessions_.end()) return;
    it->second.client_open = false;
    ClientSession& c = client(it->second.user);
    Digest("closed", it->second.user.value, cc->session.value, nullptr);
    if (c.session() != cc->session) return;
    Effects effects;
    c.OnDisconnected(now_, effects);
    ApplyClient(it->second.user, effects);
  } else if (auto* sc = std::get_if<ServerSideClose>(&what)) {
    auto it = sessions_.find(sc->session);
    if (it == sessions_.end() || !it->second.server_open) return;
    it->second.server_open = false;
    ChatServer* s = server(it->second.server);
    if (s == nullptr || IncarnationOf(it->second.server) != it->second.server_incarnation) return;
    Digest("close", it->second.user.value, sc->session.value, nullptr);
    Effects effects;
    s->OnSessionClose(now_, sc->session, effects);
    ApplyNode(it->second.server, effects);
  } else if (auto* p = std::get_if<Push>(&what)) {
    if (!clients_.contains(p->push.user)) return;
    Effects effects;
    client(p->push.user).OnPushNotification(now_, p->push, effects);
    ApplyClient(p->push.user, effects);
  } else if (auto* h = std::get_if<HistoryLoaded>(&what)) {
    Digest("history", h->token, h->messages.size(), nullptr);
    Effects effects;
    auto* store = static_cast<MessageStore*>(FindNode(h->store));
    if (store == nullptr) return;
    store->OnHistoryLoaded(now_, h->token, std::move(h->messages), effects);
    ApplyNode(h->store, effects);
  } else if (auto* d = std::get_if<DedupLoaded>(&what)) {
    Digest("dedup", d->token, d->found.has_value() ? 1 : 0, nullptr);
    Effects effects;
    auto* store = static_cast<MessageStore*>(FindNode(d->store));
    if (store == nullptr) return;
    store->OnDedupLoaded(now_, d->token, std::move(d->found), effects);
    ApplyNode(d->store, effects);
  }
}

void Cluster::Persist(NodeId from, PersistRecord record) {
  if (auto* m = std::get_if<PersistMessage>(&record)) {
    dedup_keys_.try_emplace({from, m->message.sender, m->message.client_msg_id}, m->message.conv,
                            m->message.message_id);
    history_[m->message.conv].insert_or_assign(m->message.message_id, std::move(m->message));
  }
}

void Cluster::LoadDedup(NodeId node, const chatlab::LoadDedup& load) {
  DedupLoaded answer{node, load.token, std::nullopt};
  if (const auto key = dedup_keys_.find({node, load.sender, load.client_msg_id});
      key != dedup_keys_.end()) {
    const ChatMessage& row = history_.at(key->second.first).at(key->second.second);
    // Still that message (a later write of its id may have overwritten it).
    if (row.sender == load.sender && row.client_msg_id == load.client_msg_id) answer.found = row;
  }
  Schedule(now_ + options_.node_latency_us, std::move(answer));
}

void Cluster::LoadHistory(NodeId node, const chatlab::LoadHistory& load) {
  HistoryLoaded answer{node, load.token, {}};
  if (const auto it = history_.find(load.conv); it != history_.end()) {
    for (auto m = it->second.upper_bound(load.after);
         m != it->second.end() && answer.messages.size() < load.limit; ++m) {
      answer.messages.push_back(m->second);
    }
  }
  Schedule(now_ + options_.node_latency_us, std::move(answer));
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
  std::vector<const MessageStore*> stores;
  for (const int slot : deployment_.store_slots()) {
    stores.push_back(static_cast<const MessageStore*>(nodes_.node(static_cast<size_t>(slot))));
  }
  if (options_.config.store_tail_cache == 0) return host::BuildTruth(stores);
  return host::BuildTruth(stores, [this](const ConversationId& conv) {
    std::vector<ChatMessage> messages;
    if (const auto it = history_.find(conv); it != history_.end()) {
      for (const auto& [id, m] : it->second) messages.push_back(m);
    }
    return messages;
  });
}

}  // namespace chatlab::inproc
