#include "core/client.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chatlab {
namespace {

constexpr uint64_t kTimerKindShift = 56;
constexpr uint64_t kTimerPayloadMask = (uint64_t{1} << kTimerKindShift) - 1;
enum TimerKind : uint64_t {
  kRetryTimer = 1,          // payload: client message id
  kSyncTimer = 2,           // payload: connection epoch
  kGroupPollTimer = 3,      // payload: connection epoch
  kPresencePollTimer = 4,   // payload: connection epoch
  kReconnectTimer = 5,      // payload: unused
  kRequestTimeoutTimer = 6, // payload: request id
  kModeCheckTimer = 7,      // payload: connection epoch
};

uint64_t TimerId(TimerKind kind, uint64_t payload) {
  assert(payload <= kTimerPayloadMask);
  return (static_cast<uint64_t>(kind) << kTimerKindShift) | (payload & kTimerPayloadMask);
}

bool IsPermanentFailure(Code code) {
  return code == Code::kInvalidArgument || code == Code::kPermissionDenied ||
         code == Code::kNotFound || code == Code::kUnauthenticated;
}

}  // namespace

ClientSession::ClientSession(const Options& options)
    : options_{options.user, options.observer},
      config_(options.shared_config != nullptr
                  ? options.shared_config
                  : std::make_shared<const ProtocolConfig>(options.config)),
      stats_(options.shared_stats != nullptr ? options.shared_stats : std::make_shared<Stats>()),
      rng_(options.seed),
      keep_view_(options.keep_view),
      auto_reconnect_(options.auto_reconnect),
      client_msg_id_next_(options.client_msg_id_first) {
  assert(options_.user.valid());
  assert(options.client_msg_id_first > 0);
  assert(options.client_msg_id_first <= kTimerPayloadMask);
}

// ---- User actions ------------------------------------------------------------------------------

void ClientSession::Connect(TimeUs now, NodeId server, Effects& out) {
  (void)now;
  wants_online_ = true;
  reconnect_attempts_ = 0;
  if (connected() || connecting_) return;
  connecting_ = true;
  out.push_back(OpenSession{server});
}

void ClientSession::Disconnect(TimeUs now, Effects& out) {
  (void)now;
  wants_online_ = false;
  if (!connected()) return;
  out.push_back(CloseSession{session_});
  DropSession();
}

absl::StatusOr<ClientMsgId> ClientSession::Send(TimeUs now, const ConversationId& conv,
                                                std::string body, Effects& out) {
  if (!conv.Valid() || (!conv.is_group() && !conv.HasParty(options_.user))) {
    return absl::InvalidArgumentError(absl::StrCat("cannot send to conversation ", ToString(conv)));
  }
  if (body.size() > config_->body_bytes_max) {
    return absl::InvalidArgumentError(absl::StrCat("body of ", body.size(),
                                                   " bytes is over body_bytes_max=",
                                                   config_->body_bytes_max));
  }
  if (outbox_size() >= config_->client_outbox_max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("outbox holds client_outbox_max=", config_->client_outbox_max,
                     " unacknowledged messages"));
  }
  const ClientMsgId id = client_msg_id_next_++;
  auto [it, inserted] = Busy().outbox.emplace(id, OutboxEntry{conv, std::move(body), now, 0, 0});
  assert(inserted);
  Conv(conv);  // the conversation exists locally from the first send
  stats_->sends++;
  if (options_.observer != nullptr) options_.observer->OnSent(now, options_.user, id, conv);
  if (connected() && !WaitsForJoin(it->second)) Transmit(now, id, it->second, out);
  return id;
}

void ClientSession::MarkRead(TimeUs now, const ConversationId& conv, Effects& out) {
  (void)now;
  auto it = convs_.find(conv);
  if (it == convs_.end() || !connected()) return;
  Conversation& c = it->second;
  if (c.last_shown <= c.read_sent) return;
  c.read_sent = c.last_shown;
  stats_->receipts_sent++;
  out.push_back(SendToServer{Receipt{conv, ReceiptKind::kRead, c.read_sent}});
}

void ClientSession::SetTyping(TimeUs now, const ConversationId& conv, bool active, Effects& out) {
  (void)now;
  if (!connected() || !conv.Valid()) return;
  out.push_back(SendToServer{Typing{conv, active}});
}

