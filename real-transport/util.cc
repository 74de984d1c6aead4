#include "real-transport/util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

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

}  // namespace chatlab::real
