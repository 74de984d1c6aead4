// The client session: one user's device, as a sans-I/O state machine.
//
// It keeps an outbox of unacknowledged messages (client message ids, retries with backoff), a
// local log per conversation with de-duplication, gap detection from prev_msg_id with history
// catch-up, catch-up on (re)connect and at intervals, pull-mode group polling, delivery and read
// receipts, typing and presence. What the user sees is reported to a ClientObserver (the
// simulator's oracle, a UI) and, when options.keep_view is set, kept in View().
//
// The device's local state survives disconnects (it is the phone's storage); only the network
// session comes and goes.
#ifndef CHATLAB_CORE_CLIENT_H_
#define CHATLAB_CORE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/random.h"
#include "core/types.h"

namespace chatlab {

// Receives what the user of one client sees. All calls are synchronous from inside a
// ClientSession call; implementations must not call back into the client.
class ClientObserver {
 public:
  virtual ~ClientObserver() = default;
  // m is now shown in its conversation. out_of_order: its id is below one already shown.
  // duplicate: the same message id was shown before (only possible with dedup off).
  virtual void OnDisplayed(TimeUs /*now*/, UserId /*viewer*/, const ChatMessage& /*m*/,
                           bool /*out_of_order*/, bool /*duplicate*/) {}
  // Every SendAck the client received, whatever its code, before the client acts on it (the
  // oracle checks that no kOk answer is followed by another code for the same message).
  virtual void OnSendAnswered(TimeUs /*now*/, UserId /*sender*/, const SendAck& /*ack*/) {}
  // The server acknowledged a send (code kOk). For queued acks message_id is 0.
  virtual void OnAcked(TimeUs /*now*/, UserId /*sender*/, const SendAck& /*ack*/) {}
  // A send failed permanently (kInvalidArgument, kPermissionDenied, kNotFound).
  virtual void OnSendFailed(TimeUs /*now*/, UserId /*sender*/, const SendAck& /*ack*/) {}
  // The user sent a message (it entered the outbox).
  virtual void OnSent(TimeUs /*now*/, UserId /*sender*/, ClientMsgId /*id*/,
                      const ConversationId& /*conv*/) {}
  // The receipt watermark shown for (shown.conv, shown.kind, shown.reader) changed to
  // shown.up_to. A correct client only ever moves it forward; the oracle checks that.
  virtual void OnReceiptShown(TimeUs /*now*/, UserId /*viewer*/, const ReceiptUpdate& /*shown*/) {}
  virtual void OnTypingShown(TimeUs /*now*/, UserId /*viewer*/, const TypingUpdate& /*t*/) {}
  // s is shown; was_online: whether the status shown before said online (none: the first status
  // of s.user this client showed).
  virtual void OnPresenceShown(TimeUs /*now*/, UserId /*viewer*/, const PresenceStatus& /*s*/,
                               bool /*pushed*/, std::optional<bool> /*was_online*/) {}
  virtual void OnNotification(TimeUs /*now*/, UserId /*viewer*/, const PushToDevice& /*p*/) {}
  // A history read answered: n messages fetched for conv.
  virtual void OnHistoryFetched(TimeUs /*now*/, UserId /*viewer*/, const ConversationId& /*conv*/,
                                size_t /*n*/) {}
  // A per-member receipts read (ClientSession::GetReceipts) completed. kOk: `members` is every
  // member (party) of conv but the viewer, ascending by user, with the watermarks now shown for
  // them (each already reported through OnReceiptShown as it moved). Otherwise the refusal's
  // code (kPermissionDenied for a non-member, kNotFound for no such group, ...) and no members.
  virtual void OnMemberReceipts(TimeUs /*now*/, UserId /*viewer*/, const ConversationId& /*conv*/,
                                Code /*code*/, const std::vector<MemberReceipts>& /*members*/) {}
};

class ClientSession {
 public:
  // A client's counters (or many clients' sums: Options::shared_stats).
  struct Stats {
    uint64_t sends = 0;
    uint64_t send_attempts = 0;  // first tries and retries
    uint64_t retries = 0;
    uint64_t acks = 0;
    uint64_t send_failures = 0;
    uint64_t deliveries = 0;  // Deliver received
    uint64_t displayed = 0;
    uint64_t duplicates_suppressed = 0;
    uint64_t duplicates_displayed = 0;
    uint64_t out_of_order_displayed = 0;
    uint64_t gaps_detected = 0;
    uint64_t held_dropped = 0;
    uint64_t catchups = 0;  // GetMessages sent
    uint64_t messages_fetched = 0;
    uint64_t syncs = 0;
    uint64_t receipts_sent = 0;
    uint64_t stale_receipts_ignored = 0;
    uint64_t connects = 0;
    uint64_t disconnects = 0;
    uint64_t errors = 0;  // ErrorReply received
    uint64_t notifications = 0;
    uint64_t group_mode_changes = 0;  // a group this client knew as push went pull, or back
    uint64_t presence_queries = 0;        // PresenceQuery sent
    uint64_t presence_polls_skipped = 0;  // contacts left out of a poll: they push to us
    uint64_t receipt_pages = 0;           // GetReceipts pages asked (first tries and retries)
  };