uint64_t ClientSession::JoinGroup(TimeUs now, GroupId group, Effects& out) {
  assert(connected());
  MoreGroups().intent[group] = true;
  return SendMembership(now, group, true, out);
}

uint64_t ClientSession::LeaveGroup(TimeUs now, GroupId group, Effects& out) {
  assert(connected());
  MoreGroups().intent[group] = false;
  return SendMembership(now, group, false, out);
}

uint64_t ClientSession::SendMembership(TimeUs now, GroupId group, bool join, Effects& out) {
  const uint64_t req = NewRequest(now, RequestKind::kGroup, ConversationId::Group(group), out);
  if (join) {
    out.push_back(SendToServer{chatlab::JoinGroup{req, group}});
  } else {
    out.push_back(SendToServer{chatlab::LeaveGroup{req, group}});
  }
  return req;
}

uint64_t ClientSession::GetReceipts(TimeUs now, const ConversationId& conv, Effects& out) {
  if (!connected() || !conv.Valid()) return 0;
  Conversation& c = Conv(conv);
  ReceiptsRead& read = c.MoreReading();
  if (read.request != 0) {
    read.again = true;  // the marks may have moved since that read was asked
    return read.request;
  }
  read.gathered.clear();
  SendReceiptsPage(now, conv, UserId(), out);
  return read.request;
}

void ClientSession::SendReceiptsPage(TimeUs now, const ConversationId& conv, UserId after,
                                     Effects& out) {
  assert(connected());
  Conversation& c = Conv(conv);
  assert(c.Reading() != nullptr);  // GetReceipts made it
  ReceiptsRead& read = *c.Reading();
  read.request = NewRequest(now, RequestKind::kReceipts, conv, out);
  read.after = after;
  stats_->receipt_pages++;
  out.push_back(SendToServer{
      chatlab::GetReceipts{read.request, conv, after, config_->receipts_page_max}});
}

void ClientSession::Sync(TimeUs now, Effects& out) {
  if (!connected()) return;
  stats_->syncs++;
  const uint64_t req = NewRequest(now, RequestKind::kSync, ConversationId(), out);
  out.push_back(SendToServer{SyncRequest{req}});
}

// ---- Connection lifecycle ----------------------------------------------------------------------

void ClientSession::OnConnected(TimeUs now, SessionId session, NodeId server, Effects& out) {
  assert(session.valid());
  connecting_ = false;
  if (!wants_online_) {  // the user went offline while the connection was being made
    out.push_back(CloseSession{session});
    return;
  }
  session_ = session;
  server_ = server;
  connection_epoch_++;
  reconnect_attempts_ = 0;
  stats_->connects++;
  const ProtocolConfig& config = *config_;
  TransmitOutbox(now, out);
  // Receipts sent while the last session was dying may be lost; watermarks are idempotent.
  for (auto& [conv, c] : convs_) {
    if (c.delivered_sent != kNoMessage) {
      out.push_back(SendToServer{Receipt{conv, ReceiptKind::kDelivered, c.delivered_sent}});
    }
  }
  if (groups_ != nullptr) {
    for (const auto& [group, join] : groups_->intent) SendMembership(now, group, join, out);
  }
  Sync(now, out);
  if (config.client_sync_interval_us > 0) {
    out.push_back(ArmTimer{TimerId(kSyncTimer, connection_epoch_),
                           now + config.client_sync_interval_us});
  }
  if (config.group_delivery != GroupDelivery::kPush && config.group_poll_interval_us > 0) {
    out.push_back(ArmTimer{TimerId(kGroupPollTimer, connection_epoch_),
                           now + config.group_poll_interval_us});
  }
  if (IsHybrid(config.group_delivery) && config.hybrid_mode_check_us > 0) {
    out.push_back(ArmTimer{TimerId(kModeCheckTimer, connection_epoch_),
                           now + config.hybrid_mode_check_us});
  }
  // Every connect reads all the contacts' statuses afresh: pushes carry only changes, so a
  // client back from an absence would otherwise show what it saw when it left, and each answer
  // says whether that contact pushes to us. Then every interval it polls the contacts that do
  // not (in either fan-out mode: with kAll, a contact the service does not know as ours pushes
  // nothing either).
  if (config.presence_poll_interval_us > 0) {
    PollPresence(now, /*all=*/true, out);
    out.push_back(ArmTimer{TimerId(kPresencePollTimer, connection_epoch_),
                           now + config.presence_poll_interval_us});
  }
}

