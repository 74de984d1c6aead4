// Field lists and wire type numbers of every ChatLab message: the one place the wire layout lives.
//
// For each struct in core/messages.h (and each value type nested in one) there is exactly one
// VisitFields overload that names every field once, in declaration order, which is also the wire
// order. The codec (core/codec.h), DebugString and the tests are all driven by these lists, so a
// field added to a struct but not here is neither encoded nor printed: keep the two in step,
// append new fields at the end and bump kWireVersion.
//
//   template <typename V> void Example(const SendMessage& m, V&& v) {
//     VisitFields(m, [&](const char* name, const auto& field) { ... });
//   }
//
// Each overload accepts both `T&` and `const T&`, so one list serves encoders (const) and decoders
// (mutable). The visitor is called as v(name, field) with a string literal name.
//
// The second half is the compile-time type-number table (kWireType<T>, kWireName<T>): the stable
// uint16 number each Message alternative carries on the wire. The ranges are:
//     1..19   client -> chat server
//    20..39   chat server -> client
//    40..79   chat server <-> services (store 40..59, batch writer 60..69, user mapping 70..79)
//    80..119  forwarding (80..89), queue broker (90..99), presence (100..109), notification
//             (110..119)
// A number is never reused for a different message, even after the message is retired.
#ifndef CHATLAB_CORE_FIELDS_H_
#define CHATLAB_CORE_FIELDS_H_

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/messages.h"
#include "core/types.h"

namespace chatlab {

// True when S is T or const T: lets one VisitFields overload serve both constnesses.
template <typename S, typename T>
concept FieldsOf = std::same_as<std::remove_const_t<S>, T>;

// ---- Nested value types ------------------------------------------------------------------------

template <FieldsOf<ConversationId> S, typename V>
void VisitFields(S& m, V&& v) {
  v("type", m.type);
  v("low", m.low);
  v("high", m.high);
}

template <FieldsOf<ChatMessage> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("message_id", m.message_id);
  v("prev_msg_id", m.prev_msg_id);
  v("sender", m.sender);
  v("client_msg_id", m.client_msg_id);
  v("sent_at_us", m.sent_at_us);
  v("body", m.body);
}

template <FieldsOf<PresenceStatus> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("online", m.online);
  v("last_seen_us", m.last_seen_us);
  v("pushed", m.pushed);
}

template <FieldsOf<AppendOutcome> S, typename V>
void VisitFields(S& m, V&& v) {
  v("code", m.code);
  v("message", m.message);
  v("duplicate", m.duplicate);
  v("recipients", m.recipients);
  v("group_mode", m.group_mode);
  v("mode_switched", m.mode_switched);
}

template <FieldsOf<ConversationHead> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("head_id", m.head_id);
  v("group_mode", m.group_mode);
}

template <FieldsOf<MemberReceipts> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("delivered_up_to", m.delivered_up_to);
  v("read_up_to", m.read_up_to);
}

template <FieldsOf<UserLocation> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("server", m.server);
}

template <FieldsOf<CommittedItem> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("outcome", m.outcome);
}

template <typename T>
struct IsRoutedType : std::false_type {};
template <typename T>
struct IsRoutedType<Routed<T>> : std::true_type {};

// S is Routed<T> or const Routed<T> for some payload T.
template <typename S>
concept RoutedFields = IsRoutedType<std::remove_const_t<S>>::value;

template <RoutedFields S, typename V>
void VisitFields(S& m, V&& v) {
  v("recipients", m.recipients);
  v("payload", m.payload);
}

// ---- Client -> chat server ---------------------------------------------------------------------

template <FieldsOf<SendMessage> S, typename V>
void VisitFields(S& m, V&& v) {
  v("client_msg_id", m.client_msg_id);
  v("conv", m.conv);
  v("sent_at_us", m.sent_at_us);
  v("body", m.body);
  v("attempt", m.attempt);
}

template <FieldsOf<GetMessages> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("conv", m.conv);
  v("after_id", m.after_id);
  v("limit", m.limit);
}

template <FieldsOf<SyncRequest> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
}

template <FieldsOf<JoinGroup> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("group", m.group);
}

template <FieldsOf<LeaveGroup> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("group", m.group);
}

template <FieldsOf<Receipt> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("kind", m.kind);
  v("up_to", m.up_to);
}

template <FieldsOf<Typing> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("active", m.active);
}

template <FieldsOf<GroupModeUpdate> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("mode", m.mode);
  v("head_id", m.head_id);
}

