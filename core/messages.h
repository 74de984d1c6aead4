// Every message that crosses a connection in ChatLab, as plain structs.
//
// Three families, all in one variant so one codec and one dispatcher serve them:
//   client <-> chat server   (types 1..39)
//   chat server <-> services  (types 40..79: store, batch writer, user mapping)
//   server <-> server / broker / presence / notification (types 80..119)
// Each struct's fields are listed once, in wire order, by VisitFields in core/fields.h; the
// codec (codec.h), the trace printer and any text encoding are all driven by that one list. Field order and
// type numbers are the wire contract: append new fields at the end and bump kWireVersion.
// docs/protocol.md documents every message: who sends it and what the receiver must do.
#ifndef CHATLAB_CORE_MESSAGES_H_
#define CHATLAB_CORE_MESSAGES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/types.h"

namespace chatlab {

// Result codes carried on the wire. Numbers are the contract (docs/protocol.md).
enum class Code : uint8_t {
  kOk = 0,
  kInvalidArgument = 1,    // the request is malformed or names something impossible
  kNotFound = 2,           // the group/conversation does not exist
  kPermissionDenied = 3,   // the caller is not a party/member
  kResourceExhausted = 4,  // a named limit was hit; retry later
  kUnavailable = 5,        // a dependency did not answer in time; retry
  kFailedPrecondition = 6, // e.g. not connected, or session displaced
  kUnauthenticated = 7,    // the connection has no authenticated user
};
const char* CodeName(Code code);

// ---- Nested value types (not messages on their own) ------------------------------------------

// What the sequencer did with one appended message.
struct AppendOutcome {
  Code code = Code::kOk;
  // The stored message with its message_id and prev_msg_id filled in (for a duplicate: the
  // originally stored message).
  ChatMessage message;
  // True when (sender, client_msg_id) was already stored and this append stored nothing.
  bool duplicate = false;
  // Who should receive the message: both parties of a direct chat, every member of a group.
  std::vector<UserId> recipients;
  GroupMode group_mode = GroupMode::kNone;
  // Hybrid only: this append turned the group from push to pull. The chat server tells the
  // members (GroupModeUpdate), since a pull group's messages are no longer pushed to them.
  bool mode_switched = false;
  friend bool operator==(const AppendOutcome&, const AppendOutcome&) = default;
};

// The newest message id of one conversation the user is part of.
struct ConversationHead {
  ConversationId conv;
  MessageId head_id = kNoMessage;
  GroupMode group_mode = GroupMode::kNone;
  friend bool operator==(const ConversationHead&, const ConversationHead&) = default;
};

// One member's receipt watermarks in a conversation (a party of a direct chat, a member of a
// group): every message up to delivered_up_to reached one of the member's devices, every
// message up to read_up_to was read. kNoMessage: nothing yet. The "Message info" of a message m
// says delivered when delivered_up_to >= m, read when read_up_to >= m.
struct MemberReceipts {
  UserId user;
  MessageId delivered_up_to = kNoMessage;
  MessageId read_up_to = kNoMessage;
  friend bool operator==(const MemberReceipts&, const MemberReceipts&) = default;
};

// Where a user is connected; server is NodeId() when the user is offline.
struct UserLocation {
  UserId user;
  NodeId server;
  friend bool operator==(const UserLocation&, const UserLocation&) = default;
};

// ---- Client <-> chat server --------------------------------------------------------------------

// Client -> server: send_message(user_id, receiver_id, channel_type, message). The sender is the
// session's user; conv names the receiver (peer pair or group).
struct SendMessage {
  ClientMsgId client_msg_id = 0;
  ConversationId conv;
  TimeUs sent_at_us = 0;
  std::string body;
  // 0 on the first transmission of this client_msg_id, then 1, 2, ... on each resend (a client
  // that keeps its outbox across restarts keeps the count too). A resend may repeat a message
  // already stored, however long ago; a first attempt cannot (config.store_dedup_lookup).
  uint32_t attempt = 0;
  friend bool operator==(const SendMessage&, const SendMessage&) = default;
};

// Which message a client_msg_id names, as a 64-bit FNV-1a hash of the conversation and the
// body: a retry repeats both; a different message reusing the id (another conversation or
// another body) almost surely hashes differently. Deterministic across runs and processes.
uint64_t MessageFingerprint(const ConversationId& conv, std::string_view body);

// Client -> server: get_messages(user_id, user_id2, channel_type, earliest_message_id): up to
// `limit` messages with id > after_id, ascending.
struct GetMessages {
  uint64_t request_id = 0;
  ConversationId conv;
  MessageId after_id = kNoMessage;
  uint32_t limit = 0;
  friend bool operator==(const GetMessages&, const GetMessages&) = default;
};

// Client -> server: list every conversation of the user with its head id (catch-up entry point).
struct SyncRequest {
  uint64_t request_id = 0;
  friend bool operator==(const SyncRequest&, const SyncRequest&) = default;
};

// Client -> server: join_group(user_id, group_id). Creates the group if it does not exist.
struct JoinGroup {
  uint64_t request_id = 0;
  GroupId group;
  friend bool operator==(const JoinGroup&, const JoinGroup&) = default;
};

// Client -> server: leave_group(user_id, group_id).
struct LeaveGroup {
  uint64_t request_id = 0;
  GroupId group;
  friend bool operator==(const LeaveGroup&, const LeaveGroup&) = default;
};

// Client -> server: the session's user has delivered/read every message up to up_to.
struct Receipt {
  ConversationId conv;
  ReceiptKind kind = ReceiptKind::kDelivered;
  MessageId up_to = kNoMessage;
  friend bool operator==(const Receipt&, const Receipt&) = default;
};

// Client -> server: typing started (active) or stopped in conv.
struct Typing {
  ConversationId conv;
  bool active = false;
  friend bool operator==(const Typing&, const Typing&) = default;
};

// Client -> server: poll the presence of some users (for contacts not on the push short list).
struct PresenceQuery {
  uint64_t request_id = 0;
  std::vector<UserId> users;
  friend bool operator==(const PresenceQuery&, const PresenceQuery&) = default;
};

// Client -> server: one page of the per-member receipt watermarks of conv (the "Message info"
// view, read on demand): the members (parties of a direct chat) with a user id above
// after_user, ascending, at most `limit` (0 or above receipts_page_max: receipts_page_max).
// Only a member (party) may ask.
struct GetReceipts {
  uint64_t request_id = 0;
  ConversationId conv;
  UserId after_user;
  uint32_t limit = 0;
  friend bool operator==(const GetReceipts&, const GetReceipts&) = default;
};

// Server -> client: the server ack for a SendMessage. code kOk with queued=false means the
// message is durable in the store and message_id/prev_msg_id are set; queued=true means it is
// durable in the batch writer's queue and its id arrives later with its Deliver.
struct SendAck {
  ClientMsgId client_msg_id = 0;
  ConversationId conv;
  Code code = Code::kOk;
  MessageId message_id = kNoMessage;
  MessageId prev_msg_id = kNoMessage;
  bool duplicate = false;
  bool queued = false;
  friend bool operator==(const SendAck&, const SendAck&) = default;
};

// Server -> client: a message pushed to a connected recipient (or to the sender's session after
// a batched commit).
struct Deliver {
  ChatMessage message;
  friend bool operator==(const Deliver&, const Deliver&) = default;
};

// Server -> client: answer to GetMessages.
struct MessagesResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  ConversationId conv;
  std::vector<ChatMessage> messages;
  bool has_more = false;
  GroupMode group_mode = GroupMode::kNone;
  friend bool operator==(const MessagesResult&, const MessagesResult&) = default;
};

