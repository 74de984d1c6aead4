// Unit tests for the user mapping service, driven directly with a manual clock.
#include "core/user_mapping.h"

#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr NodeId kSelf(100);
constexpr NodeId kServerA(1);
constexpr NodeId kServerB(2);
constexpr UserId kAlice(11);
constexpr UserId kBob(12);
constexpr UserId kCarol(13);

NodeOptions Options(uint32_t lookup_users_max = 4096) {
  NodeOptions options;
  options.self = kSelf;
  options.config.lookup_users_max = lookup_users_max;
  return options;
}

// The single SendToNode in out, asserting there is exactly one effect.
const SendToNode& OnlySend(const Effects& out) {
  EXPECT_EQ(out.size(), 1u);
  const auto* send = std::get_if<SendToNode>(&out.at(0));
  EXPECT_NE(send, nullptr);
  return *send;
}

class UserMappingTest : public ::testing::Test {
 protected:
  // Delivers msg from `from` at time 0 and returns the effects.
  Effects Receive(NodeId from, Message msg) {
    Effects out;
    mapping_.OnMessage(0, from, msg, out);
    return out;
  }

  UserMappingService mapping_{Options()};
};

TEST_F(UserMappingTest, StartAndTimersDoNothing) {
  Effects out;
  mapping_.Start(0, out);
  mapping_.OnTimer(5, 1, out);
  EXPECT_TRUE(out.empty());
}

TEST_F(UserMappingTest, RegisterMapsUserToSender) {
  EXPECT_TRUE(Receive(kServerA, MapRegister{kAlice}).empty());
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerA);
  EXPECT_EQ(mapping_.online_users(), 1u);
  EXPECT_EQ(mapping_.stats().registers, 1u);
  EXPECT_EQ(mapping_.Lookup(kBob, 0), NodeId());
}

TEST_F(UserMappingTest, DuplicateRegisterOnSameServerDisplacesNobody) {
  Receive(kServerA, MapRegister{kAlice});
  EXPECT_TRUE(Receive(kServerA, MapRegister{kAlice}).empty());
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerA);
  EXPECT_EQ(mapping_.stats().registers, 2u);
  EXPECT_EQ(mapping_.stats().displacements, 0u);
}

TEST_F(UserMappingTest, RegisterElsewhereDisplacesOldServer) {
  Receive(kServerA, MapRegister{kAlice});
  const Effects out = Receive(kServerB, MapRegister{kAlice});
  const SendToNode& send = OnlySend(out);
  EXPECT_EQ(send.to, kServerA);
  ASSERT_TRUE(std::holds_alternative<MapDisplaced>(send.msg));
  EXPECT_EQ(std::get<MapDisplaced>(send.msg), (MapDisplaced{kAlice, kServerB}));
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerB);
  EXPECT_EQ(mapping_.online_users(), 1u);
  EXPECT_EQ(mapping_.stats().displacements, 1u);
}

TEST_F(UserMappingTest, UnregisterFromCurrentServerErases) {
  Receive(kServerA, MapRegister{kAlice});
  EXPECT_TRUE(Receive(kServerA, MapUnregister{kAlice}).empty());
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), NodeId());
  EXPECT_EQ(mapping_.online_users(), 0u);
  EXPECT_EQ(mapping_.stats().unregisters, 1u);
  EXPECT_EQ(mapping_.stats().unregisters_ignored, 0u);
}

TEST_F(UserMappingTest, LateUnregisterFromOldServerIsIgnored) {
  Receive(kServerA, MapRegister{kAlice});
  Receive(kServerB, MapRegister{kAlice});
  EXPECT_TRUE(Receive(kServerA, MapUnregister{kAlice}).empty());
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerB);
  EXPECT_EQ(mapping_.stats().unregisters, 0u);
  EXPECT_EQ(mapping_.stats().unregisters_ignored, 1u);
}

TEST_F(UserMappingTest, UnregisterOfUnmappedUserIsIgnored) {
  Receive(kServerA, MapUnregister{kAlice});
  Receive(kServerA, MapRegister{kBob});
  Receive(kServerA, MapUnregister{kBob});
  Receive(kServerA, MapUnregister{kBob});  // duplicate
  EXPECT_EQ(mapping_.stats().unregisters, 1u);
  EXPECT_EQ(mapping_.stats().unregisters_ignored, 2u);
}

TEST_F(UserMappingTest, LookupAnswersInRequestOrderWithOfflineAsNoNode) {
  Receive(kServerA, MapRegister{kAlice});
  Receive(kServerB, MapRegister{kCarol});
  const Effects out = Receive(kServerB, MapLookup{77, {kCarol, kBob, kAlice, kCarol}});
  const SendToNode& send = OnlySend(out);
  EXPECT_EQ(send.to, kServerB);
  ASSERT_TRUE(std::holds_alternative<MapLookupResult>(send.msg));
  const MapLookupResult expected{
      77, {{kCarol, kServerB}, {kBob, NodeId()}, {kAlice, kServerA}, {kCarol, kServerB}}};
  EXPECT_EQ(std::get<MapLookupResult>(send.msg), expected);
  EXPECT_EQ(mapping_.stats().lookups, 1u);
  EXPECT_EQ(mapping_.stats().users_looked_up, 4u);
  EXPECT_EQ(mapping_.stats().oversized_lookups, 0u);
}

