// Unit tests for the presence service, driven directly with a manual clock.
#include "core/presence.h"

#include <algorithm>
#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr NodeId kSelf(100);
constexpr NodeId kServerA(1);
constexpr NodeId kServerB(2);
constexpr NodeId kServerC(3);
constexpr UserId kU1(1);
constexpr UserId kU2(2);
constexpr UserId kU3(3);
constexpr UserId kU4(4);
constexpr UserId kU5(5);
constexpr UserId kU6(6);
constexpr TimeUs kHalfLife = PresenceService::kContactHalfLifeUs;
// The fixtures run without expiry (mapping_ttl_us 0), where a status does not depend on the time.
constexpr TimeUs kAnyTime = 0;

ProtocolConfig Config(PresenceFanout fanout, uint32_t short_list_size = 16) {
  ProtocolConfig config;
  config.presence_fanout = fanout;
  config.presence_short_list_size = short_list_size;
  return config;
}

NodeOptions Options(const ProtocolConfig& config) {
  NodeOptions options;
  options.self = kSelf;
  options.config = config;
  return options;
}

// Every SendToNode carrying a PresencePush, in effect order.
std::vector<std::pair<NodeId, PresencePush>> Pushes(const Effects& out) {
  std::vector<std::pair<NodeId, PresencePush>> pushes;
  for (const Effect& e : out) {
    const auto* send = std::get_if<SendToNode>(&e);
    if (send != nullptr && std::holds_alternative<PresencePush>(send->msg)) {
      pushes.emplace_back(send->to, std::get<PresencePush>(send->msg));
    }
  }
  return pushes;
}

class PresenceTest : public ::testing::Test {
 protected:
  explicit PresenceTest(ProtocolConfig config = Config(PresenceFanout::kAll))
      : presence_(Options(config)) {}

  Effects Receive(TimeUs now, NodeId from, const Message& msg) {
    Effects out;
    presence_.OnMessage(now, from, msg, out);
    return out;
  }
  void Touch(TimeUs now, UserId user, UserId peer, int times = 1) {
    for (int i = 0; i < times; ++i) {
      EXPECT_TRUE(Receive(now, kServerA, PresenceTouch{user, peer}).empty());
    }
  }
  Effects SetOnline(TimeUs now, NodeId server, UserId user, bool online) {
    return Receive(now, server, PresenceSet{user, online});
  }

  PresenceService presence_;
};

class PresenceShortListTest : public PresenceTest {
 protected:
  PresenceShortListTest() : PresenceTest(Config(PresenceFanout::kShortList, 2)) {}
};

TEST_F(PresenceTest, StartAndTimersDoNothing) {
  Effects out;
  presence_.Start(0, out);
  presence_.OnTimer(1, 1, out);
  EXPECT_TRUE(out.empty());
}

TEST_F(PresenceTest, UnknownUserIsOfflineNeverSeen) {
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, false, 0, false}));
  EXPECT_TRUE(presence_.Audience(kU1, 0).empty());
}

TEST_F(PresenceTest, OnlineThenOfflineSetsLastSeen) {
  SetOnline(100, kServerA, kU1, true);
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 100, false}));
  SetOnline(250, kServerA, kU1, false);
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, false, 250, false}));
  EXPECT_EQ(presence_.stats().sets, 2u);
  EXPECT_EQ(presence_.stats().sets_ignored, 0u);
}

TEST_F(PresenceTest, StaleOfflineFromOldServerIsIgnored) {
  SetOnline(100, kServerA, kU1, true);
  SetOnline(200, kServerB, kU1, true);  // reconnected elsewhere before A noticed
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 200, false}));
  SetOnline(300, kServerA, kU1, false);  // A's session finally closes
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 200, false}));
  EXPECT_EQ(presence_.stats().sets_ignored, 1u);
  SetOnline(400, kServerB, kU1, false);
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, false, 400, false}));
  EXPECT_EQ(presence_.stats().sets, 3u);
}

