// Names of result codes and messages, as used in traces, logs and docs/protocol.md.
#include "core/messages.h"

#include <cassert>

#include "core/fields.h"

namespace chatlab {

uint64_t MessageFingerprint(const ConversationId& conv, std::string_view body) {
  constexpr uint64_t kFnvOffset = 14695981039346656037ull;
  constexpr uint64_t kFnvPrime = 1099511628211ull;
  uint64_t h = kFnvOffset;
  const auto mix = [&h](uint64_t byte) { h = (h ^ byte) * kFnvPrime; };
  const auto mix64 = [&mix](uint64_t v) {
    for (int i = 0; i < 8; ++i) mix((v >> (8 * i)) & 0xff);
  };
  mix(static_cast<uint64_t>(conv.type));
  mix64(conv.low);
  mix64(conv.high);
  mix64(body.size());
  for (const char c : body) mix(static_cast<unsigned char>(c));
  return h;
}

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  // Only reachable for a value cast from an unchecked integer; the codec never produces one.
  return "UNKNOWN_CODE";
}

const char* MessageName(const Message& m) {
  assert(m.index() < kMessageAlternatives);
  const char* name = kWireNameByIndex[m.index()];
  assert(name != nullptr);
  return name;
}

bool MarkRedelivered(Message& msg) {
  auto* append = std::get_if<StoreAppend>(&msg);
  if (append == nullptr) return false;
  if (append->attempt == 0) append->attempt = 1;
  return true;
}

}  // namespace chatlab