void ClientSession::OnConnectFailed(TimeUs now, Effects& out) {
  connecting_ = false;
  ScheduleReconnect(now, out);
}

void ClientSession::OnDisconnected(TimeUs now, Effects& out) {
  if (!connected()) return;
  DropSession();
  ScheduleReconnect(now, out);
}

void ClientSession::DropSession() {
  session_ = SessionId();
  server_ = NodeId();
  stats_->disconnects++;
  if (busy_ != nullptr) busy_->requests.clear();
  for (auto& [conv, c] : convs_) {
    c.catchup_request = 0;
    if (c.extra != nullptr) c.extra->typing_until.clear();
    if (ReceiptsRead* read = c.Reading(); read != nullptr) {  // it dies with its session
      read->request = 0;
      read->gathered.clear();
      read->again = false;
    }
  }
}

void ClientSession::ScheduleReconnect(TimeUs now, Effects& out) {
  if (!wants_online_ || !auto_reconnect_) return;
  reconnect_attempts_++;
  out.push_back(ArmTimer{TimerId(kReconnectTimer, 0), now + Backoff(reconnect_attempts_)});
}

// ---- Server messages ---------------------------------------------------------------------------

void ClientSession::OnServerMessage(TimeUs now, const Message& msg, Effects& out) {
  if (!connected()) return;
  if (const auto* ack = std::get_if<SendAck>(&msg)) {
    OnSendAck(now, *ack, out);
  } else if (const auto* d = std::get_if<Deliver>(&msg)) {
    stats_->deliveries++;
    Ingest(now, d->message, out);
  } else if (const auto* r = std::get_if<MessagesResult>(&msg)) {
    OnMessagesResult(now, *r, out);
  } else if (const auto* s = std::get_if<SyncResult>(&msg)) {
    OnSyncResult(now, *s, out);
  } else if (const auto* g = std::get_if<GroupResult>(&msg)) {
    OnGroupResult(now, *g, out);
  } else if (const auto* ru = std::get_if<ReceiptUpdate>(&msg)) {
    OnReceiptUpdate(now, *ru);
  } else if (const auto* rr = std::get_if<ReceiptsResult>(&msg)) {
    OnReceiptsResult(now, *rr, out);
  } else if (const auto* t = std::get_if<TypingUpdate>(&msg)) {
    OnTypingUpdate(now, *t);
  } else if (const auto* gm = std::get_if<GroupModeUpdate>(&msg)) {
    OnGroupModeUpdate(now, *gm, out);
  } else if (const auto* p = std::get_if<PresenceUpdate>(&msg)) {
    OnPresenceUpdate(now, p->status, /*pushed=*/true);
  } else if (const auto* pr = std::get_if<PresenceResult>(&msg)) {
    Busy().requests.erase(pr->request_id);
    for (const PresenceStatus& s : pr->statuses) OnPresenceUpdate(now, s, /*pushed=*/false);
  } else if (std::holds_alternative<ErrorReply>(msg)) {
    stats_->errors++;
  }
  // SessionClosed: the environment follows it with OnDisconnected.
  SendReceipts(out);
}

void ClientSession::OnSendAck(TimeUs now, const SendAck& ack, Effects& out) {
  if (options_.observer != nullptr) options_.observer->OnSendAnswered(now, options_.user, ack);
  auto it = Busy().outbox.find(ack.client_msg_id);
  if (ack.code == Code::kOk) {
    ChatMessage m;
    m.conv = ack.conv;
    m.message_id = ack.message_id;
    m.prev_msg_id = ack.prev_msg_id;
    m.sender = options_.user;
    m.client_msg_id = ack.client_msg_id;
    if (it != Busy().outbox.end()) {
      m.sent_at_us = it->second.created_us;
      m.body = std::move(it->second.body);
      Busy().outbox.erase(it);
      stats_->acks++;
      if (options_.observer != nullptr) options_.observer->OnAcked(now, options_.user, ack);
    }
    // A direct-path ack tells where our own message sits: show it like any delivery. (A late
    // duplicate ack of a message already shown is suppressed by the log.)
    if (!ack.queued && ack.message_id != kNoMessage) Ingest(now, m, out);
    return;
  }
  if (it == Busy().outbox.end()) return;
  if (IsPermanentFailure(ack.code)) {
    Busy().outbox.erase(it);
    stats_->send_failures++;
    if (options_.observer != nullptr) options_.observer->OnSendFailed(now, options_.user, ack);
  }
  // kUnavailable / kResourceExhausted: the retry timer resends it.
}

