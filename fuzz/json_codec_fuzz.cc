// Fuzzes the client JSON codec (real-transport/json_codec.h): every WebSocket text frame a
// client sends to chatd goes through FromJson with these limits (chatd's defaults).
//
// Asserts, for any input:
//   - FromJson returns a Message or an error Status; it never crashes, and no exception of
//     nlohmann-json escapes it (one would reach std::terminate, which the fuzzer reports);
//   - a decoded message's ToJson decodes back to an equal message (the round trip), and so
//     does its binary encoding (core/codec.h): the two codecs agree on every message a client
//     can send;
//   - FromJsonAs with the decoded message's own type name (the HTTP API's entry point) decodes
//     the same text to the same message.
// A broken property aborts, which libFuzzer reports as a crash with the input that caused it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/fields.h"
#include "real-transport/json_codec.h"

namespace {

// Prints what broke and aborts: the fuzzer saves the input as a crash.
void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "json_codec_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const chatlab::real::JsonLimits limits;
  const absl::StatusOr<chatlab::Message> decoded = chatlab::real::FromJson(text, limits);
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) Fail("error without a message", "");
    return 0;
  }
  const std::string debug = chatlab::DebugString(*decoded);

  const std::string json = chatlab::real::ToJson(*decoded);
  const absl::StatusOr<chatlab::Message> again = chatlab::real::FromJson(json, limits);
  if (!again.ok()) Fail("ToJson output does not decode", json + ": " + again.status().ToString());
  if (!(*again == *decoded)) {
    Fail("JSON round trip changed the message", debug + " -> " + chatlab::DebugString(*again));
  }

  const absl::StatusOr<chatlab::Message> binary = chatlab::Decode(chatlab::Encode(*decoded));
  if (!binary.ok()) Fail("binary encoding does not decode", binary.status().ToString());
  if (!(*binary == *decoded)) Fail("binary round trip changed the message", debug);

  const char* name = chatlab::kWireNameByIndex[decoded->index()];
  const absl::StatusOr<chatlab::Message> as = chatlab::real::FromJsonAs(name, text, limits);
  if (!as.ok()) Fail("FromJsonAs refuses what FromJson took", as.status().ToString());
  if (!(*as == *decoded)) Fail("FromJsonAs decodes differently", debug);
  return 0;
}
