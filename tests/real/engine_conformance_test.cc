// One contract, two implementations (docs/engines.md): the same cases run against the core's
// user mapping (core/user_mapping.h, what the simulator runs) and the Redis-backed one chatd
// deploys (real-transport/engines/redis_user_mapping.h) against a redis-server this test starts.
// Each case states the effects the contract requires and both must produce exactly them; a
// differential case then drives both with one long random sequence and compares every answer.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "core/user_mapping.h"
#include "gtest/gtest.h"
#include "real-transport/engines/redis_link.h"
#include "real-transport/engines/redis_user_mapping.h"
#include "real-transport/engines/service_engine.h"
#include "real-transport/util.h"
#include "tests/real/engine_harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

constexpr NodeId kMapping(3);
constexpr NodeId kA(101), kB(102), kC(103);
constexpr UserId kAlice(11), kBob(12), kCarol(13);

ProtocolConfig Config(TimeUs ttl_us = 0, uint32_t lookup_users_max = 4096) {
  ProtocolConfig c;
  c.lookup_users_max = lookup_users_max;
  c.mapping_ttl_us = ttl_us;
  c.map_refresh_interval_us = ttl_us / 3;
  return c;
}

// The mapping under test; its clock is the real one, as Redis's is.
class Mapping {
 public:
  explicit Mapping(std::unique_ptr<ServiceUnderTest> impl) : impl_(std::move(impl)) {}
  std::optional<Effects> Do(NodeId from, Message msg) {
    return impl_->Do(NowUs(), from, std::move(msg));
  }
  ServiceUnderTest& impl() { return *impl_; }

 private:
  std::unique_ptr<ServiceUnderTest> impl_;
};

std::unique_ptr<Mapping> CoreMapping(const ProtocolConfig& config) {
  NodeOptions o;
  o.self = kMapping;
  o.config = config;
  return std::make_unique<Mapping>(
      std::make_unique<CoreService>(std::make_unique<UserMappingService>(o)));
}
std::unique_ptr<Mapping> RedisMapping(const LocalRedis& redis, const std::string& prefix,
                                      const ProtocolConfig& config) {
  return std::make_unique<Mapping>(
      std::make_unique<RedisService<RedisUserMapping>>(redis, prefix, config));
}

class MappingConformance : public EngineConformance {
 protected:
  std::unique_ptr<Mapping> Make(const ProtocolConfig& config) {
    NodeOptions o;
    o.self = kMapping;
    o.config = config;
    return std::make_unique<Mapping>(
        EngineConformance::Make<RedisUserMapping>(config, std::make_unique<UserMappingService>(o)));
  }
  // The effects of msg, which the implementation must not lose.
  static Effects Must(Mapping& m, NodeId from, Message msg) {
    std::optional<Effects> out = m.Do(from, std::move(msg));
    EXPECT_TRUE(out.has_value()) << "the message was lost";
    return out.value_or(Effects{});
  }
  static std::vector<UserLocation> Where(Mapping& m, std::vector<UserId> users) {
    const Effects out = Must(m, kC, MapLookup{42, std::move(users)});
    EXPECT_EQ(out.size(), 1u);
    if (out.size() != 1) return {};
    const auto& send = std::get<SendToNode>(out[0]);
    EXPECT_EQ(send.to, kC);
    return std::get<MapLookupResult>(send.msg).locations;
  }
  static Sends Displaced(NodeId to, UserId user, NodeId now_on) {
    return AsSends({SendToNode{to, MapDisplaced{user, now_on}}});
  }
  static Sends Nothing() { return {}; }
  static Sends Do(Mapping& m, NodeId from, Message msg) {
    return AsSends(Must(m, from, std::move(msg)));
  }
};

TEST_P(MappingConformance, RegisterMapsAndLookupAnswersInOrder) {
  auto m = Make(Config());
  EXPECT_EQ(Do(*m, kA, MapRegister{kAlice}), Nothing());
  EXPECT_EQ(Where(*m, {kBob, kAlice, UserId()}),
            (std::vector<UserLocation>{{kBob, NodeId()}, {kAlice, kA}, {UserId(), NodeId()}}));
  EXPECT_EQ(Where(*m, {}), std::vector<UserLocation>{});
}

