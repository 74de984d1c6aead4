// The presence service's contract run against the core's PresenceService (the model the
// simulator runs) and the Redis-backed RedisPresence chatd deploys (docs/engines.md), against a
// redis-server this test starts. Time is the caller's (`now` travels with every message), so the
// two are compared exactly, decay and ranking included: a few cases that state what the contract
// requires, then long random sequences compared answer by answer.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/presence.h"
#include "gtest/gtest.h"
#include "real-transport/engines/redis_presence.h"
#include "tests/real/engine_harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

constexpr NodeId kPresence(4);
constexpr NodeId kA(101), kB(102), kC(103);
constexpr UserId kU1(1), kU2(2), kU3(3), kU4(4);
constexpr TimeUs kHalfLife = PresenceService::kContactHalfLifeUs;

ProtocolConfig Config(PresenceFanout fanout, uint32_t short_list = 16, uint32_t contacts = 256) {
  ProtocolConfig c;
  c.presence_fanout = fanout;
  c.presence_short_list_size = short_list;
  c.presence_contacts_max = contacts;
  return c;
}

std::unique_ptr<ServiceUnderTest> CorePresence(const ProtocolConfig& config) {
  NodeOptions o;
  o.self = kPresence;
  o.config = config;
  return std::make_unique<CoreService>(std::make_unique<PresenceService>(o));
}

Sends Push(NodeId to, std::vector<UserId> recipients, PresenceStatus status) {
  return AsSends({SendToNode{to, PresencePush{std::move(recipients), status}}});
}

class PresenceConformance : public EngineConformance {
 protected:
  void Make(const ProtocolConfig& config) {
    NodeOptions o;
    o.self = kPresence;
    o.config = config;
    impl_ = EngineConformance::Make<RedisPresence>(config, std::make_unique<PresenceService>(o));
  }
  Sends Do(TimeUs now, NodeId from, Message msg) {
    std::optional<Effects> out = impl_->Do(now, from, std::move(msg));
    EXPECT_TRUE(out.has_value()) << "the message was lost";
    return AsSends(out.value_or(Effects{}));
  }
  std::vector<PresenceStatus> Poll(TimeUs now, UserId viewer, std::vector<UserId> users) {
    std::optional<Effects> out = impl_->Do(now, kC, PresenceLookup{9, std::move(users), viewer});
    EXPECT_TRUE(out.has_value() && out->size() == 1);
    if (!out.has_value() || out->size() != 1) return {};
    return std::get<PresenceLookupResult>(std::get<SendToNode>(out->at(0)).msg).statuses;
  }

  std::unique_ptr<ServiceUnderTest> impl_;
};

TEST_P(PresenceConformance, AStatusChangeIsPushedToTheOnlineAudiencePerServer) {
  Make(Config(PresenceFanout::kAll));
  EXPECT_EQ(Do(10, kA, PresenceTouch{kU1, kU2}), Sends{});
  EXPECT_EQ(Do(11, kA, PresenceTouch{kU1, kU3}), Sends{});
  EXPECT_EQ(Do(20, kB, PresenceSet{kU2, true}), Sends{});  // u1, its audience, is offline
  EXPECT_EQ(Do(30, kA, PresenceSet{kU1, true}), Push(kB, {kU2}, {kU1, true, 30, true}));
  EXPECT_EQ(Do(35, kC, PresenceSet{kU1, true}), Sends{});  // moved, not a change
  EXPECT_EQ(Do(40, kA, PresenceSet{kU1, false}), Sends{});  // stale: u1 is on C now
  EXPECT_EQ(Do(50, kC, PresenceSet{kU1, false}), Push(kB, {kU2}, {kU1, false, 50, true}));
  EXPECT_EQ(Poll(60, kU2, {kU1, kU4, UserId()}),
            (std::vector<PresenceStatus>{{kU1, false, 50, true},
                                         {kU4, false, 0, false},
                                         {UserId(), false, 0, false}}));
  // An id beyond what Redis's Lua holds (2^53) is an unknown user, answered under its own id.
  const UserId huge((uint64_t{1} << 53) + 5);
  EXPECT_EQ(Poll(70, huge, {huge, kU1}),
            (std::vector<PresenceStatus>{{huge, false, 0, false}, {kU1, false, 50, false}}));
}

