// Unit tests of ClientSession::Options: a session reads its protocol settings from
// shared_config when one is given (one copy for the thousands of sessions a simulated hub runs)
// and from its own copy of config otherwise; it counts into shared_stats when one is given (one
// Stats for a simulation's million clients) and into its own otherwise.
#include <memory>
#include <string>

#include "core/client.h"
#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr UserId kMe(1);
constexpr UserId kPeer(2);

absl::StatusCode SendCode(ClientSession& c, size_t body_bytes) {
  Effects out;
  return c.Send(0, ConversationId::Direct(kMe, kPeer), std::string(body_bytes, 'x'), out)
      .status()
      .code();
}

TEST(ClientOptions, OwnConfigIsCopied) {
  ClientSession::Options o;
  o.user = kMe;
  o.config.body_bytes_max = 8;
  ClientSession c(o);
  o.config.body_bytes_max = 1000;  // the session took a copy
  EXPECT_EQ(SendCode(c, 8), absl::StatusCode::kOk);
  EXPECT_EQ(SendCode(c, 9), absl::StatusCode::kInvalidArgument);
}

TEST(ClientOptions, SharedConfigWinsOverConfigAndIsShared) {
  auto shared = std::make_shared<ProtocolConfig>();
  shared->body_bytes_max = 4;
  ClientSession::Options o;
  o.user = kMe;
  o.config.body_bytes_max = 1000;  // ignored: shared_config is set
  o.shared_config = shared;
  ClientSession a(o);
  o.user = kPeer;
  ClientSession b(o);
  EXPECT_EQ(shared.use_count(), 4);  // ours, the options' and the two sessions': one copy
  EXPECT_EQ(SendCode(a, 4), absl::StatusCode::kOk);
  EXPECT_EQ(SendCode(a, 5), absl::StatusCode::kInvalidArgument);
}

TEST(ClientOptions, OwnStatsAreEachSessionsOwn) {
  ClientSession::Options o;
  o.user = kMe;
  ClientSession a(o);
  o.user = kPeer;
  ClientSession b(o);
  ASSERT_EQ(SendCode(a, 1), absl::StatusCode::kOk);
  EXPECT_EQ(a.stats().sends, 1u);
  EXPECT_EQ(b.stats().sends, 0u);
  EXPECT_NE(&a.stats(), &b.stats());
}

TEST(ClientOptions, SharedStatsSumEverySessionSharingThem) {
  auto shared = std::make_shared<ClientSession::Stats>();
  ClientSession::Options o;
  o.user = kMe;
  o.shared_stats = shared;
  ClientSession a(o);
  o.user = kPeer;
  ClientSession b(o);
  ASSERT_EQ(SendCode(a, 1), absl::StatusCode::kOk);
  ASSERT_EQ(SendCode(b, 1), absl::StatusCode::kOk);
  ASSERT_EQ(SendCode(b, 1), absl::StatusCode::kOk);
  EXPECT_EQ(shared->sends, 3u);
  EXPECT_EQ(&a.stats(), shared.get());
  EXPECT_EQ(&b.stats(), shared.get());
  // Whether a session ever connected stays per session.
  Effects out;
  a.Connect(0, NodeId(), out);
  a.OnConnected(0, SessionId(7), NodeId(100), out);
  EXPECT_TRUE(a.ever_connected());
  EXPECT_FALSE(b.ever_connected());
  EXPECT_EQ(shared->connects, 1u);
}

}  // namespace
}  // namespace chatlab
