// Unit tests for the notification service, driven directly with a manual clock.
#include "core/notification.h"

#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr NodeId kSelf(100);
constexpr NodeId kServer(1);
constexpr UserId kAlice(11);
constexpr UserId kBob(12);
constexpr UserId kCarol(13);

NodeOptions Options(uint32_t dedup_max = 100000) {
  NodeOptions options;
  options.self = kSelf;
  options.config.notification_dedup_max = dedup_max;
  return options;
}

Notify ToAlice(MessageId message_id) {
  return Notify{kAlice, ConversationId::Direct(kAlice, kBob), message_id, kBob};
}

// How many PushToDevice effects out holds.
size_t Pushes(const Effects& out) {
  size_t count = 0;
  for (const Effect& e : out) {
    count += std::holds_alternative<PushToDevice>(e) ? 1 : 0;
  }
  return count;
}

class NotificationTest : public ::testing::Test {
 protected:
  // Delivers msg at time 0 and returns the number of pushes it produced.
  size_t Receive(const Message& msg) {
    Effects out;
    service_.OnMessage(0, kServer, msg, out);
    EXPECT_EQ(Pushes(out), out.size());  // pushes are the only effect
    return Pushes(out);
  }

  NotificationService service_{Options()};
};

TEST_F(NotificationTest, StartAndTimersDoNothing) {
  Effects out;
  service_.Start(0, out);
  service_.OnTimer(1, 1, out);
  EXPECT_TRUE(out.empty());
}

TEST_F(NotificationTest, NotifyPushesToDevice) {
  Effects out;
  service_.OnMessage(0, kServer, ToAlice(42), out);
  ASSERT_EQ(out.size(), 1u);
  const auto* push = std::get_if<PushToDevice>(&out[0]);
  ASSERT_NE(push, nullptr);
  EXPECT_EQ(push->user, kAlice);
  EXPECT_EQ(push->conv, ConversationId::Direct(kAlice, kBob));
  EXPECT_EQ(push->message_id, 42u);
  EXPECT_EQ(push->sender, kBob);
  EXPECT_EQ(service_.stats().notifies, 1u);
  EXPECT_EQ(service_.stats().pushed, 1u);
}

TEST_F(NotificationTest, DuplicateNotifyIsDeduplicated) {
  EXPECT_EQ(Receive(ToAlice(42)), 1u);
  EXPECT_EQ(Receive(ToAlice(42)), 0u);
  Notify other_sender = ToAlice(42);
  other_sender.sender = kCarol;  // the sender is not part of the key
  EXPECT_EQ(Receive(other_sender), 0u);
  EXPECT_EQ(service_.stats().notifies, 3u);
  EXPECT_EQ(service_.stats().pushed, 1u);
  EXPECT_EQ(service_.stats().deduplicated, 2u);
}

TEST_F(NotificationTest, EachKeyPartMakesADifferentPush) {
  EXPECT_EQ(Receive(ToAlice(42)), 1u);
  EXPECT_EQ(Receive(ToAlice(43)), 1u);  // another message
  Notify other_user = ToAlice(42);
  other_user.user = kBob;
  EXPECT_EQ(Receive(other_user), 1u);
  Notify other_conv = ToAlice(42);
  other_conv.conv = ConversationId::Group(GroupId(5));
  EXPECT_EQ(Receive(other_conv), 1u);
  EXPECT_EQ(service_.stats().pushed, 4u);
  EXPECT_EQ(service_.stats().deduplicated, 0u);
  EXPECT_EQ(service_.remembered(), 4u);
}

TEST(NotificationLimitTest, FullWindowForgetsOldestFirst) {
  NotificationService service(Options(/*dedup_max=*/2));
  Effects out;
  service.OnMessage(0, kServer, ToAlice(1), out);
  service.OnMessage(0, kServer, ToAlice(2), out);
  service.OnMessage(0, kServer, ToAlice(3), out);  // forgets 1
  EXPECT_EQ(service.remembered(), 2u);
  EXPECT_EQ(Pushes(out), 3u);

  out.clear();
  service.OnMessage(0, kServer, ToAlice(3), out);  // remembered
  service.OnMessage(0, kServer, ToAlice(2), out);  // remembered
  EXPECT_EQ(Pushes(out), 0u);
  EXPECT_EQ(service.stats().deduplicated, 2u);

  service.OnMessage(0, kServer, ToAlice(1), out);  // forgotten: pushed again, forgets 2
  EXPECT_EQ(Pushes(out), 1u);
  service.OnMessage(0, kServer, ToAlice(2), out);  // forgotten now: pushed again, forgets 3
  EXPECT_EQ(Pushes(out), 2u);
  service.OnMessage(0, kServer, ToAlice(1), out);  // still remembered
  EXPECT_EQ(Pushes(out), 2u);
  EXPECT_EQ(service.remembered(), 2u);
  EXPECT_EQ(service.stats().pushed, 5u);
  EXPECT_EQ(service.stats().deduplicated, 3u);
}

TEST(NotificationLimitTest, ZeroWindowPushesEveryNotify) {
  NotificationService service(Options(/*dedup_max=*/0));
  Effects out;
  service.OnMessage(0, kServer, ToAlice(1), out);
  service.OnMessage(0, kServer, ToAlice(1), out);
  EXPECT_EQ(Pushes(out), 2u);
  EXPECT_EQ(service.remembered(), 0u);
  EXPECT_EQ(service.stats().deduplicated, 0u);
}

TEST_F(NotificationTest, UnexpectedAndMalformedMessagesAreCountedAndIgnored) {
  EXPECT_EQ(Receive(MapRegister{kAlice}), 0u);
  EXPECT_EQ(Receive(PresenceSet{kAlice, true}), 0u);
  EXPECT_EQ(Receive(Notify{UserId(), ConversationId::Direct(kAlice, kBob), 1, kBob}), 0u);
  EXPECT_EQ(Receive(Notify{kAlice, ConversationId{}, 1, kBob}), 0u);
  EXPECT_EQ(service_.stats().unexpected_messages, 4u);
  EXPECT_EQ(service_.stats().notifies, 0u);
  EXPECT_EQ(service_.remembered(), 0u);
}

}  // namespace
}  // namespace chatlab
