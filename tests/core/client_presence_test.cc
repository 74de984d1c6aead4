// Unit tests of the client's presence reads (core/client.h), the client driven directly: on
// connect it reads every contact; then it polls only the contacts whose last status says they
// do not push to it, in either fan-out mode, with a full read every presence_refresh_interval_us
// and at most lookup_users_max users per query.
#include <cstdint>
#include <vector>

#include "core/client.h"
#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr UserId kMe(1);
constexpr UserId kU2(2);
constexpr UserId kU3(3);
constexpr UserId kU4(4);
constexpr TimeUs kInterval = 60 * kUsPerSecond;
// The client's poll timer of its first connection (core/client.cc: kind 4, payload the epoch).
constexpr uint64_t kPollTimer = (uint64_t{4} << 56) | 1;

std::vector<PresenceQuery> Queries(const Effects& out) {
  std::vector<PresenceQuery> queries;
  for (const Effect& e : out) {
    const auto* send = std::get_if<SendToServer>(&e);
    if (send == nullptr) continue;
    if (const auto* q = std::get_if<PresenceQuery>(&send->msg)) queries.push_back(*q);
  }
  return queries;
}

PresenceStatus Status(UserId user, bool pushed) { return PresenceStatus{user, true, 5, pushed}; }

class ClientPresenceTest : public ::testing::TestWithParam<PresenceFanout> {
 protected:
  // A client with direct chats with kU2, kU3 and kU4, connected at time 0; returns the queries
  // the connect sent.
  std::vector<PresenceQuery> Connect(ProtocolConfig config) {
    config.presence_fanout = GetParam();
    config.client_sync_interval_us = 0;
    client_ = std::make_unique<ClientSession>(ClientSession::Options{kMe, config});
    Effects out;
    for (UserId peer : {kU2, kU3, kU4}) {
      EXPECT_TRUE(client_->Send(0, ConversationId::Direct(kMe, peer), "hi", out).ok());
    }
    client_->Connect(0, NodeId(), out);
    out.clear();
    client_->OnConnected(0, SessionId(1), NodeId(7), out);
    return Queries(out);
  }
  void Answer(const PresenceQuery& q, std::vector<PresenceStatus> statuses) {
    Effects out;
    client_->OnServerMessage(1, PresenceResult{q.request_id, Code::kOk, std::move(statuses)}, out);
  }
  void Push(PresenceStatus status) {
    Effects out;
    client_->OnServerMessage(1, PresenceUpdate{status}, out);
  }
  std::vector<PresenceQuery> Poll(int n) {
    Effects out;
    client_->OnTimer(n * kInterval, kPollTimer, out);
    return Queries(out);
  }

  std::unique_ptr<ClientSession> client_;
};

TEST_P(ClientPresenceTest, PollsOnlyTheContactsThatDoNotPush) {
  ProtocolConfig config;
  config.presence_refresh_interval_us = 0;  // only on connect
  const auto first = Connect(config);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].users, (std::vector<UserId>{kU2, kU3, kU4}));  // every contact
  Answer(first[0], {Status(kU2, true), Status(kU3, false), Status(kU4, false)});
  auto polls = Poll(1);
  ASSERT_EQ(polls.size(), 1u);
  EXPECT_EQ(polls[0].users, (std::vector<UserId>{kU3, kU4}));
  EXPECT_EQ(client_->stats().presence_polls_skipped, 1u);
  // kU3 is told it now pushes to us (it entered kU3's audience); kU2 that it no longer does.
  Push(Status(kU3, true));
  Push(Status(kU2, false));
  polls = Poll(2);
  ASSERT_EQ(polls.size(), 1u);
  EXPECT_EQ(polls[0].users, (std::vector<UserId>{kU2, kU4}));
  // Everyone pushes: no query at all.
  Push(Status(kU2, true));
  Push(Status(kU4, true));
  EXPECT_TRUE(Poll(3).empty());
  EXPECT_EQ(client_->Presence(kU4)->pushed, true);
}

// A lost notice or a presence service restart leaves a contact wrongly believed to push: the
// full read every presence_refresh_interval_us repairs it.
TEST_P(ClientPresenceTest, RefreshReadsEveryContact) {
  ProtocolConfig config;
  config.presence_refresh_interval_us = 3 * kInterval;
  const auto first = Connect(config);
  ASSERT_EQ(first.size(), 1u);
  Answer(first[0], {Status(kU2, true), Status(kU3, true), Status(kU4, true)});
  EXPECT_TRUE(Poll(1).empty());
  EXPECT_TRUE(Poll(2).empty());
  const auto refresh = Poll(3);
  ASSERT_EQ(refresh.size(), 1u);
  EXPECT_EQ(refresh[0].users, (std::vector<UserId>{kU2, kU3, kU4}));
  EXPECT_TRUE(Poll(4).empty());
}

// lookup_users_max is a named limit: more contacts than it are split over several queries,
// never sent as one the server would refuse.
TEST_P(ClientPresenceTest, QueriesAreSplitAtLookupUsersMax) {
  ProtocolConfig config;
  config.lookup_users_max = 2;
  const auto first = Connect(config);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].users, (std::vector<UserId>{kU2, kU3}));
  EXPECT_EQ(first[1].users, (std::vector<UserId>{kU4}));
  EXPECT_NE(first[0].request_id, first[1].request_id);
  EXPECT_EQ(client_->stats().presence_queries, 2u);
}

TEST_P(ClientPresenceTest, NoReadsAtAllWithAZeroInterval) {
  ProtocolConfig config;
  config.presence_poll_interval_us = 0;
  EXPECT_TRUE(Connect(config).empty());
  EXPECT_TRUE(Poll(1).empty());
}

INSTANTIATE_TEST_SUITE_P(BothFanouts, ClientPresenceTest,
                         ::testing::ValuesIn(AllValues<PresenceFanout>()),
                         [](const auto& info) { return std::string(PresenceFanoutName(info.param)); });

}  // namespace
}  // namespace chatlab