template <FieldsOf<PresenceQuery> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("users", m.users);
}

template <FieldsOf<GetReceipts> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("conv", m.conv);
  v("after_user", m.after_user);
  v("limit", m.limit);
}

// ---- Chat server -> client ---------------------------------------------------------------------

template <FieldsOf<SendAck> S, typename V>
void VisitFields(S& m, V&& v) {
  v("client_msg_id", m.client_msg_id);
  v("conv", m.conv);
  v("code", m.code);
  v("message_id", m.message_id);
  v("prev_msg_id", m.prev_msg_id);
  v("duplicate", m.duplicate);
  v("queued", m.queued);
}

template <FieldsOf<Deliver> S, typename V>
void VisitFields(S& m, V&& v) {
  v("message", m.message);
}

template <FieldsOf<MessagesResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("conv", m.conv);
  v("messages", m.messages);
  v("has_more", m.has_more);
  v("group_mode", m.group_mode);
}

template <FieldsOf<SyncResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("heads", m.heads);
}

template <FieldsOf<GroupResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("group", m.group);
  v("joined", m.joined);
  v("group_mode", m.group_mode);
}

template <FieldsOf<ReceiptUpdate> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("kind", m.kind);
  v("reader", m.reader);
  v("up_to", m.up_to);
}

template <FieldsOf<TypingUpdate> S, typename V>
void VisitFields(S& m, V&& v) {
  v("conv", m.conv);
  v("user", m.user);
  v("active", m.active);
}

template <FieldsOf<PresenceUpdate> S, typename V>
void VisitFields(S& m, V&& v) {
  v("status", m.status);
}

template <FieldsOf<PresenceResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("statuses", m.statuses);
}

template <FieldsOf<ReceiptsResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("conv", m.conv);
  v("members", m.members);
  v("has_more", m.has_more);
}

template <FieldsOf<ErrorReply> S, typename V>
void VisitFields(S& m, V&& v) {
  v("code", m.code);
  v("detail", m.detail);
}

template <FieldsOf<SessionClosed> S, typename V>
void VisitFields(S& m, V&& v) {
  v("code", m.code);
  v("detail", m.detail);
}

// ---- Chat server <-> message store -------------------------------------------------------------

template <FieldsOf<StoreAppend> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("message", m.message);
  v("attempt", m.attempt);
}

template <FieldsOf<StoreAppendResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("outcome", m.outcome);
}

template <FieldsOf<StoreAppendBatch> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("messages", m.messages);
}

template <FieldsOf<StoreAppendBatchResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("outcomes", m.outcomes);
}

template <FieldsOf<StoreRead> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("reader", m.reader);
  v("conv", m.conv);
  v("after_id", m.after_id);
  v("limit", m.limit);
}

template <FieldsOf<StoreReadResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("conv", m.conv);
  v("messages", m.messages);
  v("has_more", m.has_more);
  v("group_mode", m.group_mode);
}

template <FieldsOf<StoreSync> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("user", m.user);
}

template <FieldsOf<StoreSyncResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("heads", m.heads);
}

template <FieldsOf<StoreMembership> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("user", m.user);
  v("group", m.group);
  v("join", m.join);
}

template <FieldsOf<StoreMembershipResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("group", m.group);
  v("joined", m.joined);
  v("group_mode", m.group_mode);
}

template <FieldsOf<StoreMembers> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("group", m.group);
}

template <FieldsOf<StoreMembersResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("group", m.group);
  v("members", m.members);
}

template <FieldsOf<StoreCheckMember> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("user", m.user);
  v("group", m.group);
  v("client_msg_id", m.client_msg_id);
}

template <FieldsOf<StoreCheckMemberResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
}

template <FieldsOf<StoreReceipt> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("conv", m.conv);
  v("reader", m.reader);
  v("kind", m.kind);
  v("up_to", m.up_to);
}

template <FieldsOf<StoreReceiptResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("update", m.update);
  v("recipients", m.recipients);
}

template <FieldsOf<StoreGetReceipts> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("user", m.user);
  v("conv", m.conv);
  v("after_user", m.after_user);
  v("limit", m.limit);
}

template <FieldsOf<StoreGetReceiptsResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
  v("conv", m.conv);
  v("members", m.members);
  v("has_more", m.has_more);
}

// ---- Chat server <-> batch writer --------------------------------------------------------------

template <FieldsOf<WriterEnqueue> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("message", m.message);
}

