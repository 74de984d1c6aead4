// Not compiled: a fixture for the build-rule test (tests/CMakeLists.txt, BuildRules.*). It breaks
// the rule core/ and host/ live by (cmake/io_free.cmake), so the checker must refuse it.
#include <chrono>
#include <cstdint>

uint64_t NowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
