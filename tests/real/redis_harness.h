// A Redis server of a test's own, really started: Debian's redis-server on a free 127.0.0.1
// port, its files in a fresh directory, with no persistence (no RDB snapshot, no AOF: a restart
// starts empty, as a lost cache does). Restart() kills it (-9) and starts a fresh one on the same
// port; the destructor kills it.
#ifndef CHATLAB_TESTS_REAL_REDIS_HARNESS_H_
#define CHATLAB_TESTS_REAL_REDIS_HARNESS_H_

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {

class LocalRedis {
 public:
  static constexpr const char* kServer = "/usr/bin/redis-server";
  LocalRedis() : port_(FreePort()) {
    if (!std::filesystem::exists(kServer)) {
      error_ = absl::StrCat("no ", kServer, ": install the redis-server package");
      return;
    }
    Start();
  }
  ~LocalRedis() { Kill(); }
  LocalRedis(const LocalRedis&) = delete;
  LocalRedis& operator=(const LocalRedis&) = delete;

  // Empty when the server runs; otherwise why not.
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Starts redis-server and waits until it answers PING (error() says why it did not).
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no server behind
      ExecWithLog({kServer, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", dir_.path(), "--protected-mode", "no"},
                  dir_ / "redis.log");
    }
    const auto deadline = Clock::now() + kWait;
    while (Clock::now() < deadline) {
      if (Ping()) {
        error_.clear();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    error_ = "redis-server did not answer PING";
  }
  // kill -9, reaped.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  // SIGSTOP, returning once the server has stopped (it answers nothing until Resume).
  void Pause() {
    if (pid_ <= 0) return;
    kill(pid_, SIGSTOP);
    int status = 0;
    waitpid(pid_, &status, WUNTRACED);
  }
  void Resume() { Signal(SIGCONT); }
  // kill -9, then a fresh, empty server on the same port.
  void Restart() {
    Kill();
    Start();
  }
  // Whether the server answers a PING on a fresh connection.
  bool Ping() const {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    if (ec) return false;
    boost::asio::write(s, boost::asio::buffer(std::string("PING\r\n")), ec);
    if (ec) return false;
    char reply[7] = {};
    boost::asio::read(s, boost::asio::buffer(reply, 7), ec);
    return !ec && std::string(reply, 7) == "+PONG\r\n";
  }

 private:
  TempDir dir_;
  uint16_t port_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_REDIS_HARNESS_H_
