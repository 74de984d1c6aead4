// Real-socket tests of what a black-box client found (issue 14): the files chatd creates are
// readable by their owner only, an oversized HTTP body is answered 413, slow or stalled HTTP
// reads are cut off at their named deadlines, and a WebSocket ends when its token expires. (The
// reused client_msg_id and the drain's SessionClosed are tested in chatd_test.cc.) Like
// chatd_test.cc, every test starts its own chatd on a free 127.0.0.1 port with a temporary data
// directory.
#include <poll.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "real-transport/util.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A raw TCP connection to chatd, for requests no well-behaved client library sends.
class RawConn {
 public:
  explicit RawConn(const HostPort& at) : socket_(io_) {
    socket_.connect({asio::ip::make_address(at.host), at.port});
  }
  bool Send(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }
  // Reads what arrives until the server closes the connection or `wait` passes.
  struct Result {
    std::string bytes;
    bool closed = false;
  };
  Result ReadUntilClosed(std::chrono::milliseconds wait) {
    Result r;
    const auto deadline = Clock::now() + wait;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return r;
      pollfd p{socket_.native_handle(), POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      boost::system::error_code ec;
      const size_t n = socket_.read_some(asio::buffer(chunk), ec);
      r.bytes.append(chunk, n);
      if (ec) {
        r.closed = true;
        return r;
      }
    }
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

// The permission bits of path, or -1 when it does not exist.
int ModeOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

TEST(ChatdFilesTest, DataDirDatabasesAndKeyAreReadableByTheOwnerOnly) {
  // Under the most common umask, files are created world-readable unless chatd says otherwise.
  const mode_t old_umask = umask(022);
  TempDir tmp;
  const std::string data = tmp / "data";  // created by chatd
  AddUser(data, "alice");
  Chatd server(data, FreePort());
  server.Start();
  // A message makes chat.db write its WAL.
  auto alice = real::Login(server.address(), "alice", "pw");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(ModeOf(data), 0700);
  for (const char* name : {"users.db", "chat.db", "chat.db-wal", "chat.db-shm", "token.key"}) {
    EXPECT_EQ(ModeOf(data + "/" + name), 0600) << name;
  }
  // users.db's WAL, when SQLite keeps one at this moment, is private too.
  for (const char* name : {"users.db-wal", "users.db-shm"}) {
    const int mode = ModeOf(data + "/" + name);
    if (mode != -1) {
      EXPECT_EQ(mode, 0600) << name;
    }
  }
  umask(old_umask);
}

// ---- HTTP body limit
// -----------------------------------------------------------------------------

// "HTTP/1.1 413 ..." -> true when the response is a 413 whose JSON error names the limit.
void Expect413(const RawConn::Result& r) {
  EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 413")) << r.bytes;
  EXPECT_NE(r.bytes.find("http_body_bytes_max"), std::string::npos) << r.bytes;
  EXPECT_NE(r.bytes.find("\"error\""), std::string::npos) << r.bytes;
  EXPECT_TRUE(r.closed) << "the connection closes after a 413";
}

TEST(ChatdHttpTest, BodyOverHttpBodyBytesMaxIsAnswered413ThenClosed) {
  Single s({"alice"}, {"--http_body_bytes_max", "1000"});
  const std::string head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  {  // A declared length over the limit, body sent whole.
    RawConn c(s.server->address());
    c.Send(absl::StrCat(head, "Content-Length: 5000\r\n\r\n", std::string(5000, 'x')));
    Expect413(c.ReadUntilClosed(kWait));
  }
  {  // A declared length over Beast's own default (1 MiB), body not sent yet.
    RawConn c(s.server->address());
    c.Send(absl::StrCat(head, "Content-Length: 2000000\r\n\r\n", std::string(100000, 'x')));
    Expect413(c.ReadUntilClosed(kWait));
  }
  {  // A chunked body growing past the limit.
    RawConn c(s.server->address());
    c.Send(absl::StrCat(head, "Transfer-Encoding: chunked\r\n\r\n"));
    for (int i = 0; i < 3; ++i) c.Send(absl::StrCat("258\r\n", std::string(600, 'x'), "\r\n"));
    Expect413(c.ReadUntilClosed(kWait));
  }
  // A body within the limit is served as before.
  auto alice = real::Login(s.server->address(), "alice", "pw");
  EXPECT_TRUE(alice.ok()) << alice.status();
}

// ---- HTTP read deadlines
// -------------------------------------------------------------------------

// Small deadlines, so the test sees them pass; every wait below is bounded well past them.
const std::vector<std::string> kShortHttpDeadlines = {"--http_header_timeout_ms", "300",
                                                      "--http_body_timeout_ms",   "300",
                                                      "--http_idle_timeout_ms",   "300"};
constexpr auto kDeadline = std::chrono::milliseconds(300);
constexpr auto kCloseWait = std::chrono::milliseconds(3000);

// How long until the server closes c (kCloseWait when it does not).
std::chrono::milliseconds TimeToClose(RawConn& c, Clock::time_point since) {
  if (!c.ReadUntilClosed(kCloseWait).closed) return kCloseWait;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since);
}

TEST(ChatdHttpTest, IncompleteHeaderOrBodyAndIdleKeepAliveAreClosedAtTheirDeadlines) {
  Single s({}, kShortHttpDeadlines);
  {  // A header that never completes.
    const auto start = Clock::now();
    RawConn c(s.server->address());
    c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const auto took = TimeToClose(c, start);
    EXPECT_GE(took, kDeadline - std::chrono::milliseconds(50));
    EXPECT_LT(took, std::chrono::milliseconds(2000));
  }
  {  // Slowloris: a byte every 100 ms keeps making progress, and is cut off all the same.
    const auto start = Clock::now();
    RawConn c(s.server->address());
    c.Send("GET /healthz HTTP/1.1\r\nX-Slow: ");
    bool closed = false;
    for (int i = 0; i < 20 && !closed; ++i) {
      c.Send("a");
      closed = c.ReadUntilClosed(std::chrono::milliseconds(100)).closed;
    }
    EXPECT_TRUE(closed);
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
  }
  {  // A body that never completes.
    const auto start = Clock::now();
    RawConn c(s.server->address());
    c.Send("POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}");
    EXPECT_LT(TimeToClose(c, start), std::chrono::milliseconds(2000));
  }
  {  // A kept-alive connection is answered, then closed when no next request comes.
    RawConn c(s.server->address());
    c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const RawConn::Result answer = c.ReadUntilClosed(std::chrono::milliseconds(200));
    EXPECT_TRUE(answer.bytes.starts_with("HTTP/1.1 200")) << answer.bytes;
    EXPECT_FALSE(answer.closed);
    EXPECT_LT(TimeToClose(c, Clock::now()), std::chrono::milliseconds(2000));
  }
  // The server serves on.
  auto res = HttpCall(s.server->address(), "GET", "/healthz", "");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
}

// ---- Token expiry
// --------------------------------------------------------------------------------

TEST(ChatdAuthTest, WebSocketIsClosedWhenItsTokenExpires) {
  Single s({"alice"}, {"--token_ttl_s", "1"});
  const auto alice = s.Login("alice");
  const auto expires = Clock::now() + std::chrono::seconds(1);
  Client a;
  ASSERT_EQ(a.Connect(s.server->address(), alice.token), "");
  // Open while the token holds, closed with a reason once it expires.
  EXPECT_FALSE(a.Next<SessionClosed>(nullptr, std::chrono::milliseconds(300)));
  auto closed = a.Next<SessionClosed>(nullptr, std::chrono::seconds(5));
  ASSERT_TRUE(closed.has_value()) << "the session outlived its token";
  EXPECT_GE(Clock::now(), expires - std::chrono::milliseconds(100));
  EXPECT_EQ(closed->code, Code::kUnauthenticated);
  EXPECT_NE(closed->detail.find("token expired"), std::string::npos) << closed->detail;
  EXPECT_TRUE(a.WaitClosed());
  // A fresh login opens a new session.
  const auto again = s.Login("alice");
  Client a2;
  EXPECT_EQ(a2.Connect(s.server->address(), again.token), "");
}

}  // namespace
}  // namespace chatlab::real::testing
