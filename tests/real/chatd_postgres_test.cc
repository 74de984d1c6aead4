// chatd with its store on PostgreSQL (--store postgres), against a server the test starts
// (postgres_harness.h): kill -9 of chatd during a burst loses no acknowledged message and
// stores none twice; PostgreSQL restarted during a burst loses nothing and service resumes;
// gone for longer than store_retry_ms, chatd stops (it never acknowledges what it could not
// commit) and, restarted after the database, serves every acknowledged message; bad
// configuration is refused naming what is wrong.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "real-transport/json_codec.h"
#include "tests/real/harness.h"
#include "tests/real/postgres_harness.h"

namespace chatlab::real::testing {
namespace {

// One chatd on a fresh PostgreSQL database, with alice and bob (password "pw").
struct OnPostgres {
  OnPostgres() {
    EXPECT_TRUE(pg.error().empty()) << pg.error();
    EXPECT_TRUE(pg.CreateDatabase("chat")) << pg.error();
    for (const char* u : {"alice", "bob"}) AddUser(dir.path(), u);
    server = std::make_unique<Chatd>(
        dir.path(), FreePort(),
        std::vector<std::string>{"--store", "postgres", "--store_postgres", pg.ConnInfo("chat"),
                                 "--user_rate_per_s", "1000000", "--user_burst", "1000000"});
    server->Start();
  }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(server->address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  LocalPostgres pg;
  TempDir dir;
  std::unique_ptr<Chatd> server;
};

TEST(ChatdPostgres, KillNineDuringABurstKeepsEveryAckedMessageOnce) {
  OnPostgres env;
  KillNineDuringABurst(*env.server, env.Login("alice"), env.Login("bob"), 1000);
}

// PostgreSQL restarted (stopped as by a crash, started again a second later) during a burst:
// chatd waits for it (store_retry_ms) instead of exiting, acknowledges nothing meanwhile, and
// resumes; the client resends what it has no OK for, as a client's outbox does. Every message
// ends up stored exactly once, every OK is kept (never followed by a refusal or another id).
TEST(ChatdPostgres, ARestartOfTheDatabaseUnderLoadLosesNothing) {
  OnPostgres env;
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  constexpr int kBurst = 300;
  std::map<ClientMsgId, MessageId> acked;
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  const auto send = [&](int i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
  };
  // Records an answer; false if it breaks a promise (an OK followed by a refusal or another id).
  const auto take = [&](const SendAck& ack) {
    auto it = acked.find(ack.client_msg_id);
    if (it != acked.end()) return ack.code == Code::kOk && ack.message_id == it->second;
    if (ack.code == Code::kOk) acked[ack.client_msg_id] = ack.message_id;
    return true;
  };
  constexpr int kBefore = 100;  // acknowledged before the database goes away
  for (int i = 1; i <= kBefore; ++i) send(i);
  while (acked.size() < static_cast<size_t>(kBefore)) {
    auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
    ASSERT_TRUE(ack.has_value());
    ASSERT_TRUE(take(*ack));
  }
  env.pg.Stop();
  for (int i = kBefore + 1; i <= kBurst; ++i) send(i);
  // While the database is down nothing new is acknowledged (an UNAVAILABLE may come back).
  const auto down_until = Clock::now() + std::chrono::seconds(1);
  while (Clock::now() < down_until) {
    if (auto ack = a.Next<SendAck>(nullptr, std::chrono::milliseconds(100))) {
      ASSERT_TRUE(take(*ack));
      ASSERT_NE(ack->code, Code::kOk) << "acknowledged while the database was down";
    }
  }
  ASSERT_TRUE(env.pg.Start());
  const auto restarted = Clock::now();
  std::optional<Clock::duration> resumed;
  const size_t before = acked.size();
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  auto resend_at = Clock::now();
  while (acked.size() < static_cast<size_t>(kBurst) && Clock::now() < deadline) {
    if (Clock::now() >= resend_at) {
      for (int i = 1; i <= kBurst; ++i) {
        if (!acked.contains(static_cast<ClientMsgId>(i))) send(i);
      }
      resend_at = Clock::now() + std::chrono::seconds(2);
    }
    while (auto ack = a.Next<SendAck>(nullptr, std::chrono::milliseconds(100))) {
      ASSERT_TRUE(take(*ack)) << "a promise broken for " << ack->client_msg_id;
      if (!resumed && acked.size() > before) resumed = Clock::now() - restarted;
    }
  }
  ASSERT_EQ(acked.size(), static_cast<size_t>(kBurst)) << env.server->Log();
  ASSERT_TRUE(resumed.has_value());
  std::printf("acks resumed %.3f s after PostgreSQL was started again\n",
              std::chrono::duration<double>(*resumed).count());
  // Reconnect backoff is at most 1 s; with the resend period (2 s) a client sees OKs again
  // within a few seconds of the database.
  EXPECT_LT(*resumed, std::chrono::seconds(10));
  auto health = HttpCall(env.server->address(), "GET", "/healthz", "");
  ASSERT_TRUE(health.ok() && health->status == 200) << "chatd did not survive the restart";
  const auto seen = HistoryOf(env.server->address(), bob, conv);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kBurst));
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen.at(cmid), std::vector<MessageId>{id});
  }
}