  struct Options {
    UserId user;
    ProtocolConfig config;
    uint64_t seed = 1;
    ClientObserver* observer = nullptr;  // not owned; may be null
    bool keep_view = false;              // keep shown messages for View()
    // Reconnect by itself (OpenSession with backoff) after an unexpected disconnect.
    bool auto_reconnect = true;
    // The first client message id this device uses. A device whose counter does not survive a
    // reinstall (a command-line client) starts past every id it used before, e.g. at the
    // current time in microseconds, so the store's (sender, client_msg_id) de-duplication never
    // mistakes a new message for an old one. REQUIRES: > 0 and < 2^56 (ids name retry timers).
    ClientMsgId client_msg_id_first = 1;
    // When set, the session reads its protocol settings here and `config` is ignored: one copy
    // for many sessions (a simulated hub runs thousands; a ProtocolConfig is about 260 bytes).
    std::shared_ptr<const ProtocolConfig> shared_config = nullptr;
    // When set, the session adds its counters here and stats() returns these totals: one Stats
    // for many sessions (a simulation sums a million clients'; a Stats is 200 bytes). Every
    // session sharing it must run on one thread.
    std::shared_ptr<Stats> shared_stats = nullptr;
  };

  explicit ClientSession(const Options& options);

  // ---- User actions ----
  // Go online: asks the environment for a session (OpenSession{server}; NodeId() = any).
  void Connect(TimeUs now, NodeId server, Effects& out);
  // Go offline: closes the session; no automatic reconnect until Connect.
  void Disconnect(TimeUs now, Effects& out);
  // Queue a message. Fails with kResourceExhausted at config.client_outbox_max and
  // kInvalidArgument for a bad conversation or a body over config.body_bytes_max.
  absl::StatusOr<ClientMsgId> Send(TimeUs now, const ConversationId& conv, std::string body,
                                   Effects& out);
  // Read everything shown in conv: sends a read receipt if the watermark moved.
  void MarkRead(TimeUs now, const ConversationId& conv, Effects& out);
  void SetTyping(TimeUs now, const ConversationId& conv, bool active, Effects& out);
  // Returns the request id; the answer arrives as GroupResult. REQUIRES: connected().
  // The latest join or leave of each group is kept until the server answers it: re-sent when its
  // request times out and after every reconnect (both are idempotent at the store), dropped on a
  // permanent failure.
  uint64_t JoinGroup(TimeUs now, GroupId group, Effects& out);
  uint64_t LeaveGroup(TimeUs now, GroupId group, Effects& out);
  // Ask for a full catch-up now.
  void Sync(TimeUs now, Effects& out);
  // Reads the per-member receipt watermarks of conv (the "Message info" of a group, fetched on
  // demand because pushing every member's receipt to every member would cost O(n^2) per
  // message; in a direct chat, the peer's), page by page of config.receipts_page_max members.
  // Each member's watermark is shown like a pushed ReceiptUpdate with reader = the member: it
  // only moves forward (OnReceiptShown, ReceiptShown); when the last page is in,
  // OnMemberReceipts reports the members. Returns the request id of the first page, or 0 when
  // not connected (nothing is sent). One read per conversation at a time: asked again while one
  // is in flight, it returns that read's id and reads once more after it completes (coalescing
  // refreshes). A page that times out is asked again; a read dies with its session.
  uint64_t GetReceipts(TimeUs now, const ConversationId& conv, Effects& out);

