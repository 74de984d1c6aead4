// Not compiled: a fixture for the build-rule test (tests/CMakeLists.txt, BuildRules.*). It breaks
// the rule core/ and host/ live by (cmake/io_free.cmake), so the checker must refuse it.
#include <thread>

void Background() {
  std::thread t([] {});
  t.detach();
}