TEST_P(PresenceConformance, TheShortListFollowsActivityAndTellsWhoEntersAndLeaves) {
  Make(Config(PresenceFanout::kShortList, /*short_list=*/1));
  for (UserId u : {kU1, kU2, kU3}) Do(1, kA, PresenceSet{u, true});
  // Each enters the other's (empty) short list, and is told.
  EXPECT_EQ(Do(10, kA, PresenceTouch{kU1, kU2}),
            AsSends({SendToNode{kA, PresencePush{{kU2}, {kU1, true, 1, true}}},
                     SendToNode{kA, PresencePush{{kU1}, {kU2, true, 1, true}}}}));
  // u3, touched later, outranks u2 (whose one touch has decayed a little): u3 enters u1's short
  // list, u2 leaves it (pushed = false: from now on it polls), and u1 enters u3's.
  EXPECT_EQ(Do(20, kA, PresenceTouch{kU1, kU3}),
            AsSends({SendToNode{kA, PresencePush{{kU3}, {kU1, true, 1, true}}},
                     SendToNode{kA, PresencePush{{kU2}, {kU1, true, 1, false}}},
                     SendToNode{kA, PresencePush{{kU1}, {kU3, true, 1, true}}}}));
  EXPECT_EQ(Do(30, kA, PresenceTouch{kU1, kU3}), Sends{});  // no audience changes
  EXPECT_EQ(Poll(40, kU2, {kU1}), (std::vector<PresenceStatus>{{kU1, true, 1, false}}));
  EXPECT_EQ(Poll(40, kU3, {kU1}), (std::vector<PresenceStatus>{{kU1, true, 1, true}}));
}

TEST_P(PresenceConformance, ARefreshSetsOfflineUsersOnlineAndMovesNoOne) {
  Make(Config(PresenceFanout::kAll));
  Do(1, kA, PresenceTouch{kU1, kU2});
  Do(2, kB, PresenceSet{kU2, true});
  Do(3, kC, PresenceSet{kU3, true});
  EXPECT_EQ(Do(10, kA, PresenceRefresh{{kU1, kU3, UserId()}}),
            Push(kB, {kU2}, {kU1, true, 10, true}));
  EXPECT_EQ(Do(20, kA, PresenceRefresh{{kU1}}), Sends{});
  EXPECT_EQ(Poll(30, UserId(), {kU1, kU3}),
            (std::vector<PresenceStatus>{{kU1, true, 10, false}, {kU3, true, 3, false}}));
}

TEST_P(PresenceConformance, AUserNotRefreshedForTheTtlIsOfflineToEveryDecision) {
  ProtocolConfig c = Config(PresenceFanout::kAll);
  c.map_refresh_interval_us = 100;
  c.mapping_ttl_us = 1000;
  Make(c);
  Do(10, kA, PresenceTouch{kU1, kU2});
  Do(20, kA, PresenceSet{kU1, true});
  Do(20, kB, PresenceSet{kU2, true});
  EXPECT_EQ(Do(600, kA, PresenceRefresh{{kU1}}), Sends{});  // renews u1 only
  EXPECT_EQ(Poll(1019, kU3, {kU1, kU2}),
            (std::vector<PresenceStatus>{{kU1, true, 20, false}, {kU2, true, 20, false}}));
  EXPECT_EQ(Poll(1020, kU3, {kU1, kU2}),
            (std::vector<PresenceStatus>{{kU1, true, 20, false}, {kU2, false, 20, false}}));
  // u1 expires too; u2 comes back on C (nobody online to tell), then u1 on C (u2 is told).
  EXPECT_EQ(Do(1600, kC, PresenceRefresh{{kU2}}), Sends{});
  EXPECT_EQ(Do(1601, kC, PresenceSet{kU1, true}), Push(kC, {kU2}, {kU1, true, 1601, true}));
  // A late offline from u2's old server is stale; from C, after u2 expired, it pushes nothing.
  EXPECT_EQ(Do(1700, kB, PresenceSet{kU2, false}), Sends{});
  EXPECT_EQ(Do(2600, kC, PresenceSet{kU2, false}), Sends{});
  EXPECT_EQ(Poll(2600, kU3, {kU2}), (std::vector<PresenceStatus>{{kU2, false, 2600, false}}));
}

TEST_P(PresenceConformance, AFullContactListDropsItsLeastActive) {
  Make(Config(PresenceFanout::kAll, 16, /*contacts=*/2));
  Do(1, kA, PresenceTouch{kU1, kU2});
  Do(2, kA, PresenceTouch{kU1, kU2});
  Do(3, kA, PresenceTouch{kU1, kU3});
  Do(4, kA, PresenceTouch{kU1, kU4});  // u3 (one touch) goes, u2 (two) stays
  EXPECT_EQ(Poll(5, kU2, {kU1}), (std::vector<PresenceStatus>{{kU1, false, 0, true}}));
  EXPECT_EQ(Poll(5, kU3, {kU1}), (std::vector<PresenceStatus>{{kU1, false, 0, false}}));
  EXPECT_EQ(Poll(5, kU4, {kU1}), (std::vector<PresenceStatus>{{kU1, false, 0, true}}));
}