template <FieldsOf<WriterEnqueueResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
}

template <FieldsOf<WriterCommitted> S, typename V>
void VisitFields(S& m, V&& v) {
  v("items", m.items);
}

// ---- Chat server <-> user mapping --------------------------------------------------------------

template <FieldsOf<MapRegister> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
}

template <FieldsOf<MapUnregister> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
}

template <FieldsOf<MapLookup> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("users", m.users);
}

template <FieldsOf<MapLookupResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("locations", m.locations);
}

template <FieldsOf<MapDisplaced> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("new_server", m.new_server);
}

template <FieldsOf<MapRefresh> S, typename V>
void VisitFields(S& m, V&& v) {
  v("users", m.users);
}

// ---- Forwarding and queue broker ---------------------------------------------------------------

template <FieldsOf<ForwardBatch> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("messages", m.messages);
  v("receipts", m.receipts);
  v("typing", m.typing);
  v("modes", m.modes);
}

template <FieldsOf<ForwardResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("code", m.code);
}

template <FieldsOf<QueuePublish> S, typename V>
void VisitFields(S& m, V&& v) {
  v("dest", m.dest);
  v("batch", m.batch);
}

template <FieldsOf<QueueDeliver> S, typename V>
void VisitFields(S& m, V&& v) {
  v("seq", m.seq);
  v("enqueued_at_us", m.enqueued_at_us);
  v("batch", m.batch);
}

template <FieldsOf<QueueAck> S, typename V>
void VisitFields(S& m, V&& v) {
  v("seq", m.seq);
}

template <FieldsOf<QueueSubscribe> S, typename V>
void VisitFields(S& m, V&& v) {
  v("incarnation", m.incarnation);
}

// ---- Presence and notification -----------------------------------------------------------------

template <FieldsOf<PresenceSet> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("online", m.online);
}

template <FieldsOf<PresenceTouch> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("peer", m.peer);
}

template <FieldsOf<PresenceLookup> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("users", m.users);
  v("viewer", m.viewer);
}

template <FieldsOf<PresenceLookupResult> S, typename V>
void VisitFields(S& m, V&& v) {
  v("request_id", m.request_id);
  v("statuses", m.statuses);
}

template <FieldsOf<PresencePush> S, typename V>
void VisitFields(S& m, V&& v) {
  v("recipients", m.recipients);
  v("status", m.status);
}

template <FieldsOf<PresenceRefresh> S, typename V>
void VisitFields(S& m, V&& v) {
  v("users", m.users);
}

template <FieldsOf<Notify> S, typename V>
void VisitFields(S& m, V&& v) {
  v("user", m.user);
  v("conv", m.conv);
  v("message_id", m.message_id);
  v("sender", m.sender);
}

// ---- Field classification ----------------------------------------------------------------------

// A visitor that does nothing; only used to ask whether VisitFields(T&) exists.
struct NullFieldVisitor {
  template <typename F>
  void operator()(const char* /*name*/, F& /*field*/) const {}
};

// T is a struct with a field list above (a message or a nested value type).
template <typename T>
concept HasFields = requires(T& t) {
  VisitFields(t, NullFieldVisitor{});
};

template <typename T>
struct IsIdType : std::false_type {};
template <typename Tag>
struct IsIdType<Id<Tag>> : std::true_type {};
// T is one of the strongly typed ids (UserId, GroupId, NodeId, SessionId).
template <typename T>
concept IdType = IsIdType<T>::value;

template <typename T>
struct IsVectorType : std::false_type {};
template <typename T>
struct IsVectorType<std::vector<T>> : std::true_type {};
template <typename T>
concept VectorType = IsVectorType<T>::value;

// The wire enums and their known values. A decoder rejects any other value, so code handling a
// decoded message may switch over these exhaustively.
constexpr bool IsKnownEnumValue(ChannelType v) {
  return v == ChannelType::kDirect || v == ChannelType::kGroup;
}
constexpr bool IsKnownEnumValue(ReceiptKind v) {
  return v == ReceiptKind::kDelivered || v == ReceiptKind::kRead;
}
constexpr bool IsKnownEnumValue(GroupMode v) {
  return v == GroupMode::kNone || v == GroupMode::kPush || v == GroupMode::kPull;
}
constexpr bool IsKnownEnumValue(Code v) {
  return static_cast<uint8_t>(v) <= static_cast<uint8_t>(Code::kUnauthenticated);
}

