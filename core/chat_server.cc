#include "core/chat_server.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chatlab {

ChatServer::ChatServer(const NodeOptions& options)
    : options_(options),
      rng_(options.seed),
      snowflake_(static_cast<uint32_t>(options.self.value & SnowflakeGenerator::kNodeMax)) {
  assert(options_.self.valid());
  assert(options_.config.server_tick_us > 0);
  const auto timeouts = static_cast<uint64_t>(kAckedMemoryTimeouts) *
                        static_cast<uint64_t>(std::max<TimeUs>(options_.config.request_timeout_us, 0));
  const auto tick = static_cast<uint64_t>(options_.config.server_tick_us);
  acked_memory_ticks_ = (timeouts + tick - 1) / tick + kAckedMemorySlackTicks;
  assert(options_.topology.store.valid());
  assert(options_.topology.mapping.valid());
}

void ChatServer::Start(TimeUs now, Effects& out) {
  out.push_back(ArmTimer{kTickTimer, now + options_.config.server_tick_us});
  incarnation_ = MixSeed(options_.seed, static_cast<uint64_t>(now));
  request_id_next_ = FirstRequestId(options_.seed, now);
  if (options_.config.forwarding == ForwardingStrategy::kQueue) {
    assert(options_.topology.broker.valid());
    out.push_back(SendToNode{options_.topology.broker, QueueSubscribe{incarnation_}});
    resubscribe_at_us_ = now + options_.config.queue_consumer_timeout_us / 2;
  }
  refresh_at_us_ = now + options_.config.map_refresh_interval_us;
}

UserId ChatServer::SessionUser(SessionId session) const {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? UserId() : it->second.user;
}

// ---- Sessions ----------------------------------------------------------------------------------

absl::Status ChatServer::Admit(SessionId session) {
  if (sessions_.contains(session)) {
    return absl::AlreadyExistsError(absl::StrCat("session ", ToString(session), " is already open"));
  }
  if (sessions_.size() >= options_.config.server_sessions_max) {
    stats_.sessions_refused++;
    return absl::ResourceExhaustedError(
        absl::StrCat("server ", ToString(options_.self), " is at server_sessions_max=",
                     options_.config.server_sessions_max));
  }
  return absl::OkStatus();
}

absl::Status ChatServer::OnSessionOpen(TimeUs now, SessionId session, UserId user, Effects& out) {
  (void)now;
  assert(session.valid());
  assert(user.valid());
  if (absl::Status admitted = Admit(session); !admitted.ok()) return admitted;
  Session& fresh = sessions_[session];
  fresh = Session();
  fresh.user = user;
  UserSessions& user_sessions = users_[user];
  const bool first_here = user_sessions.empty();
  // Admit refused a session already open, so it is not among the user's.
  user_sessions.insert(std::lower_bound(user_sessions.begin(), user_sessions.end(), session),
                       session);
  stats_.sessions_opened++;
  // Register on every open: a newer session elsewhere may have displaced us in the mapping.
  out.push_back(SendToNode{options_.topology.mapping, MapRegister{user}});
  if (first_here && options_.topology.presence.valid()) {
    out.push_back(SendToNode{options_.topology.presence, PresenceSet{user, true}});
  }
  return absl::OkStatus();
}

absl::Status ChatServer::OnWebSessionOpen(TimeUs now, SessionId session, UserId user,
                                          Effects& out) {
  (void)now;
  (void)out;
  assert(session.valid());
  assert(user.valid());
  if (absl::Status admitted = Admit(session); !admitted.ok()) return admitted;
  Session& fresh = sessions_[session];
  fresh = Session();
  fresh.user = user;
  fresh.web = true;
  stats_.sessions_opened++;
  return absl::OkStatus();
}

void ChatServer::OnSessionClose(TimeUs now, SessionId session, Effects& out) {
  (void)now;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  const UserId user = it->second.user;
  const bool web = it->second.web;
  sessions_.erase(it);
  stats_.sessions_closed++;
  if (web) return;  // never registered, never pushed to
  auto uit = users_.find(user);
  assert(uit != users_.end());
  UserSessions& user_sessions = uit->second;
  const auto pos = std::find(user_sessions.begin(), user_sessions.end(), session);
  assert(pos != user_sessions.end());
  user_sessions.erase(pos);
  if (!user_sessions.empty()) return;
  users_.erase(uit);
  out.push_back(SendToNode{options_.topology.mapping, MapUnregister{user}});
  if (options_.topology.presence.valid()) {
    out.push_back(SendToNode{options_.topology.presence, PresenceSet{user, false}});
  }
}

