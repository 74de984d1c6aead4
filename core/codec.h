// The binary wire encoding of ChatLab messages, and a one-line text form for traces.
//
// A frame is one Message:
//   byte 0        kWireVersion
//   varint        the wire type number (core/fields.h, kWireType<T>)
//   fields        in VisitFields order, each encoded by its C++ type:
//     uint64_t/uint32_t, Id<>     LEB128 varint (at most 10 bytes; uint32 fields must fit)
//     TimeUs (int64_t)            zigzag, then LEB128 varint
//     bool                        one byte, 0 or 1
//     ChannelType, ReceiptKind,
//     GroupMode, Code             one byte, one of the enum's known values
//     std::string                 varint byte length, then the bytes
//     std::vector<T>              varint item count, then the items
//     nested struct               its own fields, in its VisitFields order (no header)
// The frame ends exactly after the last field. Framing (how a transport delimits frames) is the
// transport's business: a WebSocket message or a length prefix carries exactly one frame.
// docs/protocol.md is the full specification.
//
// Decode treats its input as hostile: it never crashes, never reads out of bounds, never
// allocates more than the input size justifies, and reports the most specific status with a
// message naming the message type and field path ("truncated: SendMessage.body: ...").
#ifndef CHATLAB_CORE_CODEC_H_
#define CHATLAB_CORE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/messages.h"

namespace chatlab {

// The version byte every frame starts with. Bump it whenever a field is added, removed or
// reordered, or a type number changes meaning. A message added under a number never assigned
// before leaves it as it is: every existing frame keeps its bytes and its meaning, and a node of
// the previous build refuses the new type as unknown (InvalidArgument), which is the refusal it
// would get anyway (GetReceipts and its replies, types 9, 31, 56, 57, came that way).
inline constexpr uint8_t kWireVersion = 3;

// The longest LEB128 varint the decoder accepts (enough for 64 bits).
inline constexpr size_t kVarintBytesMax = 10;

// Decode-side limits. Input over a limit is refused with ResourceExhausted before anything is
// allocated for it.
struct CodecLimits {
  uint32_t frame_bytes_max = 1 << 20;   // whole frame, version byte included
  uint32_t string_bytes_max = 1 << 20;  // any one string field
  uint32_t list_items_max = 1 << 20;    // any one vector field
};

// Encodes m as one frame. Never fails: every in-memory Message is encodable.
std::string Encode(const Message& m);

// Appends the frame of m to out (for reusing one buffer across many messages).
void EncodeTo(const Message& m, std::string& out);

// The exact size of Encode(m) in bytes, computed without encoding.
size_t EncodedSize(const Message& m);

// Decodes exactly one frame. Errors (the status message names the message type and field):
//   OutOfRange         empty input, or the input ends before the message does ("truncated: ...")
//   ResourceExhausted  the frame, a string or a list is over its limit in `limits`
//   Unimplemented      the version byte is not kWireVersion
//   InvalidArgument    unknown type number, bool not 0/1, unknown enum value, varint over 10
//                      bytes or over the field's width, invalid ConversationId, or bytes left
//                      over after the last field
absl::StatusOr<Message> Decode(std::string_view bytes, const CodecLimits& limits = {});

// A deterministic one-line form for traces and test failures, e.g.
//   SendMessage{client_msg_id=7 conv=d1-2 sent_at_us=1000 body="hello"}
// Ids print with their prefix (u7, g3, n2), conversations as d<low>-<high> or g<id>, enums by
// name, lists as [a b], nested structs as {...}. Strings are C-escaped and cut to 40 bytes
// (then followed by "...").
std::string DebugString(const Message& m);

}  // namespace chatlab

#endif  // CHATLAB_CORE_CODEC_H_
