// chatd with its store on PostgreSQL (--store postgres), against a server the test starts
// (postgres_harness.h): kill -9 of chatd during a burst loses no acknowledged message and
// stores none twice; when PostgreSQL goes away chatd stops (it never acknowledges what it could
// not commit) and, restarted after the database, serves every acknowledged message; bad
// configuration is refused naming what is wrong.
#include <signal.h>

#include <map>
#include <memory>
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
  // Every message of conv as bob reads it: client_msg_id -> the ids it is stored under.
  std::map<ClientMsgId, std::vector<MessageId>> History(const LoginResult& reader,
                                                        const ConversationId& conv) {
    std::map<ClientMsgId, std::vector<MessageId>> seen;
    MessageId after = 0;
    for (;;) {
      auto res = HttpCall(server->address(), "POST", "/api/get_messages",
                          ToJson(GetMessages{1, conv, after, 0}), reader.token);
      EXPECT_TRUE(res.ok() && res->status == 200) << (res.ok() ? res->body : "no answer");
      if (!res.ok() || res->status != 200) break;
      auto m = FromJson(res->body, JsonLimits{64u << 20, 64});
      if (!m.ok()) break;
      const auto& page = std::get<MessagesResult>(*m);
      for (const ChatMessage& msg : page.messages) {
        seen[msg.client_msg_id].push_back(msg.message_id);
        after = msg.message_id;
      }
      if (!page.has_more) break;
    }
    return seen;
  }
  LocalPostgres pg;
  TempDir dir;
  std::unique_ptr<Chatd> server;
};

TEST(ChatdPostgres, KillNineDuringABurstKeepsEveryAckedMessageOnce) {
  OnPostgres env;
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  constexpr int kBurst = 1000;
  std::map<ClientMsgId, MessageId> acked;
  {
    Client a;
    ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
    for (int i = 1; i <= kBurst; ++i) {
      a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
    }
    while (acked.size() < 20) {
      auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
      ASSERT_TRUE(ack.has_value());
      ASSERT_EQ(ack->code, Code::kOk);
      acked[ack->client_msg_id] = ack->message_id;
    }
    env.server->Kill(SIGKILL);
    while (auto ack = a.Next<SendAck>(nullptr, std::chrono::milliseconds(200))) {
      acked[ack->client_msg_id] = ack->message_id;
    }
  }
  ASSERT_LT(acked.size(), static_cast<size_t>(kBurst)) << "the kill came too late to test anything";
  env.server->Start();
  auto seen = env.History(bob, conv);
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  // Resending everything lands each message exactly once; the stored ones are duplicates.
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  for (int i = 1; i <= kBurst; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
  }
  for (int i = 1; i <= kBurst; ++i) {
    auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(30));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->code, Code::kOk);
    if (acked.contains(ack->client_msg_id)) {
      EXPECT_TRUE(ack->duplicate);
      EXPECT_EQ(ack->message_id, acked[ack->client_msg_id]);
    }
  }
  seen = env.History(bob, conv);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kBurst));
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
}

TEST(ChatdPostgres, WhenTheDatabaseGoesAwayChatdStopsAndRestoresAfterIt) {
  OnPostgres env;
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
  env.pg.Stop();  // immediate: like a crash of the database server
  a.Send(SendMessage{11, conv, 0, "while the database is down"});
  // The commit fails: chatd must not acknowledge it, and exits (its memory ran ahead of its
  // disk) rather than serve from memory.
  auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(5));
  EXPECT_TRUE(!ack.has_value() || ack->code != Code::kOk) << "acknowledged without the database";
  EXPECT_TRUE(a.WaitClosed(std::chrono::seconds(15)));
  EXPECT_NE(env.server->Log().find("storage_commit_failed"), std::string::npos)
      << env.server->Log();
  EXPECT_EQ(env.server->Kill(SIGKILL), 1);  // it had exited with status 1
  ASSERT_TRUE(env.pg.Start());
  env.server->Start();
  auto seen = env.History(bob, conv);
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  EXPECT_FALSE(seen.contains(11)) << "a message whose commit failed became visible";
}

TEST(ChatdPostgres, BadStoreConfigurationIsRefusedAtStart) {
  TempDir dir;
  const std::string log = dir / "start.log";
  const auto run = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {CHATD_BIN, "--data_dir", dir.path(), "--listen",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunCommand(argv, log);
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