void ChatServer::CloseSessionFor(TimeUs now, SessionId session, Code code, std::string detail,
                                 Effects& out) {
  if (!sessions_.contains(session)) return;
  out.push_back(SendToClient{session, SessionClosed{code, std::move(detail)}});
  out.push_back(CloseSession{session});
  OnSessionClose(now, session, out);
}

void ChatServer::OnMapDisplaced(TimeUs now, const MapDisplaced& m, Effects& out) {
  (void)now;
  auto uit = users_.find(m.user);
  if (uit == users_.end()) return;
  // The mapping already points at the new server, so no MapUnregister; presence ignores an
  // offline from a server that no longer holds the user, so none is sent either.
  for (SessionId s : uit->second) {
    out.push_back(SendToClient{
        s, SessionClosed{Code::kFailedPrecondition,
                         absl::StrCat("displaced by a newer session on ", ToString(m.new_server))}});
    out.push_back(CloseSession{s});
    sessions_.erase(s);
    stats_.sessions_displaced++;
  }
  users_.erase(uit);
}

// ---- Client requests ---------------------------------------------------------------------------

void ChatServer::OnClientMessage(TimeUs now, SessionId session, const Message& msg,
                                 Effects& out) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  const UserId user = it->second.user;
  stats_.client_requests++;
  if (it->second.web && (std::holds_alternative<SendMessage>(msg) ||
                         std::holds_alternative<Receipt>(msg) ||
                         std::holds_alternative<Typing>(msg))) {
    ReplyError(session, Code::kInvalidArgument,
               absl::StrCat(MessageName(msg), " is not a Web Service call; send it on the WebSocket"),
               out);
    return;
  }
  if (const auto* m = std::get_if<SendMessage>(&msg)) {
    OnSendMessage(now, session, user, *m, out);
  } else if (const auto* r = std::get_if<Receipt>(&msg)) {
    OnReceipt(now, user, *r, out);
  } else if (const auto* t = std::get_if<Typing>(&msg)) {
    OnTyping(now, user, *t, out);
  } else if (std::holds_alternative<GetMessages>(msg) || std::holds_alternative<SyncRequest>(msg) ||
             std::holds_alternative<JoinGroup>(msg) || std::holds_alternative<LeaveGroup>(msg) ||
             std::holds_alternative<PresenceQuery>(msg) ||
             std::holds_alternative<GetReceipts>(msg)) {
    OnClientRead(now, session, user, msg, out);
  } else {
    ReplyError(session, Code::kInvalidArgument,
               absl::StrCat(MessageName(msg), " is not a client request"), out);
  }
}

void ChatServer::OnClientFrameError(TimeUs now, SessionId session, const absl::Status& error,
                                    Effects& out) {
  (void)now;
  if (!sessions_.contains(session)) return;
  const Code code = absl::IsResourceExhausted(error) ? Code::kResourceExhausted
                                                     : Code::kInvalidArgument;
  ReplyError(session, code, absl::StrCat("bad frame: ", error.message()), out);
}

