// The chat server: the seed's WebSocket server role, as a sans-I/O state machine.
//
// It holds client sessions, turns client requests into service requests (store or batch writer,
// user mapping, presence, notification), fans stored messages out to recipients (locally, or to
// the chat server that holds them through the configured forwarding strategy), and relays
// receipts, typing and presence. With several store shards (config.store_shards) it sends each
// request to the store of its conversation (Topology::StoreFor) and a sync to every shard,
// merging their heads before it answers. It keeps no durable state: a crash loses sessions,
// in-flight requests and forwarding buffers, which clients repair by retrying and catching up.
#ifndef CHATLAB_CORE_CHAT_SERVER_H_
#define CHATLAB_CORE_CHAT_SERVER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <variant>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/random.h"
#include "core/snowflake.h"
#include "core/types.h"

namespace chatlab {

class ChatServer : public Node {
 public:
  // Timer ids: the kind in the top byte, a payload (a destination NodeId) below.
  static constexpr uint64_t kTimerKindShift = 56;
  static constexpr uint64_t kTickTimer = uint64_t{1} << kTimerKindShift;
  static constexpr uint64_t kFlushTimerKind = 2;
  static constexpr uint64_t kTimerPayloadMask = (uint64_t{1} << kTimerKindShift) - 1;
  struct Stats {
    uint64_t sessions_opened = 0;
    uint64_t sessions_refused = 0;
    uint64_t sessions_closed = 0;
    uint64_t sessions_displaced = 0;
    uint64_t client_requests = 0;
    uint64_t sends = 0;             // SendMessage requests accepted for processing
    uint64_t sends_rejected = 0;    // refused before reaching the store (validation, limits)
    uint64_t acks = 0;              // SendAck with kOk
    uint64_t duplicate_sends = 0;   // the store knew (sender, client_msg_id): fanned out again
    uint64_t member_checks = 0;     // StoreCheckMember asked before queueing a group message
    uint64_t acks_withheld = 0;     // non-OK answers not sent: that message was acked kOk
    uint64_t retries_after_ack = 0; // retries absorbed: their kOk was already sent here
    uint64_t commits_refused = 0;   // batched items the store refused after their queued ack
    uint64_t local_deliveries = 0;  // Deliver/updates pushed to a session of this server
    uint64_t lookups = 0;           // MapLookup requests sent
    uint64_t refreshes = 0;         // MapRefresh messages sent (config.map_refresh_interval_us)
    uint64_t forwards_sent = 0;     // inter-server requests (ForwardBatch or QueuePublish)
    uint64_t forward_entries_sent = 0;
    uint64_t forwards_received = 0;
    uint64_t forward_failures = 0;  // forwards that timed out
    // Buffered forwarding, observed for the simulator's bulk-service check: buffers flushed, the
    // entries they carried, and the sum over those entries of (flush - entering the buffer), on
    // this node's clock (clamped at 0 per flush, should the clock step back).
    uint64_t buffer_flushes = 0;
    uint64_t buffer_flushed_entries = 0;
    uint64_t buffer_wait_us = 0;
    uint64_t notifications = 0;     // Notify sent
    uint64_t mode_updates = 0;      // hybrid groups turned pull, announced (GroupModeUpdate)
    uint64_t timeouts = 0;          // service requests that timed out
    uint64_t client_errors = 0;     // ErrorReply sent
    uint64_t unexpected_messages = 0;
    uint64_t ids_minted = 0;        // message ids minted here (IdGenerator::kChatServer)
  };

  explicit ChatServer(const NodeOptions& options);

