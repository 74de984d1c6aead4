// chatd on engines (docs/engines.md) with real processes: a 3-process cluster whose user mapping
// lives in a redis-server the test starts. A Redis restart (kill -9, empty on return) during a
// burst across processes loses no acknowledged message, stores none twice, and live pushes
// resume once the chat servers refresh their users; a kill -9 of process 1 leaves the mapping
// serving the other processes, whose users keep chatting live.
#include <signal.h>

#include <chrono>
#include <functional>
#include <cstdio>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "tests/real/harness.h"
#include "real-transport/engines/redis_link.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;
constexpr int kRefreshMs = 1000;
constexpr int kTtlMs = 3000;

// with_redis false: the embedded default (the mapping in process 1's memory), the baseline.
struct EngineCluster {
  explicit EngineCluster(const std::vector<std::string>& more = {}, bool with_redis = true) {
    EXPECT_EQ(redis.error(), "");
    std::vector<std::string> flags = {"--map_refresh_ms", std::to_string(kRefreshMs),
        "--mapping_ttl_ms", std::to_string(kTtlMs), "--user_rate_per_s", "1000000",
        "--user_burst", "1000000"};
    flags.insert(flags.end(), more.begin(), more.end());
    if (with_redis) {
      redis_address = redis.address();
      flags.insert(flags.end(), {"--redis", redis_address});
    }
    std::vector<std::string> users;
    for (int i = 1; i <= 12; ++i) users.push_back(absl::StrCat("u", i));
    cluster = std::make_unique<Cluster>(3, "direct", users, flags);
  }
  Chatd& process(int index) { return *cluster->servers[static_cast<size_t>(index - 1)]; }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(process(1).address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  LocalRedis redis;
  std::string redis_address;  // empty: the embedded baseline
  std::unique_ptr<Cluster> cluster;
};

// Sends one probe a time from `from` until `to` receives one live; returns how long that took
// (or a negative value if none arrived within `wait`). Probes are client_msg_ids from *next on.
double SecondsUntilLive(Client& from, Client& to, const ConversationId& conv, ClientMsgId* next,
                        milliseconds wait) {
  const auto start = Clock::now();
  const ClientMsgId first = *next;
  while (Clock::now() - start < wait) {
    from.Send(SendMessage{(*next)++, conv, 0, "probe"});
    if (to.Next<Deliver>([&](const Deliver& d) { return d.message.client_msg_id >= first; },
                         milliseconds(50))) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    }
  }
  return -1;
}

// Whether `viewer`, asking the Web Service at `at`, sees `user` online (nullopt: no answer).
std::optional<bool> SeenOnline(const HostPort& at, const LoginResult& viewer, UserId user) {
  auto res = HttpCall(at, "POST", "/api/presence", ToJson(PresenceQuery{1, {user}}), viewer.token);
  if (!res.ok() || res->status != 200) return std::nullopt;
  auto m = FromJson(res->body, JsonLimits{1 << 20, 16});
  if (!m.ok() || !std::holds_alternative<PresenceResult>(*m)) return std::nullopt;
  const auto& r = std::get<PresenceResult>(*m);
  if (r.code != Code::kOk || r.statuses.size() != 1) return std::nullopt;
  return r.statuses[0].online;
}

TEST(ChatdOnRedis, ARedisRestartDuringABurstLosesNothingAndLivePushesResume) {
  EngineCluster env;
  const auto alice = env.Login("u1");
  const auto bob = env.Login("u2");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a, b;
  ASSERT_EQ(a.Connect(env.process(2).address(), alice.token), "");
  ASSERT_EQ(b.Connect(env.process(3).address(), bob.token), "");
  ClientMsgId next = 1'000'000;
  ASSERT_GE(SecondsUntilLive(a, b, conv, &next, milliseconds(5000)), 0)
      << "no live push across processes through the mapping on Redis";

  constexpr int kBurst = 2000;
  for (int i = 1; i <= kBurst; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
  }
  std::map<ClientMsgId, MessageId> acked;
  const auto take_ack = [&](milliseconds wait) {
    auto ack = a.Next<SendAck>([](const SendAck& s) { return s.client_msg_id <= kBurst; }, wait);
    if (!ack) return false;
    EXPECT_EQ(ack->code, Code::kOk) << "message " << ack->client_msg_id;
    acked[ack->client_msg_id] = ack->message_id;
    return true;
  };
  while (acked.size() < 20) ASSERT_TRUE(take_ack(milliseconds(10000)));
  env.redis.Restart();  // kill -9; the new server is empty
  ASSERT_EQ(env.redis.error(), "");
  const auto restarted = Clock::now();
  ASSERT_LT(acked.size(), static_cast<size_t>(kBurst)) << "the restart came too late";
  // The mapping's outage never refuses a send: the store acknowledges, the push waits.
  while (acked.size() < static_cast<size_t>(kBurst)) ASSERT_TRUE(take_ack(milliseconds(10000)));

  const double resumed = SecondsUntilLive(a, b, conv, &next, milliseconds(kRefreshMs + 5000));
  const double since_restart = std::chrono::duration<double>(Clock::now() - restarted).count();
  std::printf("live pushes resumed %.2f s after the Redis restart (refresh every %d ms)\n",
              since_restart, kRefreshMs);
  ASSERT_GE(resumed, 0) << "no live push after the Redis restart";
  // The restarted Redis was empty; the refreshes told presence who is online again.
  EXPECT_EQ(SeenOnline(env.process(3).address(), bob, alice.user), std::optional<bool>(true));
  EXPECT_LT(since_restart, kRefreshMs / 1000.0 + 3);

  // Every acknowledged message is stored once, under the id its OK gave.
  auto seen = HistoryOf(env.process(1).address(), bob, conv);
  for (const auto& [cmid, id] : acked) {
    ASSERT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  const std::string metrics =
      HttpCall(env.process(2).address(), "GET", "/metrics", "", "").value().body;
  EXPECT_NE(metrics.find("chatlab_engine_connects_total{engine=\"redis\"} 2"), std::string::npos)
      << "the link did not reconnect once:\n" << metrics;
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
  EngineCluster env({"--store_shards", "3"});
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
    })) << "u" << i + 1 << " never seen online";
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
  EngineCluster env({"--store_shards", "3"}, /*with_redis=*/false);
  constexpr int kMessages = 3;
  const int live = LiveWhileProcessOneIsDown(env, kMessages);
  std::printf("mapping in process 1, process 1 down: %d of %d acknowledged messages pushed live\n",
              live, kMessages);
  EXPECT_EQ(live, 0);
}

