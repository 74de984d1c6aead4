// A 3-process chatd cluster on engines (docs/engines.md) for the tests of chatd on Redis and
// RabbitMQ, and the checks they share: how long until a push is live again, what presence
// answers, and the kill -9 schedule (each process in turn, during a burst).
#ifndef CHATLAB_TESTS_REAL_ENGINE_CLUSTER_H_
#define CHATLAB_TESTS_REAL_ENGINE_CLUSTER_H_

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "tests/real/harness.h"
#include "tests/real/rabbit_harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {

using std::chrono::milliseconds;
inline constexpr int kRefreshMs = 1000;
inline constexpr int kTtlMs = 3000;

// with_redis false: the embedded default (the mapping in process 1's memory), the baseline.
// with_rabbit: forwarding=queue with the queue broker on a RabbitMQ of the cluster's own
// (otherwise forwarding=direct).
struct EngineCluster {
  explicit EngineCluster(const std::vector<std::string>& more = {}, bool with_redis = true,
                         bool with_rabbit = false) {
    EXPECT_EQ(redis.error(), "");
    std::vector<std::string> flags = {"--map_refresh_ms",  std::to_string(kRefreshMs),
                                      "--mapping_ttl_ms",  std::to_string(kTtlMs),
                                      "--user_rate_per_s", "1000000",
                                      "--user_burst",      "1000000"};
    flags.insert(flags.end(), more.begin(), more.end());
    if (with_redis) {
      redis_address = redis.address();
      flags.insert(flags.end(), {"--redis", redis_address});
    }
    if (with_rabbit) {
      rabbit = std::make_unique<LocalRabbit>();
      EXPECT_EQ(rabbit->error(), "");
      flags.insert(flags.end(), {"--rabbitmq", rabbit->url()});
    }
    std::vector<std::string> users;
    for (int i = 1; i <= 12; ++i) users.push_back(absl::StrCat("u", i));
    cluster = std::make_unique<Cluster>(3, with_rabbit ? "queue" : "direct", users, flags);
  }
  Chatd& process(int index) { return *cluster->servers[static_cast<size_t>(index - 1)]; }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(process(1).address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  LocalRedis redis;
  std::string redis_address;            // empty: the embedded baseline
  std::unique_ptr<LocalRabbit> rabbit;  // null: no RabbitMQ
  std::unique_ptr<Cluster> cluster;
};

// Sends one probe a time from `from` until `to` receives one live; returns how long that took
// (or a negative value if none arrived within `wait`). Probes are client_msg_ids from *next on.
inline double SecondsUntilLive(Client& from, Client& to, const ConversationId& conv,
                               ClientMsgId* next, milliseconds wait) {
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
inline std::optional<bool> SeenOnline(const HostPort& at, const LoginResult& viewer, UserId user) {
  auto res = HttpCall(at, "POST", "/api/presence", ToJson(PresenceQuery{1, {user}}), viewer.token);
  if (!res.ok() || res->status != 200) return std::nullopt;
  auto m = FromJson(res->body, JsonLimits{1 << 20, 16});
  if (!m.ok() || !std::holds_alternative<PresenceResult>(*m)) return std::nullopt;
  const auto& r = std::get<PresenceResult>(*m);
  if (r.code != Code::kOk || r.statuses.size() != 1) return std::nullopt;
  return r.statuses[0].online;
}

// An engine restart during a burst across processes: alice (u1, on process 2) sends kBurst
// messages to bob (u2, on process 3); once 20 are acknowledged, `restart` runs (and returns when
// the engine answers again). Every message must still be acknowledged OK, then stored exactly
// once under the id its OK gave. Returns the seconds from restart's return until a push to bob
// was live again, or a negative value if none was within `wait` (a failure is recorded).
// `live_again`, if given, runs then, with alice and bob still connected.
inline double RestartDuringABurst(
    EngineCluster& env, const std::function<void()>& restart, milliseconds wait,
    const std::function<void(const LoginResult& alice, const LoginResult& bob)>& live_again = {}) {
  constexpr int kBurst = 2000;
  const auto alice = env.Login("u1");
  const auto bob = env.Login("u2");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a, b;
  EXPECT_EQ(a.Connect(env.process(2).address(), alice.token), "");
  EXPECT_EQ(b.Connect(env.process(3).address(), bob.token), "");
  ClientMsgId next = 1'000'000;
  if (SecondsUntilLive(a, b, conv, &next, milliseconds(10000)) < 0) {
    ADD_FAILURE() << "no live push across processes before the restart";
    return -1;
  }
  for (int i = 1; i <= kBurst; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
  }
  std::map<ClientMsgId, MessageId> acked;
  const auto take_ack = [&] {
    auto ack = a.Next<SendAck>([](const SendAck& s) { return s.client_msg_id <= kBurst; },
                               milliseconds(10000));
    if (!ack) {
      ADD_FAILURE() << "no ack after " << acked.size() << " of " << kBurst;
      return false;
    }
    EXPECT_EQ(ack->code, Code::kOk) << "message " << ack->client_msg_id;
    acked[ack->client_msg_id] = ack->message_id;
    return true;
  };
  while (acked.size() < 20) {
    if (!take_ack()) return -1;
  }
  restart();
  const auto restarted = Clock::now();
  EXPECT_LT(acked.size(), static_cast<size_t>(kBurst)) << "the restart came too late";
  // An engine's outage never refuses a send: the store acknowledges, the push waits.
  while (acked.size() < static_cast<size_t>(kBurst)) {
    if (!take_ack()) return -1;
  }
  const double resumed = SecondsUntilLive(a, b, conv, &next, wait);
  const double since_restart = std::chrono::duration<double>(Clock::now() - restarted).count();
  EXPECT_GE(resumed, 0) << "no live push after the restart";
  if (resumed >= 0 && live_again) live_again(alice, bob);

  auto seen = HistoryOf(env.process(1).address(), bob, conv);
  for (const auto& [cmid, id] : acked) {
    EXPECT_TRUE(seen.contains(cmid)) << "acked message " << cmid << " was lost";
    EXPECT_EQ(seen[cmid], std::vector<MessageId>{id});
  }
  for (const auto& [cmid, ids] : seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  return resumed < 0 ? -1 : since_restart;
}

// kill -9 of each process in turn, each during a burst from a user on it, on one cluster (three
// store shards, one per process; its services on engines). Each round:
// while process k is down, two users on the other processes keep chatting live on a
// conversation whose shard is not k's; k restarts from its disk; the burst's sender resends its
// whole outbox (marked, as a client's outbox marks resends) and every message lands exactly
// once, the acknowledged ones under the ids their OKs gave.
inline void KillEachProcessInTurn(EngineCluster& env) {
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
    BurstUntilStopped(
        env.process(k).address(), *carol, burst_conv, kBurst, [&] { env.process(k).Kill(SIGKILL); },
        &acked);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());

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
    std::printf(
        "process %d killed after %zu of %d acks: %d of %d messages between processes "
        "%d and %d pushed live meanwhile\n",
        k, acked.size(), kBurst, live, kLive, pa, pb);
    EXPECT_EQ(live, kLive);

    env.process(k).Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    // carol reconnects (to another process: k's clients were cut off) and resends everything.
    ResentBurstLandsOnce(env.process(pa).address(), *carol, *dave, burst_conv, kBurst, acked);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const auto pair_seen = HistoryOf(env.process(pa).address(), *bob, pair_conv);
    EXPECT_EQ(pair_seen.size(), static_cast<size_t>(probe - 1));
    for (const auto& [cmid, ids] : pair_seen) EXPECT_EQ(ids.size(), 1u) << cmid;
  }
}

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_ENGINE_CLUSTER_H_
