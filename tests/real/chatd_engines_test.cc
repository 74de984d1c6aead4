// chatd on engines (docs/engines.md) with real processes: a 3-process cluster whose user mapping
// lives in a redis-server the test starts. A Redis restart (kill -9, empty on return) during a
// burst across processes loses no acknowledged message, stores none twice, and live pushes
// resume once the chat servers refresh their users; a kill -9 of process 1 leaves the mapping
// serving the other processes, whose users keep chatting live.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "real-transport/engines/redis_link.h"
#include "tests/real/engine_cluster.h"
#include "tests/real/harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;

TEST(ChatdOnRedis, ARedisRestartDuringABurstLosesNothingAndLivePushesResume) {
  EngineCluster env;
  const Resumed resumed = RestartDuringABurst(
      env,
      [&] {
        env.redis.Restart();  // kill -9; the new server is empty
        ASSERT_EQ(env.redis.error(), "");
      },
      milliseconds(kRefreshMs + 5000),
      [&](const LoginResult& alice, const LoginResult& bob) {
        // The restarted Redis was empty; the refreshes told presence who is online again.
        EXPECT_EQ(SeenOnline(env.process(3).address(), bob, alice.user), std::optional<bool>(true));
      });
  std::printf(
      "live pushes resumed %.2f s after the Redis restart (refresh every %d ms; the burst's "
      "remaining acks took %.2f s of it)\n",
      resumed.seconds, kRefreshMs, resumed.acks_seconds);
  ASSERT_GE(resumed.seconds, 0);
  EXPECT_LT(resumed.seconds, resumed.acks_seconds + kRefreshMs / 1000.0 + kResumeSlackS);
  const std::string metrics =
      HttpCall(env.process(2).address(), "GET", "/metrics", "", "").value().body;
  EXPECT_NE(metrics.find("chatlab_engine_connects_total{engine=\"redis\"} 2"), std::string::npos)
      << "the link did not reconnect once:\n"
      << metrics;
}

// Kills process 1 (kill -9) under two processes' users chatting on a conversation whose store
// shard is not process 1's, waits past the mapping's TTL, then sends `messages` one at a time
// and returns how many were pushed live; then restarts process 1 and checks the history.
int LiveWhileProcessOneIsDown(EngineCluster& env, int messages) {
  // Three store shards, one per process: a conversation of shard k lives on process k + 1, so a
  // pair whose conversation is on shard 1 or 2 needs nothing of process 1 but the services.
  std::vector<LoginResult> users;
  for (int i = 1; i <= 8; ++i) users.push_back(env.Login(absl::StrCat("u", i)));
  const LoginResult* alice = nullptr;
  const LoginResult* bob = nullptr;
  for (size_t i = 0; i < users.size() && alice == nullptr; ++i) {
    for (size_t j = i + 1; j < users.size(); ++j) {
      if (StoreShardOf(ConversationId::Direct(users[i].user, users[j].user), 3) != 0) {
        alice = &users[i];
        bob = &users[j];
        break;
      }
    }
  }
  EXPECT_NE(alice, nullptr);
  if (alice == nullptr) return -1;
  const auto conv = ConversationId::Direct(alice->user, bob->user);
  Client a, b;
  EXPECT_EQ(a.Connect(env.process(2).address(), alice->token), "");
  EXPECT_EQ(b.Connect(env.process(3).address(), bob->token), "");
  ClientMsgId next = 1;
  EXPECT_GE(SecondsUntilLive(a, b, conv, &next, milliseconds(5000)), 0);

  env.process(1).Kill(SIGKILL);
  // Past the TTL: a mapping lives as long as the process holding the session refreshes it.
  std::this_thread::sleep_for(milliseconds(kTtlMs + kRefreshMs));
  int live = 0;
  for (int i = 0; i < messages; ++i) {
    const ClientMsgId id = next++;
    a.Send(SendMessage{id, conv, 0, absl::StrCat("while process 1 is down ", i)});
    auto ack = a.Next<SendAck>([&](const SendAck& s) { return s.client_msg_id == id; },
                               milliseconds(10000));
    EXPECT_TRUE(ack.has_value());
    if (!ack) return -1;
    EXPECT_EQ(ack->code, Code::kOk);
    live += b.Next<Deliver>([&](const Deliver& d) { return d.message.client_msg_id == id; },
                            milliseconds(2000))
                .has_value();
  }
  // Presence on Redis answers without process 1, and knows alice (on process 2) is online; bob
  // leaves, and alice's next message becomes a push to his phone, decided on Redis too.
  if (!env.redis_address.empty()) {
    EXPECT_EQ(SeenOnline(env.process(3).address(), *bob, alice->user), std::optional<bool>(true));
    b.Close();
    EXPECT_TRUE(b.WaitClosed());
    EXPECT_TRUE(Eventually([&] {
      return SeenOnline(env.process(2).address(), *alice, bob->user) == std::optional<bool>(false);
    }));
    const ClientMsgId id = next++;
    a.Send(SendMessage{id, conv, 0, "to bob's phone"});
    EXPECT_TRUE(a.Next<SendAck>([&](const SendAck& s) { return s.client_msg_id == id; }));
    EXPECT_TRUE(Eventually([&] {
      auto m = HttpCall(env.process(2).address(), "GET", "/metrics", "", "");
      return m.ok() && m->body.find("chatlab_engine_pushes_total{service=\"notification\"} 1") !=
                           std::string::npos;
    })) << "no push to bob's phone";
  }
  // Process 1 returns (its store shard from its disk) and serves again; nothing acked is lost
  // or doubled (bob's own client would catch the rest up; the history is what it reads).
  env.process(1).Start();
  const auto seen = HistoryOf(env.process(2).address(), *bob, conv);
  EXPECT_EQ(seen.size(), static_cast<size_t>(next - 1));
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  return live;
}