// Server -> client: answer to SyncRequest.
struct SyncResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  std::vector<ConversationHead> heads;
  friend bool operator==(const SyncResult&, const SyncResult&) = default;
};

// Server -> client: answer to JoinGroup / LeaveGroup. joined tells the membership afterwards.
struct GroupResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  GroupId group;
  bool joined = false;
  GroupMode group_mode = GroupMode::kNone;
  friend bool operator==(const GroupResult&, const GroupResult&) = default;
};

// Server -> client (and server -> server inside ForwardBatch): a receipt watermark moved. For a
// direct chat, reader is the peer; for a group, reader is UserId() and up_to is the aggregate
// ("delivered to all" / "read by all" members).
struct ReceiptUpdate {
  ConversationId conv;
  ReceiptKind kind = ReceiptKind::kDelivered;
  UserId reader;
  MessageId up_to = kNoMessage;
  friend bool operator==(const ReceiptUpdate&, const ReceiptUpdate&) = default;
};

// Server -> client (and inside ForwardBatch): user started/stopped typing in conv.
struct TypingUpdate {
  ConversationId conv;
  UserId user;
  bool active = false;
  friend bool operator==(const TypingUpdate&, const TypingUpdate&) = default;
};

// Server -> client (and inside ForwardBatch): a hybrid group switched to mode (today only push
// to pull: the switch back needs no notice, the next message is pushed and every poll answers
// with the mode). head_id is the message whose append switched it, which was not pushed: the
// member reads it, then polls the group every group_poll_interval_us.
struct GroupModeUpdate {
  ConversationId conv;
  GroupMode mode = GroupMode::kNone;
  MessageId head_id = kNoMessage;
  friend bool operator==(const GroupModeUpdate&, const GroupModeUpdate&) = default;
};