void ClientSession::OnGroupModeUpdate(TimeUs now, const GroupModeUpdate& u, Effects& out) {
  if (!u.conv.is_group() || groups_ == nullptr || !groups_->joined.contains(u.conv.group())) {
    return;  // left since
  }
  Conversation& c = Conv(u.conv);
  SetGroupMode(c, u.mode);
  // The message that turned the group pull was not pushed: read it now rather than at the next
  // poll. Gap detection and the log keep this idempotent with a poll already on its way.
  if (u.mode == GroupMode::kPull && u.head_id > c.last_shown) StartCatchUp(now, u.conv, out);
}

void ClientSession::SetGroupMode(Conversation& c, GroupMode mode) {
  if (c.group_mode != GroupMode::kNone && mode != GroupMode::kNone && mode != c.group_mode) {
    stats_->group_mode_changes++;
  }
  c.group_mode = mode;
}

// ---- Ordering, de-duplication, gap detection ---------------------------------------------------

void ClientSession::Ingest(TimeUs now, const ChatMessage& m, Effects& out) {
  const ProtocolConfig& config = *config_;
  Conversation& c = Conv(m.conv);
  if (c.log.contains(m.message_id) || c.Holds(m.message_id)) {
    if (config.dedup_enabled || c.Holds(m.message_id)) {
      stats_->duplicates_suppressed++;
      return;
    }
    Show(now, c, m, /*duplicate=*/true);
    return;
  }
  if (!config.gap_detection_enabled || m.prev_msg_id == c.last_shown ||
      m.message_id < c.last_shown) {
    // In chain order, or (gap detection off) whatever comes, or an old message the chain
    // skipped (only timestamp ids under clock faults do that): show it now.
    c.log.insert(m.message_id);
    Show(now, c, m, /*duplicate=*/false);
    DrainHeld(now, c);
    return;
  }
  // prev_msg_id is not what we show last: something is missing. Hold this one and catch up.
  stats_->gaps_detected++;
  Conversation::Extra& x = c.More();
  if (x.held.size() >= config.client_held_max) {
    // Drop the newest held message: the catch-up fetches it again from the store.
    x.held.erase(std::prev(x.held.end()));
    stats_->held_dropped++;
  }
  x.held.emplace(m.message_id, m);
  x.held_covered_from = request_id_next_;
  StartCatchUp(now, m.conv, out);
}

void ClientSession::Show(TimeUs now, Conversation& c, const ChatMessage& m, bool duplicate) {
  const bool out_of_order = m.message_id < c.last_shown;
  c.last_shown = std::max(c.last_shown, m.message_id);
  stats_->displayed++;
  if (out_of_order) stats_->out_of_order_displayed++;
  if (duplicate) stats_->duplicates_displayed++;
  if (keep_view_) c.More().view.push_back(m);
  if (options_.observer != nullptr) {
    options_.observer->OnDisplayed(now, options_.user, m, out_of_order, duplicate);
  }
  if (m.sender != options_.user) Busy().receipt_dirty.insert(m.conv);
}

void ClientSession::DrainHeld(TimeUs now, Conversation& c) {
  if (c.extra == nullptr) return;
  auto& held = c.extra->held;  // Show never resets extra
  while (!held.empty()) {
    auto it = held.begin();
    if (it->first <= c.last_shown && c.log.contains(it->first)) {
      held.erase(it);  // a catch-up showed it already
      continue;
    }
    if (it->second.prev_msg_id != c.last_shown) return;
    const ChatMessage m = std::move(it->second);
    held.erase(it);
    c.log.insert(m.message_id);
    Show(now, c, m, /*duplicate=*/false);
  }
}