  // Node.
  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  // A client connection authenticated as `user` opened. Returns kResourceExhausted (and opens
  // nothing) at config.server_sessions_max; kAlreadyExists if the session id is in use.
  absl::Status OnSessionOpen(TimeUs now, SessionId session, UserId user, Effects& out);
  // A Web Service caller (the seed's HTTP API: get_messages, join_group, leave_group, sync,
  // presence polls) authenticated as `user`: a request-only session. It is not registered with
  // the user mapping or the presence service (it must not displace the user's WebSocket session
  // or flap their presence), receives no pushes, and is answered only for reads and group
  // changes; SendMessage, Receipt and Typing on it get ErrorReply{kInvalidArgument} (they travel
  // on the WebSocket). The environment closes it with OnSessionClose after the answer. Same
  // limits and errors as OnSessionOpen.
  absl::Status OnWebSessionOpen(TimeUs now, SessionId session, UserId user, Effects& out);
  // The connection closed (client left or the network dropped it). Unknown sessions are ignored.
  void OnSessionClose(TimeUs now, SessionId session, Effects& out);
  // The environment ends `session` for a reason of its own (it is shutting down: kUnavailable;
  // the credential the session was opened with expired: kUnauthenticated). The client is told
  // why (SessionClosed{code, detail}, then CloseSession, as for a displaced session) and the
  // session is closed as by OnSessionClose (unregistered, reported offline), so the
  // environment must not call OnSessionClose for it. Unknown sessions are ignored.
  void CloseSessionFor(TimeUs now, SessionId session, Code code, std::string detail,
                       Effects& out);
  // A decoded request from the client on `session`. Unknown sessions are ignored.
  void OnClientMessage(TimeUs now, SessionId session, const Message& msg, Effects& out);
  // The client sent bytes that did not decode; the server answers with an ErrorReply naming the
  // problem and keeps the session.
  void OnClientFrameError(TimeUs now, SessionId session, const absl::Status& error,
                          Effects& out);

  const Stats& stats() const { return stats_; }
  // This server's Snowflake generator (node bits = self & SnowflakeGenerator::kNodeMax); it
  // mints ids only with IdGenerator::kChatServer and IdScheme::kSnowflake.
  const SnowflakeGenerator& snowflake() const { return snowflake_; }
  size_t session_count() const { return sessions_.size(); }
  size_t pending_count() const { return pending_.size(); }
  // The user of a session, or UserId() if unknown.
  UserId SessionUser(SessionId session) const;

 private:
  // What a payload fanned out to recipients is.
  using Payload = std::variant<ChatMessage, ReceiptUpdate, TypingUpdate, GroupModeUpdate>;

  // ---- Operations waiting for a service's answer, keyed by request id ----
  struct SendOp {  // SendMessage waiting for the store or the batch writer
    SessionId session;
    UserId sender;
    ClientMsgId client_msg_id = 0;
    ConversationId conv;
    uint64_t fingerprint = 0;  // MessageFingerprint(conv, body): which message this id names
    uint32_t attempt = 0;      // SendMessage.attempt, passed on in StoreAppend
  };
  struct MemberCheckOp {  // batched path: a group message waiting for StoreCheckMemberResult
    SendOp send;
    ChatMessage draft;
  };
  struct ClientReadOp {  // a client request relayed to a service, answered to the session
    SessionId session;
    uint64_t client_request_id = 0;
    ConversationId conv;  // for GetMessages and GetReceipts
    GroupId group;        // for Join/LeaveGroup
    // A sync over several store shards: the stores yet to answer (each answers once; a second
    // answer from one is ignored), and the heads gathered so far. The first error is the reply.
    std::vector<NodeId> awaiting;
    std::vector<ConversationHead> heads;
    Code code = Code::kOk;
  };
  struct LookupOp {  // a payload waiting for its recipients' locations
    Payload payload;
  };
  struct MembersOp {  // group typing waiting for the member list
    TypingUpdate typing;
  };
  struct ReceiptOp {};  // a receipt waiting for the store's watermark decision
  struct ForwardOp {    // a ForwardBatch waiting for ForwardResult; on failure, notify
    NodeId dest;
    std::vector<Notify> notify_on_failure;
  };
  struct Pending {
    TimeUs started_us = 0;
    std::variant<SendOp, MemberCheckOp, ClientReadOp, LookupOp, MembersOp, ReceiptOp, ForwardOp>
        op;
  };