// Server -> client: a pushed presence change of a contact.
struct PresenceUpdate {
  PresenceStatus status;
  friend bool operator==(const PresenceUpdate&, const PresenceUpdate&) = default;
};

// Server -> client: answer to PresenceQuery.
struct PresenceResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  std::vector<PresenceStatus> statuses;
  friend bool operator==(const PresenceResult&, const PresenceResult&) = default;
};

// Server -> client: answer to GetReceipts. has_more: members above the last one returned
// remain; ask again with after_user = the last member's user.
struct ReceiptsResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  ConversationId conv;
  std::vector<MemberReceipts> members;
  bool has_more = false;
  friend bool operator==(const ReceiptsResult&, const ReceiptsResult&) = default;
};

// Server -> client: a request could not be handled (malformed frame, unknown type, limit).
struct ErrorReply {
  Code code = Code::kOk;
  std::string detail;
  friend bool operator==(const ErrorReply&, const ErrorReply&) = default;
};

// Server -> client: the server is closing this session (displaced by a newer session of the same
// user on another server, or shutting down). The client should reconnect.
struct SessionClosed {
  Code code = Code::kOk;
  std::string detail;
  friend bool operator==(const SessionClosed&, const SessionClosed&) = default;
};

// ---- Chat server <-> message store ------------------------------------------------------------

// Server -> store: sequence and persist one message (direct write path). message_id and
// prev_msg_id of `message` are ignored; the store assigns them.
struct StoreAppend {
  uint64_t request_id = 0;
  ChatMessage message;
  // SendMessage.attempt, or at least 1 when a transport re-sent this request after a delivery
  // it could not confirm (MarkRedelivered): > 0 means it may repeat a stored message.
  uint32_t attempt = 0;
  friend bool operator==(const StoreAppend&, const StoreAppend&) = default;
};

struct StoreAppendResult {
  uint64_t request_id = 0;
  AppendOutcome outcome;
  friend bool operator==(const StoreAppendResult&, const StoreAppendResult&) = default;
};

// Batch writer -> store: sequence and persist many messages in one request, in order.
struct StoreAppendBatch {
  uint64_t request_id = 0;
  std::vector<ChatMessage> messages;
  friend bool operator==(const StoreAppendBatch&, const StoreAppendBatch&) = default;
};

struct StoreAppendBatchResult {
  uint64_t request_id = 0;
  std::vector<AppendOutcome> outcomes;  // same order as the batch
  friend bool operator==(const StoreAppendBatchResult&, const StoreAppendBatchResult&) = default;
};