void ClientSession::StartCatchUp(TimeUs now, const ConversationId& conv, Effects& out) {
  Conversation& c = Conv(conv);
  if (!connected() || c.catchup_request != 0) return;
  c.catchup_request = NewRequest(now, RequestKind::kCatchUp, conv, out);
  stats_->catchups++;
  out.push_back(SendToServer{GetMessages{c.catchup_request, conv, c.last_shown,
                                         config_->get_messages_limit_max}});
}

void ClientSession::OnMessagesResult(TimeUs now, const MessagesResult& r, Effects& out) {
  auto rit = Busy().requests.find(r.request_id);
  if (rit == Busy().requests.end()) return;  // timed out or from a previous session
  Busy().requests.erase(rit);
  Conversation& c = Conv(r.conv);
  if (c.catchup_request == r.request_id) c.catchup_request = 0;
  if (r.code != Code::kOk) return;  // e.g. left the group; the next sync decides
  if (r.conv.is_group()) SetGroupMode(c, r.group_mode);
  stats_->messages_fetched += r.messages.size();
  if (options_.observer != nullptr) {
    options_.observer->OnHistoryFetched(now, options_.user, r.conv, r.messages.size());
  }
  for (const ChatMessage& m : r.messages) {
    // History is authoritative and ascending: show whatever is new, in its order.
    if (c.log.contains(m.message_id)) {
      if (!config_->dedup_enabled) Show(now, c, m, /*duplicate=*/true);
      else stats_->duplicates_suppressed++;
      continue;
    }
    if (c.extra != nullptr) c.extra->held.erase(m.message_id);
    c.log.insert(m.message_id);
    Show(now, c, m, /*duplicate=*/false);
  }
  DrainHeld(now, c);
  if (r.has_more || (c.HoldsAny() && r.request_id < c.extra->held_covered_from)) {
    // More pages, or messages held while this read was on its way: read again from here.
    StartCatchUp(now, r.conv, out);
    return;
  }
  // A read issued after every held message arrived found nothing that links them to what we
  // show: the sequencer's order itself has a hole (timestamp ids under clock faults). Show them
  // in id order rather than lose them.
  while (c.HoldsAny()) {
    auto& held = c.extra->held;
    const ChatMessage m = std::move(held.begin()->second);
    held.erase(held.begin());
    if (c.log.contains(m.message_id)) continue;
    c.log.insert(m.message_id);
    Show(now, c, m, /*duplicate=*/false);
  }
}

void ClientSession::OnSyncResult(TimeUs now, const SyncResult& r, Effects& out) {
  if (Busy().requests.erase(r.request_id) == 0) return;
  if (r.code != Code::kOk) return;
  absl::btree_set<GroupId> groups;
  for (const ConversationHead& h : r.heads) {
    Conversation& c = Conv(h.conv);
    if (h.conv.is_group()) {
      groups.insert(h.conv.group());
      SetGroupMode(c, h.group_mode);
    }
    if (h.head_id > c.last_shown) StartCatchUp(now, h.conv, out);
  }
  if (groups_ != nullptr || !groups.empty()) MoreGroups().joined = std::move(groups);
}

void ClientSession::OnGroupResult(TimeUs now, const GroupResult& r, Effects& out) {
  const auto req = Busy().requests.find(r.request_id);
  if (req == Busy().requests.end()) return;
  if (r.code != Code::kOk && !IsPermanentFailure(r.code)) return;  // its timeout re-sends it
  Busy().requests.erase(req);
  Groups& groups = MoreGroups();
  const auto intent = groups.intent.find(r.group);
  // The answer settles the intent if it answers the latest one (a join answered after the user
  // asked to leave does not settle the leave).
  const bool answers_intent = intent != groups.intent.end() &&
                              (r.code != Code::kOk || r.joined == intent->second);
  if (answers_intent) groups.intent.erase(intent);
  const ConversationId conv = ConversationId::Group(r.group);
  if (answers_intent && connected()) {
    // Messages written while the join was pending go now (a refused join refuses them too).
    for (auto& [id, e] : Busy().outbox) {
      if (e.conv == conv && !WaitsForJoin(e)) Transmit(now, id, e, out);
    }
  }
  if (r.code != Code::kOk) return;
  if (r.joined) {
    groups.joined.insert(r.group);
    SetGroupMode(Conv(conv), r.group_mode);
    StartCatchUp(now, conv, out);  // show the group's history
  } else {
    groups.joined.erase(r.group);
  }
}

