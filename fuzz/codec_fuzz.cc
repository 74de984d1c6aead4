// Fuzzes the binary codec's decoder (core/codec.h), the bytes a process accepts from another
// process on POST /node.
//
// Asserts, for any input:
//   - Decode returns a Message or an error Status; it never crashes, reads out of bounds or
//     overflows (AddressSanitizer and UndefinedBehaviorSanitizer watch every byte it touches);
//   - a decoded message re-encodes to exactly EncodedSize bytes, no more than the input (the
//     encoder writes minimal varints; the decoder also accepts longer ones), and decodes back to
//     an equal message (the round trip);
//   - DebugString, which traces print for any decoded message, works on it.
// A broken property aborts, which libFuzzer reports as a crash with the input that caused it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/codec.h"

namespace {

// Prints what broke and aborts: the fuzzer saves the input as a crash.
void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "codec_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<chatlab::Message> decoded = chatlab::Decode(bytes);
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) Fail("error without a message", "");
    return 0;
  }
  const std::string debug = chatlab::DebugString(*decoded);
  const std::string encoded = chatlab::Encode(*decoded);
  if (encoded.size() != chatlab::EncodedSize(*decoded)) Fail("EncodedSize is off", debug);
  if (encoded.size() > size) Fail("re-encoding is longer than the input", debug);
  const absl::StatusOr<chatlab::Message> again = chatlab::Decode(encoded);
  if (!again.ok()) Fail("re-encoded message does not decode", again.status().ToString());
  if (!(*again == *decoded)) {
    Fail("round trip changed the message", debug + " -> " + chatlab::DebugString(*again));
  }
  return 0;
}