void ChatServer::OnSendMessage(TimeUs now, SessionId session, UserId user, const SendMessage& m,
                               Effects& out) {
  const auto& config = options_.config;
  const uint64_t fingerprint = MessageFingerprint(m.conv, m.body);
  const auto session_it = sessions_.find(session);
  const Acked* acked = session_it == sessions_.end()
                           ? nullptr
                           : AckedRecently(session_it->second, m.client_msg_id);
  if (acked != nullptr && acked->fingerprint == fingerprint) {
    // A retry that crossed its kOk: that answer is already on this ordered session, ahead of
    // anything we could answer now, so the retry needs nothing (and must get no other answer).
    stats_.retries_after_ack++;
    return;
  }
  SendAck refusal{m.client_msg_id, m.conv, Code::kOk};
  if (acked != nullptr) {
    refusal.code = Code::kInvalidArgument;  // the id names the message acked; see the store
  } else if (!m.conv.Valid()) {
    refusal.code = Code::kInvalidArgument;
  } else if (m.body.size() > config.body_bytes_max) {
    refusal.code = Code::kInvalidArgument;
  } else if (!m.conv.is_group() && !m.conv.HasParty(user)) {
    refusal.code = Code::kPermissionDenied;
  } else if (AtPendingLimit()) {
    refusal.code = Code::kResourceExhausted;
  }
  if (refusal.code != Code::kOk) {
    stats_.sends_rejected++;
    SendAckTo(session, refusal, fingerprint, out);
    return;
  }
  stats_.sends++;
  ChatMessage draft;
  draft.conv = m.conv;
  draft.sender = user;
  draft.client_msg_id = m.client_msg_id;
  draft.sent_at_us = m.sent_at_us;
  draft.body = m.body;
  const SendOp send{session, user, m.client_msg_id, m.conv, fingerprint, m.attempt};
  if (config.write_path == WritePath::kBatched && m.conv.is_group()) {
    // The writer acks before the store sees the message, so membership, the one thing the
    // server cannot check alone, is asked first (docs/architecture.md).
    stats_.member_checks++;
    const uint64_t req = NewRequest(now, MemberCheckOp{send, std::move(draft)});
    out.push_back(SendToNode{options_.topology.StoreFor(m.conv),
                             StoreCheckMember{req, user, m.conv.group(), m.client_msg_id}});
    return;
  }
  StartSend(now, send, std::move(draft), out);
}

MessageId ChatServer::MintId(TimeUs now) {
  assert(options_.config.id_generator == IdGenerator::kChatServer);
  switch (options_.config.id_scheme) {
    case IdScheme::kSnowflake:
      stats_.ids_minted++;
      return snowflake_.Next(now);
    case IdScheme::kTimestamp:
      stats_.ids_minted++;
      return static_cast<MessageId>(std::max<TimeUs>(now, 1));
    case IdScheme::kSequence:
      return kNoMessage;  // a per-conversation counter lives with the conversation: the store
  }
  assert(false && "unknown IdScheme");
  return kNoMessage;
}

void ChatServer::StartSend(TimeUs now, const SendOp& send, ChatMessage draft, Effects& out) {
  draft.message_id = options_.config.id_generator == IdGenerator::kChatServer ? MintId(now)
                                                                              : kNoMessage;
  draft.prev_msg_id = kNoMessage;
  const uint64_t req = NewRequest(now, send);
  if (options_.config.write_path == WritePath::kBatched) {
    assert(options_.topology.writer.valid());
    out.push_back(SendToNode{options_.topology.writer, WriterEnqueue{req, std::move(draft)}});
  } else {
    const NodeId store = options_.topology.StoreFor(draft.conv);
    out.push_back(SendToNode{store, StoreAppend{req, std::move(draft), send.attempt}});
  }
}

void ChatServer::OnClientRead(TimeUs now, SessionId session, UserId user, const Message& msg,
                              Effects& out) {
  ClientReadOp op;
  op.session = session;
  Message request;
  const Topology& topology = options_.topology;
  NodeId service = topology.store;
  if (const auto* g = std::get_if<GetMessages>(&msg)) {
    op.client_request_id = g->request_id;
    op.conv = g->conv;
    service = topology.StoreFor(g->conv);
    request = StoreRead{0, user, g->conv, g->after_id, g->limit};
  } else if (const auto* s = std::get_if<SyncRequest>(&msg)) {
    // Every shard lists the user's conversations it holds; OnStoreSyncResult merges them.
    op.client_request_id = s->request_id;
    if (topology.stores.size() > 1) op.awaiting = topology.stores;
    request = StoreSync{0, user};
  } else if (const auto* r = std::get_if<GetReceipts>(&msg)) {
    // Who may see whose receipts is the store's call (members and parties only), as for reads.
    op.client_request_id = r->request_id;
    op.conv = r->conv;
    service = topology.StoreFor(r->conv);
    request = StoreGetReceipts{0, user, r->conv, r->after_user, r->limit};
  } else if (const auto* j = std::get_if<JoinGroup>(&msg)) {
    op.client_request_id = j->request_id;
    op.group = j->group;
    service = topology.StoreFor(ConversationId::Group(j->group));
    request = StoreMembership{0, user, j->group, true};
  } else if (const auto* l = std::get_if<LeaveGroup>(&msg)) {
    op.client_request_id = l->request_id;
    op.group = l->group;
    service = topology.StoreFor(ConversationId::Group(l->group));
    request = StoreMembership{0, user, l->group, false};
  } else {
    const auto& q = std::get<PresenceQuery>(msg);
    op.client_request_id = q.request_id;
    if (!options_.topology.presence.valid() ||
        q.users.size() > options_.config.lookup_users_max) {
      SendToSession(session, PresenceResult{q.request_id, Code::kInvalidArgument, {}}, out);
      return;
    }
    service = options_.topology.presence;
    request = PresenceLookup{0, q.users, user};  // answered per viewer: who pushes to them
  }
  if (AtPendingLimit()) {
    ReplyError(session, Code::kResourceExhausted, "server_pending_max reached; retry later",
               out);
    return;
  }
  const bool every_shard = !op.awaiting.empty();
  const uint64_t req = NewRequest(now, std::move(op));
  std::visit(
      [req](auto& r) {
        if constexpr (requires { r.request_id; }) r.request_id = req;
      },
      request);
  if (every_shard) {
    for (const NodeId store : topology.stores) out.push_back(SendToNode{store, request});
    return;
  }
  out.push_back(SendToNode{service, std::move(request)});
}