  // A session remembers each client message id it answered kOk for this many request timeouts
  // (counted in server ticks, plus kAckedMemorySlackTicks). Within that time an attempt of the
  // same message can still be answered: one that was in flight together with the acked one
  // (answered within two request timeouts of its start: a membership check, then the write), or
  // a retry that crossed the kOk on the wire (it arrives one session round trip after it). The
  // first is withheld if its answer is not kOk; the second is absorbed on arrival. Ticks, not
  // `now`: a clock stepped forward fires the tick timer once, so it cannot age the memory at a
  // stroke (the swarm found that: seed 1726, a 1.9 s step on the server).
  static constexpr int kAckedMemoryTimeouts = 2;
  static constexpr uint64_t kAckedMemorySlackTicks = 4;
  // A session's memory is purged of expired entries when it reaches this size, or twice the
  // size it had after the last purge: amortised O(1) per ack, no timer per session.
  static constexpr size_t kSessionAckedPurgeMin = 8;

  struct Acked {
    uint64_t tick = 0;         // the server tick the kOk went out in
    uint64_t fingerprint = 0;  // of the message acked: a reuse of its id is not a retry
  };
  struct Session {
    UserId user;
    // Client message ids answered kOk on this session. Entries older than acked_memory_ticks_
    // are dead (ignored, purged lazily).
    absl::btree_map<ClientMsgId, Acked> acked;
    // acked is purged when it reaches this size: twice what the last purge kept (saturating).
    uint32_t acked_purge_at = kSessionAckedPurgeMin;
    bool web = false;  // a Web Service session (OnWebSessionOpen): never in users_

    void PurgeAgainAt(size_t size) {
      acked_purge_at = static_cast<uint32_t>(std::min<size_t>(
          std::numeric_limits<uint32_t>::max(), std::max(kSessionAckedPurgeMin, size)));
    }
  };

  // Whether a new session may open: kAlreadyExists for an id in use, kResourceExhausted at
  // config.server_sessions_max.
  absl::Status Admit(SessionId session);

  // Client requests.
  void OnSendMessage(TimeUs now, SessionId session, UserId user, const SendMessage& m,
                     Effects& out);
  void OnClientRead(TimeUs now, SessionId session, UserId user, const Message& m, Effects& out);
  void OnReceipt(TimeUs now, UserId user, const Receipt& m, Effects& out);
  void OnTyping(TimeUs now, UserId user, const Typing& m, Effects& out);

  // Service answers.
  void OnStoreAppendResult(TimeUs now, const StoreAppendResult& m, Effects& out);
  void OnStoreCheckMemberResult(TimeUs now, const StoreCheckMemberResult& m, Effects& out);
  void OnWriterEnqueueResult(TimeUs now, const WriterEnqueueResult& m, Effects& out);
  void OnWriterCommitted(TimeUs now, const WriterCommitted& m, Effects& out);
  void OnClientReadResult(TimeUs now, uint64_t request_id, const Message& m, Effects& out);
  void OnStoreSyncResult(TimeUs now, NodeId from, const StoreSyncResult& m, Effects& out);
  void OnStoreReceiptResult(TimeUs now, const StoreReceiptResult& m, Effects& out);
  void OnStoreMembersResult(TimeUs now, const StoreMembersResult& m, Effects& out);
  void OnMapLookupResult(TimeUs now, const MapLookupResult& m, Effects& out);
  void OnMapDisplaced(TimeUs now, const MapDisplaced& m, Effects& out);
  // Re-sends every user with a session here to the mapping and presence (MapRefresh,
  // PresenceRefresh), lookup_users_max per message, in ascending user order.
  void SendRefresh(Effects& out);
  void OnForwardBatch(TimeUs now, NodeId from, const ForwardBatch& m, Effects& out);
  void OnForwardResult(TimeUs now, const ForwardResult& m, Effects& out);
  void OnQueueDeliver(TimeUs now, NodeId from, const QueueDeliver& m, Effects& out);
  void OnPresencePush(TimeUs now, const PresencePush& m, Effects& out);

  // Fan-out: deliver `payload` to `recipients` (minus the sending session), looking up those
  // not connected here.
  void FanOut(TimeUs now, const Payload& payload, const std::vector<UserId>& recipients,
              SessionId exclude, Effects& out);
  // A stored message is ready to reach its recipients (after the store or the batch writer).
  void DeliverStored(TimeUs now, const AppendOutcome& outcome, SessionId exclude, Effects& out);
  // Delivers to local sessions of `user`; returns how many sessions got it.
  int DeliverLocal(const Payload& payload, UserId user, SessionId exclude, Effects& out);
  void Forward(TimeUs now, NodeId dest, const Payload& payload, std::vector<UserId> recipients,
               Effects& out);
  void FlushBuffer(TimeUs now, NodeId dest, Effects& out);
  void SendForwardBatch(TimeUs now, NodeId dest, ForwardBatch batch, Effects& out);
  void NotifyOffline(const Payload& payload, UserId user, Effects& out);
  ForwardBatch& BufferFor(NodeId dest);