TEST_F(PresenceTest, RefreshSetsOfflineUsersOnlineAndLeavesOthersWhereTheyAre) {
  // U1 and U2 touch, so each is in the other's audience.
  Touch(10, kU1, kU2);
  SetOnline(20, kServerB, kU2, true);
  SetOnline(30, kServerC, kU3, true);
  // A presence that forgot U1 (say, it restarted after U1 connected to A) learns it from A's
  // refresh, and U2, online on B, is pushed the change; U3, online on C, stays there.
  const Effects out = Receive(100, kServerA, PresenceRefresh{{kU1, kU3, UserId()}});
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 100, false}));
  EXPECT_EQ(presence_.Status(kU3, kAnyTime), (PresenceStatus{kU3, true, 30, false}));
  const auto pushes = Pushes(out);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second.recipients, std::vector<UserId>{kU2});
  EXPECT_EQ(presence_.stats().refreshes, 1u);
  EXPECT_EQ(presence_.stats().refreshed_online, 1u);
  EXPECT_EQ(presence_.stats().unexpected_messages, 1u);  // UserId() skipped
  // Again: nothing changes, nobody is told.
  EXPECT_TRUE(Receive(200, kServerA, PresenceRefresh{{kU1}}).empty());
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 100, false}));
  // The refreshed session is A's: an offline from A applies.
  SetOnline(300, kServerA, kU1, false);
  EXPECT_FALSE(presence_.Status(kU1, kAnyTime).online);
}

TEST_F(PresenceTest, OfflineForUnknownOrOfflineUserIsIgnored) {
  SetOnline(100, kServerA, kU1, false);
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, false, 0, false}));
  SetOnline(100, kServerA, kU2, true);
  SetOnline(200, kServerA, kU2, false);
  SetOnline(300, kServerA, kU2, false);  // duplicate
  EXPECT_EQ(presence_.Status(kU2, kAnyTime), (PresenceStatus{kU2, false, 200, false}));
  EXPECT_EQ(presence_.stats().sets_ignored, 2u);
}

TEST_F(PresenceTest, TouchIsSymmetric) {
  Touch(0, kU1, kU2);
  EXPECT_EQ(presence_.contact_count(kU1), 1u);
  EXPECT_EQ(presence_.contact_count(kU2), 1u);
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, 0), 1.0);
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU2, kU1, 0), 1.0);
  EXPECT_EQ(presence_.ContactScore(kU1, kU3, 0), 0.0);
  EXPECT_EQ(presence_.stats().touches, 1u);
}

TEST_F(PresenceTest, SelfTouchRanksNothing) {
  Touch(0, kU1, kU1);
  EXPECT_EQ(presence_.contact_count(kU1), 0u);
  EXPECT_EQ(presence_.stats().touches, 1u);
  EXPECT_EQ(presence_.stats().unexpected_messages, 0u);
}

TEST_F(PresenceTest, ScoreDecaysWithHalfLife) {
  Touch(0, kU1, kU2);
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, kHalfLife), 0.5);
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, 2 * kHalfLife), 0.25);
  Touch(kHalfLife, kU1, kU2);  // 0.5 + 1
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, kHalfLife), 1.5);
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, 2 * kHalfLife), 0.75);
  // A clock that steps back never inflates a score.
  EXPECT_DOUBLE_EQ(presence_.ContactScore(kU1, kU2, 0), 1.5);
}

TEST_F(PresenceTest, AllFanoutAudienceIsEveryContactAscending) {
  Touch(0, kU1, kU5);
  Touch(0, kU1, kU2, 3);
  Touch(0, kU1, kU4);
  EXPECT_EQ(presence_.Audience(kU1, 0), (std::vector<UserId>{kU2, kU4, kU5}));
  EXPECT_EQ(presence_.Audience(kU5, 0), (std::vector<UserId>{kU1}));
}

TEST_F(PresenceShortListTest, ShortListIsTopContactsByScore) {
  Touch(0, kU1, kU2, 3);
  Touch(0, kU1, kU3, 1);
  Touch(0, kU1, kU4, 2);
  EXPECT_EQ(presence_.Audience(kU1, 0), (std::vector<UserId>{kU2, kU4}));
  // Fewer contacts than the short list: all of them.
  EXPECT_EQ(presence_.Audience(kU3, 0), (std::vector<UserId>{kU1}));
}

TEST_F(PresenceShortListTest, ShortListTiesGoToLowerUserId) {
  Touch(0, kU1, kU5);
  Touch(0, kU1, kU3);
  Touch(0, kU1, kU4);
  EXPECT_EQ(presence_.Audience(kU1, 0), (std::vector<UserId>{kU3, kU4}));
}