TEST_P(PresenceConformance, MessagesWithoutASenderOrAUserChangeNothing) {
  Make(Config(PresenceFanout::kAll));
  EXPECT_EQ(Do(1, NodeId(), PresenceSet{kU1, true}), Sends{});
  EXPECT_EQ(Do(1, kA, PresenceSet{UserId(), true}), Sends{});
  EXPECT_EQ(Do(1, kA, PresenceTouch{kU1, UserId()}), Sends{});
  EXPECT_EQ(Do(1, kA, PresenceTouch{kU1, kU1}), Sends{});
  EXPECT_EQ(Do(1, NodeId(), PresenceLookup{1, {kU1}, kU2}), Sends{});
  EXPECT_EQ(Do(1, kA, MapRegister{kU1}), Sends{});
  EXPECT_EQ(Poll(2, kU2, {kU1}), (std::vector<PresenceStatus>{{kU1, false, 0, false}}));
}

INSTANTIATE_TEST_SUITE_P(Both, PresenceConformance, ::testing::Values("core", "redis"),
                         [](const auto& info) { return info.param; });

// One random sequence of 3,000 messages from three servers (and some from no one) about eight
// users (id 0 invalid), with time moving 0 to 2 half-lives at a step, through the model and
// Redis: every answer must be the same, decayed rankings and evictions included.
void Differential(const ProtocolConfig& config, uint64_t seed) {
  LocalRedis redis;
  ASSERT_EQ(redis.error(), "");
  auto core = CorePresence(config);
  RedisService<RedisPresence> engine(redis, "diff:", config);
  std::mt19937_64 rng(seed);
  const auto pick = [&](uint64_t n) { return rng() % n; };
  const NodeId servers[] = {kA, kB, kC, NodeId()};
  TimeUs now = 1'700'000'000'000'000;
  size_t pushes = 0, pushed_false = 0;
  for (int i = 0; i < 3000; ++i) {
    if (pick(4) == 0) now += static_cast<TimeUs>(pick(2 * kHalfLife));
    now += static_cast<TimeUs>(pick(1000));
    const NodeId from = servers[pick(20) == 0 ? 3 : pick(3)];
    const UserId user(pick(8)), peer(pick(8));
    std::vector<UserId> users;
    for (uint64_t n = pick(5); n > 0; --n) users.push_back(UserId(pick(8)));
    Message msg;
    switch (pick(6)) {
      case 0: msg = PresenceSet{user, true}; break;
      case 1: msg = PresenceSet{user, false}; break;
      case 2: msg = PresenceRefresh{users}; break;
      case 3: msg = PresenceLookup{static_cast<uint64_t>(i), users, peer}; break;
      default: msg = PresenceTouch{user, peer}; break;
    }
    const std::optional<Effects> want = core->Do(now, from, msg);
    const std::optional<Effects> got = engine.Do(now, from, msg);
    ASSERT_TRUE(got.has_value()) << "message " << i << " lost";
    ASSERT_EQ(AsSends(*got), AsSends(*want))
        << "message " << i << ": " << MessageName(msg) << " from " << from.value;
    for (const Effect& e : *want) {
      if (const auto* p = std::get_if<PresencePush>(&std::get<SendToNode>(e).msg)) {
        pushes++;
        pushed_false += !p->status.pushed;
      }
    }
  }
  EXPECT_GT(pushes, 200u);  // the sequence exercised what it is for
  if (config.presence_fanout == PresenceFanout::kShortList) {
    EXPECT_GT(pushed_false, 10u);  // viewers left short lists
  }
}

TEST(PresenceConformanceDifferential, ShortListWithEvictions) {
  Differential(Config(PresenceFanout::kShortList, /*short_list=*/2, /*contacts=*/4), 4);
}

TEST(PresenceConformanceDifferential, EveryContact) {
  Differential(Config(PresenceFanout::kAll, 16, /*contacts=*/3), 5);
}

// With expiry (mapping_ttl_us 20 ms against steps of about 0.5 ms): users expire and come back
// all through the sequence.
TEST(PresenceConformanceDifferential, WithExpiry) {
  ProtocolConfig c = Config(PresenceFanout::kShortList, /*short_list=*/2, /*contacts=*/4);
  c.map_refresh_interval_us = 5'000;
  c.mapping_ttl_us = 20'000;
  Differential(c, 6);
}

}  // namespace
}  // namespace chatlab::real::testing
