// A RabbitMQ of a test's own, really started: Debian's rabbitmq-server on a free 127.0.0.1 port
// (and a free Erlang distribution port), its node name, database and logs in a fresh directory,
// no plugins. Restart() kills it (-9) and starts it again on the same port: its queues, which
// chatd declares non-durable, are gone, as after any broker crash. Startup takes a few seconds
// (the Erlang VM boots); the destructor kills it.
#ifndef CHATLAB_TESTS_REAL_RABBIT_HARNESS_H_
#define CHATLAB_TESTS_REAL_RABBIT_HARNESS_H_

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {

class LocalRabbit {
 public:
  static constexpr const char* kServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";
  LocalRabbit() : port_(FreePort()), dist_port_(FreePort()) {
    if (!std::filesystem::exists(kServer)) {
      error_ = absl::StrCat("no ", kServer, ": install the rabbitmq-server package");
      return;
    }
    std::ofstream(dir_ / "rabbitmq.conf") << "listeners.tcp.default = 127.0.0.1:" << port_ << "\n"
                                          << "loopback_users = none\n";
    std::ofstream(dir_ / "enabled_plugins") << "[].\n";
    Start();
  }
  ~LocalRabbit() { Kill(); }
  LocalRabbit(const LocalRabbit&) = delete;
  LocalRabbit& operator=(const LocalRabbit&) = delete;

  // Empty when the server runs; otherwise why not.
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  std::string url() const { return absl::StrCat("amqp://guest:guest@127.0.0.1:", port_, "/"); }

  // Starts the server and waits until it answers the AMQP protocol header.
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no server behind
      setenv("RABBITMQ_NODENAME", absl::StrCat("chatlab-", port_, "@localhost").c_str(), 1);
      setenv("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1", 1);
      setenv("RABBITMQ_NODE_PORT", std::to_string(port_).c_str(), 1);
      setenv("RABBITMQ_DIST_PORT", std::to_string(dist_port_).c_str(), 1);
      setenv("RABBITMQ_MNESIA_BASE", (dir_ / "mnesia").c_str(), 1);
      setenv("RABBITMQ_LOG_BASE", (dir_ / "log").c_str(), 1);
      setenv("RABBITMQ_CONFIG_FILE", (dir_ / "rabbitmq").c_str(), 1);
      setenv("RABBITMQ_ENABLED_PLUGINS_FILE", (dir_ / "enabled_plugins").c_str(), 1);
      setenv("RABBITMQ_PID_FILE", (dir_ / "pid").c_str(), 1);
      setenv("HOME", dir_.path().c_str(), 1);  // the Erlang cookie
      setenv("ERL_EPMD_ADDRESS", "127.0.0.1", 1);
      // The script then execs the VM itself (no wrapper shell), so that kill -9 of pid_ is a
      // crash of the broker.
      setenv("RUNNING_UNDER_SYSTEMD", "true", 1);
      ExecWithLog({kServer}, dir_ / "rabbitmq.out");
    }
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      if (Answers()) {
        error_.clear();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    error_ = absl::StrCat("rabbitmq-server did not answer on port ", port_, " (see ",
                          dir_ / "rabbitmq.out", ")");
  }
  // kill -9, reaped.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGSTOP, returning once the server has stopped (it answers nothing until Resume).
  void Pause() {
    if (pid_ <= 0) return;
    kill(pid_, SIGSTOP);
    int status = 0;
    waitpid(pid_, &status, WUNTRACED);
  }
  void Resume() {
    if (pid_ > 0) kill(pid_, SIGCONT);
  }
  // kill -9, then the server again on the same port, without the queues it had.
  void Restart() {
    Kill();
    std::filesystem::remove_all(dir_ / "mnesia");
    Start();
  }
  // Whether the server answers an AMQP 0-9-1 protocol header with a method frame
  // (connection.start) on a fresh connection.
  bool Answers() const {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    if (ec) return false;
    boost::asio::write(s, boost::asio::buffer(std::string("AMQP\0\0\x09\x01", 8)), ec);
    if (ec) return false;
    char type = 0;
    boost::asio::read(s, boost::asio::buffer(&type, 1), ec);
    return !ec && type == 1;
  }

 private:
  TempDir dir_;
  uint16_t port_, dist_port_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_RABBIT_HARNESS_H_