// T is an enum the codec carries as one validated byte.
template <typename T>
concept WireEnum = std::is_enum_v<T> && sizeof(T) == 1 && requires(T t) {
  { IsKnownEnumValue(t) } -> std::same_as<bool>;
};

// ---- Wire type numbers -------------------------------------------------------------------------

// Numbers above this are never assigned; a decoder rejects them as unknown.
inline constexpr uint16_t kWireTypeMax = 119;

// kWireType<T>: T's wire type number; kWireName<T>: T's name as in docs/protocol.md.
// 0 / nullptr for types that are not messages.
template <typename T>
inline constexpr uint16_t kWireType = 0;
template <typename T>
inline constexpr const char* kWireName = nullptr;

#define CHATLAB_WIRE_TYPE(T, number)                 \
  template <>                                        \
  inline constexpr uint16_t kWireType<T> = (number); \
  template <>                                        \
  inline constexpr const char* kWireName<T> = #T

// Client -> chat server: 1..19.
CHATLAB_WIRE_TYPE(SendMessage, 1);
CHATLAB_WIRE_TYPE(GetMessages, 2);
CHATLAB_WIRE_TYPE(SyncRequest, 3);
CHATLAB_WIRE_TYPE(JoinGroup, 4);
CHATLAB_WIRE_TYPE(LeaveGroup, 5);
CHATLAB_WIRE_TYPE(Receipt, 6);
CHATLAB_WIRE_TYPE(Typing, 7);
CHATLAB_WIRE_TYPE(PresenceQuery, 8);
CHATLAB_WIRE_TYPE(GetReceipts, 9);
// Chat server -> client: 20..39.
CHATLAB_WIRE_TYPE(SendAck, 20);
CHATLAB_WIRE_TYPE(Deliver, 21);
CHATLAB_WIRE_TYPE(MessagesResult, 22);
CHATLAB_WIRE_TYPE(SyncResult, 23);
CHATLAB_WIRE_TYPE(GroupResult, 24);
CHATLAB_WIRE_TYPE(ReceiptUpdate, 25);
CHATLAB_WIRE_TYPE(TypingUpdate, 26);
CHATLAB_WIRE_TYPE(PresenceUpdate, 27);
CHATLAB_WIRE_TYPE(PresenceResult, 28);
CHATLAB_WIRE_TYPE(ErrorReply, 29);
CHATLAB_WIRE_TYPE(SessionClosed, 30);
CHATLAB_WIRE_TYPE(ReceiptsResult, 31);
CHATLAB_WIRE_TYPE(GroupModeUpdate, 32);
// Chat server <-> message store: 40..59.
CHATLAB_WIRE_TYPE(StoreAppend, 40);
CHATLAB_WIRE_TYPE(StoreAppendResult, 41);
CHATLAB_WIRE_TYPE(StoreAppendBatch, 42);
CHATLAB_WIRE_TYPE(StoreAppendBatchResult, 43);
CHATLAB_WIRE_TYPE(StoreRead, 44);
CHATLAB_WIRE_TYPE(StoreReadResult, 45);
CHATLAB_WIRE_TYPE(StoreSync, 46);
CHATLAB_WIRE_TYPE(StoreSyncResult, 47);
CHATLAB_WIRE_TYPE(StoreMembership, 48);
CHATLAB_WIRE_TYPE(StoreMembershipResult, 49);
CHATLAB_WIRE_TYPE(StoreMembers, 50);
CHATLAB_WIRE_TYPE(StoreMembersResult, 51);
CHATLAB_WIRE_TYPE(StoreReceipt, 52);
CHATLAB_WIRE_TYPE(StoreReceiptResult, 53);
CHATLAB_WIRE_TYPE(StoreCheckMember, 54);
CHATLAB_WIRE_TYPE(StoreCheckMemberResult, 55);
CHATLAB_WIRE_TYPE(StoreGetReceipts, 56);
CHATLAB_WIRE_TYPE(StoreGetReceiptsResult, 57);
// Chat server <-> batch writer: 60..69.
CHATLAB_WIRE_TYPE(WriterEnqueue, 60);
CHATLAB_WIRE_TYPE(WriterEnqueueResult, 61);
CHATLAB_WIRE_TYPE(WriterCommitted, 62);
// Chat server <-> user mapping: 70..79.
CHATLAB_WIRE_TYPE(MapRegister, 70);
CHATLAB_WIRE_TYPE(MapUnregister, 71);
CHATLAB_WIRE_TYPE(MapLookup, 72);
CHATLAB_WIRE_TYPE(MapLookupResult, 73);
CHATLAB_WIRE_TYPE(MapDisplaced, 74);
CHATLAB_WIRE_TYPE(MapRefresh, 75);
// Server <-> server forwarding: 80..89.
CHATLAB_WIRE_TYPE(ForwardBatch, 80);
CHATLAB_WIRE_TYPE(ForwardResult, 81);
// Queue broker: 90..99.
CHATLAB_WIRE_TYPE(QueuePublish, 90);
CHATLAB_WIRE_TYPE(QueueDeliver, 91);
CHATLAB_WIRE_TYPE(QueueAck, 92);
CHATLAB_WIRE_TYPE(QueueSubscribe, 93);
// Presence service: 100..109.
CHATLAB_WIRE_TYPE(PresenceSet, 100);
CHATLAB_WIRE_TYPE(PresenceTouch, 101);
CHATLAB_WIRE_TYPE(PresenceLookup, 102);
CHATLAB_WIRE_TYPE(PresenceLookupResult, 103);
CHATLAB_WIRE_TYPE(PresencePush, 104);
CHATLAB_WIRE_TYPE(PresenceRefresh, 105);
// Notification service: 110..119.
CHATLAB_WIRE_TYPE(Notify, 110);