TEST_F(PresenceShortListTest, RecentActivityOutranksOldActivity) {
  // Four touches three half-lives ago (now worth 0.5) lose to one touch now.
  Touch(0, kU1, kU2, 4);
  Touch(0, kU1, kU4, 1);
  Touch(3 * kHalfLife, kU1, kU3, 1);
  EXPECT_EQ(presence_.Audience(kU1, 3 * kHalfLife), (std::vector<UserId>{kU2, kU3}));
  Touch(3 * kHalfLife, kU1, kU5, 1);  // ties kU3 at 1.0: both now outrank kU2
  EXPECT_EQ(presence_.Audience(kU1, 3 * kHalfLife), (std::vector<UserId>{kU3, kU5}));
}

TEST_F(PresenceShortListTest, OlderButHeavierActivityStillWins) {
  // Four touches one half-life ago are still worth 2, more than one touch now.
  Touch(0, kU1, kU2, 4);
  Touch(0, kU1, kU4, 1);
  Touch(kHalfLife, kU1, kU3, 1);
  EXPECT_EQ(presence_.Audience(kU1, kHalfLife), (std::vector<UserId>{kU2, kU3}));
}

TEST(PresenceEvictionTest, FullListEvictsLeastActive) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.presence_contacts_max = 3;
  PresenceService presence(Options(config));
  Effects out;
  auto touch = [&](TimeUs now, UserId peer, int times) {
    for (int i = 0; i < times; ++i) {
      presence.OnMessage(now, kServerA, PresenceTouch{kU1, peer}, out);
    }
  };
  touch(0, kU2, 3);
  touch(0, kU3, 2);
  touch(0, kU4, 1);
  touch(0, kU5, 1);  // evicts kU4, the least active
  EXPECT_EQ(presence.Audience(kU1, 0), (std::vector<UserId>{kU2, kU3, kU5}));
  EXPECT_EQ(presence.stats().contacts_evicted, 1u);
  EXPECT_EQ(presence.contact_count(kU1), 3u);
  EXPECT_TRUE(out.empty());
}

TEST(PresenceEvictionTest, EvictionTieGoesToHigherUserId) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.presence_contacts_max = 3;
  PresenceService presence(Options(config));
  Effects out;
  for (UserId peer : {kU4, kU2, kU3, kU5}) {
    presence.OnMessage(0, kServerA, PresenceTouch{kU1, peer}, out);
  }
  // kU2, kU3, kU4 tied at 1.0: kU4 ranks last among them and goes; the newcomer stays.
  EXPECT_EQ(presence.Audience(kU1, 0), (std::vector<UserId>{kU2, kU3, kU5}));
}

TEST(PresenceEvictionTest, EvictionUsesDecayedScores) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.presence_contacts_max = 2;
  PresenceService presence(Options(config));
  Effects out;
  for (int i = 0; i < 3; ++i) {
    presence.OnMessage(0, kServerA, PresenceTouch{kU1, kU2}, out);  // 3 at 0: 0.375 at 3H
  }
  presence.OnMessage(3 * kHalfLife, kServerA, PresenceTouch{kU1, kU3}, out);  // 1 at 3H
  presence.OnMessage(3 * kHalfLife, kServerA, PresenceTouch{kU1, kU4}, out);
  EXPECT_EQ(presence.Audience(kU1, 3 * kHalfLife), (std::vector<UserId>{kU3, kU4}));
  EXPECT_EQ(presence.stats().contacts_evicted, 1u);
}

TEST(PresenceEvictionTest, ZeroContactsMaxTracksNoContacts) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.presence_contacts_max = 0;
  PresenceService presence(Options(config));
  Effects out;
  presence.OnMessage(0, kServerA, PresenceTouch{kU1, kU2}, out);
  EXPECT_EQ(presence.contact_count(kU1), 0u);
  EXPECT_EQ(presence.contact_count(kU2), 0u);
  EXPECT_EQ(presence.stats().contacts_evicted, 0u);
}