TEST(ChatdOnRedis, KillingProcessOneLeavesTheOthersChattingLive) {
  EngineCluster env({.more = {"--store_shards", "3"}});
  constexpr int kMessages = 48;
  const int live = LiveWhileProcessOneIsDown(env, kMessages);
  std::printf("mapping on Redis, process 1 down: %d of %d acknowledged messages pushed live\n",
              live, kMessages);
  EXPECT_EQ(live, kMessages);
}

// The `on` field of user's presence hash in Redis, as chatd's script stored it (chatd's default
// key prefix); "error: ..." if it cannot be read.
std::string StoredOnline(const LocalRedis& redis, UserId user) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);  // run_one_for waits for the link's answer
  RedisLink::Options o;
  o.address = {"127.0.0.1", redis.port()};
  RedisLink link(io, o);
  std::optional<RedisReply> got;
  link.Call({"HGET", absl::StrCat("chatlab:p:", user.value), "on"},
            [&](RedisReply r) { got = std::move(r); });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!got.has_value() && Clock::now() < deadline) io.run_one_for(milliseconds(10));
  if (!got.has_value()) return "error: no answer";
  if (!got->ok()) return absl::StrCat("error: ", got->status().message());
  return (*got)->str;
}

// A graceful shutdown (SIGTERM) waits for the engines: the offline reports of the users it
// closes reach Redis before the process exits, so another process sees them offline at once
// (a report lost here would show them online until the TTL, or forever without one).
TEST(ChatdOnRedis, AGracefulShutdownReportsItsUsersOfflineToRedisBeforeItExits) {
  EngineCluster env;
  std::vector<LoginResult> users;
  for (int i = 1; i <= 6; ++i) users.push_back(env.Login(absl::StrCat("u", i)));
  std::vector<std::unique_ptr<Client>> on2;
  for (int i = 0; i < 5; ++i) {
    on2.push_back(std::make_unique<Client>());
    ASSERT_EQ(on2.back()->Connect(env.process(2).address(), users[i].token), "");
  }
  const LoginResult& viewer = users[5];
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Eventually([&] {
      return SeenOnline(env.process(3).address(), viewer, users[i].user) == true;
    })) << "u"
        << i + 1 << " never seen online";
  }
  // Redis paused with a command of process 2 in flight (a presence poll), so that the offline
  // reports queue behind it: the shutdown must wait for them, not drop them.
  env.redis.Pause();
  on2[0]->Send(PresenceQuery{7, {viewer.user}});
  std::this_thread::sleep_for(milliseconds(100));
  env.process(2).Signal(SIGTERM);
  std::this_thread::sleep_for(milliseconds(300));
  env.redis.Resume();
  ASSERT_EQ(env.process(2).WaitExit(std::chrono::seconds(10)), 0);
  for (int i = 0; i < 5; ++i) {
    // Read as stored, not as presence answers: the TTL (3 s) would hide a lost report later.
    EXPECT_EQ(StoredOnline(env.redis, users[i].user), "0")
        << "u" << i + 1 << " still online after its server shut down";
    EXPECT_EQ(SeenOnline(env.process(3).address(), viewer, users[i].user), false);
  }
}

// The baseline, and the proof that the test above can fail: with the mapping in process 1's
// memory, its death stops every live push between the others (each lookup times out).
TEST(ChatdOnRedis, WithoutRedisProcessOneIsTheMappingsSinglePointOfFailure) {
  EngineCluster env({.more = {"--store_shards", "3"}, .redis = false});
  constexpr int kMessages = 3;
  const int live = LiveWhileProcessOneIsDown(env, kMessages);
  std::printf("mapping in process 1, process 1 down: %d of %d acknowledged messages pushed live\n",
              live, kMessages);
  EXPECT_EQ(live, 0);
}

// kill -9 of each process in turn, each during a burst, on one cluster
// (tests/real/engine_cluster.h).
TEST(ChatdOnRedis, KillNineOfEachProcessInTurnLosesNothingAndTheOthersStayLive) {
  EngineCluster env({.more = {"--store_shards", "3"}});
  KillEachProcessInTurn(env);
}

}  // namespace
}  // namespace chatlab::real::testing
