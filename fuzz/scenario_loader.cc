// sim/scenario.cc as scenario_fuzz builds it: with toml++ compiled in (header-only) rather than
// from Debian's uninstrumented shared library, so that the TOML parser's own branches guide the
// fuzzer too, and with toml++'s internal asserts off, as in that release library.
//
// Why the asserts are off: toml++ 3.3.0 asserts a precondition that malformed table headers such
// as "[\n" break; its parser then reports the right error, and the release library (built with
// NDEBUG) does. With asserts on every fuzz run would stop at that third-party assert. TOML_ASSERT
// is toml++'s documented hook; with it a no-op and NDEBUG off the precondition is neither
// asserted nor assumed (under NDEBUG toml++ turns it into __builtin_assume).
#define TOML_HEADER_ONLY 1
#define TOML_ASSERT(expr) static_cast<void>(0)

#include "sim/scenario.cc"  // NOLINT(build/include): the loader itself, built with the above