  // ---- Environment inputs ----
  void OnConnected(TimeUs now, SessionId session, NodeId server, Effects& out);
  void OnConnectFailed(TimeUs now, Effects& out);
  void OnDisconnected(TimeUs now, Effects& out);
  void OnServerMessage(TimeUs now, const Message& msg, Effects& out);
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out);
  void OnPushNotification(TimeUs now, const PushToDevice& push, Effects& out);

  // ---- What the user sees ----
  bool connected() const { return session_.valid(); }
  bool wants_online() const { return wants_online_; }
  SessionId session() const { return session_; }
  NodeId server() const { return server_; }
  UserId user() const { return options_.user; }
  // This session's counters; with Options::shared_stats, the totals of every session sharing them.
  const Stats& stats() const { return *stats_; }
  // Whether a session ever opened (OnConnected), counted per session even with shared_stats.
  bool ever_connected() const { return connection_epoch_ > 0; }
  size_t outbox_size() const { return busy_ == nullptr ? 0 : busy_->outbox.size(); }
  // Shown messages in display order (only with keep_view).
  std::vector<ChatMessage> View(const ConversationId& conv) const;
  // The newest message id shown in conv (kNoMessage if none).
  MessageId LastShown(const ConversationId& conv) const;
  MessageId ReceiptShown(const ConversationId& conv, ReceiptKind kind, UserId reader) const;
  // The members of conv (the user left out) as of the last completed GetReceipts, each with the
  // watermarks shown now; empty before one completed.
  std::vector<MemberReceipts> MemberReceiptsShown(const ConversationId& conv) const;
  bool IsTyping(const ConversationId& conv, UserId who, TimeUs now) const;
  // The last status shown of `who` (pushed: whether `who` pushes its changes to this user), or
  // nullopt if none was.
  std::optional<PresenceStatus> Presence(UserId who) const;
  std::vector<ConversationId> Conversations() const;
  bool HasPendingCatchUp() const;
  absl::btree_set<GroupId> groups() const {
    return groups_ == nullptr ? absl::btree_set<GroupId>() : groups_->joined;
  }

 private:
  struct OutboxEntry {
    ConversationId conv;
    std::string body;
    TimeUs created_us = 0;
    uint32_t attempts = 0;
    TimeUs next_retry_us = 0;
  };
  // A group's read of its members' receipts (GetReceipts), paged. Boxed in its Conversation's
  // Extra: most conversations never read one, and a simulation keeps millions of them.
  struct ReceiptsRead {
    // The page read in flight (0 if none) and the after_user it asked with; the members it
    // gathered so far (the user left out); whether to read again once it completes.
    uint64_t request = 0;
    UserId after;
    std::vector<UserId> gathered;
    bool again = false;
    // The members of the last completed read (the user left out), ascending.
    std::vector<UserId> members;
  };
  struct Conversation {
    // What few conversations use: boxed (Extra), as a simulation keeps millions of
    // conversations and most never hold a message, see typing, keep a view or read members'
    // receipts.
    struct Extra {
      // Out-of-order arrivals waiting for a catch-up, by id. Bounded by config.client_held_max.
      absl::btree_map<MessageId, ChatMessage> held;
      // The first request id issued after the newest held message arrived: only a catch-up at
      // least this new is known to cover every held message.
      uint64_t held_covered_from = 0;
      absl::btree_map<UserId, TimeUs> typing_until;
      std::vector<ChatMessage> view;  // only with keep_view
      // Shown receipt watermarks of readers other than the main one (ReceiptSlot), by (kind,
      // reader): a group's members, from GetReceipts.
      absl::btree_map<std::pair<ReceiptKind, UserId>, MessageId> receipts;
      std::unique_ptr<ReceiptsRead> receipts_read;  // null until the first GetReceipts
    };
    // Every message id received (the de-duplication set).
    absl::btree_set<MessageId> log;
    // The newest id shown; messages are shown only in chain order when gap detection is on.
    MessageId last_shown = kNoMessage;
    // Request id of the catch-up in flight (0 if none).
    uint64_t catchup_request = 0;
    MessageId delivered_sent = kNoMessage;  // delivery receipt watermark sent
    MessageId read_sent = kNoMessage;       // read receipt watermark sent
    // Shown receipt watermarks of the main reader: the peer (direct) or UserId(), a group's
    // aggregate. Inline, as nearly every conversation shows them; other readers' are in
    // extra->receipts. Never decrease.
    MessageId delivered_shown = kNoMessage;
    MessageId read_shown = kNoMessage;
    std::unique_ptr<Extra> extra;  // null until first needed; never reset
    GroupMode group_mode = GroupMode::kNone;

