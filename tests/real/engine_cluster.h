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
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "tests/real/harness.h"
#include "tests/real/postgres_harness.h"
#include "tests/real/rabbit_harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {

using std::chrono::milliseconds;
inline constexpr int kRefreshMs = 1000;
inline constexpr int kTtlMs = 3000;

// Slack, in seconds, that a bound on live pushes resuming after an engine restart allows beyond
// the time it must take (the burst's acks, a refresh). A bound, not a speed target: it tells "the
// refresh brought pushes back" from "they came back only after a TTL, or never". Under ASan every
// process runs several times slower and ctest runs the heavy cluster tests side by side (CI saw
// 4.4 s), so the slack grows there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr double kResumeSlackS = 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr double kResumeSlackS = 10;
#else
inline constexpr double kResumeSlackS = 3;
#endif
#else
inline constexpr double kResumeSlackS = 3;
#endif

// What the cluster runs on besides its processes.
struct EngineOptions {
  std::vector<std::string> more;  // more chatd flags, for every process
  // false: the embedded default (the mapping in process 1's memory), the baseline.
  bool redis = true;
  // forwarding=queue with the queue broker on a RabbitMQ of the cluster's own (otherwise
  // forwarding=direct).
  bool rabbit = false;
  // Three store shards, each in its own database on a PostgreSQL of the cluster's own, each
  // process with a standby (Cluster's) that takes its place when it dies: with redis and rabbit,
  // the deployment of `scripts/chatd-up.sh --cluster 3 --shards 3 --engines --standby`.
  bool postgres = false;
};
inline constexpr uint32_t kLeaseMs = 1500;