TEST_F(PresenceTest, OnlineChangePushedPerServerInOrder) {
  for (UserId peer : {kU2, kU3, kU4, kU5, kU6}) {
    Touch(0, kU1, peer);
  }
  // kU1 is offline and the only audience of each peer: these push nothing.
  EXPECT_TRUE(SetOnline(10, kServerC, kU2, true).empty());
  EXPECT_TRUE(SetOnline(10, kServerB, kU3, true).empty());
  EXPECT_TRUE(SetOnline(10, kServerC, kU4, true).empty());
  EXPECT_TRUE(SetOnline(10, kServerB, kU6, true).empty());  // kU5 stays offline

  const Effects out = SetOnline(20, kServerA, kU1, true);
  const auto pushes = Pushes(out);
  EXPECT_EQ(pushes.size(), out.size());
  const PresenceStatus status{kU1, true, 20, /*pushed=*/true};
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second, (PresencePush{{kU3, kU6}, status}));
  EXPECT_EQ(pushes[1].first, kServerC);
  EXPECT_EQ(pushes[1].second, (PresencePush{{kU2, kU4}, status}));
  EXPECT_EQ(presence_.stats().pushes_sent, 2u);
  EXPECT_EQ(presence_.stats().push_recipients, 4u);

  // Now kU1 is online on A: kU5 coming online is pushed to A.
  const auto push5 = Pushes(SetOnline(30, kServerB, kU5, true));
  ASSERT_EQ(push5.size(), 1u);
  EXPECT_EQ(push5[0].first, kServerA);
  EXPECT_EQ(push5[0].second, (PresencePush{{kU1}, PresenceStatus{kU5, true, 30, true}}));
}

TEST_F(PresenceTest, OfflineChangePushedWithLastSeen) {
  Touch(0, kU1, kU2);
  SetOnline(10, kServerB, kU2, true);
  SetOnline(20, kServerA, kU1, true);
  const auto pushes = Pushes(SetOnline(50, kServerA, kU1, false));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second, (PresencePush{{kU2}, PresenceStatus{kU1, false, 50, true}}));
}

TEST_F(PresenceTest, NoPushWhenOnlineBitDoesNotChange) {
  Touch(0, kU1, kU2);
  SetOnline(10, kServerB, kU2, true);
  EXPECT_EQ(Pushes(SetOnline(20, kServerA, kU1, true)).size(), 1u);
  EXPECT_TRUE(SetOnline(30, kServerA, kU1, true).empty());   // duplicate
  EXPECT_TRUE(SetOnline(40, kServerC, kU1, true).empty());   // moved server
  EXPECT_TRUE(SetOnline(50, kServerA, kU1, false).empty());  // stale offline
  EXPECT_EQ(presence_.Status(kU1, kAnyTime), (PresenceStatus{kU1, true, 40, false}));
  EXPECT_EQ(presence_.stats().pushes_sent, 1u);
}

TEST_F(PresenceShortListTest, PushReachesOnlyOnlineShortListContacts) {
  Touch(0, kU1, kU2, 3);  // short list, stays offline
  Touch(0, kU1, kU3, 2);  // short list, online
  Touch(0, kU1, kU4, 1);  // not on the short list, online: must poll
  SetOnline(10, kServerB, kU3, true);
  SetOnline(10, kServerB, kU4, true);
  const auto pushes = Pushes(SetOnline(20, kServerA, kU1, true));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second.recipients, (std::vector<UserId>{kU3}));
  EXPECT_TRUE(pushes[0].second.status.pushed);
}

TEST_F(PresenceTest, LookupAnswersInRequestOrder) {
  SetOnline(10, kServerA, kU1, true);
  SetOnline(10, kServerA, kU2, true);
  SetOnline(30, kServerA, kU2, false);
  const Effects out = Receive(40, kServerB, PresenceLookup{8, {kU2, kU6, kU1}, UserId()});
  ASSERT_EQ(out.size(), 1u);
  const auto& send = std::get<SendToNode>(out[0]);
  EXPECT_EQ(send.to, kServerB);
  const PresenceLookupResult expected{
      8, {{kU2, false, 30, false}, {kU6, false, 0, false}, {kU1, true, 10, false}}};
  EXPECT_EQ(std::get<PresenceLookupResult>(send.msg), expected);
  EXPECT_EQ(presence_.stats().lookups, 1u);
  EXPECT_EQ(presence_.stats().users_polled, 3u);
  EXPECT_EQ(presence_.stats().oversized_lookups, 0u);
}

