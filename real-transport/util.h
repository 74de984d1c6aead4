// Small pieces shared by chatd, chatcli and chatload: the wall clock, host:port parsing,
// structured log lines and a latency histogram.
#ifndef CHATLAB_REAL_TRANSPORT_UTIL_H_
#define CHATLAB_REAL_TRANSPORT_UTIL_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/types.h"

namespace chatlab::real {

// The system clock in microseconds since the Unix epoch: the `now` every core call gets.
inline TimeUs NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:7000" -> {127.0.0.1, 7000}. InvalidArgument naming the text otherwise.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

// A 127.0.0.1 TCP port free now, for a process about to be started on it. Drawn at random from
// [10000, the kernel's ephemeral range) (/proc/sys/net/ipv4/ip_local_port_range): every connect()
// and bind(port 0) takes its port from that range, so a port found free there and let go can be
// taken by any outgoing connection before the process binds it (chatd then exits at start), and
// a random draw keeps concurrent pickers apart. With no room below the range, a port the kernel
// gives (bind to 0). Unavailable when 200 draws found none free.
absl::StatusOr<uint16_t> PickFreePort();

// Takes an exclusive lock (flock) on dir/chatd.lock, created mode 0600, and returns its open
// descriptor, held for the life of the process (the kernel lets it go when the process dies,
// however it dies). FailedPrecondition naming the directory when another process holds it: two
// chatd processes on one data directory would both write its stores.
absl::StatusOr<int> LockDataDir(const std::string& dir);

// "host:/absolute/dir": who this process is to a shared resource it must own alone (the
// PostgreSQL store's lease), the same across restarts of this data directory on this host.
std::string DataDirOwner(const std::string& dir);

// Fixed-bucket latency histogram in seconds, rendered in the Prometheus text format.
class Histogram {
 public:
  static constexpr std::array<double, 15> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  void Observe(double seconds);
  // Appends "# TYPE name histogram" and the bucket, sum and count lines.
  void Render(std::string_view name, std::string_view help, std::string& out) const;

 private:
  std::array<uint64_t, kBounds.size() + 1> counts_{};  // last: +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_UTIL_H_
