#include "real-transport/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chatlab::real {

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const size_t colon = text.rfind(':');
  uint32_t port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(text.data() + colon + 1, text.size() - colon - 1),
                        &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::string_view(text.data(), text.size()), "\" is not host:port"));
  }
  return HostPort{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) i++;
  counts_[i]++;
  sum_ += seconds;
  count_++;
}

void Histogram::Render(std::string_view name, std::string_view help, std::string& out) const {
  const absl::string_view n(name.data(), name.size());
  absl::StrAppend(&out, "# HELP ", n, " ", absl::string_view(help.data(), help.size()), "\n");
  absl::StrAppend(&out, "# TYPE ", n, " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(&out, n, "_bucket{le=\"", kBounds[i], "\"} ", cumulative, "\n");
  }
  cumulative += counts_[kBounds.size()];
  absl::StrAppend(&out, n, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(&out, n, "_sum ", sum_, "\n", n, "_count ", count_, "\n");
}

absl::StatusOr<int> LockDataDir(const std::string& dir) {
  const std::string path = dir + "/chatd.lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "another chatd is running on --data_dir ", dir, " (it holds ", path, ")"));
    }
    return absl::FailedPreconditionError(absl::StrCat("cannot lock ", path, ": ",
                                                      std::strerror(err)));
  }
  return fd;
}

std::string DataDirOwner(const std::string& dir) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  char resolved[PATH_MAX] = {};
  const char* abs = realpath(dir.c_str(), resolved) != nullptr ? resolved : dir.c_str();
  return absl::StrCat(host, ":", abs);
}

namespace {

// Binds a TCP socket to 127.0.0.1:port (SO_REUSEADDR, as chatd's acceptor); the port bound, or 0.
uint16_t TryBind(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t bound = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  close(fd);
  return bound;
}

}  // namespace

absl::StatusOr<uint16_t> PickFreePort() {
  constexpr int kLowest = 10000;
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  if (ephemeral_low - kLowest < 1000) {
    if (const uint16_t p = TryBind(0); p != 0) return p;
    return absl::UnavailableError("no free 127.0.0.1 port (bind to port 0 failed)");
  }
  thread_local std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> draw(kLowest, ephemeral_low - 1);
  for (int i = 0; i < 200; ++i) {
    const auto port = static_cast<uint16_t>(draw(rng));
    if (TryBind(port) == port) return port;
  }
  return absl::UnavailableError(absl::StrCat("no free 127.0.0.1 port in 200 draws from [", kLowest,
                                             ", ", ephemeral_low, ")"));
}

}  // namespace chatlab::real