void ClientSession::OnReceiptUpdate(TimeUs now, const ReceiptUpdate& r) {
  Conversation& c = Conv(r.conv);
  MessageId& shown = ReceiptSlot(r.conv, c, r.kind, r.reader);
  if (r.up_to <= shown) {
    // Watermarks only move forward; a stale or reordered update is ignored.
    if (r.up_to < shown) stats_->stale_receipts_ignored++;
    return;
  }
  shown = r.up_to;
  if (options_.observer != nullptr) options_.observer->OnReceiptShown(now, options_.user, r);
}

std::optional<UserId> ClientSession::MainReader(const ConversationId& conv) const {
  if (conv.is_group()) return UserId();
  if (!conv.HasParty(options_.user)) return std::nullopt;
  return conv.Peer(options_.user);
}

MessageId& ClientSession::ReceiptSlot(const ConversationId& conv, Conversation& c,
                                      ReceiptKind kind, UserId reader) {
  if (MainReader(conv) == reader) {
    if (kind == ReceiptKind::kDelivered) return c.delivered_shown;
    if (kind == ReceiptKind::kRead) return c.read_shown;
  }
  return c.More().receipts[{kind, reader}];
}

void ClientSession::OnReceiptsResult(TimeUs now, const ReceiptsResult& r, Effects& out) {
  const auto rit = Busy().requests.find(r.request_id);
  if (rit == Busy().requests.end()) return;            // timed out or from a previous session
  const ConversationId conv = rit->second.conv;  // what we asked about, whatever r.conv says
  Busy().requests.erase(rit);
  Conversation& c = Conv(conv);
  // Not asked (a broken answer), or a page asked again after a timeout.
  if (c.Reading() == nullptr || c.Reading()->request != r.request_id) return;
  ReceiptsRead& read = *c.Reading();
  read.request = 0;
  if (r.code != Code::kOk) {
    read.gathered.clear();
    read.again = false;
    if (options_.observer != nullptr) {
      options_.observer->OnMemberReceipts(now, options_.user, conv, r.code, {});
    }
    return;
  }
  UserId last = read.after;
  for (const MemberReceipts& m : r.members) {
    // Ascending above after_user, as asked; anything else is dropped, so a broken answer can
    // neither repeat a member nor make the next page go back.
    if (m.user <= last) continue;
    last = m.user;
    if (m.user == options_.user) continue;  // the viewer's own marks are what it sent
    // A member's watermark is shown like a pushed one, so it can only move forward.
    OnReceiptUpdate(now, ReceiptUpdate{conv, ReceiptKind::kDelivered, m.user, m.delivered_up_to});
    OnReceiptUpdate(now, ReceiptUpdate{conv, ReceiptKind::kRead, m.user, m.read_up_to});
    read.gathered.push_back(m.user);
  }
  if (r.has_more && last > read.after) {
    SendReceiptsPage(now, conv, last, out);
    return;
  }
  read.members = std::move(read.gathered);
  read.gathered.clear();
  if (options_.observer != nullptr) {
    options_.observer->OnMemberReceipts(now, options_.user, conv, Code::kOk,
                                        MemberReceiptsShown(conv));
  }
  if (read.again) {
    read.again = false;
    GetReceipts(now, conv, out);
  }
}

void ClientSession::OnTypingUpdate(TimeUs now, const TypingUpdate& t) {
  Conversation& c = Conv(t.conv);
  if (t.active) {
    c.More().typing_until[t.user] = now + config_->typing_ttl_us;
  } else if (c.extra != nullptr) {
    c.extra->typing_until.erase(t.user);
  }
  if (options_.observer != nullptr) options_.observer->OnTypingShown(now, options_.user, t);
}

