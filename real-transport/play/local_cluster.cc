#include "real-transport/play/local_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "real-transport/asio.h"
#include "real-transport/ws_client.h"

namespace chatlab::real {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kStartWait = std::chrono::seconds(30);
constexpr auto kStopGrace = std::chrono::seconds(10);

// fork + exec argv with stdin from /dev/null and stdout and stderr appended to log; the child's
// pid. Everything the child needs is made before fork; the child closes every other descriptor
// (chatplay's client sockets must not outlive chatplay in a chatd) and dies with chatplay.
absl::StatusOr<pid_t> SpawnWithLog(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) return absl::InternalError(absl::StrCat(log, ": ", strerror(errno)));
  const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // chatplay died before prctl
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    close_range(3, ~0U, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  const int fork_errno = errno;
  close(out);
  if (in >= 0) close(in);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(fork_errno)));
  return pid;
}

// Runs argv to completion (output to log); its exit status, -1 if it did not exit.
int RunToExit(const std::vector<std::string>& argv, const std::string& log) {
  absl::StatusOr<pid_t> pid = SpawnWithLog(argv, log);
  if (!pid.ok()) return -1;
  int status = 0;
  waitpid(*pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(
    const LocalClusterOptions& options) {
  if (options.processes < 1) return absl::InvalidArgumentError("--launch: no processes");
  if (access(options.chatd.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chatd binary ", options.chatd, ": not an executable (build chatd, or give --chatd)"));
  }
  std::error_code ec;
  const std::filesystem::path dir(options.dir);
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--launch ", options.dir,
                     ": not empty (a launched cluster starts from a fresh directory)"));
  }
  std::filesystem::create_directories(dir / "shared", ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("--launch ", options.dir, ": ", ec.message()));
  const std::string shared = (dir / "shared").string();
  if (options.users > 0) {
    const int status =
        RunToExit({options.chatd, "adduser", "--users_db", shared + "/users.db", "--password",
                   options.password, "--count", std::to_string(options.users),
                   "--pbkdf2_iterations", "1000", options.user_prefix},
                  shared + "/adduser.log");
    if (status != 0) {
      return absl::UnavailableError(
          absl::StrCat("chatd adduser failed (exit ", status, "); see ", shared, "/adduser.log"));
    }
  }
  auto cluster = std::unique_ptr<LocalCluster>(new LocalCluster(options));
  // Free ports outside the ephemeral range (PickFreePort), none chosen twice.
  std::string list;
  while (cluster->addresses_.size() < static_cast<size_t>(options.processes)) {
    absl::StatusOr<uint16_t> port = PickFreePort();
    if (!port.ok()) return port.status();
    if (std::any_of(cluster->addresses_.begin(), cluster->addresses_.end(),
                    [&](const HostPort& a) { return a.port == *port; })) {
      continue;
    }
    absl::StrAppend(&list, list.empty() ? "" : ",", "127.0.0.1:", *port);
    cluster->addresses_.push_back(HostPort{"127.0.0.1", *port});
  }
  for (int i = 1; i <= options.processes; ++i) {
    const std::string data = (dir / std::to_string(i)).string();
    std::filesystem::create_directories(data, ec);
    std::vector<std::string> argv = {
        options.chatd,
        "--data_dir",
        data,
        "--listen",
        absl::StrCat("127.0.0.1:", cluster->addresses_[static_cast<size_t>(i - 1)].port),
        "--cluster",
        options.cluster_view ? options.cluster_view(i, cluster->addresses_) : list,
        "--index",
        std::to_string(i),
        "--users_db",
        shared + "/users.db",
        "--key_file",
        shared + "/token.key"};
    argv.insert(argv.end(), options.flags.begin(), options.flags.end());
    cluster->argv_.push_back(std::move(argv));
    cluster->pids_.push_back(0);
    cluster->stopped_.push_back(false);
  }
  for (size_t i = 0; i < cluster->argv_.size(); ++i) {
    if (absl::Status s = cluster->Spawn(i); !s.ok()) return s;
  }
  const auto deadline = SteadyClock::now() + kStartWait;
  for (size_t i = 0; i < cluster->argv_.size(); ++i) {
    const std::string log = (dir / std::to_string(i + 1) / "chatd.log").string();
    while (true) {
      auto res = HttpCall(cluster->addresses_[i], "GET", "/healthz", "");
      if (res.ok() && res->status == 200) break;
      if (waitpid(cluster->pids_[i], nullptr, WNOHANG) == cluster->pids_[i]) {
        cluster->pids_[i] = 0;
        return absl::UnavailableError(
            absl::StrCat("chatd process ", i + 1, " exited at start; see ", log));
      }
      if (SteadyClock::now() > deadline) {
        return absl::UnavailableError(
            absl::StrCat("chatd process ", i + 1, " not serving after 30 s; see ", log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return cluster;
}

LocalCluster::~LocalCluster() { StopAll(); }

absl::Status LocalCluster::Spawn(size_t i) {
  const std::string log = argv_[i][2] + "/chatd.log";  // --data_dir's value
  absl::StatusOr<pid_t> pid = SpawnWithLog(argv_[i], log);
  if (!pid.ok()) return pid.status();
  pids_[i] = *pid;
  return absl::OkStatus();
}

bool LocalCluster::ExitedOnItsOwn(size_t i) {
  int status = 0;
  if (pids_[i] <= 0 || waitpid(pids_[i], &status, WNOHANG) != pids_[i]) return false;
  pids_[i] = 0;
  exits_.push_back(absl::StrCat("process ", i + 1, " exited on its own (",
                                WIFEXITED(status) ? absl::StrCat("status ", WEXITSTATUS(status))
                                                  : absl::StrCat("signal ", WTERMSIG(status)),
                                "); see ", argv_[i][2], "/chatd.log"));
  return true;
}

absl::Status LocalCluster::Kill(int index) {
  const size_t i = static_cast<size_t>(index - 1);
  if (ExitedOnItsOwn(i)) return absl::FailedPreconditionError(exits_.back());
  if (pids_.at(i) <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("process ", index, " is not running"));
  }
  kill(pids_[i], SIGKILL);        // a stopped process dies too
  waitpid(pids_[i], nullptr, 0);  // milliseconds: the kernel tears a killed process down
  pids_[i] = 0;
  stopped_[i] = false;
  return absl::OkStatus();
}

absl::Status LocalCluster::Pause(int index) {
  const size_t i = static_cast<size_t>(index - 1);
  if (ExitedOnItsOwn(i)) return absl::FailedPreconditionError(exits_.back());
  if (pids_.at(i) <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("process ", index, " is not running"));
  }
  if (stopped_[i]) {
    return absl::FailedPreconditionError(absl::StrCat("process ", index, " is already stopped"));
  }
  if (kill(pids_[i], SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("kill -STOP: ", strerror(errno)));
  }
  stopped_[i] = true;
  return absl::OkStatus();
}

absl::Status LocalCluster::Resume(int index) {
  const size_t i = static_cast<size_t>(index - 1);
  if (!stopped_.at(i) || pids_[i] <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("process ", index, " is not stopped"));
  }
  stopped_[i] = false;
  if (kill(pids_[i], SIGCONT) != 0) {
    return absl::InternalError(absl::StrCat("kill -CONT: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status LocalCluster::Restart(int index) {
  const size_t i = static_cast<size_t>(index - 1);
  ExitedOnItsOwn(i);
  if (pids_.at(i) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("process ", index, " is running"));
  }
  return Spawn(i);
}

std::vector<std::string> LocalCluster::UnexpectedExits() {
  for (size_t i = 0; i < pids_.size(); ++i) ExitedOnItsOwn(i);
  return exits_;
}

void LocalCluster::StopAll() {
  UnexpectedExits();
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] <= 0) continue;
    kill(pids_[i], SIGTERM);
    if (stopped_[i]) kill(pids_[i], SIGCONT);  // a stopped process takes SIGTERM when it runs
    stopped_[i] = false;
  }
  const auto deadline = SteadyClock::now() + kStopGrace;
  for (pid_t& pid : pids_) {
    while (pid > 0) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = 0;
      } else if (SteadyClock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        pid = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
}

}  // namespace chatlab::real