// kill -9 of each process in turn, each during a burst from a user on it, on one cluster (three
// store shards, one per process; mapping, presence and notification on Redis). Each round:
// while process k is down, two users on the other processes keep chatting live on a
// conversation whose shard is not k's; k restarts from its disk; the burst's sender resends its
// whole outbox (marked, as a client's outbox marks resends) and every message lands exactly
// once, the acknowledged ones under the ids their OKs gave.
TEST(ChatdOnRedis, KillNineOfEachProcessInTurnLosesNothingAndTheOthersStayLive) {
  EngineCluster env({"--store_shards", "3"});
  std::vector<LoginResult> users;
  for (int i = 1; i <= 12; ++i) users.push_back(env.Login(absl::StrCat("u", i)));
  const auto shard_process = [](UserId x, UserId y) {
    return static_cast<int>(StoreShardOf(ConversationId::Direct(x, y), 3)) + 1;
  };
  std::vector<bool> used(users.size());
  // The first user not used yet for which ok holds (each user plays one part, so that client
  // message ids never meet).
  const auto take = [&](const std::function<bool(const LoginResult&)>& ok) -> const LoginResult* {
    for (size_t i = 0; i < users.size(); ++i) {
      if (!used[i] && ok(users[i])) {
        used[i] = true;
        return &users[i];
      }
    }
    ADD_FAILURE() << "no user left";
    return &users.back();
  };
  const auto any = [](const LoginResult&) { return true; };
  constexpr int kBurst = 2000;
  constexpr int kLive = 20;
  for (int k = 1; k <= 3; ++k) {
    SCOPED_TRACE(absl::StrCat("process ", k, " killed"));
    const int pa = k % 3 + 1, pb = (k + 1) % 3 + 1;  // the other two processes
    // A pair on pa and pb whose conversation's shard is not on k.
    const LoginResult* alice = take(any);
    const LoginResult* bob =
        take([&](const LoginResult& u) { return shard_process(alice->user, u.user) != k; });
    const auto pair_conv = ConversationId::Direct(alice->user, bob->user);
    Client a, b;
    ASSERT_EQ(a.Connect(env.process(pa).address(), alice->token), "");
    ASSERT_EQ(b.Connect(env.process(pb).address(), bob->token), "");
    ClientMsgId probe = 1;
    ASSERT_GE(SecondsUntilLive(a, b, pair_conv, &probe, milliseconds(5000)), 0);

    // The burst: from a user on k to a user who is offline (the history is what is checked).
    const LoginResult* carol = take(any);
    const LoginResult* dave = take(any);
    const auto burst_conv = ConversationId::Direct(carol->user, dave->user);
    std::map<ClientMsgId, MessageId> acked;
    BurstUntilStopped(env.process(k).address(), *carol, burst_conv, kBurst,
                      [&] { env.process(k).Kill(SIGKILL); }, &acked);
    ASSERT_FALSE(HasFatalFailure());

    int live = 0;
    for (int i = 0; i < kLive; ++i) {
      const ClientMsgId id = probe++;
      a.Send(SendMessage{id, pair_conv, 0, absl::StrCat("while ", k, " is down")});
      auto ack = a.Next<SendAck>([&](const SendAck& s) { return s.client_msg_id == id; },
                                 milliseconds(10000));
      ASSERT_TRUE(ack.has_value());
      ASSERT_EQ(ack->code, Code::kOk);
      live += b.Next<Deliver>([&](const Deliver& d) { return d.message.client_msg_id == id; },
                              milliseconds(2000))
                  .has_value();
    }
    std::printf("process %d killed after %zu of %d acks: %d of %d messages between processes "
                "%d and %d pushed live meanwhile\n",
                k, acked.size(), kBurst, live, kLive, pa, pb);
    EXPECT_EQ(live, kLive);

    env.process(k).Start();
    ASSERT_FALSE(HasFatalFailure());
    // carol reconnects (to another process: k's clients were cut off) and resends everything.
    ResentBurstLandsOnce(env.process(pa).address(), *carol, *dave, burst_conv, kBurst, acked);
    ASSERT_FALSE(HasFatalFailure());
    const auto pair_seen = HistoryOf(env.process(pa).address(), *bob, pair_conv);
    EXPECT_EQ(pair_seen.size(), static_cast<size_t>(probe - 1));
    for (const auto& [cmid, ids] : pair_seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  }
}

}  // namespace
}  // namespace chatlab::real::testing