TEST_F(UserMappingTest, EmptyLookupGetsEmptyAnswer) {
  const Effects out = Receive(kServerA, MapLookup{5, {}});
  const SendToNode& send = OnlySend(out);
  EXPECT_EQ(std::get<MapLookupResult>(send.msg), (MapLookupResult{5, {}}));
}

TEST(UserMappingLimitTest, LookupAtLimitIsAnsweredWhole) {
  UserMappingService mapping(Options(/*lookup_users_max=*/3));
  Effects out;
  mapping.OnMessage(0, kServerA, MapLookup{1, {kAlice, kBob, kCarol}}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<MapLookupResult>(std::get<SendToNode>(out[0]).msg).locations.size(), 3u);
  EXPECT_EQ(mapping.stats().oversized_lookups, 0u);
}

TEST(UserMappingLimitTest, OversizedLookupAnswersFirstUsersOnly) {
  UserMappingService mapping(Options(/*lookup_users_max=*/2));
  Effects out;
  mapping.OnMessage(0, kServerA, MapRegister{kBob}, out);
  mapping.OnMessage(0, kServerA, MapLookup{9, {kAlice, kBob, kCarol}}, out);
  ASSERT_EQ(out.size(), 1u);
  const MapLookupResult expected{9, {{kAlice, NodeId()}, {kBob, kServerA}}};
  EXPECT_EQ(std::get<MapLookupResult>(std::get<SendToNode>(out[0]).msg), expected);
  EXPECT_EQ(mapping.stats().oversized_lookups, 1u);
  EXPECT_EQ(mapping.stats().users_looked_up, 2u);
}

TEST(UserMappingLimitTest, FullTableRefusesOnlyNewUsers) {
  UserMappingService mapping(Options(), /*users_max=*/2);
  Effects out;
  mapping.OnMessage(0, kServerA, MapRegister{kAlice}, out);
  mapping.OnMessage(0, kServerA, MapRegister{kBob}, out);
  mapping.OnMessage(0, kServerA, MapRegister{kCarol}, out);
  EXPECT_EQ(mapping.Lookup(kCarol, 0), NodeId());
  EXPECT_EQ(mapping.stats().registers_refused, 1u);
  EXPECT_EQ(mapping.online_users(), 2u);
  EXPECT_TRUE(out.empty());

  // A mapped user still moves (and displaces) at the limit.
  mapping.OnMessage(0, kServerB, MapRegister{kAlice}, out);
  EXPECT_EQ(mapping.Lookup(kAlice, 0), kServerB);
  EXPECT_EQ(mapping.stats().displacements, 1u);

  // Room again after an unregister.
  mapping.OnMessage(0, kServerA, MapUnregister{kBob}, out);
  mapping.OnMessage(0, kServerA, MapRegister{kCarol}, out);
  EXPECT_EQ(mapping.Lookup(kCarol, 0), kServerA);
  EXPECT_EQ(mapping.stats().registers_refused, 1u);
}

TEST_F(UserMappingTest, UnexpectedMessagesAreCountedAndIgnored) {
  EXPECT_TRUE(Receive(kServerA, QueueAck{1}).empty());
  EXPECT_TRUE(Receive(kServerA, MapDisplaced{kAlice, kServerB}).empty());
  EXPECT_TRUE(Receive(kServerA, SendMessage{}).empty());
  EXPECT_EQ(mapping_.stats().unexpected_messages, 3u);
  EXPECT_EQ(mapping_.online_users(), 0u);
}

TEST_F(UserMappingTest, UnknownSenderOrNoUserIsUnexpected) {
  EXPECT_TRUE(Receive(NodeId(), MapRegister{kAlice}).empty());
  EXPECT_TRUE(Receive(kServerA, MapRegister{UserId()}).empty());
  EXPECT_TRUE(Receive(NodeId(), MapUnregister{kAlice}).empty());
  EXPECT_TRUE(Receive(kServerA, MapUnregister{UserId()}).empty());
  EXPECT_TRUE(Receive(NodeId(), MapLookup{1, {kAlice}}).empty());
  EXPECT_EQ(mapping_.stats().unexpected_messages, 5u);
  EXPECT_EQ(mapping_.stats().registers, 0u);
  EXPECT_EQ(mapping_.stats().lookups, 0u);
  EXPECT_EQ(mapping_.online_users(), 0u);
}

// ---- Refresh and expiry (config.map_refresh_interval_us, config.mapping_ttl_us) ----------------

NodeOptions WithTtl(TimeUs ttl_us) {
  NodeOptions options = Options();
  options.config.map_refresh_interval_us = ttl_us / 3;
  options.config.mapping_ttl_us = ttl_us;
  return options;
}

