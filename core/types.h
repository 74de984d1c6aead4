// Identifiers and value types shared by every ChatLab state machine.
//
// Everything here is a plain value: no I/O, no clocks. Time is always an argument, measured in
// microseconds on the clock of the node that receives it (TimeUs).
#ifndef CHATLAB_CORE_TYPES_H_
#define CHATLAB_CORE_TYPES_H_

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace chatlab {

// Microseconds on some node's clock. Signed so that differences are safe.
using TimeUs = int64_t;
inline constexpr TimeUs kUsPerMs = 1000;
inline constexpr TimeUs kUsPerSecond = 1000 * 1000;

// A strongly typed 64-bit identifier. Tag keeps a UserId from being passed as a GroupId.
template <typename Tag>
struct Id {
  uint64_t value = 0;

  constexpr Id() = default;
  constexpr explicit Id(uint64_t v) : value(v) {}
  constexpr bool valid() const { return value != 0; }
  friend constexpr auto operator<=>(const Id&, const Id&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Id& id) {
    return H::combine(std::move(h), id.value);
  }
};

struct UserTag { static constexpr const char* kPrefix = "u"; };
struct GroupTag { static constexpr const char* kPrefix = "g"; };
struct NodeTag { static constexpr const char* kPrefix = "n"; };
struct SessionTag { static constexpr const char* kPrefix = "s"; };

// A person. 0 is "no user".
using UserId = Id<UserTag>;
// A group chat. 0 is "no group".
using GroupId = Id<GroupTag>;
// A server or service process (chat server, store, mapping, ...). 0 is "no node".
using NodeId = Id<NodeTag>;
// One client connection (a device's WebSocket) to one chat server. Chosen by the environment,
// unique for the lifetime of the environment.
using SessionId = Id<SessionTag>;

// Client message id: chosen by the sending client, unique per sender. (sender, client_msg_id)
// identifies a message end to end and is the de-duplication key.
using ClientMsgId = uint64_t;
// Server message id: the per-conversation sort key assigned by the conversation's sequencer (the
// message store). Not globally unique: its scope is the conversation. 0 means "none".
using MessageId = uint64_t;
inline constexpr MessageId kNoMessage = 0;

enum class ChannelType : uint8_t { kDirect = 1, kGroup = 2 };

// A conversation: a 1:1 chat keyed by the ordered user pair (low, high), or a group by its id.
// Invariant for kDirect: 0 < low <= high (a user may message themself). For kGroup: high == 0 and
// low is the group id.
struct ConversationId {
  ChannelType type = ChannelType::kDirect;
  uint64_t low = 0;
  uint64_t high = 0;

  static ConversationId Direct(UserId a, UserId b) {
    return a.value <= b.value ? ConversationId{ChannelType::kDirect, a.value, b.value}
                              : ConversationId{ChannelType::kDirect, b.value, a.value};
  }
  static ConversationId Group(GroupId g) { return ConversationId{ChannelType::kGroup, g.value, 0}; }

  bool is_group() const { return type == ChannelType::kGroup; }
  GroupId group() const { return is_group() ? GroupId(low) : GroupId(); }
  // True when `u` is one of the two parties of a direct conversation.
  bool HasParty(UserId u) const { return !is_group() && (u.value == low || u.value == high); }
  // The other party of a direct conversation, seen from `u`. REQUIRES: HasParty(u).
  UserId Peer(UserId u) const { return UserId(u.value == low ? high : low); }
  bool Valid() const {
    return is_group() ? (low != 0 && high == 0) : (low != 0 && low <= high);
  }

  friend auto operator<=>(const ConversationId&, const ConversationId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ConversationId& c) {
    return H::combine(std::move(h), c.type, c.low, c.high);
  }
};

// Human-readable forms for logs, traces and error messages: "u7", "g3", "n2", "s9", "d1-2".
// (Abseil 2022's StrCat predates AbslStringify, so ids are formatted through these.)
template <typename Tag>
std::string ToString(const Id<Tag>& id) {
  return absl::StrCat(Tag::kPrefix, id.value);
}
inline std::string ToString(const ConversationId& c) {
  return c.is_group() ? absl::StrCat("g", c.low) : absl::StrCat("d", c.low, "-", c.high);
}

// A stored chat message as every party sees it once the sequencer has ordered it.
struct ChatMessage {
  ConversationId conv;
  MessageId message_id = kNoMessage;
  // The id of the message just before this one in the conversation (kNoMessage for the first).
  // Receivers use it to detect gaps.
  MessageId prev_msg_id = kNoMessage;
  UserId sender;
  ClientMsgId client_msg_id = 0;
  // When the sender's client created the message, on the sender's clock. Informational.
  TimeUs sent_at_us = 0;
  std::string body;

  friend bool operator==(const ChatMessage&, const ChatMessage&) = default;
};

// Receipts are watermarks: "delivered/read everything up to and including up_to".
enum class ReceiptKind : uint8_t { kDelivered = 1, kRead = 2 };

// How a group's new messages reach its members (see docs/architecture.md).
enum class GroupMode : uint8_t { kNone = 0, kPush = 1, kPull = 2 };

// One user's presence as the presence service knows it.
struct PresenceStatus {
  UserId user;
  bool online = false;
  // Last time the user was seen online, on the presence service's clock; 0 if never.
  TimeUs last_seen_us = 0;
  // Whether `user`'s changes are pushed to the viewer this status is for (the viewer is in the
  // user's audience: every tracked contact with PresenceFanout::kAll, the short list with
  // kShortList). A viewer polls exactly the contacts whose last status says false.
  bool pushed = false;

  friend bool operator==(const PresenceStatus&, const PresenceStatus&) = default;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_TYPES_H_
