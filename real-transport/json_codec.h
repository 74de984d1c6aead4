// The JSON form of ChatLab messages, for clients (browsers) on the WebSocket and the HTTP API.
//
// Driven by the one field list of each message (core/fields.h, VisitFields): there is no second
// list of fields here. A message is a JSON object with "type" (its name, as in docs/protocol.md)
// and its fields by name:
//   uint64_t, Id<> and TimeUs   decimal strings ("17"): Snowflake ids exceed 2^53, the largest
//                               integer a JavaScript number holds exactly; numbers are accepted
//   uint32_t                    number
//   bool                        true / false
//   enums                       names: "direct"/"group", "delivered"/"read", "none"/"push"/"pull",
//                               "OK", "INVALID_ARGUMENT", ... (CodeName)
//   std::string                 string
//   std::vector<T>, structs     arrays, objects
// On decode a missing field keeps its default and an unknown field is an error; every
// ConversationId must be valid (as in the binary codec), so one cannot be left out either.
// docs/chatd.md has examples.
#ifndef CHATLAB_REAL_TRANSPORT_JSON_CODEC_H_
#define CHATLAB_REAL_TRANSPORT_JSON_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/messages.h"

namespace chatlab::real {

struct JsonLimits {
  uint32_t frame_bytes_max = 256 * 1024;  // the whole text; ResourceExhausted above it
  uint32_t depth_max = 16;                // nesting of objects and arrays; InvalidArgument above
};

// The JSON text of m (one line), appended to out: chatd encodes into a buffer it reuses.
void AppendJson(std::string& out, const Message& m);
// The JSON text of m (one line).
std::string ToJson(const Message& m);

// Decodes one JSON message. Errors name the problem and the field path:
//   ResourceExhausted  text longer than limits.frame_bytes_max
//   InvalidArgument    not JSON, nesting over depth_max, not an object, missing or unknown
//                      "type", a field of the wrong type or out of range, an unknown field,
//                      an invalid conversation id
absl::StatusOr<Message> FromJson(std::string_view text, const JsonLimits& limits = {});

// Decodes the JSON object `text` as message type `type_name` (the object needs no "type"; if
// it has one it must match). For the HTTP API, where the URL names the type.
absl::StatusOr<Message> FromJsonAs(std::string_view type_name, std::string_view text,
                                   const JsonLimits& limits = {});

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_JSON_CODEC_H_