TEST_F(UserMappingTest, RefreshRestoresLostMappingsAndNeverMovesOne) {
  ASSERT_TRUE(Receive(kServerB, MapRegister{kBob}).empty());
  // A: alice (lost, say after a restart) and bob (registered on B since): alice is mapped to A
  // again; bob stays on B and A is told its session is stale.
  const Effects out = Receive(kServerA, MapRefresh{{kAlice, kBob, UserId()}});
  const SendToNode& send = OnlySend(out);
  EXPECT_EQ(send.to, kServerA);
  EXPECT_EQ(std::get<MapDisplaced>(send.msg), (MapDisplaced{kBob, kServerB}));
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerA);
  EXPECT_EQ(mapping_.Lookup(kBob, 0), kServerB);
  EXPECT_EQ(mapping_.stats().refreshes, 1u);
  EXPECT_EQ(mapping_.stats().refreshed_users, 1u);
  EXPECT_EQ(mapping_.stats().unexpected_messages, 1u);  // UserId() skipped
  // Refreshing what is already mapped to the sender changes nothing and says nothing.
  EXPECT_TRUE(Receive(kServerA, MapRefresh{{kAlice}}).empty());
  EXPECT_EQ(mapping_.Lookup(kAlice, 0), kServerA);
  EXPECT_TRUE(Receive(NodeId(), MapRefresh{{kAlice}}).empty());  // no sender: ignored
  EXPECT_EQ(mapping_.stats().unexpected_messages, 2u);
}

TEST_F(UserMappingTest, RefreshOverTheLookupLimitCoversItsFirstUsers) {
  UserMappingService mapping(Options(/*lookup_users_max=*/2));
  Effects out;
  mapping.OnMessage(0, kServerA, MapRefresh{{kAlice, kBob, kCarol}}, out);
  EXPECT_EQ(mapping.Lookup(kBob, 0), kServerA);
  EXPECT_EQ(mapping.Lookup(kCarol, 0), NodeId());
}

TEST(UserMappingTtlTest, AMappingNotRefreshedExpiresAndARefreshedOneStays) {
  constexpr TimeUs kTtl = 3 * kUsPerSecond;
  UserMappingService mapping(WithTtl(kTtl));
  Effects out;
  mapping.OnMessage(0, kServerA, MapRegister{kAlice}, out);
  mapping.OnMessage(0, kServerA, MapRegister{kBob}, out);
  mapping.OnMessage(2 * kUsPerSecond, kServerA, MapRefresh{{kAlice}}, out);
  ASSERT_TRUE(out.empty());
  EXPECT_EQ(mapping.Lookup(kBob, kTtl - 1), kServerA);
  EXPECT_EQ(mapping.Lookup(kBob, kTtl), NodeId());  // expired: reads as absent
  EXPECT_EQ(mapping.Lookup(kAlice, kTtl), kServerA);
  mapping.OnMessage(kTtl, kServerB, MapLookup{7, {kAlice, kBob}}, out);
  const auto& result = std::get<MapLookupResult>(OnlySend(out).msg);
  EXPECT_EQ(result.locations,
            (std::vector<UserLocation>{{kAlice, kServerA}, {kBob, NodeId()}}));
  EXPECT_EQ(mapping.stats().expired, 1u);
  EXPECT_EQ(mapping.online_users(), 1u);  // the expired entry is dropped when read
  out.clear();
  // An expired mapping is no one's: registering elsewhere displaces nobody, and a late
  // unregister from the dead server is ignored.
  mapping.OnMessage(2 * kUsPerSecond + kTtl, kServerB, MapRegister{kAlice}, out);
  EXPECT_TRUE(out.empty());
  mapping.OnMessage(2 * kUsPerSecond + kTtl, kServerA, MapUnregister{kAlice}, out);
  EXPECT_EQ(mapping.Lookup(kAlice, 2 * kUsPerSecond + kTtl), kServerB);
}

TEST(UserMappingTtlTest, ConfigNeedsARefreshShorterThanTheTtl) {
  ProtocolConfig c;
  EXPECT_TRUE(ValidateMappingConfig(c).ok());  // neither: the simulator's default
  c.mapping_ttl_us = kUsPerSecond;
  EXPECT_FALSE(ValidateMappingConfig(c).ok());  // a TTL without refreshes
  c.map_refresh_interval_us = kUsPerSecond;
  EXPECT_FALSE(ValidateMappingConfig(c).ok());
  // One lost refresh must expire nobody: ttl > 2 * (interval + tick) (here 100 ms).
  c.server_tick_us = 100 * kUsPerMs;
  c.map_refresh_interval_us = 400 * kUsPerMs;  // refreshes 500 ms apart: the second lands at 1 s
  const absl::Status st = ValidateMappingConfig(c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("2 * (400000 + 100000) = 1000000"), std::string::npos) << st;
  EXPECT_NE(st.message().find("would expire after one lost refresh"), std::string::npos) << st;
  c.map_refresh_interval_us = 400 * kUsPerMs - 1;  // just enough
  EXPECT_TRUE(ValidateMappingConfig(c).ok());
  c.mapping_ttl_us = 0;  // refreshes alone are fine
  EXPECT_TRUE(ValidateMappingConfig(c).ok());
}

}  // namespace
}  // namespace chatlab