TEST_P(MappingConformance, ARegisterElsewhereDisplacesTheOldServerOnce) {
  auto m = Make(Config());
  Must(*m, kA, MapRegister{kAlice});
  EXPECT_EQ(Do(*m, kA, MapRegister{kAlice}), Nothing());  // a duplicate displaces no one
  EXPECT_EQ(Do(*m, kB, MapRegister{kAlice}), Displaced(kA, kAlice, kB));
  EXPECT_EQ(Where(*m, {kAlice}), (std::vector<UserLocation>{{kAlice, kB}}));
}

TEST_P(MappingConformance, OnlyTheMappedServerUnregisters) {
  auto m = Make(Config());
  Must(*m, kA, MapRegister{kAlice});
  Must(*m, kB, MapRegister{kAlice});
  EXPECT_EQ(Do(*m, kA, MapUnregister{kAlice}), Nothing());  // late, from the old server
  EXPECT_EQ(Where(*m, {kAlice}), (std::vector<UserLocation>{{kAlice, kB}}));
  EXPECT_EQ(Do(*m, kB, MapUnregister{kAlice}), Nothing());
  EXPECT_EQ(Where(*m, {kAlice}), (std::vector<UserLocation>{{kAlice, NodeId()}}));
  EXPECT_EQ(Do(*m, kB, MapUnregister{kBob}), Nothing());  // never mapped
}

TEST_P(MappingConformance, ARefreshRestoresAndReportsStaleSessionsWithoutMovingAnyone) {
  auto m = Make(Config());
  Must(*m, kB, MapRegister{kBob});
  EXPECT_EQ(Do(*m, kA, MapRefresh{{kAlice, kBob, UserId(), kCarol}}), Displaced(kA, kBob, kB));
  EXPECT_EQ(Where(*m, {kAlice, kBob, kCarol}),
            (std::vector<UserLocation>{{kAlice, kA}, {kBob, kB}, {kCarol, kA}}));
  EXPECT_EQ(Do(*m, kA, MapRefresh{{kAlice, kCarol}}), Nothing());
  EXPECT_EQ(Do(*m, kA, MapRefresh{{}}), Nothing());
}

TEST_P(MappingConformance, ListsOverTheLookupLimitAreCutToIt) {
  auto m = Make(Config(/*ttl_us=*/0, /*lookup_users_max=*/2));
  Must(*m, kA, MapRefresh{{kAlice, kBob, kCarol}});
  EXPECT_EQ(Where(*m, {kAlice, kBob, kCarol}),
            (std::vector<UserLocation>{{kAlice, kA}, {kBob, kA}}));
}

TEST_P(MappingConformance, MessagesWithoutASenderOrAUserChangeNothing) {
  auto m = Make(Config());
  EXPECT_EQ(Do(*m, NodeId(), MapRegister{kAlice}), Nothing());
  EXPECT_EQ(Do(*m, kA, MapRegister{UserId()}), Nothing());
  EXPECT_EQ(Do(*m, NodeId(), MapLookup{1, {kAlice}}), Nothing());  // nowhere to answer
  EXPECT_EQ(Do(*m, NodeId(), MapRefresh{{kAlice}}), Nothing());
  EXPECT_EQ(Do(*m, kA, Notify{}), Nothing());  // not the mapping's message
  EXPECT_EQ(Where(*m, {kAlice}), (std::vector<UserLocation>{{kAlice, NodeId()}}));
}

// Expiry runs on each implementation's own clock (the model's `now` is the real clock here):
// whole hundreds of milliseconds separate every step from the TTL's edge.
TEST_P(MappingConformance, AMappingNotRefreshedWithinTheTtlExpires) {
  constexpr TimeUs kTtl = 900 * kUsPerMs;
  auto m = Make(Config(kTtl));
  Must(*m, kA, MapRegister{kAlice});
  Must(*m, kA, MapRegister{kBob});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Must(*m, kA, MapRefresh{{kAlice}});
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // bob: 1.2 s, alice: 0.7 s
  EXPECT_EQ(Where(*m, {kAlice, kBob}), (std::vector<UserLocation>{{kAlice, kA}, {kBob, NodeId()}}));
  // An expired mapping displaces no one when its user registers elsewhere.
  EXPECT_EQ(Do(*m, kB, MapRegister{kBob}), Nothing());
}

