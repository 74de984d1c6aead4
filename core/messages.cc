// Names of result codes and messages, as used in traces, logs and docs/protocol.md.
#include "core/messages.h"

#include <cassert>

#include "core/fields.h"

namespace chatlab {

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

}  // namespace chatlab