void ChatServer::OnReceipt(TimeUs now, UserId user, const Receipt& m, Effects& out) {
  if (!m.conv.Valid() || (!m.conv.is_group() && !m.conv.HasParty(user)) || AtPendingLimit()) {
    return;  // receipts are fire-and-forget; a bad one is dropped
  }
  const uint64_t req = NewRequest(now, ReceiptOp{});
  out.push_back(SendToNode{options_.topology.StoreFor(m.conv),
                           StoreReceipt{req, m.conv, user, m.kind, m.up_to}});
}

void ChatServer::OnTyping(TimeUs now, UserId user, const Typing& m, Effects& out) {
  if (!m.conv.Valid()) return;
  TypingUpdate update{m.conv, user, m.active};
  if (!m.conv.is_group()) {
    if (!m.conv.HasParty(user)) return;
    FanOut(now, update, {m.conv.Peer(user)}, SessionId(), out);
    return;
  }
  if (AtPendingLimit()) return;
  const uint64_t req = NewRequest(now, MembersOp{update});
  out.push_back(SendToNode{options_.topology.StoreFor(m.conv), StoreMembers{req, m.conv.group()}});
}

// ---- Node messages -----------------------------------------------------------------------------

void ChatServer::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<StoreAppendResult>(&msg)) {
    OnStoreAppendResult(now, *m, out);
  } else if (const auto* cm = std::get_if<StoreCheckMemberResult>(&msg)) {
    OnStoreCheckMemberResult(now, *cm, out);
  } else if (const auto* w = std::get_if<WriterEnqueueResult>(&msg)) {
    OnWriterEnqueueResult(now, *w, out);
  } else if (const auto* c = std::get_if<WriterCommitted>(&msg)) {
    OnWriterCommitted(now, *c, out);
  } else if (const auto* r = std::get_if<StoreReadResult>(&msg)) {
    OnClientReadResult(now, r->request_id, msg, out);
  } else if (const auto* s = std::get_if<StoreSyncResult>(&msg)) {
    OnStoreSyncResult(now, from, *s, out);
  } else if (const auto* mr = std::get_if<StoreMembershipResult>(&msg)) {
    OnClientReadResult(now, mr->request_id, msg, out);
  } else if (const auto* pl = std::get_if<PresenceLookupResult>(&msg)) {
    OnClientReadResult(now, pl->request_id, msg, out);
  } else if (const auto* gr = std::get_if<StoreGetReceiptsResult>(&msg)) {
    OnClientReadResult(now, gr->request_id, msg, out);
  } else if (const auto* rr = std::get_if<StoreReceiptResult>(&msg)) {
    OnStoreReceiptResult(now, *rr, out);
  } else if (const auto* mm = std::get_if<StoreMembersResult>(&msg)) {
    OnStoreMembersResult(now, *mm, out);
  } else if (const auto* ml = std::get_if<MapLookupResult>(&msg)) {
    OnMapLookupResult(now, *ml, out);
  } else if (const auto* md = std::get_if<MapDisplaced>(&msg)) {
    OnMapDisplaced(now, *md, out);
  } else if (const auto* fb = std::get_if<ForwardBatch>(&msg)) {
    OnForwardBatch(now, from, *fb, out);
  } else if (const auto* fr = std::get_if<ForwardResult>(&msg)) {
    OnForwardResult(now, *fr, out);
  } else if (const auto* qd = std::get_if<QueueDeliver>(&msg)) {
    OnQueueDeliver(now, from, *qd, out);
  } else if (const auto* pp = std::get_if<PresencePush>(&msg)) {
    OnPresencePush(now, *pp, out);
  } else {
    stats_.unexpected_messages++;
  }
}

