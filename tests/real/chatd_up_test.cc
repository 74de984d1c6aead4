// scripts/chatd-up.sh, the README's one command for a deployment, run as an operator runs it:
// `--cluster 3 --shards 3 --engines --standby` starts PostgreSQL (a server per store shard),
// Redis, RabbitMQ, three chatd processes and a standby for each; messages between users on two
// processes are pushed live; kill -9 of a process has its standby take its place, and its user,
// reconnected there, is pushed live again; Ctrl-C stops everything the script started (no port
// of the deployment still answers) and the script exits 0.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/real/engine_cluster.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;

// The ports `chatd-up.sh --cluster 3 --shards 3 --engines --standby --port BASE` listens on,
// as offsets from BASE: processes, standbys, PostgreSQL per shard, Redis, RabbitMQ (and its
// Erlang distribution port).
constexpr int kOffsets[] = {1, 2, 3, 51, 52, 53, 100, 101, 102, 200, 300, 301};
constexpr uint32_t kUpLeaseMs = 2000;

bool Bindable(int port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io);
  boost::system::error_code ec;
  a.open(boost::asio::ip::tcp::v4(), ec);
  if (!ec) a.bind({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
  return !ec;
}

bool Answers(int port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
  return !ec;
}

// A BASE whose every port of the deployment is free now. BASE + 301 stays below 32768, where
// Linux's ephemeral range starts (/proc/sys/net/ipv4/ip_local_port_range): a port found free
// there can be taken by any other test's outgoing connection before PostgreSQL binds it.
std::optional<int> FreeBase() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int base = 12000 + static_cast<int>((getpid() * 131 + attempt * 977) % 20000);
    bool free = true;
    for (int off : kOffsets) free = free && Bindable(base + off);
    if (free) return base;
  }
  return std::nullopt;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The pid of the process whose command line has "--listen" then "127.0.0.1:port" (0: none).
pid_t ListeningOn(int port) {
  const std::string want = absl::StrCat("127.0.0.1:", port);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::vector<std::string> args = absl::StrSplit(ReadFile(entry.path() / "cmdline"), '\0');
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--listen" && args[i + 1] == want) return std::stoi(name);
    }
  }
  return 0;
}

