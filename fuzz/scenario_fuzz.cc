// Fuzzes the scenario loader (sim/scenario.h): ParseScenario on arbitrary text, then Validate
// on what it accepts. Scenario files and `chatlab sweep` axes are written by people, so a typo
// must come back as an error naming the line, never as a crash.
//
// Asserts, for any input:
//   - ParseScenario returns a Scenario or an InvalidArgument Status naming the file; no
//     exception of toml++ escapes it (one would reach std::terminate, which the fuzzer reports);
//   - Validate returns a Status for whatever ParseScenario accepted, without undefined
//     behaviour (UndefinedBehaviorSanitizer aborts on, for example, a signed overflow).
// The target compiles sim/scenario.cc itself with toml++ header-only (fuzz/scenario_loader.cc),
// so the TOML parser is instrumented too and its branches guide the fuzzer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "sim/scenario.h"

namespace {

constexpr char kPath[] = "fuzz.toml";

// Prints what broke and aborts: the fuzzer saves the input as a crash.
void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "scenario_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<chatlab::sim::Scenario> scenario = chatlab::sim::ParseScenario(text, kPath);
  if (!scenario.ok()) {
    if (scenario.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("parse error is not InvalidArgument", scenario.status().ToString());
    }
    if (scenario.status().message().find(kPath) == std::string::npos) {
      Fail("parse error does not name the file", scenario.status().ToString());
    }
    return 0;
  }
  if (scenario->path != kPath) Fail("scenario does not remember its file", scenario->path);
  const absl::Status valid = chatlab::sim::Validate(*scenario);
  if (!valid.ok() && valid.code() != absl::StatusCode::kInvalidArgument) {
    Fail("validation error is not InvalidArgument", valid.ToString());
  }
  return 0;
}