// Server -> store: range read for `reader` (must be a party/member).
struct StoreRead {
  uint64_t request_id = 0;
  UserId reader;
  ConversationId conv;
  MessageId after_id = kNoMessage;
  uint32_t limit = 0;
  friend bool operator==(const StoreRead&, const StoreRead&) = default;
};

struct StoreReadResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  ConversationId conv;
  std::vector<ChatMessage> messages;
  bool has_more = false;
  GroupMode group_mode = GroupMode::kNone;
  friend bool operator==(const StoreReadResult&, const StoreReadResult&) = default;
};

// Server -> store: list the user's conversations and their heads.
struct StoreSync {
  uint64_t request_id = 0;
  UserId user;
  friend bool operator==(const StoreSync&, const StoreSync&) = default;
};

struct StoreSyncResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  std::vector<ConversationHead> heads;
  friend bool operator==(const StoreSyncResult&, const StoreSyncResult&) = default;
};

// Server -> store: add (join) or remove (leave) user in group, updating both membership tables.
struct StoreMembership {
  uint64_t request_id = 0;
  UserId user;
  GroupId group;
  bool join = false;
  friend bool operator==(const StoreMembership&, const StoreMembership&) = default;
};

struct StoreMembershipResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  GroupId group;
  bool joined = false;
  GroupMode group_mode = GroupMode::kNone;
  friend bool operator==(const StoreMembershipResult&, const StoreMembershipResult&) = default;
};

// Server -> store: list a group's members (for typing fan-out).
struct StoreMembers {
  uint64_t request_id = 0;
  GroupId group;
  friend bool operator==(const StoreMembers&, const StoreMembers&) = default;
};

struct StoreMembersResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  GroupId group;
  std::vector<UserId> members;
  friend bool operator==(const StoreMembersResult&, const StoreMembersResult&) = default;
};

// Server -> store, batched write path: may user send to group? Asked before a group message is
// queued, because the queue's ack is a promise the store must keep (docs/architecture.md,
// "Batched writes and the acknowledgement"). client_msg_id lets the store answer kOk for a retry
// of a message it already stored, whoever is a member now (dedup before access, as in Append).
struct StoreCheckMember {
  uint64_t request_id = 0;
  UserId user;
  GroupId group;
  ClientMsgId client_msg_id = 0;
  friend bool operator==(const StoreCheckMember&, const StoreCheckMember&) = default;
};

// Store -> server: kOk (a member, or the message is already stored), kPermissionDenied (not a
// member), kNotFound (no such group), kInvalidArgument (malformed).
struct StoreCheckMemberResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  friend bool operator==(const StoreCheckMemberResult&, const StoreCheckMemberResult&) = default;
};

// Server -> store: reader's receipt watermark for conv moves to up_to (never backwards).
struct StoreReceipt {
  uint64_t request_id = 0;
  ConversationId conv;
  UserId reader;
  ReceiptKind kind = ReceiptKind::kDelivered;
  MessageId up_to = kNoMessage;
  friend bool operator==(const StoreReceipt&, const StoreReceipt&) = default;
};

// Store -> server: recipients is empty when the visible watermark did not move.
struct StoreReceiptResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  ReceiptUpdate update;
  std::vector<UserId> recipients;
  friend bool operator==(const StoreReceiptResult&, const StoreReceiptResult&) = default;
};

// Server -> store: one page of conv's per-member receipt watermarks for `user` (the session's
// user, who must be a party/member), members with a user id above after_user, ascending.
struct StoreGetReceipts {
  uint64_t request_id = 0;
  UserId user;
  ConversationId conv;
  UserId after_user;
  uint32_t limit = 0;
  friend bool operator==(const StoreGetReceipts&, const StoreGetReceipts&) = default;
};

struct StoreGetReceiptsResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  ConversationId conv;
  std::vector<MemberReceipts> members;
  bool has_more = false;
  friend bool operator==(const StoreGetReceiptsResult&, const StoreGetReceiptsResult&) = default;
};

// ---- Chat server <-> batch writer --------------------------------------------------------------