// Gone for longer than store_retry_ms: chatd stops rather than acknowledge what it could not
// write, and, restarted after the database, serves every acknowledged message.
TEST(ChatdPostgres, ADatabaseGoneLongerThanTheRetryStopsChatd) {
  OnPostgres env;
  env.server->Kill(SIGKILL);
  env.server = std::make_unique<Chatd>(
      env.dir.path(), FreePort(),
      std::vector<std::string>{"--store", "postgres", "--store_postgres", env.pg.ConnInfo("chat"),
                               "--store_retry_ms", "1000"});
  env.server->Start();
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  std::map<ClientMsgId, MessageId> acked;
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  for (int i = 1; i <= 10; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("before ", i)});
    auto ack = a.Next<SendAck>();
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->code, Code::kOk);
    acked[ack->client_msg_id] = ack->message_id;
  }
  env.pg.Stop();
  a.Send(SendMessage{11, conv, 0, "while the database is down"});
  auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(3));
  EXPECT_TRUE(!ack.has_value() || ack->code != Code::kOk) << "acknowledged without the database";
  EXPECT_TRUE(a.WaitClosed(std::chrono::seconds(15)));
  EXPECT_NE(env.server->Log().find("storage_commit_failed"), std::string::npos)
      << env.server->Log();
  EXPECT_EQ(env.server->Kill(SIGKILL), 1);  // it had exited with status 1
  ASSERT_TRUE(env.pg.Start());
  env.server->Start();
  auto seen = HistoryOf(env.server->address(), bob, conv);
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  EXPECT_FALSE(seen.contains(11)) << "a message whose commit failed became visible";
}

TEST(ChatdPostgres, BadStoreConfigurationIsRefusedAtStart) {
  TempDir dir;
  const std::string log = dir / "start.log";
  const auto run = [&](const std::vector<std::string>& flags) {
    return RunChatdToExit(dir.path(), flags, log);
  };
  EXPECT_NE(run({"--store", "postgres"}), 0);
  EXPECT_NE(run({"--store", "cassandra"}), 0);
  EXPECT_NE(run({"--store", "postgres", "--store_postgres",
                 absl::StrCat("host=127.0.0.1 port=", FreePort(), " dbname=x connect_timeout=2")}),
            0);
  std::ifstream f(log);
  const std::string text(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(text.find("--store postgres needs --store_postgres"), std::string::npos) << text;
  EXPECT_NE(text.find("--store cassandra: expected sqlite or postgres"), std::string::npos)
      << text;
  EXPECT_NE(text.find("cannot connect to PostgreSQL at 127.0.0.1:"), std::string::npos) << text;
}

}  // namespace
}  // namespace chatlab::real::testing
