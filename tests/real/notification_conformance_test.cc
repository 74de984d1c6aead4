// The notification service's contract run against the core's NotificationService and the
// Redis-backed RedisNotification chatd deploys (docs/engines.md), against a redis-server this
// test starts: a phone buzzes once per message, within a window of notification_dedup_max keys
// shared by every process, oldest forgotten first.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/notification.h"
#include "gtest/gtest.h"
#include "real-transport/engines/redis_notification.h"
#include "tests/real/engine_harness.h"
#include "tests/real/redis_harness.h"

namespace chatlab::real::testing {
namespace {

constexpr NodeId kNotification(5);
constexpr NodeId kA(101), kB(102);
constexpr UserId kU1(1), kU2(2);

ProtocolConfig Config(uint32_t window) {
  ProtocolConfig c;
  c.notification_dedup_max = window;
  return c;
}

std::unique_ptr<ServiceUnderTest> CoreNotification(const ProtocolConfig& config) {
  NodeOptions o;
  o.self = kNotification;
  o.config = config;
  return std::make_unique<CoreService>(std::make_unique<NotificationService>(o));
}

Sends Pushed(UserId user, ConversationId conv, MessageId id, UserId sender) {
  return AsSends({PushToDevice{user, conv, id, sender}});
}

class NotificationConformance : public EngineConformance {
 protected:
  void Make(const ProtocolConfig& config) {
    NodeOptions o;
    o.self = kNotification;
    o.config = config;
    impl_ = EngineConformance::Make<RedisNotification>(config,
                                                        std::make_unique<NotificationService>(o));
  }
  Sends Do(NodeId from, Message msg) {
    std::optional<Effects> out = impl_->Do(1, from, std::move(msg));
    EXPECT_TRUE(out.has_value()) << "the message was lost";
    return AsSends(out.value_or(Effects{}));
  }

  std::unique_ptr<ServiceUnderTest> impl_;
};

TEST_P(NotificationConformance, OneBuzzPerMessageWhicheverServerAsks) {
  Make(Config(100));
  const auto conv = ConversationId::Direct(kU1, kU2);
  EXPECT_EQ(Do(kA, Notify{kU2, conv, 7, kU1}), Pushed(kU2, conv, 7, kU1));
  EXPECT_EQ(Do(kB, Notify{kU2, conv, 7, kU1}), Sends{});  // another server, same message
  EXPECT_EQ(Do(kA, Notify{kU2, conv, 8, kU1}), Pushed(kU2, conv, 8, kU1));
  EXPECT_EQ(Do(kA, Notify{kU1, conv, 8, kU1}), Pushed(kU1, conv, 8, kU1));  // another user
}

TEST_P(NotificationConformance, TheWindowForgetsItsOldestKeyFirst) {
  Make(Config(2));
  const auto g = ConversationId::Group(GroupId(9));
  Do(kA, Notify{kU1, g, 1, kU2});
  Do(kA, Notify{kU1, g, 2, kU2});
  Do(kA, Notify{kU1, g, 3, kU2});                                     // forgets 1
  EXPECT_EQ(Do(kA, Notify{kU1, g, 3, kU2}), Sends{});                 // still remembered
  EXPECT_EQ(Do(kA, Notify{kU1, g, 1, kU2}), Pushed(kU1, g, 1, kU2));  // a second buzz
}

TEST_P(NotificationConformance, WithoutAWindowEveryNotifyBuzzesAndBadOnesNone) {
  Make(Config(0));
  const auto conv = ConversationId::Direct(kU1, kU2);
  EXPECT_EQ(Do(kA, Notify{kU2, conv, 7, kU1}), Pushed(kU2, conv, 7, kU1));
  EXPECT_EQ(Do(kA, Notify{kU2, conv, 7, kU1}), Pushed(kU2, conv, 7, kU1));
  EXPECT_EQ(Do(kA, Notify{UserId(), conv, 7, kU1}), Sends{});
  EXPECT_EQ(Do(kA, Notify{kU2, ConversationId{}, 7, kU1}), Sends{});
  EXPECT_EQ(Do(kA, MapRegister{kU1}), Sends{});
}

INSTANTIATE_TEST_SUITE_P(Both, NotificationConformance, ::testing::Values("core", "redis"),
                         [](const auto& info) { return info.param; });

// 3,000 Notifies over 4 users, 3 conversations and 6 message ids through a window of 8: every
// answer alike, window evictions included.
TEST(NotificationConformanceDifferential, EveryAnswerAlike) {
  LocalRedis redis;
  ASSERT_EQ(redis.error(), "");
  const ProtocolConfig config = Config(8);
  auto core = CoreNotification(config);
  RedisService<RedisNotification> engine(redis, "diff:", config);
  std::mt19937_64 rng(6);
  const auto pick = [&](uint64_t n) { return rng() % n; };
  const ConversationId convs[] = {ConversationId::Direct(kU1, kU2),
                                  ConversationId::Group(GroupId(3)), ConversationId{}};
  size_t pushes = 0, duplicates = 0;
  for (int i = 0; i < 3000; ++i) {
    const Notify n{UserId(pick(4)), convs[pick(3)], pick(6) + 1, UserId(pick(4))};
    const std::optional<Effects> want = core->Do(1, kA, n);
    const std::optional<Effects> got = engine.Do(1, kB, n);
    ASSERT_TRUE(got.has_value()) << "message " << i << " lost";
    ASSERT_EQ(AsSends(*got), AsSends(*want)) << "message " << i;
    if (n.user.valid() && n.conv.Valid()) (want->empty() ? duplicates : pushes)++;
  }
  EXPECT_GT(pushes, 300u);
  EXPECT_GT(duplicates, 300u);
}

}  // namespace
}  // namespace chatlab::real::testing