void ChatServer::OnStoreAppendResult(TimeUs now, const StoreAppendResult& m, Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;  // timed out already; the client retries
  auto* op = std::get_if<SendOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  const SendOp send = *op;
  pending_.erase(it);
  const AppendOutcome& o = m.outcome;
  SendAck ack{send.client_msg_id, send.conv, o.code};
  if (o.code == Code::kOk) {
    ack.message_id = o.message.message_id;
    ack.prev_msg_id = o.message.prev_msg_id;
    ack.duplicate = o.duplicate;
  }
  SendAckTo(send.session, ack, send.fingerprint, out);
  if (o.code != Code::kOk) return;
  if (o.duplicate) {
    // Stored by an earlier attempt, whose answer may never have been acted on: it came after
    // this server gave the request up, or was lost, or went to a server that died. Its fan-out
    // cannot be presumed, and a recipient online throughout would see it only at its next
    // periodic sync (no later message need reveal the gap), so fan out again: clients show a
    // message once (by message_id, which the duplicate shares).
    stats_.duplicate_sends++;
  } else if (!send.conv.is_group() && options_.topology.presence.valid()) {
    out.push_back(SendToNode{options_.topology.presence,
                             PresenceTouch{send.sender, send.conv.Peer(send.sender)}});
  }
  DeliverStored(now, o, send.session, out);
}

void ChatServer::OnStoreCheckMemberResult(TimeUs now, const StoreCheckMemberResult& m,
                                          Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;  // timed out; the client retries
  auto* op = std::get_if<MemberCheckOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  MemberCheckOp check = std::move(*op);
  pending_.erase(it);
  if (m.code != Code::kOk) {
    stats_.sends_rejected++;
    SendAckTo(check.send.session, SendAck{check.send.client_msg_id, check.send.conv, m.code},
              check.send.fingerprint, out);
    return;
  }
  StartSend(now, check.send, std::move(check.draft), out);
}

void ChatServer::OnWriterEnqueueResult(TimeUs now, const WriterEnqueueResult& m, Effects& out) {
  (void)now;
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;
  auto* op = std::get_if<SendOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  const SendOp send = *op;
  pending_.erase(it);
  SendAck ack{send.client_msg_id, send.conv, m.code};
  ack.queued = m.code == Code::kOk;
  SendAckTo(send.session, ack, send.fingerprint, out);
}

void ChatServer::OnWriterCommitted(TimeUs now, const WriterCommitted& m, Effects& out) {
  for (const CommittedItem& item : m.items) {
    const AppendOutcome& o = item.outcome;
    if (o.code != Code::kOk) {
      // The store broke the queue's promise: only a malformed item can get here (membership
      // was checked before the ack), and the oracle reports the acked message as lost.
      stats_.commits_refused++;
      continue;
    }
    const ConversationId& conv = o.message.conv;
    if (o.duplicate) {
      stats_.duplicate_sends++;  // fanned out again, as in OnStoreAppendResult
    } else if (!conv.is_group() && options_.topology.presence.valid()) {
      out.push_back(SendToNode{options_.topology.presence,
                               PresenceTouch{o.message.sender, conv.Peer(o.message.sender)}});
    }
    // The sender's own sessions learn the message id from this delivery.
    DeliverStored(now, o, SessionId(), out);
  }
}