TEST(PresenceLimitTest, OversizedLookupAnswersFirstUsersOnly) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.lookup_users_max = 2;
  PresenceService presence(Options(config));
  Effects out;
  presence.OnMessage(0, kServerA, PresenceLookup{3, {kU1, kU2, kU3}, UserId()}, out);
  ASSERT_EQ(out.size(), 1u);
  const auto& result = std::get<PresenceLookupResult>(std::get<SendToNode>(out[0]).msg);
  EXPECT_EQ(result, (PresenceLookupResult{3, {{kU1, false, 0, false}, {kU2, false, 0, false}}}));
  EXPECT_EQ(presence.stats().oversized_lookups, 1u);
  EXPECT_EQ(presence.stats().users_polled, 2u);
}

TEST(PresenceLimitTest, FullUserTableRefusesNewUsersOnly) {
  PresenceService presence(Options(Config(PresenceFanout::kAll)), /*users_max=*/2);
  Effects out;
  presence.OnMessage(10, kServerA, PresenceSet{kU1, true}, out);
  presence.OnMessage(10, kServerA, PresenceSet{kU2, true}, out);
  presence.OnMessage(10, kServerA, PresenceSet{kU3, true}, out);
  EXPECT_EQ(presence.Status(kU3, kAnyTime), (PresenceStatus{kU3, false, 0, false}));
  EXPECT_EQ(presence.stats().users_refused, 1u);
  // A touch with an untracked user records only the tracked side.
  presence.OnMessage(20, kServerA, PresenceTouch{kU1, kU3}, out);
  EXPECT_EQ(presence.contact_count(kU1), 1u);
  EXPECT_EQ(presence.contact_count(kU3), 0u);
  EXPECT_EQ(presence.stats().users_refused, 2u);
  EXPECT_EQ(presence.tracked_users(), 2u);
  // Tracked users keep working.
  presence.OnMessage(30, kServerA, PresenceSet{kU1, false}, out);
  EXPECT_EQ(presence.Status(kU1, kAnyTime), (PresenceStatus{kU1, false, 30, false}));
}

// ---- Who is pushed, who polls ------------------------------------------------------------------

// A lookup answers, per status, whether that user pushes to the viewer; without a viewer, none.
TEST_F(PresenceShortListTest, LookupSaysWhichContactsPushToTheViewer) {
  Touch(0, kU2, kU1, 3);  // kU1 is on kU2's short list (size 2)
  Touch(0, kU3, kU1, 1);  // kU3 has three contacts, kU1 the least active: not on its list
  Touch(0, kU3, kU4, 2);
  Touch(0, kU3, kU5, 2);
  const Effects out = Receive(40, kServerB, PresenceLookup{8, {kU2, kU3, kU6}, kU1});
  ASSERT_EQ(out.size(), 1u);
  const auto& result = std::get<PresenceLookupResult>(std::get<SendToNode>(out[0]).msg);
  ASSERT_EQ(result.statuses.size(), 3u);
  EXPECT_TRUE(result.statuses[0].pushed);   // kU2 pushes to kU1
  EXPECT_FALSE(result.statuses[1].pushed);  // kU3 does not: kU1 polls it
  EXPECT_FALSE(result.statuses[2].pushed);  // unknown user
  EXPECT_EQ(presence_.stats().polled_but_pushed, 1u);
  EXPECT_TRUE(presence_.InAudience(kU3, kU4, 40));
  EXPECT_FALSE(presence_.InAudience(kU3, kU1, 40));
  const Effects anonymous = Receive(40, kServerB, PresenceLookup{9, {kU2}, UserId()});
  const auto& none = std::get<PresenceLookupResult>(std::get<SendToNode>(anonymous[0]).msg);
  EXPECT_FALSE(none.statuses[0].pushed);
}