// Server -> writer: queue one message for a batched store write.
struct WriterEnqueue {
  uint64_t request_id = 0;
  ChatMessage message;
  friend bool operator==(const WriterEnqueue&, const WriterEnqueue&) = default;
};

// Writer -> server: kOk means the message is durable in the writer's queue.
struct WriterEnqueueResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  friend bool operator==(const WriterEnqueueResult&, const WriterEnqueueResult&) = default;
};

struct CommittedItem {
  uint64_t request_id = 0;
  AppendOutcome outcome;
  friend bool operator==(const CommittedItem&, const CommittedItem&) = default;
};

// Writer -> origin server: these queued messages are now in the store, with their ids.
struct WriterCommitted {
  std::vector<CommittedItem> items;
  friend bool operator==(const WriterCommitted&, const WriterCommitted&) = default;
};

// ---- Chat server <-> user mapping --------------------------------------------------------------

// Server -> mapping: user is now connected to the sending server (displaces any other server).
struct MapRegister {
  UserId user;
  friend bool operator==(const MapRegister&, const MapRegister&) = default;
};

// Server -> mapping: user disconnected from the sending server (ignored if the user has since
// registered elsewhere).
struct MapUnregister {
  UserId user;
  friend bool operator==(const MapUnregister&, const MapUnregister&) = default;
};

struct MapLookup {
  uint64_t request_id = 0;
  std::vector<UserId> users;
  friend bool operator==(const MapLookup&, const MapLookup&) = default;
};

struct MapLookupResult {
  uint64_t request_id = 0;
  std::vector<UserLocation> locations;  // one per requested user, same order
  friend bool operator==(const MapLookupResult&, const MapLookupResult&) = default;
};

// Mapping -> old server: user registered on new_server; close the old session.
struct MapDisplaced {
  UserId user;
  NodeId new_server;
  friend bool operator==(const MapDisplaced&, const MapDisplaced&) = default;
};

// Server -> mapping, every config.map_refresh_interval_us: the users the sender holds sessions
// for (at most config.lookup_users_max per message). Restores lost mappings and restarts their
// expiry; never moves a user: one mapped to another server gets MapDisplaced{user, that server}
// back (the sender's session is stale).
struct MapRefresh {
  std::vector<UserId> users;
  friend bool operator==(const MapRefresh&, const MapRefresh&) = default;
};

// ---- Server <-> server forwarding --------------------------------------------------------------

template <typename T>
struct Routed {
  std::vector<UserId> recipients;
  T payload;
  friend bool operator==(const Routed&, const Routed&) = default;
};

// Server -> server (direct: one message each; buffered: everything accumulated for one
// destination in one flush window) or, wrapped, through the queue broker.
struct ForwardBatch {
  uint64_t request_id = 0;
  std::vector<Routed<ChatMessage>> messages;
  std::vector<Routed<ReceiptUpdate>> receipts;
  std::vector<Routed<TypingUpdate>> typing;
  std::vector<Routed<GroupModeUpdate>> modes;
  friend bool operator==(const ForwardBatch&, const ForwardBatch&) = default;
};

struct ForwardResult {
  uint64_t request_id = 0;
  Code code = Code::kOk;
  friend bool operator==(const ForwardResult&, const ForwardResult&) = default;
};

// ---- Queue broker (per-server queues) ----------------------------------------------------------

// Server -> broker: append batch to the queue of dest.
struct QueuePublish {
  NodeId dest;
  ForwardBatch batch;
  friend bool operator==(const QueuePublish&, const QueuePublish&) = default;
};

// Broker -> consumer server: the next entry of its queue. One entry in flight per consumer.
struct QueueDeliver {
  uint64_t seq = 0;
  TimeUs enqueued_at_us = 0;
  ForwardBatch batch;
  friend bool operator==(const QueueDeliver&, const QueueDeliver&) = default;
};

// Consumer -> broker: entry seq was handled.
struct QueueAck {
  uint64_t seq = 0;
  friend bool operator==(const QueueAck&, const QueueAck&) = default;
};