void ClientSession::OnPresenceUpdate(TimeUs now, const PresenceStatus& s, bool pushed) {
  const auto [shown, first] = presence_.try_emplace(s.user);
  const std::optional<bool> was_online =
      first ? std::nullopt : std::optional<bool>(shown->second.online);
  shown->second = ShownPresence{s.last_seen_us, s.online, s.pushed};
  if (options_.observer != nullptr) {
    options_.observer->OnPresenceShown(now, options_.user, s, pushed, was_online);
  }
}

void ClientSession::OnPushNotification(TimeUs now, const PushToDevice& push, Effects& out) {
  stats_->notifications++;
  Conv(push.conv);
  if (options_.observer != nullptr) options_.observer->OnNotification(now, options_.user, push);
  // If the app is connected the push is redundant; otherwise the user sees it as a
  // notification and the next connect catches up. Either way a catch-up is cheap insurance.
  if (connected() && push.message_id > LastShown(push.conv)) StartCatchUp(now, push.conv, out);
}

// ---- Outbox and periodic work ------------------------------------------------------------------

void ClientSession::TransmitOutbox(TimeUs now, Effects& out) {
  if (busy_ == nullptr) return;
  for (auto& [id, e] : busy_->outbox) {
    if (!WaitsForJoin(e)) Transmit(now, id, e, out);
  }
}

bool ClientSession::WaitsForJoin(const OutboxEntry& e) const {
  if (!e.conv.is_group()) return false;
  if (groups_ == nullptr) return false;
  const auto intent = groups_->intent.find(e.conv.group());
  return intent != groups_->intent.end() && intent->second;
}

void ClientSession::Transmit(TimeUs now, ClientMsgId id, OutboxEntry& e, Effects& out) {
  assert(connected());
  if (e.attempts > 0) stats_->retries++;
  const uint32_t attempt = e.attempts;  // 0 first, then 1, 2, ... (SendMessage.attempt)
  e.attempts++;
  stats_->send_attempts++;
  e.next_retry_us = now + Backoff(e.attempts);
  out.push_back(SendToServer{SendMessage{id, e.conv, e.created_us, e.body, attempt}});
  out.push_back(ArmTimer{TimerId(kRetryTimer, id), e.next_retry_us});
}

TimeUs ClientSession::Backoff(uint32_t attempts) {
  assert(attempts >= 1);
  const ProtocolConfig& config = *config_;
  TimeUs base = config.client_retry_initial_us;
  for (uint32_t i = 1; i < attempts && base < config.client_retry_max_us; i++) base *= 2;
  base = std::min(base, config.client_retry_max_us);
  // Equal jitter: half fixed, half random, so retries of many clients spread out.
  const TimeUs half = std::max<TimeUs>(base / 2, 1);
  return half + static_cast<TimeUs>(rng_.Uniform(static_cast<uint64_t>(half) + 1));
}

void ClientSession::SendReceipts(Effects& out) {
  if (busy_ == nullptr) return;
  if (connected()) {
    for (const ConversationId& conv : Busy().receipt_dirty) {
      Conversation& c = convs_[conv];
      if (c.last_shown <= c.delivered_sent) continue;
      c.delivered_sent = c.last_shown;
      stats_->receipts_sent++;
      out.push_back(SendToServer{Receipt{conv, ReceiptKind::kDelivered, c.delivered_sent}});
    }
  }
  busy_->receipt_dirty.clear();
  ReleaseIfIdle();
}

void ClientSession::PollPresence(TimeUs now, bool all, Effects& out) {
  std::vector<UserId> contacts;
  for (const auto& [conv, c] : convs_) {
    if (conv.is_group() || conv.low == conv.high) continue;
    const UserId peer = conv.Peer(options_.user);
    const auto known = presence_.find(peer);
    if (!all && known != presence_.end() && known->second.pushed) {
      stats_->presence_polls_skipped++;  // its changes reach us by push
      continue;
    }
    contacts.push_back(peer);
  }
  if (all) presence_full_query_us_ = now;
  // lookup_users_max per query: hundreds of contacts are several queries, never a refused one.
  const size_t chunk = config_->lookup_users_max;
  assert(chunk > 0);
  for (size_t i = 0; i < contacts.size(); i += chunk) {
    const size_t end = std::min(contacts.size(), i + chunk);
    const uint64_t req = NewRequest(now, RequestKind::kPresence, ConversationId(), out);
    stats_->presence_queries++;
    out.push_back(SendToServer{PresenceQuery{
        req, std::vector<UserId>(contacts.begin() + static_cast<ptrdiff_t>(i),
                                 contacts.begin() + static_cast<ptrdiff_t>(end))}});
    assert(end - i <= chunk);
  }
}