void ChatServer::OnClientReadResult(TimeUs now, uint64_t request_id, const Message& m,
                                    Effects& out) {
  (void)now;
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  auto* op = std::get_if<ClientReadOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  const ClientReadOp read = *op;
  pending_.erase(it);
  Message reply;
  if (const auto* r = std::get_if<StoreReadResult>(&m)) {
    reply = MessagesResult{read.client_request_id, r->code,       r->conv,
                           r->messages,            r->has_more,   r->group_mode};
  } else if (const auto* s = std::get_if<StoreSyncResult>(&m)) {
    reply = SyncResult{read.client_request_id, s->code, s->heads};
  } else if (const auto* g = std::get_if<StoreMembershipResult>(&m)) {
    reply = GroupResult{read.client_request_id, g->code, g->group, g->joined, g->group_mode};
  } else if (const auto* gr = std::get_if<StoreGetReceiptsResult>(&m)) {
    reply = ReceiptsResult{read.client_request_id, gr->code, gr->conv, gr->members, gr->has_more};
  } else {
    const auto& p = std::get<PresenceLookupResult>(m);
    reply = PresenceResult{read.client_request_id, Code::kOk, p.statuses};
  }
  SendToSession(read.session, std::move(reply), out);
}

void ChatServer::OnStoreSyncResult(TimeUs now, NodeId from, const StoreSyncResult& m,
                                   Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;  // timed out; the client retries
  auto* op = std::get_if<ClientReadOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  if (op->awaiting.empty()) {  // one store: its answer is the reply
    OnClientReadResult(now, m.request_id, m, out);
    return;
  }
  const auto shard = std::find(op->awaiting.begin(), op->awaiting.end(), from);
  if (shard == op->awaiting.end()) return;  // a second answer (the network duplicated it)
  op->awaiting.erase(shard);
  if (m.code != Code::kOk && op->code == Code::kOk) op->code = m.code;
  op->heads.insert(op->heads.end(), m.heads.begin(), m.heads.end());
  if (!op->awaiting.empty()) return;
  // Each shard's heads are sorted by conversation; the merged list is too, as one store's is.
  std::sort(op->heads.begin(), op->heads.end(),
            [](const ConversationHead& a, const ConversationHead& b) { return a.conv < b.conv; });
  StoreSyncResult merged{m.request_id, op->code, {}};
  if (op->code == Code::kOk) merged.heads = std::move(op->heads);
  OnClientReadResult(now, m.request_id, merged, out);
}

void ChatServer::OnStoreReceiptResult(TimeUs now, const StoreReceiptResult& m, Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;
  pending_.erase(it);
  if (m.code != Code::kOk || m.recipients.empty()) return;
  FanOut(now, m.update, m.recipients, SessionId(), out);
}

void ChatServer::OnStoreMembersResult(TimeUs now, const StoreMembersResult& m, Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;
  auto* op = std::get_if<MembersOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  const TypingUpdate typing = op->typing;
  pending_.erase(it);
  if (m.code != Code::kOk) return;
  const bool is_member =
      std::binary_search(m.members.begin(), m.members.end(), typing.user);
  if (!is_member) return;  // only members may signal typing to a group
  std::vector<UserId> recipients;
  recipients.reserve(m.members.size());
  for (UserId u : m.members) {
    if (u != typing.user) recipients.push_back(u);
  }
  FanOut(now, typing, recipients, SessionId(), out);
}

// ---- Fan-out -----------------------------------------------------------------------------------

void ChatServer::DeliverStored(TimeUs now, const AppendOutcome& outcome, SessionId exclude,
                               Effects& out) {
  if (outcome.group_mode == GroupMode::kPull) {
    // Pull groups get no push: members poll. The sender's other sessions learn it the same way.
    // A hybrid group that this message turned pull tells its members so, every session of the
    // sender's included (its ack does not carry the mode): they read the message and poll.
    if (outcome.mode_switched) {
      stats_.mode_updates++;
      FanOut(now,
             GroupModeUpdate{outcome.message.conv, GroupMode::kPull, outcome.message.message_id},
             outcome.recipients, SessionId(), out);
    }
    return;
  }
  FanOut(now, outcome.message, outcome.recipients, exclude, out);
}