    Extra& More() {
      if (extra == nullptr) extra = std::make_unique<Extra>();
      return *extra;
    }
    // The members' receipts read, or null before the first GetReceipts.
    ReceiptsRead* Reading() const {
      return extra == nullptr ? nullptr : extra->receipts_read.get();
    }
    ReceiptsRead& MoreReading() {
      std::unique_ptr<ReceiptsRead>& read = More().receipts_read;
      if (read == nullptr) read = std::make_unique<ReceiptsRead>();
      return *read;
    }
    bool Holds(MessageId id) const { return extra != nullptr && extra->held.contains(id); }
    bool HoldsAny() const { return extra != nullptr && !extra->held.empty(); }
  };
  enum class RequestKind : uint8_t { kCatchUp, kSync, kGroup, kPresence, kReceipts };
  struct Request {
    RequestKind kind;
    ConversationId conv;
  };

  void OnSendAck(TimeUs now, const SendAck& ack, Effects& out);
  void OnMessagesResult(TimeUs now, const MessagesResult& r, Effects& out);
  void OnSyncResult(TimeUs now, const SyncResult& r, Effects& out);
  void OnGroupResult(TimeUs now, const GroupResult& r, Effects& out);
  void OnReceiptUpdate(TimeUs now, const ReceiptUpdate& r);
  void OnReceiptsResult(TimeUs now, const ReceiptsResult& r, Effects& out);
  // Asks for the GetReceipts page of conv after `after`.
  void SendReceiptsPage(TimeUs now, const ConversationId& conv, UserId after, Effects& out);
  void OnTypingUpdate(TimeUs now, const TypingUpdate& t);
  void OnGroupModeUpdate(TimeUs now, const GroupModeUpdate& u, Effects& out);
  void OnPresenceUpdate(TimeUs now, const PresenceStatus& s, bool pushed);

  // A message arrived live (Deliver or a direct ack).
  void Ingest(TimeUs now, const ChatMessage& m, Effects& out);
  // A group message written while the user's join of that group is pending waits for the
  // join's answer before it is sent: sent earlier, it would overtake the join and be refused
  // (the server checks membership). Found by the demo: a join lost with its session, then two
  // messages written offline, then a reconnect that sent them ahead of the re-sent join.
  bool WaitsForJoin(const OutboxEntry& e) const;
  // Records a group's mode as an answer reported it, counting a switch (push <-> pull).
  void SetGroupMode(Conversation& c, GroupMode mode);
  // Shows m and notes it for a delivery receipt.
  void Show(TimeUs now, Conversation& c, const ChatMessage& m, bool duplicate);
  // Shows held messages that now continue the chain.
  void DrainHeld(TimeUs now, Conversation& c);
  void StartCatchUp(TimeUs now, const ConversationId& conv, Effects& out);
  void TransmitOutbox(TimeUs now, Effects& out);
  void Transmit(TimeUs now, ClientMsgId id, OutboxEntry& e, Effects& out);
  void SendReceipts(Effects& out);
  void DropSession();
  void ScheduleReconnect(TimeUs now, Effects& out);
  // Queries the statuses of the peers of the user's direct chats: all of them, or (all = false)
  // those not known to push to us. At most config.lookup_users_max users per PresenceQuery.
  void PollPresence(TimeUs now, bool all, Effects& out);
  void PollGroups(TimeUs now, Effects& out);
  uint64_t NewRequest(TimeUs now, RequestKind kind, ConversationId conv, Effects& out);
  // Sends a join (join) or leave of group as a new request.
  uint64_t SendMembership(TimeUs now, GroupId group, bool join, Effects& out);
  TimeUs Backoff(uint32_t attempts);
  Conversation& Conv(const ConversationId& conv) { return convs_[conv]; }
  // The shown watermark of (kind, reader) in conv (c), created (kNoMessage) if absent: inline
  // for the main reader (Conversation::delivered_shown), in c.More().receipts for any other.
  MessageId& ReceiptSlot(const ConversationId& conv, Conversation& c, ReceiptKind kind,
                         UserId reader);
  // The main reader of conv as this user sees it: the peer (direct), UserId() (group), or
  // nullopt for a direct chat the user is no party of.
  std::optional<UserId> MainReader(const ConversationId& conv) const;

