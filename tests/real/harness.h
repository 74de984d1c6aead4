// Test harness for the real-socket tests: temporary data directories, chatd processes on free
// 127.0.0.1 ports (started with fork/exec, killed at the end), and a WebSocket client with its
// own io thread whose received frames the test waits for with a deadline (never a fixed sleep).
#ifndef CHATLAB_TESTS_REAL_HARNESS_H_
#define CHATLAB_TESTS_REAL_HARNESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "real-transport/json_codec.h"
#include "real-transport/ws_client.h"

namespace chatlab::real::testing {

using Clock = std::chrono::steady_clock;
inline constexpr auto kWait = std::chrono::seconds(10);

// A fresh directory under $TMPDIR, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "chatd-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  // CHATD_TEST_KEEP=1 keeps the directories (and the chatd logs in them) for a post-mortem.
  ~TempDir() {
    if (std::getenv("CHATD_TEST_KEEP") != nullptr) {
      std::fprintf(stderr, "kept %s\n", path_.c_str());
      return;
    }
    std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A port that was free a moment ago, outside the range outgoing connections take theirs from
// (PickFreePort).
inline uint16_t FreePort() {
  const absl::StatusOr<uint16_t> port = PickFreePort();
  if (!port.ok()) ADD_FAILURE() << port.status();
  return port.value_or(0);
}

// In a forked child: sends stdout and stderr to `log` (appending) and becomes argv.
[[noreturn]] inline void ExecWithLog(const std::vector<std::string>& argv, const std::string& log) {
  FILE* f = std::fopen(log.c_str(), "a");
  if (f != nullptr) {
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

// Runs argv to completion; returns its exit status (stdout/stderr to log).
inline int RunCommand(const std::vector<std::string>& argv, const std::string& log = "/dev/null",
                      const std::string& stdin_text = "") {
  int in[2];
  if (pipe(in) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    ExecWithLog(argv, log);
  }
  close(in[0]);
  if (!stdin_text.empty()) (void)!write(in[1], stdin_text.data(), stdin_text.size());
  close(in[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs chatd with flags on data_dir (listening on any free port) until it exits, as a start
// that must be refused; returns its exit status (output appended to log).
inline int RunChatdToExit(const std::string& data_dir, const std::vector<std::string>& flags,
                          const std::string& log) {
  std::vector<std::string> argv = {CHATD_BIN, "--data_dir", data_dir, "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return RunCommand(argv, log);
}

inline void AddUser(const std::string& data_dir, const std::string& name,
                    const std::string& password = "pw") {
  ASSERT_EQ(RunCommand({CHATD_BIN, "adduser", "--data_dir", data_dir, "--password", password,
                        "--pbkdf2_iterations", "1000", name}),
            0);
}

// One chatd process.
class Chatd {
 public:
  // client_tls: when chatd serves TLS, the client context the health checks dial with.
  Chatd(std::string data_dir, uint16_t port, std::vector<std::string> extra = {},
        std::shared_ptr<boost::asio::ssl::context> client_tls = nullptr)
      : data_dir_(std::move(data_dir)),
        port_(port),
        extra_(std::move(extra)),
        client_tls_(std::move(client_tls)) {}
  ~Chatd() { Kill(SIGKILL); }

  HostPort address() const { return HostPort{"127.0.0.1", port_}; }
  uint16_t port() const { return port_; }
  std::string log_path() const { return data_dir_ + "/chatd.log"; }

  // Starts the process without waiting for it (a standby that waits for the store's lease).
  void Spawn() {
    std::vector<std::string> argv = {
        CHATD_BIN,     "--data_dir", data_dir_, "--listen", absl::StrCat("127.0.0.1:", port_),
        "--log_level", "info"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    pid_ = fork();
    if (pid_ == 0) {
      ExecWithLog(argv, log_path());
    }
  }
  // Whether /healthz answers 200 within wait (false at once if the process has exited).
  bool WaitHealthy(std::chrono::milliseconds wait) {
    const auto deadline = Clock::now() + wait;
    while (Clock::now() < deadline) {
      auto res = HttpCall(address(), "GET", "/healthz", "", "", client_tls_.get());
      if (res.ok() && res->status == 200) return true;
      if (pid_ <= 0) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // The exit status once the process exits on its own within wait (-1: killed by a signal), or
  // nullopt if it is still running then.
  std::optional<int> WaitExit(std::chrono::milliseconds wait) {
    const auto deadline = Clock::now() + wait;
    while (pid_ > 0 && Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }
  // Sends sig and returns at once (SIGSTOP, SIGCONT).
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Starts the process and waits until /healthz answers.
  void Start() {
    Spawn();
    const auto deadline = Clock::now() + kWait;
    while (Clock::now() < deadline) {
      auto res = HttpCall(address(), "GET", "/healthz", "", "", client_tls_.get());
      if (res.ok() && res->status == 200) return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "chatd exited at start; log:\n" << Log();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "chatd did not become healthy; log:\n" << Log();
  }
  // Sends sig and, for SIGKILL/SIGTERM, waits for the exit. Returns the exit status (-1: signal).
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Log() const {
    std::ifstream f(log_path());
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

 private:
  std::string data_dir_;
  uint16_t port_;
  std::vector<std::string> extra_;
  std::shared_ptr<boost::asio::ssl::context> client_tls_;
  pid_t pid_ = -1;
};

// One chatd with some users (password "pw"); extra: more flags.
struct Single {
  explicit Single(const std::vector<std::string>& users, std::vector<std::string> extra = {}) {
    for (const auto& u : users) AddUser(dir.path(), u);
    server = std::make_unique<Chatd>(dir.path(), FreePort(), std::move(extra));
    server->Start();
  }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(server->address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  TempDir dir;
  std::unique_ptr<Chatd> server;
};

// A cluster of n chatd processes on free ports (process i + 1 is --index i + 1), sharing one
// users database and token key, with the given users (password "pw"), the forwarding strategy
// and any extra chatd flags (a scenario's cluster flags, a broken mode). per_process(i), if
// given, adds flags of process i's own (its store's database). With standbys, each process has a
// standby chatd (its second place in --cluster, the same flags, its own data directory), spawned
// after every process answers: it waits for its process's store lease (PostgreSQL store shards).
struct Cluster {
  Cluster(int n, const std::string& forwarding, const std::vector<std::string>& users,
          const std::vector<std::string>& extra = {},
          const std::function<std::vector<std::string>(int index)>& per_process = {},
          bool standbys = false) {
    std::vector<uint16_t> ports, standby_ports;
    std::string list;
    for (int i = 0; i < n; ++i) {
      ports.push_back(FreePort());
      absl::StrAppend(&list, i ? "," : "", "127.0.0.1:", ports.back());
      if (standbys) {
        standby_ports.push_back(FreePort());
        absl::StrAppend(&list, "|127.0.0.1:", standby_ports.back());
      }
    }
    for (const auto& u : users) {
      EXPECT_EQ(RunCommand({CHATD_BIN, "adduser", "--users_db", shared / "users.db", "--password",
                            "pw", "--pbkdf2_iterations", "1000", u}),
                0);
    }
    const auto flags = [&](int index) {
      std::vector<std::string> f{"--cluster",    list,
                                 "--index",      std::to_string(index),
                                 "--users_db",   shared / "users.db",
                                 "--key_file",   shared / "token.key",
                                 "--forwarding", forwarding};
      f.insert(f.end(), extra.begin(), extra.end());
      if (per_process) {
        const auto own = per_process(index);
        f.insert(f.end(), own.begin(), own.end());
      }
      return f;
    };
    for (int i = 0; i < n; ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      servers.push_back(std::make_unique<Chatd>(dirs.back()->path(), ports[i], flags(i + 1)));
      servers.back()->Start();
    }
    for (size_t i = 0; i < standby_ports.size(); ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      standby.push_back(std::make_unique<Chatd>(dirs.back()->path(), standby_ports[i],
                                                flags(static_cast<int>(i) + 1)));
      standby.back()->Spawn();
    }
  }
  // "127.0.0.1:P1,127.0.0.1:P2,...": the processes in index order.
  std::string addresses() const {
    std::string list;
    for (const auto& s : servers) {
      absl::StrAppend(&list, list.empty() ? "" : ",", "127.0.0.1:", s->port());
    }
    return list;
  }
  TempDir shared;
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<Chatd>> servers;  // process i + 1
  std::vector<std::unique_ptr<Chatd>> standby;  // process i + 1's standby (none without standbys)
};

// A WebSocket client with its own io thread. Received frames are decoded with the JSON codec and
// queued; the test takes them with Next / Expect, each with a deadline.
class Client {
 public:
  Client() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~Client() {
    boost::asio::post(io_, [this] {
      if (ws_) ws_->Close();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Connects to /ws with token (empty: none). Returns the handshake error code message.
  // tls: a client TLS context (wss://), or null.
  std::string Connect(const HostPort& address, const std::string& token,
                      boost::asio::ssl::context* tls = nullptr) {
    std::promise<std::string> done;
    boost::asio::post(io_, [&] {
      ws_ = std::make_shared<WsClient>(io_, tls);
      ws_->on_frame = [this](std::string_view frame) {
        std::lock_guard<std::mutex> lock(mu_);
        raw_.emplace_back(frame);
        cv_.notify_all();
      };
      ws_->on_closed = [this](const boost::system::error_code&) {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        cv_.notify_all();
      };
      ws_->Connect(
          address, token.empty() ? "/ws" : "/ws?token=" + token,
          [&](const boost::system::error_code& ec) { done.set_value(ec ? ec.message() : ""); });
    });
    return done.get_future().get();
  }
  void SendRaw(std::string frame, bool binary = false) {
    boost::asio::post(io_, [this, frame = std::move(frame), binary] { ws_->Send(frame, binary); });
  }
  void Send(const Message& m) { SendRaw(ToJson(m)); }
  void Close() {
    boost::asio::post(io_, [this] { ws_->Close(); });
  }

  // The next received message of type T satisfying pred (others stay queued), or nullopt.
  template <typename T>
  std::optional<T> Next(std::function<bool(const T&)> pred = nullptr,
                        std::chrono::milliseconds wait = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = Clock::now() + wait;
    for (;;) {
      for (auto it = raw_.begin(); it != raw_.end(); ++it) {
        auto m = FromJson(*it, JsonLimits{64u << 20, 64});
        if (!m.ok()) continue;
        const T* t = std::get_if<T>(&*m);
        if (t == nullptr || (pred && !pred(*t))) continue;
        T out = *t;
        raw_.erase(it);
        return out;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        // One last look after the deadline.
        for (auto it = raw_.begin(); it != raw_.end(); ++it) {
          auto m = FromJson(*it, JsonLimits{64u << 20, 64});
          if (m.ok() && std::get_if<T>(&*m) != nullptr && (!pred || pred(std::get<T>(*m)))) {
            T out = std::get<T>(*m);
            raw_.erase(it);
            return out;
          }
        }
        return std::nullopt;
      }
    }
  }
  // How many queued messages are of type T (and satisfy pred).
  template <typename T>
  size_t Count(std::function<bool(const T&)> pred = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& frame : raw_) {
      auto m = FromJson(frame, JsonLimits{64u << 20, 64});
      if (m.ok() && std::get_if<T>(&*m) != nullptr && (!pred || pred(std::get<T>(*m)))) n++;
    }
    return n;
  }
  bool WaitClosed(std::chrono::milliseconds wait = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, wait, [this] { return closed_; });
  }
  bool closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::shared_ptr<WsClient> ws_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> raw_;
  bool closed_ = false;
  std::thread thread_;
};

// Every message of conv as reader reads it over the Web Service (POST /api/get_messages, page by
// page): client_msg_id -> the ids it is stored under (one, unless something is stored twice).
inline std::map<ClientMsgId, std::vector<MessageId>> HistoryOf(const HostPort& at,
                                                               const LoginResult& reader,
                                                               const ConversationId& conv) {
  std::map<ClientMsgId, std::vector<MessageId>> seen;
  MessageId after = 0;
  for (;;) {
    auto res = HttpCall(at, "POST", "/api/get_messages", ToJson(GetMessages{1, conv, after, 0}),
                        reader.token);
    EXPECT_TRUE(res.ok() && res->status == 200) << (res.ok() ? res->body : "no answer");
    if (!res.ok() || res->status != 200) break;
    auto m = FromJson(res->body, JsonLimits{64u << 20, 64});
    EXPECT_TRUE(m.ok() && std::holds_alternative<MessagesResult>(*m)) << res->body;
    if (!m.ok() || !std::holds_alternative<MessagesResult>(*m)) break;
    const auto& page = std::get<MessagesResult>(*m);
    for (const ChatMessage& msg : page.messages) {
      seen[msg.client_msg_id].push_back(msg.message_id);
      after = msg.message_id;
    }
    if (!page.has_more) break;
  }
  return seen;
}

// Sends a burst of `burst` messages from alice in conv to the chatd at `at` and, once 20 are
// acknowledged, calls stop (which must make that chatd go away: kill -9, a pause); then takes the
// acknowledgements already on their way, which count too: they were sent, so they must be
// durable. *acked: client_msg_id -> the id its OK gave.
//
// The burst goes in two waves: the first 40 messages, then, once 20 are acknowledged, the rest
// just before stop. So the stop always lands while the server is still receiving and committing.
// (Sent all at once, the rest could land in one group commit that completes before the stop: a
// PostgreSQL chatd acknowledged all 1,000 of a burst before its kill -9 took effect.)
inline void BurstUntilStopped(const HostPort& at, const LoginResult& alice,
                              const ConversationId& conv, int burst,
                              const std::function<void()>& stop,
                              std::map<ClientMsgId, MessageId>* acked) {
  constexpr int kFirstWave = 40;
  ASSERT_GT(burst, kFirstWave) << "a burst must outlast its first wave";
  Client a;
  ASSERT_EQ(a.Connect(at, alice.token), "");
  const auto send = [&](int from, int to) {
    for (int i = from; i <= to; ++i) {
      a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
    }
  };
  send(1, kFirstWave);
  // Only OKs are acknowledgements; UNAVAILABLE (a peer just restarted or taken over) is a retry,
  // which the resend after the stop makes.
  int answered = 0;
  while (acked->size() < 20) {
    ASSERT_LT(answered, kFirstWave) << "fewer than 20 of the first wave acknowledged OK";
    auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
    ASSERT_TRUE(ack.has_value()) << "no answer after " << answered << " of the first wave";
    ++answered;
    if (ack->code == Code::kUnavailable) continue;
    ASSERT_EQ(ack->code, Code::kOk) << "message " << ack->client_msg_id;
    (*acked)[ack->client_msg_id] = ack->message_id;
  }
  send(kFirstWave + 1, burst);
  stop();
  while (auto ack = a.Next<SendAck>(nullptr, std::chrono::milliseconds(200))) {
    if (ack->code == Code::kOk) (*acked)[ack->client_msg_id] = ack->message_id;
  }
  ASSERT_LT(acked->size(), static_cast<size_t>(burst)) << "the stop came too late to test anything";
}

// After a failure, on the chatd at `at`: every message acknowledged before it is in bob's history
// once, under the id its OK gave; the client's whole burst resent (as its outbox does) is
// answered OK, the acknowledged ones as duplicates with their first id; and then each message of
// the burst is stored exactly once. The resends are marked (attempt 1), as a client's outbox marks
// them, so the store recognises them beyond its dedup window.
inline void ResentBurstLandsOnce(const HostPort& at, const LoginResult& alice,
                                 const LoginResult& bob, const ConversationId& conv, int burst,
                                 const std::map<ClientMsgId, MessageId>& acked) {
  auto seen = HistoryOf(at, bob, conv);
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  Client a;
  ASSERT_EQ(a.Connect(at, alice.token), "");
  // UNAVAILABLE says "retry" (a peer just restarted may not be reachable yet); the outbox resends
  // those, a round at a time, and any other refusal fails the test.
  std::vector<ClientMsgId> pending;
  for (int i = 1; i <= burst; ++i) pending.push_back(static_cast<ClientMsgId>(i));
  int retried = 0;
  for (int round = 1; !pending.empty(); ++round) {
    ASSERT_LE(round, 20) << pending.size() << " messages still UNAVAILABLE after 20 rounds";
    if (round > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    for (ClientMsgId id : pending) {
      a.Send(SendMessage{id, conv, 0, absl::StrCat("burst ", id), static_cast<uint32_t>(round)});
    }
    std::vector<ClientMsgId> again;
    for (size_t i = 0; i < pending.size(); ++i) {
      auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(30));
      ASSERT_TRUE(ack.has_value());
      if (ack->code == Code::kUnavailable) {
        again.push_back(ack->client_msg_id);
        continue;
      }
      ASSERT_EQ(ack->code, Code::kOk) << "message " << ack->client_msg_id;
      if (const auto it = acked.find(ack->client_msg_id); it != acked.end()) {
        EXPECT_TRUE(ack->duplicate);
        EXPECT_EQ(ack->message_id, it->second);
      }
    }
    retried += static_cast<int>(again.size());
    pending = std::move(again);
  }
  if (retried > 0) std::printf("%d resends answered UNAVAILABLE were sent again\n", retried);
  seen = HistoryOf(at, bob, conv);
  EXPECT_EQ(seen.size(), static_cast<size_t>(burst));
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
}

// kill -9 of server while a burst of `burst` messages from alice to bob is being acknowledged
// (once 20 are), then a restart: ResentBurstLandsOnce.
inline void KillNineDuringABurst(Chatd& server, const LoginResult& alice, const LoginResult& bob,
                                 int burst) {
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  std::map<ClientMsgId, MessageId> acked;
  BurstUntilStopped(
      server.address(), alice, conv, burst, [&] { server.Kill(SIGKILL); }, &acked);
  if (::testing::Test::HasFatalFailure()) return;
  server.Start();
  ResentBurstLandsOnce(server.address(), alice, bob, conv, burst, acked);
}

// Polls cond every few milliseconds until it holds or the deadline passes.
inline bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds wait = kWait) {
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_HARNESS_H_