// Both implementations, one random sequence of 3,000 messages from three servers about eight
// users (ids 0..7, 0 invalid; some senders invalid): every answer must be the same. ttl_us: the
// mapping's TTL (0: none); a TTL far longer than the run takes the TTL's code paths (PX on every
// write, refreshes extending it) without an expiry whose timing the two clocks would decide.
void MappingDifferential(TimeUs ttl_us) {
  LocalRedis redis;
  ASSERT_EQ(redis.error(), "");
  const ProtocolConfig config = Config(ttl_us, /*lookup_users_max=*/5);
  auto core = CoreMapping(config);
  auto engine = RedisMapping(redis, "diff:", config);
  std::mt19937_64 rng(20261204);
  const auto pick = [&](uint64_t n) { return static_cast<uint64_t>(rng() % n); };
  const NodeId servers[] = {kA, kB, kC, NodeId()};
  size_t displacements = 0, lookups = 0;
  for (int i = 0; i < 3000; ++i) {
    const NodeId from = servers[pick(16) == 0 ? 3 : pick(3)];
    const UserId user(pick(8));
    std::vector<UserId> users;
    for (uint64_t n = pick(8); n > 0; --n) users.push_back(UserId(pick(8)));
    Message msg;
    switch (pick(4)) {
      case 0:
        msg = MapRegister{user};
        break;
      case 1:
        msg = MapUnregister{user};
        break;
      case 2:
        msg = MapRefresh{users};
        break;
      default:
        msg = MapLookup{static_cast<uint64_t>(i), users};
        break;
    }
    const std::optional<Effects> want = core->Do(from, msg);
    const std::optional<Effects> got = engine->Do(from, msg);
    ASSERT_TRUE(got.has_value()) << "message " << i << " lost";
    ASSERT_EQ(AsSends(*got), AsSends(*want))
        << "message " << i << ": " << MessageName(msg) << " from " << from.value;
    for (const Effect& e : *want) {
      const auto* send = std::get_if<SendToNode>(&e);
      if (send == nullptr) continue;
      displacements += std::holds_alternative<MapDisplaced>(send->msg);
      lookups += std::holds_alternative<MapLookupResult>(send->msg);
    }
  }
  // The sequence exercised what it is for.
  EXPECT_GT(displacements, 100u);
  EXPECT_GT(lookups, 500u);
}

TEST(MappingConformanceDifferential, CoreAndRedisAnswerEveryMessageAlike) {
  MappingDifferential(/*ttl_us=*/0);
}

TEST(MappingConformanceDifferential, CoreAndRedisAnswerEveryMessageAlikeWithATtl) {
  MappingDifferential(/*ttl_us=*/600'000'000);
}

// Redis down: nothing is answered (the message is lost, as on a network), nothing hangs, and
// the link reconnects by itself to the restarted server.
TEST(MappingOnRedis, MessagesWhileRedisIsDownAreLostAndTheLinkRecovers) {
  LocalRedis redis;
  ASSERT_EQ(redis.error(), "");
  RedisService<RedisUserMapping> impl(redis, "down:", Config());
  const auto engine = [&](NodeId from, Message msg) { return impl.Do(NowUs(), from, msg); };
  ASSERT_TRUE(engine(kA, MapRegister{kAlice}).has_value());
  redis.Kill();
  EXPECT_FALSE(engine(kA, MapLookup{1, {kAlice}}).has_value());
  EXPECT_GE(impl.engine().stats().failed, 1u);
  redis.Start();
  ASSERT_EQ(redis.error(), "");
  std::optional<Effects> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!out && std::chrono::steady_clock::now() < deadline) {
    out = engine(kA, MapLookup{2, {kAlice}});
  }
  ASSERT_TRUE(out.has_value());
  // The restarted server is empty: alice is unmapped until her server refreshes.
  EXPECT_EQ(std::get<MapLookupResult>(std::get<SendToNode>(out->at(0)).msg).locations,
            (std::vector<UserLocation>{{kAlice, NodeId()}}));
}

INSTANTIATE_TEST_SUITE_P(Both, MappingConformance, ::testing::Values("core", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace chatlab::real::testing