  // The options but config (config_ holds it, shared or a copy), stats (stats_), the flags (beside
  // the other flags below) and client_msg_id_first (client_msg_id_next_'s first value).
  struct Fixed {
    UserId user;
    ClientObserver* observer;
  };
  const Fixed options_;
  const std::shared_ptr<const ProtocolConfig> config_;
  const std::shared_ptr<Stats> stats_;  // options.shared_stats, or this session's own
  Rng rng_;
  const bool keep_view_;
  const bool auto_reconnect_;
  bool wants_online_ = false;
  // True between OpenSession and OnConnected/OnConnectFailed: no second OpenSession meanwhile.
  bool connecting_ = false;
  uint32_t reconnect_attempts_ = 0;
  SessionId session_;  // valid iff connected
  // Increments on every connect; periodic timers carry it and die with their connection.
  uint64_t connection_epoch_ = 0;
  NodeId server_;
  ClientMsgId client_msg_id_next_ = 1;
  uint64_t request_id_next_ = 1;
  absl::btree_map<ConversationId, Conversation> convs_;
  // The user's groups: boxed, as most users of a simulation are in none.
  struct Groups {
    absl::btree_set<GroupId> joined;
    // Joins (true) and leaves (false) not yet answered, by group.
    absl::btree_map<GroupId, bool> intent;
  };
  Groups& MoreGroups() {
    if (groups_ == nullptr) groups_ = std::make_unique<Groups>();
    return *groups_;
  }
  std::unique_ptr<Groups> groups_;  // null until the first join, leave or group list
  // What is in flight. Boxed: at rest (most users of a simulation, most of the time) all of it
  // is empty, and the box is released at the end of the input that emptied it (SendReceipts).
  struct InFlight {
    absl::btree_map<ClientMsgId, OutboxEntry> outbox;
    absl::btree_map<uint64_t, Request> requests;
    // Conversations whose delivery receipt should be sent at the end of this input.
    absl::btree_set<ConversationId> receipt_dirty;
    bool empty() const { return outbox.empty() && requests.empty() && receipt_dirty.empty(); }
  };
  InFlight& Busy() {
    if (busy_ == nullptr) busy_ = std::make_unique<InFlight>();
    return *busy_;
  }
  void ReleaseIfIdle() {
    if (busy_ != nullptr && busy_->empty()) busy_.reset();
  }
  std::unique_ptr<InFlight> busy_;  // null when nothing is in flight
  // A PresenceStatus but its user (the key): half the bytes, for every contact of every user.
  struct ShownPresence {
    TimeUs last_seen_us = 0;
    bool online = false;
    bool pushed = false;
  };
  // The last status seen of each contact; its `pushed` says whether the contact pushes to us
  // (then polls leave it out).
  absl::btree_map<UserId, ShownPresence> presence_;
  // When the last query of all contacts went out (connect or refresh).
  TimeUs presence_full_query_us_ = 0;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_CLIENT_H_
