// Real-socket tests of chatd's TLS (--tls_cert, --tls_key, --tls_ca): HTTPS login, wss://
// delivery, a two-process cluster whose peer links speak TLS, chatcli over TLS, and what is
// refused: a plain request to a TLS listener (closed, the server goes on serving), a client
// that does not trust the server's certificate, a certificate without its key. Each test makes
// its certificates with Debian's openssl command: a self-signed P-256 certificate for
// 127.0.0.1 and localhost, valid one day, which is its own CA.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "real-transport/tls.h"
#include "real-transport/util.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

namespace asio = boost::asio;

// A self-signed certificate and its key, written to dir as <name>.pem and <name>.key.
struct Cert {
  std::string cert;
  std::string key;
};
Cert MakeCert(const TempDir& dir, const std::string& name) {
  Cert c{dir / (name + ".pem"), dir / (name + ".key")};
  const int rc = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.key, "-out", c.cert, "-days", "1",
       "-subj", "/CN=chatd test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
      dir / "openssl.log");
  EXPECT_EQ(rc, 0) << "openssl req failed; see " << dir / "openssl.log";
  return c;
}

std::shared_ptr<asio::ssl::context> Trusting(const Cert& c) {
  auto ctx = ClientTlsContext(c.cert);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

std::vector<std::string> TlsFlags(const Cert& c) {
  return {"--tls_cert", c.cert, "--tls_key", c.key, "--tls_ca", c.cert};
}

TEST(ChatdTls, LoginAndDeliveryOverHttpsAndWss) {
  TempDir dir;
  const Cert cert = MakeCert(dir, "server");
  auto tls = Trusting(cert);
  for (const char* u : {"alice", "bob"}) AddUser(dir.path(), u);
  Chatd server(dir.path(), FreePort(), TlsFlags(cert), tls);
  server.Start();
  auto alice = Login(server.address(), "alice", "pw", tls.get());
  auto bob = Login(server.address(), "bob", "pw", tls.get());
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_TRUE(bob.ok()) << bob.status();
  Client a, b;
  ASSERT_EQ(a.Connect(server.address(), alice->token, tls.get()), "");
  ASSERT_EQ(b.Connect(server.address(), bob->token, tls.get()), "");
  const auto conv = ConversationId::Direct(alice->user, bob->user);
  a.Send(SendMessage{1, conv, 1, "over tls"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->code, Code::kOk);
  auto got = b.Next<Deliver>();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->message.body, "over tls");
}

TEST(ChatdTls, APlainRequestIsClosedAndServiceGoesOn) {
  TempDir dir;
  const Cert cert = MakeCert(dir, "server");
  auto tls = Trusting(cert);
  AddUser(dir.path(), "alice");
  Chatd server(dir.path(), FreePort(), TlsFlags(cert), tls);
  server.Start();
  // Plain HTTP to a TLS listener: no answer is ever an HTTP one, the connection is closed.
  auto plain = HttpCall(server.address(), "GET", "/healthz", "");
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  // A plain WebSocket fails its upgrade too.
  Client c;
  EXPECT_NE(c.Connect(server.address(), ""), "");
  // The server still serves TLS clients, and counts the failed handshakes.
  auto health = HttpCall(server.address(), "GET", "/healthz", "", "", tls.get());
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  EXPECT_TRUE(Eventually([&] {
    auto m = HttpCall(server.address(), "GET", "/metrics", "", "", tls.get());
    return m.ok() && m->body.find("chatd_tls_handshakes_failed_total 0\n") == std::string::npos &&
           m->body.find("chatd_tls_handshakes_failed_total") != std::string::npos;
  }));
  EXPECT_TRUE(Login(server.address(), "alice", "pw", tls.get()).ok());
}

TEST(ChatdTls, AClientThatDoesNotTrustTheCertificateIsRefused) {
  TempDir dir;
  const Cert cert = MakeCert(dir, "server");
  const Cert stranger = MakeCert(dir, "stranger");
  auto tls = Trusting(cert);
  auto wrong = Trusting(stranger);
  AddUser(dir.path(), "alice");
  Chatd server(dir.path(), FreePort(), TlsFlags(cert), tls);
  server.Start();
  auto login = Login(server.address(), "alice", "pw", wrong.get());
  ASSERT_FALSE(login.ok());
  EXPECT_NE(std::string(login.status().message()).find("TLS handshake"), std::string::npos)
      << login.status();
  // The right CA, but a name the certificate does not carry: refused as well.
  HostPort by_name{"127.0.0.2", server.port()};  // not in the SAN (and not listened on)
  EXPECT_FALSE(Login(by_name, "alice", "pw", tls.get()).ok());
}

TEST(ChatdTls, ACertificateWithoutItsKeyIsRefusedAtStart) {
  TempDir dir;
  const Cert cert = MakeCert(dir, "server");
  const Cert other = MakeCert(dir, "other");
  const std::string log = dir / "start.log";
  const auto run = [&](const std::vector<std::string>& flags) {
    return RunChatdToExit(dir.path(), flags, log);
  };
  EXPECT_NE(run({"--tls_cert", cert.cert}), 0);
  EXPECT_NE(run({"--tls_cert", cert.cert, "--tls_key", other.key}), 0);
  EXPECT_NE(run({"--tls_cert", dir / "missing.pem", "--tls_key", cert.key}), 0);
  EXPECT_NE(run({"--tls_ca", cert.cert}), 0);
  std::ifstream f(log);
  const std::string text(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(text.find("needs both --tls_cert and --tls_key"), std::string::npos) << text;
  EXPECT_NE(text.find("does not match the certificate"), std::string::npos) << text;
  EXPECT_NE(text.find("missing.pem: cannot read it: No such file"), std::string::npos) << text;
  EXPECT_NE(text.find("--tls_ca needs --tls_cert"), std::string::npos) << text;
}

// Two processes: alice on the first, bob on the second, so the message and its receipt cross
// the peer links, which verify each other's certificate (IP SAN 127.0.0.1) against --tls_ca.
TEST(ChatdTls, AClusterForwardsOverTlsPeerLinks) {
  TempDir certs;
  const Cert cert = MakeCert(certs, "cluster");
  auto tls = Trusting(cert);
  TempDir shared;
  for (const char* u : {"alice", "bob"}) {
    ASSERT_EQ(RunCommand({CHATD_BIN, "adduser", "--users_db", shared / "users.db", "--password",
                          "pw", "--pbkdf2_iterations", "1000", u}),
              0);
  }
  const std::vector<uint16_t> ports = {FreePort(), FreePort()};
  const std::string list = absl::StrCat("127.0.0.1:", ports[0], ",127.0.0.1:", ports[1]);
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<Chatd>> servers;
  for (int i = 0; i < 2; ++i) {
    dirs.push_back(std::make_unique<TempDir>());
    std::vector<std::string> flags{"--cluster",  list, "--index", std::to_string(i + 1),
                                   "--users_db", shared / "users.db", "--key_file",
                                   shared / "token.key"};
    for (const auto& f : TlsFlags(cert)) flags.push_back(f);
    servers.push_back(std::make_unique<Chatd>(dirs.back()->path(), ports[static_cast<size_t>(i)],
                                              flags, tls));
    servers.back()->Start();
  }
  auto alice = Login(servers[0]->address(), "alice", "pw", tls.get());
  auto bob = Login(servers[1]->address(), "bob", "pw", tls.get());
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_TRUE(bob.ok()) << bob.status();
  Client a, b;
  ASSERT_EQ(a.Connect(servers[0]->address(), alice->token, tls.get()), "");
  ASSERT_EQ(b.Connect(servers[1]->address(), bob->token, tls.get()), "");
  const auto conv = ConversationId::Direct(alice->user, bob->user);
  // The mapping (on process 1) learns over the TLS link where bob is before alice's message
  // needs it.
  const auto received = [&] {
    auto m = HttpCall(servers[0]->address(), "GET", "/metrics", "", "", tls.get());
    if (!m.ok()) return 0.0;
    const std::string name = "\nchatd_node_messages_received_total ";
    const size_t at = m->body.find(name);
    return at == std::string::npos ? 0.0 : std::atof(m->body.c_str() + at + name.size());
  };
  ASSERT_TRUE(Eventually([&] { return received() >= 1; })) << servers[1]->Log();
  a.Send(SendMessage{1, conv, 1, "across"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->code, Code::kOk);
  auto got = b.Next<Deliver>();
  ASSERT_TRUE(got.has_value()) << servers[0]->Log();
  EXPECT_EQ(got->message.body, "across");
}

TEST(ChatdTls, ChatcliSpeaksTls) {
  TempDir dir;
  const Cert cert = MakeCert(dir, "server");
  auto tls = Trusting(cert);
  for (const char* u : {"alice", "bob"}) AddUser(dir.path(), u);
  Chatd server(dir.path(), FreePort(), TlsFlags(cert), tls);
  server.Start();
  const std::string at = absl::StrCat("127.0.0.1:", server.port());
  EXPECT_EQ(RunCommand({CHATCLI_BIN, "--server", at, "--user", "alice", "--password", "pw",
                        "--tls_ca", cert.cert, "send", "bob", "hello", "tls"},
                       dir / "chatcli.log"),
            0);
  // Without --tls it cannot log in, and says so.
  EXPECT_NE(RunCommand({CHATCLI_BIN, "--server", at, "--user", "alice", "--password", "pw",
                        "send", "bob", "plain"},
                       dir / "chatcli.log"),
            0);
  auto bob = Login(server.address(), "bob", "pw", tls.get());
  ASSERT_TRUE(bob.ok());
  auto alice = LookupUser(server.address(), bob->token, "alice", tls.get());
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto history = HttpCall(server.address(), "POST", "/api/get_messages",
                          ToJson(GetMessages{1, ConversationId::Direct(bob->user, *alice), 0, 0}),
                          bob->token, tls.get());
  ASSERT_TRUE(history.ok());
  EXPECT_NE(history->body.find("hello tls"), std::string::npos) << history->body;
}

}  // namespace
}  // namespace chatlab::real::testing