// InAudience agrees with Audience for every pair, in both modes and across list sizes.
TEST(PresenceAudienceTest, InAudienceAgreesWithAudience) {
  for (const PresenceFanout fanout : AllValues<PresenceFanout>()) {
    PresenceService presence(Options(Config(fanout, 3)));
    Effects out;
    uint64_t seed = 7;
    for (int i = 0; i < 200; ++i) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      const UserId a(1 + (seed >> 33) % 8);
      const UserId b(1 + (seed >> 45) % 8);
      if (a == b) continue;
      presence.OnMessage(i * kUsPerSecond, kServerA, PresenceTouch{a, b}, out);
    }
    const TimeUs now = 500 * kUsPerSecond;
    for (uint64_t u = 1; u <= 8; ++u) {
      const std::vector<UserId> audience = presence.Audience(UserId(u), now);
      for (uint64_t v = 1; v <= 9; ++v) {
        const bool in = std::find(audience.begin(), audience.end(), UserId(v)) != audience.end();
        EXPECT_EQ(presence.InAudience(UserId(u), UserId(v), now), in) << u << " " << v;
      }
    }
  }
}

// A touch that moves a viewer into or out of a short list tells that viewer (if online), so it
// stops or starts polling at once; a touch that changes no audience tells nobody.
TEST_F(PresenceShortListTest, AudienceChangesAreToldToTheViewers) {
  SetOnline(0, kServerB, kU2, true);
  SetOnline(0, kServerB, kU3, true);
  SetOnline(0, kServerC, kU4, true);
  const PresenceStatus u1{kU1, false, 0, /*pushed=*/true};  // kU1 itself stays offline
  // kU2 enters kU1's list (kU1 enters kU2's too, but is offline: nobody to tell).
  auto pushes = Pushes(Receive(kUsPerSecond, kServerA, PresenceTouch{kU1, kU2}));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0], std::make_pair(kServerB, PresencePush{{kU2}, u1}));
  pushes = Pushes(Receive(2 * kUsPerSecond, kServerA, PresenceTouch{kU1, kU3}));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0], std::make_pair(kServerB, PresencePush{{kU3}, u1}));
  // A third contact, the most recent: the list of 2 keeps kU4 and kU3; kU2 (the oldest touch)
  // leaves it and is told to poll, kU4 is told it is pushed.
  pushes = Pushes(Receive(3 * kUsPerSecond, kServerA, PresenceTouch{kU1, kU4}));
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0], std::make_pair(kServerC, PresencePush{{kU4}, u1}));
  PresenceStatus left = u1;
  left.pushed = false;
  EXPECT_EQ(pushes[1], std::make_pair(kServerB, PresencePush{{kU2}, left}));
  EXPECT_EQ(presence_.Audience(kU1, 3 * kUsPerSecond), (std::vector<UserId>{kU3, kU4}));
  // kU4 again: the same list, nobody told.
  EXPECT_TRUE(Pushes(Receive(4 * kUsPerSecond, kServerA, PresenceTouch{kU1, kU4})).empty());
  // Counted on both sides, told or not: 2 + 2 + (2 + 1) + 0.
  EXPECT_EQ(presence_.stats().audience_changes, 7u);
}

// At presence_contacts_max the least active contact is forgotten: it leaves the audience (kAll)
// and is told, so it polls from then on. Hundreds of contacts stay bounded.
TEST(PresenceAudienceTest, AnEvictedContactIsToldToPoll) {
  ProtocolConfig config = Config(PresenceFanout::kAll);
  config.presence_contacts_max = 300;
  PresenceService presence(Options(config));
  Effects out;
  for (uint64_t v = 2; v <= 301; ++v) {  // 300 contacts for kU1, the first one least active
    presence.OnMessage(static_cast<TimeUs>(v), kServerA, PresenceTouch{kU1, UserId(v)}, out);
  }
  EXPECT_EQ(presence.contact_count(kU1), 300u);
  EXPECT_EQ(presence.Audience(kU1, 400).size(), 300u);
  presence.OnMessage(400, kServerB, PresenceSet{UserId(2), true}, out);
  out.clear();
  presence.OnMessage(500, kServerA, PresenceTouch{kU1, UserId(302)}, out);  // evicts u2
  EXPECT_EQ(presence.contact_count(kU1), 300u);
  const auto pushes = Pushes(out);
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second.recipients, (std::vector<UserId>{UserId(2)}));
  EXPECT_FALSE(pushes[0].second.status.pushed);
  EXPECT_FALSE(presence.InAudience(kU1, UserId(2), 500));
}