struct EngineCluster {
  explicit EngineCluster(EngineOptions options = {}) : options_(std::move(options)) {
    EXPECT_EQ(redis.error(), "");
    std::vector<std::string> flags = {"--map_refresh_ms",  std::to_string(kRefreshMs),
                                      "--mapping_ttl_ms",  std::to_string(kTtlMs),
                                      "--user_rate_per_s", "1000000",
                                      "--user_burst",      "1000000"};
    flags.insert(flags.end(), options_.more.begin(), options_.more.end());
    if (options_.redis) {
      redis_address = redis.address();
      flags.insert(flags.end(), {"--redis", redis_address});
    }
    if (options_.rabbit) {
      rabbit = std::make_unique<LocalRabbit>();
      EXPECT_EQ(rabbit->error(), "");
      flags.insert(flags.end(), {"--rabbitmq", rabbit->url()});
    }
    std::function<std::vector<std::string>(int)> per_process;
    if (options_.postgres) {
      postgres = std::make_unique<LocalPostgres>();
      EXPECT_EQ(postgres->error(), "");
      for (int k = 1; k <= 3; ++k) {
        EXPECT_TRUE(postgres->CreateDatabase(absl::StrCat("chat", k))) << postgres->error();
      }
      flags.insert(flags.end(), {"--store_shards", "3", "--store_lease_ms",
                                 std::to_string(kLeaseMs), "--store", "postgres"});
      per_process = [this](int index) {
        return std::vector<std::string>{"--store_postgres",
                                        postgres->ConnInfo(absl::StrCat("chat", index))};
      };
    }
    std::vector<std::string> users;
    for (int i = 1; i <= 16; ++i) users.push_back(absl::StrCat("u", i));
    cluster = std::make_unique<Cluster>(3, options_.rabbit ? "queue" : "direct", users, flags,
                                        per_process, /*standbys=*/options_.postgres);
    taken_over.assign(3, false);
  }
  // Whoever serves process `index`'s place: the process, or its standby once it took over.
  Chatd& process(int index) {
    const auto i = static_cast<size_t>(index - 1);
    return taken_over[i] ? *cluster->standby[i] : *cluster->servers[i];
  }
  // After process `index` was killed: with standbys, waits for its standby to take its place
  // (a fatal failure if it does not within the lease and 10 s); otherwise restarts it from its
  // disk.
  void Recover(int index) {
    const auto i = static_cast<size_t>(index - 1);
    if (options_.postgres && !taken_over[i]) {
      if (!cluster->standby[i]->WaitHealthy(milliseconds(kLeaseMs + 10000))) {
        FAIL() << "process " << index << "'s standby did not take over:\n"
               << cluster->standby[i]->Log();
      }
      taken_over[i] = true;
    } else {
      process(index).Start();
    }
  }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(process(1).address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  EngineOptions options_;
  LocalRedis redis;
  std::string redis_address;                // empty: the embedded baseline
  std::unique_ptr<LocalRabbit> rabbit;      // null: no RabbitMQ
  std::unique_ptr<LocalPostgres> postgres;  // null: the store shards on each process's disk
  std::unique_ptr<Cluster> cluster;
  std::vector<bool> taken_over;  // process i + 1's standby serves its place
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

// An engine restart during a burst across processes: alice (`from`, on process 2) sends kBurst
// messages to bob (`to`, on process 3); once 20 are acknowledged, `restart` runs (and returns when
// the engine answers again). Every message must still be acknowledged OK (one answered
// UNAVAILABLE, a store behind the burst, is resent as a client resends it), then stored exactly
// once under the id its OK gave. Returns the seconds from restart's return until a push to bob
// was live again (negative if none was within `wait`: a failure is recorded), and how long of
// that the burst's remaining acks took (under a sanitizer, seconds: a bound on resuming adds it).
// `live_again`, if given, runs then, with alice and bob still connected.
struct Resumed {
  double seconds = -1;      // from the restart until a push was live again
  double acks_seconds = 0;  // from the restart until the burst's last ack
};
inline Resumed RestartDuringABurst(
    EngineCluster& env, const std::function<void()>& restart, milliseconds wait,
    const std::function<void(const LoginResult& alice, const LoginResult& bob)>& live_again = {},
    const std::string& from = "u1", const std::string& to = "u2") {
  constexpr int kBurst = 2000;
  const auto alice = env.Login(from);
  const auto bob = env.Login(to);
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a, b;
  EXPECT_EQ(a.Connect(env.process(2).address(), alice.token), "");
  EXPECT_EQ(b.Connect(env.process(3).address(), bob.token), "");
  ClientMsgId next = 1'000'000;
  if (SecondsUntilLive(a, b, conv, &next, milliseconds(10000)) < 0) {
    ADD_FAILURE() << "no live push across processes before the restart";
    return {};
  }
  for (int i = 1; i <= kBurst; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("burst ", i)});
  }
  std::map<ClientMsgId, MessageId> acked;
  std::set<ClientMsgId> pending;  // sent, not answered yet
  for (int i = 1; i <= kBurst; ++i) pending.insert(static_cast<ClientMsgId>(i));
  std::vector<ClientMsgId> retry;  // answered UNAVAILABLE (an overloaded store timed out)
  uint32_t round = 0;
  int retried = 0;
  const auto take_ack = [&] {
    if (pending.empty()) {  // resend what was answered UNAVAILABLE, as a client's outbox does
      if (++round > 20) {
        ADD_FAILURE() << retry.size() << " messages still UNAVAILABLE after 20 rounds";
        return false;
      }
      for (ClientMsgId id : retry) {
        a.Send(SendMessage{id, conv, 0, absl::StrCat("burst ", id), round});
        pending.insert(id);
      }
      retried += static_cast<int>(retry.size());
      retry.clear();
    }
    auto ack = a.Next<SendAck>([](const SendAck& s) { return s.client_msg_id <= kBurst; },
                               milliseconds(10000));
    if (!ack) {
      ADD_FAILURE() << "no ack after " << acked.size() << " of " << kBurst;
      return false;
    }
    pending.erase(ack->client_msg_id);
    if (ack->code == Code::kUnavailable) {
      retry.push_back(ack->client_msg_id);
      return true;
    }
    EXPECT_EQ(ack->code, Code::kOk) << "message " << ack->client_msg_id;
    acked[ack->client_msg_id] = ack->message_id;
    return true;
  };
  while (acked.size() < 20) {
    if (!take_ack()) return {};
  }
  restart();
  const auto restarted = Clock::now();
  EXPECT_LT(acked.size(), static_cast<size_t>(kBurst)) << "the restart came too late";
  // An engine's outage never refuses a send: the store acknowledges, the push waits. (A store
  // that falls behind a burst answers UNAVAILABLE, a retry, which the client makes.)
  while (acked.size() < static_cast<size_t>(kBurst)) {
    if (!take_ack()) return {};
  }
  if (retried > 0) std::printf("%d sends answered UNAVAILABLE were sent again\n", retried);
  const double acks_seconds = std::chrono::duration<double>(Clock::now() - restarted).count();
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
  return {resumed < 0 ? -1 : since_restart, acks_seconds};
}

// kill -9 of each process in turn, each during a burst from a user on it, on one cluster (three
// store shards, one per process; its services on engines). Each round:
// while process k is down, two users on the other processes keep chatting live on a
// conversation whose shard is not k's; k restarts from its disk (or, with EngineOptions::postgres,
// its standby takes its place; the time printed from the kill to serving again includes the 20
// live messages, so it is an upper bound); the burst's sender resends its
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
    Clock::time_point killed;
    BurstUntilStopped(
        env.process(k).address(), *carol, burst_conv, kBurst,
        [&] {
          env.process(k).Kill(SIGKILL);
          killed = Clock::now();
        },
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

    env.Recover(k);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    std::printf("process %d's place served again %.2f s after its kill (%s)\n", k,
                std::chrono::duration<double>(Clock::now() - killed).count(),
                env.options_.postgres ? "its standby took over" : "restarted from its disk");
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