int ChatServer::DeliverLocal(const Payload& payload, UserId user, SessionId exclude,
                             Effects& out) {
  auto it = users_.find(user);
  if (it == users_.end()) return 0;
  int delivered = 0;
  for (SessionId s : it->second) {
    if (s == exclude) {
      delivered++;  // the excluded session already has it (it got the ack)
      continue;
    }
    std::visit(
        [&](const auto& p) {
          using T = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<T, ChatMessage>) {
            out.push_back(SendToClient{s, Deliver{p}});
          } else {
            out.push_back(SendToClient{s, p});
          }
        },
        payload);
    stats_.local_deliveries++;
    delivered++;
  }
  return delivered;
}

void ChatServer::FanOut(TimeUs now, const Payload& payload, const std::vector<UserId>& recipients,
                        SessionId exclude, Effects& out) {
  const SessionId sender_session = exclude;
  std::vector<UserId> remote;
  for (UserId u : recipients) {
    if (DeliverLocal(payload, u, sender_session, out) > 0) continue;
    remote.push_back(u);
  }
  if (remote.empty()) return;
  // Ask the user mapping where the others are, in chunks it accepts.
  const size_t chunk = options_.config.lookup_users_max;
  for (size_t i = 0; i < remote.size(); i += chunk) {
    if (AtPendingLimit()) {
      stats_.timeouts++;  // dropped fan-out: recipients catch up from the store
      return;
    }
    const size_t end = std::min(remote.size(), i + chunk);
    std::vector<UserId> users(remote.begin() + static_cast<ptrdiff_t>(i),
                              remote.begin() + static_cast<ptrdiff_t>(end));
    const uint64_t req = NewRequest(now, LookupOp{payload});
    stats_.lookups++;
    out.push_back(SendToNode{options_.topology.mapping, MapLookup{req, std::move(users)}});
  }
}

void ChatServer::OnMapLookupResult(TimeUs now, const MapLookupResult& m, Effects& out) {
  auto it = pending_.find(m.request_id);
  if (it == pending_.end()) return;
  auto* op = std::get_if<LookupOp>(&it->second.op);
  if (op == nullptr) {
    stats_.unexpected_messages++;
    return;
  }
  const Payload payload = std::move(op->payload);
  pending_.erase(it);
  absl::btree_map<NodeId, std::vector<UserId>> by_server;
  for (const UserLocation& loc : m.locations) {
    if (!loc.server.valid() || loc.server == options_.self) {
      // Offline, or mapped here but no longer connected (a stale mapping): deliver locally if a
      // session appeared meanwhile, otherwise the notification service gets it.
      if (DeliverLocal(payload, loc.user, SessionId(), out) == 0) {
        NotifyOffline(payload, loc.user, out);
      }
      continue;
    }
    by_server[loc.server].push_back(loc.user);
  }
  for (auto& [server, users] : by_server) Forward(now, server, payload, std::move(users), out);
}

void ChatServer::NotifyOffline(const Payload& payload, UserId user, Effects& out) {
  const auto* m = std::get_if<ChatMessage>(&payload);
  if (m == nullptr || user == m->sender) return;  // only new messages, never to the sender
  if (!options_.topology.notification.valid()) return;
  stats_.notifications++;
  out.push_back(SendToNode{options_.topology.notification,
                           Notify{user, m->conv, m->message_id, m->sender}});
}

// ---- Timers and bookkeeping --------------------------------------------------------------------

void ChatServer::OnTimer(TimeUs now, uint64_t timer_id, Effects& out) {
  if (timer_id == kTickTimer) {
    ticks_++;
    ExpirePending(now, out);
    if (options_.config.forwarding == ForwardingStrategy::kQueue && now >= resubscribe_at_us_) {
      // Same incarnation: the broker keeps our queue and only resumes delivery.
      out.push_back(SendToNode{options_.topology.broker, QueueSubscribe{incarnation_}});
      resubscribe_at_us_ = now + options_.config.queue_consumer_timeout_us / 2;
    }
    if (options_.config.map_refresh_interval_us > 0 && now >= refresh_at_us_) {
      SendRefresh(out);
      refresh_at_us_ = now + options_.config.map_refresh_interval_us;
    }
    out.push_back(ArmTimer{kTickTimer, now + options_.config.server_tick_us});
    return;
  }
  if ((timer_id >> kTimerKindShift) == kFlushTimerKind) {
    FlushBuffer(now, NodeId(timer_id & kTimerPayloadMask), out);
  }
}