  // With IdGenerator::kChatServer, the id of a message this server takes now, on its own clock
  // (config.id_scheme): a Snowflake id with this server's node bits, or now in microseconds
  // (at least 1); kNoMessage for kSequence, which the store numbers. The store lifts an id at
  // or below its partition's head (core/store.h). REQUIRES: id_generator == kChatServer.
  MessageId MintId(TimeUs now);
  // Sends the store or writer request of a validated send.
  void StartSend(TimeUs now, const SendOp& send, ChatMessage draft, Effects& out);
  // Answers a send of the message with this fingerprint. A non-OK answer for a message this
  // session acked kOk within acked_memory_ticks_ is withheld (acks_withheld): an
  // acknowledgement is never followed by a refusal. (A refusal of a different message that
  // reuses the id is sent: it refuses that message, not the acked one.)
  void SendAckTo(SessionId session, const SendAck& ack, uint64_t fingerprint, Effects& out);
  // The live kOk this session sent for cmid, or null.
  const Acked* AckedRecently(const Session& s, ClientMsgId cmid) const;
  void ReplyError(SessionId session, Code code, std::string detail, Effects& out);
  void SendToSession(SessionId session, Message msg, Effects& out);
  uint64_t NewRequest(TimeUs now, decltype(Pending::op) op);
  void ExpirePending(TimeUs now, Effects& out);
  void OnPendingExpired(const Pending& p, Effects& out);
  bool AtPendingLimit() const { return pending_.size() >= options_.config.server_pending_max; }

  const NodeOptions options_;
  Rng rng_;
  Stats stats_;
  // Mints ids with IdGenerator::kChatServer and IdScheme::kSnowflake. Soft like everything
  // here: a restarted server whose clock went back may reissue an id, which the store lifts.
  SnowflakeGenerator snowflake_;
  // Identifies this run of the server to the queue broker (a restart is a new incarnation).
  uint64_t incarnation_ = 0;
  // Queue strategy: when to repeat QueueSubscribe, so a broker that presumed us dead (say,
  // behind a partition) starts delivering again.
  TimeUs resubscribe_at_us_ = 0;
  // When the next MapRefresh goes out (config.map_refresh_interval_us > 0).
  TimeUs refresh_at_us_ = 0;
  // Server ticks since Start (the tick timer's firings), the clock of the acked memory.
  uint64_t ticks_ = 0;
  // How many ticks a session remembers a kOk: kAckedMemoryTimeouts request timeouts, rounded
  // up to ticks, plus kAckedMemorySlackTicks.
  uint64_t acked_memory_ticks_ = 0;
  // Increments with every request id, from FirstRequestId at Start; request ids are never
  // reused within an incarnation, nor (but with probability 2^-23) across incarnations.
  uint64_t request_id_next_ = 1;
  // Invariant: every SessionId in users_ is a key here with the same user, and every key here
  // that is not a web session is in users_. Hash tables: every message looks both up, and their
  // order never decides anything (SendRefresh sorts the users it walks). A user's sessions are
  // ascending, inline for the usual one.
  using UserSessions = absl::InlinedVector<SessionId, 1>;
  absl::flat_hash_map<SessionId, Session> sessions_;
  absl::flat_hash_map<UserId, UserSessions> users_;
  // Ordered by request id, which is also (modulo clock jumps) the order of started_us, so
  // expiry scans from the front.
  absl::btree_map<uint64_t, Pending> pending_;
  // Buffered forwarding: per destination, what accumulated since the last flush. A destination
  // is present iff its flush timer is armed.
  absl::btree_map<NodeId, ForwardBatch> buffers_;
  // Per destination with a buffer: the sum of its entries' entry times (only for stats_).
  absl::btree_map<NodeId, TimeUs> buffer_entered_us_sum_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_CHAT_SERVER_H_