// Consumer -> broker: (re)start consuming the sender's queue.
struct QueueSubscribe {
  uint64_t incarnation = 0;
  friend bool operator==(const QueueSubscribe&, const QueueSubscribe&) = default;
};

// ---- Presence service --------------------------------------------------------------------------

// Server -> presence: user came online on / went offline from the sending server.
struct PresenceSet {
  UserId user;
  bool online = false;
  friend bool operator==(const PresenceSet&, const PresenceSet&) = default;
};

// Server -> presence: user and peer just exchanged a message (feeds the short-list ranking).
struct PresenceTouch {
  UserId user;
  UserId peer;
  friend bool operator==(const PresenceTouch&, const PresenceTouch&) = default;
};

// Server -> presence: poll.
struct PresenceLookup {
  uint64_t request_id = 0;
  std::vector<UserId> users;
  // Who asks (the session's user): each answered status says whether that user's changes are
  // pushed to the viewer. UserId() (none): every status says not pushed.
  UserId viewer;
  friend bool operator==(const PresenceLookup&, const PresenceLookup&) = default;
};

struct PresenceLookupResult {
  uint64_t request_id = 0;
  std::vector<PresenceStatus> statuses;
  friend bool operator==(const PresenceLookupResult&, const PresenceLookupResult&) = default;
};

// Server -> presence, every config.map_refresh_interval_us: the users the sender holds sessions
// for (at most config.lookup_users_max). Each one presence has offline goes online on the sender
// (as PresenceSet would); one online elsewhere is left there.
struct PresenceRefresh {
  std::vector<UserId> users;
  friend bool operator==(const PresenceRefresh&, const PresenceRefresh&) = default;
};

// Presence -> server: push status to these recipients (connected to the receiving server).
struct PresencePush {
  std::vector<UserId> recipients;
  PresenceStatus status;
  friend bool operator==(const PresencePush&, const PresencePush&) = default;
};

// ---- Notification service ----------------------------------------------------------------------

// Server -> notification: best-effort push to an offline user's device.
struct Notify {
  UserId user;
  ConversationId conv;
  MessageId message_id = kNoMessage;
  UserId sender;
  friend bool operator==(const Notify&, const Notify&) = default;
};

// ---- The variant -------------------------------------------------------------------------------

using Message = std::variant<
    SendMessage, GetMessages, SyncRequest, JoinGroup, LeaveGroup, Receipt, Typing, PresenceQuery,
    SendAck, Deliver, MessagesResult, SyncResult, GroupResult, ReceiptUpdate, TypingUpdate,
    PresenceUpdate, PresenceResult, ErrorReply, SessionClosed, StoreAppend, StoreAppendResult,
    StoreAppendBatch, StoreAppendBatchResult, StoreRead, StoreReadResult, StoreSync,
    StoreSyncResult, StoreMembership, StoreMembershipResult, StoreMembers, StoreMembersResult,
    StoreReceipt, StoreReceiptResult, WriterEnqueue, WriterEnqueueResult, WriterCommitted,
    MapRegister, MapUnregister, MapLookup, MapLookupResult, MapDisplaced, ForwardBatch,
    ForwardResult, QueuePublish, QueueDeliver, QueueAck, QueueSubscribe, PresenceSet, PresenceTouch,
    PresenceLookup, PresenceLookupResult, PresencePush, Notify, StoreCheckMember,
    StoreCheckMemberResult, GetReceipts, ReceiptsResult, StoreGetReceipts, StoreGetReceiptsResult,
    GroupModeUpdate, MapRefresh, PresenceRefresh>;

// The message's name as in docs/protocol.md ("SendMessage").
const char* MessageName(const Message& m);

// For a transport that re-sends a message after a delivery it could not confirm (the first copy
// may have arrived): marks a request that carries an attempt count (StoreAppend) as a possible
// repeat, attempt >= 1, so the store looks it up beyond its window (config.store_dedup_lookup).
// Leaves every other message as it is. Returns whether it marked msg.
bool MarkRedelivered(Message& msg);

}  // namespace chatlab

#endif  // CHATLAB_CORE_MESSAGES_H_