void ChatServer::SendRefresh(Effects& out) {
  const size_t chunk = std::max<size_t>(options_.config.lookup_users_max, 1);
  std::vector<UserId> users;
  const auto flush = [&] {
    if (users.empty()) return;
    stats_.refreshes++;
    if (options_.topology.presence.valid()) {
      out.push_back(SendToNode{options_.topology.presence, PresenceRefresh{users}});
    }
    out.push_back(SendToNode{options_.topology.mapping, MapRefresh{std::move(users)}});
    users.clear();
  };
  // Ascending, so the refresh is deterministic whatever the hash table's order.
  std::vector<UserId> all;
  all.reserve(users_.size());
  for (const auto& [user, unused] : users_) all.push_back(user);
  std::sort(all.begin(), all.end());
  for (const UserId user : all) {
    users.push_back(user);
    if (users.size() == chunk) flush();
  }
  flush();
}

void ChatServer::ExpirePending(TimeUs now, Effects& out) {
  const TimeUs deadline = now - options_.config.request_timeout_us;
  while (!pending_.empty() && pending_.begin()->second.started_us <= deadline) {
    Pending p = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    stats_.timeouts++;
    OnPendingExpired(p, out);
  }
}

void ChatServer::OnPendingExpired(const Pending& p, Effects& out) {
  const SendOp* send = std::get_if<SendOp>(&p.op);
  if (const auto* check = std::get_if<MemberCheckOp>(&p.op)) send = &check->send;
  if (send != nullptr) {
    SendAckTo(send->session, SendAck{send->client_msg_id, send->conv, Code::kUnavailable},
              send->fingerprint, out);
  } else if (const auto* read = std::get_if<ClientReadOp>(&p.op)) {
    ReplyError(read->session, Code::kUnavailable,
               absl::StrCat("request ", read->client_request_id, " timed out"), out);
  } else if (const auto* fwd = std::get_if<ForwardOp>(&p.op)) {
    stats_.forward_failures++;
    for (const Notify& n : fwd->notify_on_failure) {
      if (!options_.topology.notification.valid()) break;
      stats_.notifications++;
      out.push_back(SendToNode{options_.topology.notification, n});
    }
  }
  // Lookups, member lists and receipts are dropped: clients catch up from the store.
}

uint64_t ChatServer::NewRequest(TimeUs now, decltype(Pending::op) op) {
  const uint64_t id = request_id_next_++;
  auto [it, inserted] = pending_.emplace(id, Pending{now, std::move(op)});
  (void)it;
  assert(inserted);
  return id;
}

void ChatServer::SendAckTo(SessionId session, const SendAck& ack, uint64_t fingerprint,
                           Effects& out) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;  // the client left; it will retry or catch up
  Session& s = it->second;
  if (ack.code != Code::kOk) {
    const Acked* acked = AckedRecently(s, ack.client_msg_id);
    if (acked != nullptr && acked->fingerprint == fingerprint) {
      stats_.acks_withheld++;  // an earlier attempt was answered kOk: that is the answer
      return;
    }
  } else {
    stats_.acks++;
    s.acked[ack.client_msg_id] = Acked{ticks_, fingerprint};
    if (s.acked.size() >= s.acked_purge_at) {
      const uint64_t memory = acked_memory_ticks_;
      const uint64_t ticks = ticks_;
      absl::erase_if(s.acked,
                     [memory, ticks](const auto& e) { return ticks - e.second.tick > memory; });
      s.PurgeAgainAt(2 * s.acked.size());
    }
  }
  SendToSession(session, ack, out);
}

const ChatServer::Acked* ChatServer::AckedRecently(const Session& s, ClientMsgId cmid) const {
  const auto it = s.acked.find(cmid);
  if (it == s.acked.end() || ticks_ - it->second.tick > acked_memory_ticks_) return nullptr;
  return &it->second;
}

void ChatServer::ReplyError(SessionId session, Code code, std::string detail, Effects& out) {
  stats_.client_errors++;
  SendToSession(session, ErrorReply{code, std::move(detail)}, out);
}

void ChatServer::SendToSession(SessionId session, Message msg, Effects& out) {
  if (!sessions_.contains(session)) return;  // the client left; it will retry or catch up
  out.push_back(SendToClient{session, std::move(msg)});
}

}  // namespace chatlab