bool Healthy(int port, milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    auto res =
        HttpCall(HostPort{"127.0.0.1", static_cast<uint16_t>(port)}, "GET", "/healthz", "", "");
    if (res.ok() && res->status == 200) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

TEST(ChatdUp, TheEnginesDeploymentWithStandbysServesSurvivesAKillAndStopsOnCtrlC) {
  const std::optional<int> found = FreeBase();
  ASSERT_TRUE(found.has_value()) << "no free range of ports";
  const int base = *found;
  TempDir dir;
  // Run as root, the script's PostgreSQL runs as the postgres user, who must reach the data.
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);
  const std::string log = dir / "chatd-up.log";
  const pid_t script = fork();
  if (script == 0) {
    setpgid(0, 0);  // its own process group, as a terminal's foreground job
    const std::string bin = CHATD_BIN;
    setenv("BUILD_DIR", bin.substr(0, bin.rfind("/real-transport/")).c_str(), 1);
    setenv("CHATLAB_PASSWORD", "pw", 1);
    ExecWithLog({"/bin/bash", CHATLAB_SOURCE_DIR "/scripts/chatd-up.sh", "--cluster", "3",
                 "--shards", "3", "--engines", "--standby", "--port", std::to_string(base),
                 "--data", dir / "data", "--", "--store_lease_ms", std::to_string(kUpLeaseMs)},
                log);
  }
  setpgid(script, script);
  struct Stop {  // whatever happens below, the deployment is stopped (killed after 60 s)
    pid_t pid;
    ~Stop() {
      if (pid <= 0) return;
      kill(-pid, SIGINT);
      for (int i = 0; i < 600 && waitpid(pid, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      kill(-pid, SIGKILL);
      waitpid(pid, nullptr, WNOHANG);
    }
  } stop{script};

  const auto up_by = Clock::now() + std::chrono::seconds(120);
  while (ReadFile(log).find("chatd cluster:") == std::string::npos) {
    ASSERT_LT(Clock::now(), up_by) << "chatd-up.sh did not start the cluster:\n" << ReadFile(log);
    ASSERT_EQ(waitpid(script, nullptr, WNOHANG), 0) << "chatd-up.sh exited:\n" << ReadFile(log);
    std::this_thread::sleep_for(milliseconds(100));
  }
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(Healthy(base + i, milliseconds(30000)))
        << "process " << i << " does not answer:\n"
        << ReadFile(dir / absl::StrCat("data/", i, "/chatd.log"));
  }
  const auto at = [&](int off) { return HostPort{"127.0.0.1", static_cast<uint16_t>(base + off)}; };
  auto alice = real::Login(at(1), "alice", "pw");
  auto bob = real::Login(at(1), "bob", "pw");
  ASSERT_TRUE(alice.ok() && bob.ok()) << alice.status() << " " << bob.status();
  const auto conv = ConversationId::Direct(alice->user, bob->user);
  Client a, b;
  ASSERT_EQ(a.Connect(at(1), alice->token), "");
  ASSERT_EQ(b.Connect(at(2), bob->token), "");
  ClientMsgId next = 1;
  const double first = SecondsUntilLive(a, b, conv, &next, milliseconds(10000));
  ASSERT_GE(first, 0) << "no live push from process 1 to process 2";

  // kill -9 of process 2: its standby (BASE + 52) takes the place over; bob reconnects there.
  const pid_t p2 = ListeningOn(base + 2);
  ASSERT_GT(p2, 0) << "no process listens on " << base + 2;
  const auto killed = Clock::now();
  ASSERT_EQ(kill(p2, SIGKILL), 0);
  ASSERT_TRUE(Healthy(base + 52, milliseconds(kUpLeaseMs + 15000)))
      << ReadFile(dir / "data/2-standby/chatd.log");
  const double takeover = std::chrono::duration<double>(Clock::now() - killed).count();
  Client b2;
  ASSERT_EQ(b2.Connect(at(52), bob->token), "");
  const double again = SecondsUntilLive(a, b2, conv, &next, milliseconds(10000));
  std::printf(
      "chatd-up.sh: live across processes; process 2's standby served %.2f s after its "
      "kill (lease %u ms); live again %.2f s after bob reconnected to it\n",
      takeover, kUpLeaseMs, again);
  ASSERT_GE(again, 0) << "no live push to process 2's standby";
  // Every probe acknowledged OK is stored once (a probe sent while process 1's link still
  // pointed at the dead process may have been answered UNAVAILABLE: a retry, not a loss).
  std::set<ClientMsgId> acked;
  while (auto ack = a.Next<SendAck>(nullptr, milliseconds(2000))) {
    if (ack->code == Code::kOk) acked.insert(ack->client_msg_id);
  }
  EXPECT_GE(acked.size(), 2u);
  auto history = HistoryOf(at(3), *bob, conv);
  for (ClientMsgId id : acked) {
    EXPECT_EQ(history[id].size(), 1u) << "acknowledged probe " << id;
  }

  // Ctrl-C: the script stops everything it started, and exits 0.
  ASSERT_EQ(kill(-script, SIGINT), 0);
  std::optional<int> status;
  const auto down_by = Clock::now() + std::chrono::seconds(60);
  while (!status && Clock::now() < down_by) {
    int s = 0;
    if (waitpid(script, &s, WNOHANG) == script) status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(status.has_value()) << "chatd-up.sh still running 60 s after Ctrl-C";
  stop.pid = 0;
  EXPECT_EQ(*status, 0) << ReadFile(log);
  for (int off : kOffsets) {  // (Erlang's epmd, shared by every Erlang VM, stays up)
    EXPECT_FALSE(Answers(base + off)) << "port BASE+" << off << " still answers after Ctrl-C";
  }
}

}  // namespace
}  // namespace chatlab::real::testing