TEST_F(PresenceTest, UnexpectedAndMalformedMessagesAreCountedAndIgnored) {
  EXPECT_TRUE(Receive(0, kServerA, MapRegister{kU1}).empty());
  EXPECT_TRUE(Receive(0, kServerA, PresencePush{{kU1}, {}}).empty());
  EXPECT_TRUE(Receive(0, NodeId(), PresenceSet{kU1, true}).empty());
  EXPECT_TRUE(Receive(0, kServerA, PresenceSet{UserId(), true}).empty());
  EXPECT_TRUE(Receive(0, kServerA, PresenceTouch{kU1, UserId()}).empty());
  EXPECT_TRUE(Receive(0, NodeId(), PresenceLookup{1, {kU1}, UserId()}).empty());
  EXPECT_EQ(presence_.stats().unexpected_messages, 6u);
  EXPECT_EQ(presence_.stats().sets, 0u);
  EXPECT_EQ(presence_.stats().touches, 0u);
  EXPECT_EQ(presence_.stats().lookups, 0u);
  EXPECT_EQ(presence_.tracked_users(), 0u);
}

}  // namespace
}  // namespace chatlab

namespace chatlab {
namespace {

// ---- Expiry (config.mapping_ttl_us) ------------------------------------------------------------

class PresenceExpiryTest : public PresenceTest {
 protected:
  static ProtocolConfig WithTtl() {
    ProtocolConfig c = Config(PresenceFanout::kAll);
    c.map_refresh_interval_us = 100;
    c.mapping_ttl_us = kTtl;
    return c;
  }
  static constexpr TimeUs kTtl = 1000;
  PresenceExpiryTest() : PresenceTest(WithTtl()) {}
};

// A user whose server neither sets nor refreshes it for mapping_ttl_us reads offline, last seen
// at the last report; a refresh from its server renews it, one from another server does not.
TEST_F(PresenceExpiryTest, AUserNotRefreshedForTheTtlReadsOfflineLastSeenAtTheLastReport) {
  SetOnline(100, kServerA, kU1, true);
  EXPECT_TRUE(presence_.Status(kU1, 100 + kTtl - 1).online);
  EXPECT_EQ(presence_.Status(kU1, 100 + kTtl), (PresenceStatus{kU1, false, 100, false}));
  EXPECT_TRUE(Receive(600, kServerA, PresenceRefresh{{kU1}}).empty());  // renewed, no change
  EXPECT_EQ(presence_.Status(kU1, 600 + kTtl - 1), (PresenceStatus{kU1, true, 100, false}));
  EXPECT_TRUE(Receive(1000, kServerB, PresenceRefresh{{kU1}}).empty());  // online on A: left
  EXPECT_EQ(presence_.Status(kU1, 600 + kTtl), (PresenceStatus{kU1, false, 600, false}));
}

// Every decision reads the expired user offline: a refresh or set brings it back online (and
// its audience is pushed the change); an offline report for it pushes nothing (it was offline
// to everyone already); and it is pushed nothing itself.
TEST_F(PresenceExpiryTest, AnExpiredUserIsOfflineToEveryDecision) {
  Touch(10, kU1, kU2);
  SetOnline(20, kServerA, kU1, true);
  SetOnline(20, kServerB, kU2, true);
  const TimeUs later = 20 + kTtl;  // both expired: A and B died without a word
  EXPECT_TRUE(SetOnline(later, kServerC, kU3, true).empty());
  // U2 comes back (a refresh from B, say, after a partition): U1 is expired, so nobody is told.
  EXPECT_TRUE(Receive(later, kServerB, PresenceRefresh{{kU2}}).empty());
  EXPECT_EQ(presence_.stats().refreshed_online, 1u);
  // U1 comes back on C: U2, online again, is told.
  const auto pushes = Pushes(SetOnline(later + 1, kServerC, kU1, true));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].first, kServerB);
  EXPECT_EQ(pushes[0].second.status, (PresenceStatus{kU1, true, later + 1, true}));
  // U2 expires again; its server's late offline report pushes nothing but records the time.
  const TimeUs gone = later + kTtl;
  EXPECT_TRUE(SetOnline(gone, kServerB, kU2, false).empty());
  EXPECT_EQ(presence_.Status(kU2, gone), (PresenceStatus{kU2, false, gone, false}));
}

}  // namespace
}  // namespace chatlab
