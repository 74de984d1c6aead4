// The PostgreSQL store's lease (real-transport/storage/postgres_storage.h) with real processes: a
// standby chatd waits for the lease while the owner serves; when the owner is killed (kill -9)
// in the middle of a burst, the standby takes the store over and serves every acknowledged
// message once, the client's resent burst landing exactly once; a paused owner that wakes after
// the takeover is fenced (exits, acknowledging nothing more); a clean shutdown hands the lease
// over at once. Also: two chatd processes on one data directory are refused.
#include <signal.h>

#include <chrono>
#include <cstdio>
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

using std::chrono::milliseconds;
constexpr uint32_t kLeaseMs = 1500;

// An owner and a standby on one PostgreSQL database, sharing the users and the token key (as a
// cluster's processes do), each with its own data directory (so, a different lease owner).
struct OwnerAndStandby {
  OwnerAndStandby() {
    EXPECT_TRUE(pg.error().empty()) << pg.error();
    EXPECT_TRUE(pg.CreateDatabase("chat")) << pg.error();
    for (const char* u : {"alice", "bob"}) {
      EXPECT_EQ(RunCommand({CHATD_BIN, "adduser", "--users_db", shared / "users.db", "--password",
                            "pw", "--pbkdf2_iterations", "1000", u}),
                0);
    }
    const std::vector<std::string> flags = {
        "--users_db", shared / "users.db", "--key_file", shared / "token.key", "--store",
        "postgres", "--store_postgres", pg.ConnInfo("chat"), "--store_lease_ms",
        std::to_string(kLeaseMs), "--user_rate_per_s", "1000000", "--user_burst", "1000000"};
    owner = std::make_unique<Chatd>(owner_dir.path(), FreePort(), flags);
    standby = std::make_unique<Chatd>(standby_dir.path(), FreePort(), flags);
    owner->Start();
    standby->Spawn();
  }
  LoginResult Login(Chatd& at, const std::string& name) {
    auto l = real::Login(at.address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  // The standby waits, saying why, and does not serve.
  void ExpectStandbyWaits() {
    EXPECT_FALSE(standby->WaitHealthy(milliseconds(2 * kLeaseMs)));
    EXPECT_NE(standby->Log().find("store_lease_wait"), std::string::npos) << standby->Log();
  }
  LocalPostgres pg;
  TempDir shared, owner_dir, standby_dir;
  std::unique_ptr<Chatd> owner, standby;
};

TEST(ChatdFailover, AStandbyTakesTheStoreOverWhenItsOwnerIsKilledDuringABurst) {
  OwnerAndStandby env;
  env.ExpectStandbyWaits();
  const auto alice = env.Login(*env.owner, "alice");
  const auto bob = env.Login(*env.owner, "bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  constexpr int kBurst = 2000;  // 500 were all acknowledged before the kill once, under load
  std::map<ClientMsgId, MessageId> acked;
  BurstUntilStopped(env.owner->address(), alice, conv, kBurst,
                    [&] { env.owner->Kill(SIGKILL); }, &acked);
  ASSERT_FALSE(HasFatalFailure());
  const auto killed = Clock::now();
  ASSERT_TRUE(env.standby->WaitHealthy(milliseconds(kLeaseMs + 10000))) << env.standby->Log();
  const double takeover_s = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("takeover after kill -9: %.2f s (lease %u ms)\n", takeover_s, kLeaseMs);
  EXPECT_LT(takeover_s, kLeaseMs / 1000.0 + 5);
  // The client resends its whole outbox to the new owner.
  ResentBurstLandsOnce(env.standby->address(), alice, bob, conv, kBurst, acked);
}

TEST(ChatdFailover, APausedOwnerIsFencedAfterTheTakeoverAndAcknowledgesNothingMore) {
  OwnerAndStandby env;
  const auto alice = env.Login(*env.owner, "alice");
  const auto bob = env.Login(*env.owner, "bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  const auto send_ok = [&](Client& c, ClientMsgId id, const std::string& body) {
    c.Send(SendMessage{id, conv, 0, body});
    auto ack = c.Next<SendAck>(nullptr, std::chrono::seconds(10));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->code, Code::kOk);
  };
  Client on_owner;
  ASSERT_EQ(on_owner.Connect(env.owner->address(), alice.token), "");
  send_ok(on_owner, 1, "before the pause");
  ASSERT_FALSE(HasFatalFailure());

  env.owner->Signal(SIGSTOP);  // paused: it stops renewing its lease
  ASSERT_TRUE(env.standby->WaitHealthy(milliseconds(kLeaseMs + 10000))) << env.standby->Log();
  Client on_standby;
  ASSERT_EQ(on_standby.Connect(env.standby->address(), alice.token), "");
  send_ok(on_standby, 2, "to the new owner");
  ASSERT_FALSE(HasFatalFailure());

  // The old owner wakes with a message waiting: it may commit nothing, so it acks nothing.
  on_owner.Send(SendMessage{3, conv, 0, "to the deposed owner"});
  env.owner->Signal(SIGCONT);
  const std::optional<int> status = env.owner->WaitExit(milliseconds(kLeaseMs + 5000));
  ASSERT_TRUE(status.has_value()) << "the deposed owner kept running";
  EXPECT_EQ(*status, 1);
  EXPECT_NE(env.owner->Log().find("fenced"), std::string::npos) << env.owner->Log();
  while (auto ack = on_owner.Next<SendAck>(nullptr, milliseconds(200))) {
    EXPECT_NE(ack->code, Code::kOk) << "the deposed owner acknowledged message 3";
  }
  const auto seen = HistoryOf(env.standby->address(), bob, conv);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.contains(1));
  EXPECT_TRUE(seen.contains(2));
  EXPECT_FALSE(seen.contains(3));
}

TEST(ChatdFailover, ACleanShutdownHandsTheLeaseOverAtOnce) {
  OwnerAndStandby env;
  env.ExpectStandbyWaits();
  const auto stopped = Clock::now();
  EXPECT_EQ(env.owner->Kill(SIGTERM), 0);
  ASSERT_TRUE(env.standby->WaitHealthy(milliseconds(kLeaseMs + 10000))) << env.standby->Log();
  const double s = std::chrono::duration<double>(Clock::now() - stopped).count();
  std::printf("takeover after a clean shutdown: %.2f s (lease %u ms)\n", s, kLeaseMs);
}

TEST(ChatdFailover, TwoProcessesOnOneDataDirectoryAreRefused) {
  TempDir dir;
  AddUser(dir.path(), "alice");
  Chatd first(dir.path(), FreePort());
  first.Start();
  Chatd second(dir.path(), FreePort());
  second.Spawn();
  const std::optional<int> status = second.WaitExit(milliseconds(10000));
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(second.Log().find("another chatd is running on --data_dir"), std::string::npos)
      << second.Log();
}

}  // namespace
}  // namespace chatlab::real::testing