void ClientSession::PollGroups(TimeUs now, Effects& out) {
  if (groups_ == nullptr) return;
  for (GroupId g : groups_->joined) {
    const ConversationId conv = ConversationId::Group(g);
    if (Conv(conv).group_mode == GroupMode::kPull) StartCatchUp(now, conv, out);
  }
}

uint64_t ClientSession::NewRequest(TimeUs now, RequestKind kind, ConversationId conv,
                                   Effects& out) {
  const uint64_t id = request_id_next_++;
  Busy().requests[id] = Request{kind, conv};
  out.push_back(
      ArmTimer{TimerId(kRequestTimeoutTimer, id), now + config_->client_request_timeout_us});
  return id;
}

void ClientSession::OnTimer(TimeUs now, uint64_t timer_id, Effects& out) {
  const auto kind = static_cast<TimerKind>(timer_id >> kTimerKindShift);
  const uint64_t payload = timer_id & kTimerPayloadMask;
  const ProtocolConfig& config = *config_;
  const bool current = connected() && payload == connection_epoch_;
  switch (kind) {
    case kRetryTimer: {
      auto it = Busy().outbox.find(payload);
      if (it != Busy().outbox.end() && connected() && now >= it->second.next_retry_us &&
          !WaitsForJoin(it->second)) {
        Transmit(now, it->first, it->second, out);
      }
      break;
    }
    case kSyncTimer:
      if (!current) break;
      Sync(now, out);
      out.push_back(ArmTimer{timer_id, now + config.client_sync_interval_us});
      break;
    case kGroupPollTimer:
      if (!current) break;
      PollGroups(now, out);
      out.push_back(ArmTimer{timer_id, now + config.group_poll_interval_us});
      break;
    case kModeCheckTimer:
      if (!current) break;
      // A read answers with the group's mode: a group that went pull is then polled.
      if (groups_ != nullptr) {
        for (const GroupId g : groups_->joined) {
          const ConversationId conv = ConversationId::Group(g);
          if (Conv(conv).group_mode != GroupMode::kPull) StartCatchUp(now, conv, out);
        }
      }
      out.push_back(ArmTimer{timer_id, now + config.hybrid_mode_check_us});
      break;
    case kPresencePollTimer: {
      if (!current || config.presence_poll_interval_us <= 0) break;  // never armed then
      const bool refresh = config.presence_refresh_interval_us > 0 &&
                           now - presence_full_query_us_ >= config.presence_refresh_interval_us;
      PollPresence(now, refresh, out);
      out.push_back(ArmTimer{timer_id, now + config.presence_poll_interval_us});
      break;
    }
    case kReconnectTimer:
      if (wants_online_ && !connected() && !connecting_) {
        connecting_ = true;
        out.push_back(OpenSession{NodeId()});
      }
      break;
    case kRequestTimeoutTimer: {
      auto it = Busy().requests.find(payload);
      if (it == Busy().requests.end()) break;
      const Request r = it->second;
      Busy().requests.erase(it);
      if (r.kind == RequestKind::kCatchUp) {
        Conversation& c = Conv(r.conv);
        if (c.catchup_request == payload) c.catchup_request = 0;
        StartCatchUp(now, r.conv, out);
      } else if (r.kind == RequestKind::kSync) {
        Sync(now, out);
      } else if (r.kind == RequestKind::kReceipts && connected()) {
        Conversation& c = Conv(r.conv);
        if (c.Reading() != nullptr && c.Reading()->request == payload) {
          SendReceiptsPage(now, r.conv, c.Reading()->after, out);
        }
      } else if (r.kind == RequestKind::kGroup && connected()) {
        const auto intent = MoreGroups().intent.find(r.conv.group());
        if (intent != groups_->intent.end()) {
          SendMembership(now, intent->first, intent->second, out);
        }
      }
      break;
    }
  }
  SendReceipts(out);
}

}  // namespace chatlab