#undef CHATLAB_WIRE_TYPE

inline constexpr size_t kMessageAlternatives = std::variant_size_v<Message>;

// The wire type number of the variant alternative at `index`, by variant order.
template <size_t... I>
constexpr std::array<uint16_t, sizeof...(I)> WireTypesByIndex(std::index_sequence<I...>) {
  return {kWireType<std::variant_alternative_t<I, Message>>...};
}
inline constexpr std::array<uint16_t, kMessageAlternatives> kWireTypeByIndex =
    WireTypesByIndex(std::make_index_sequence<kMessageAlternatives>{});

// The name of the variant alternative at `index`, by variant order.
template <size_t... I>
constexpr std::array<const char*, sizeof...(I)> WireNamesByIndex(std::index_sequence<I...>) {
  return {kWireName<std::variant_alternative_t<I, Message>>...};
}
inline constexpr std::array<const char*, kMessageAlternatives> kWireNameByIndex =
    WireNamesByIndex(std::make_index_sequence<kMessageAlternatives>{});

// Sentinel in kIndexByWireType for numbers that name no message.
inline constexpr uint8_t kNoAlternative = 0xff;
static_assert(kMessageAlternatives < kNoAlternative);

// The inverse table: wire type number -> variant index, kNoAlternative where unassigned.
constexpr std::array<uint8_t, kWireTypeMax + 1> IndexByWireType() {
  std::array<uint8_t, kWireTypeMax + 1> table{};
  for (auto& entry : table) entry = kNoAlternative;
  for (size_t i = 0; i < kMessageAlternatives; ++i) {
    table[kWireTypeByIndex[i]] = static_cast<uint8_t>(i);
  }
  return table;
}
inline constexpr std::array<uint8_t, kWireTypeMax + 1> kIndexByWireType = IndexByWireType();

constexpr bool EveryAlternativeHasANumber() {
  for (size_t i = 0; i < kMessageAlternatives; ++i) {
    if (kWireTypeByIndex[i] == 0 || kWireTypeByIndex[i] > kWireTypeMax) return false;
    if (kWireNameByIndex[i] == nullptr) return false;
  }
  return true;
}
constexpr bool WireTypesAreUnique() {
  for (size_t i = 0; i < kMessageAlternatives; ++i) {
    for (size_t j = i + 1; j < kMessageAlternatives; ++j) {
      if (kWireTypeByIndex[i] == kWireTypeByIndex[j]) return false;
    }
  }
  return true;
}
template <size_t... I>
constexpr bool EveryAlternativeHasFields(std::index_sequence<I...>) {
  return (HasFields<std::variant_alternative_t<I, Message>> && ...);
}
static_assert(EveryAlternativeHasANumber(), "a Message alternative lacks CHATLAB_WIRE_TYPE");
static_assert(WireTypesAreUnique(), "two Message alternatives share a wire type number");
static_assert(EveryAlternativeHasFields(std::make_index_sequence<kMessageAlternatives>{}),
              "a Message alternative lacks a VisitFields overload");

// The wire type number of a message value.
inline uint16_t WireTypeOf(const Message& m) { return kWireTypeByIndex[m.index()]; }

}  // namespace chatlab

#endif  // CHATLAB_CORE_FIELDS_H_
