// chatd's bounded memory (docs/chatd.md, "Memory"), on SQLite and on PostgreSQL: with a tail of
// two messages per conversation, a reader pages the whole history from disk, before and after a
// restart; the restart loads only each conversation's head and the dedup window; a retry inside
// the window, and a resend far beyond it (looked up on disk), is answered duplicate with its
// first id; and the store never holds more than the tail in memory.
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "real-transport/json_codec.h"
#include "tests/real/harness.h"
#include "tests/real/postgres_harness.h"

namespace chatlab::real::testing {
namespace {

// The value of an unlabelled metric on /metrics (-1 if absent).
double Metric(const HostPort& at, const std::string& name) {
  auto res = HttpCall(at, "GET", "/metrics", "", "");
  if (!res.ok() || res->status != 200) return -1;
  const std::vector<std::string> lines = absl::StrSplit(res->body, '\n');
  for (const std::string& line : lines) {
    const std::vector<std::string> parts = absl::StrSplit(line, ' ');
    double v = 0;
    if (parts.size() == 2 && parts[0] == name && absl::SimpleAtod(parts[1], &v)) return v;
  }
  return -1;
}

class ChatdMemoryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (const char* u : {"alice", "bob"}) AddUser(dir_.path(), u);
    std::vector<std::string> flags = {"--store_tail_cache", "2", "--store_dedup_window_max", "5",
                                      "--user_rate_per_s", "1000000", "--user_burst", "1000000"};
    if (GetParam() == "postgres") {
      pg_ = std::make_unique<LocalPostgres>();
      ASSERT_TRUE(pg_->error().empty()) << pg_->error();
      ASSERT_TRUE(pg_->CreateDatabase("chat")) << pg_->error();
      flags.insert(flags.end(), {"--store", "postgres", "--store_postgres", pg_->ConnInfo("chat")});
    }
    server_ = std::make_unique<Chatd>(dir_.path(), FreePort(), flags);
    server_->Start();
  }
  LoginResult Login(const std::string& name) {
    auto l = real::Login(server_->address(), name, "pw");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : LoginResult{};
  }
  std::unique_ptr<LocalPostgres> pg_;  // before the directory and chatd: stopped last
  TempDir dir_;
  std::unique_ptr<Chatd> server_;
};

TEST_P(ChatdMemoryTest, HistoryBelowTheTailIsReadFromDiskBeforeAndAfterARestart) {
  const auto alice = Login("alice");
  const auto bob = Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  constexpr int kMessages = 40;
  std::map<ClientMsgId, MessageId> acked;
  {
    Client a;
    ASSERT_EQ(a.Connect(server_->address(), alice.token), "");
    for (int i = 1; i <= kMessages; ++i) {
      a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("m", i)});
    }
    while (acked.size() < static_cast<size_t>(kMessages)) {
      auto ack = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
      ASSERT_TRUE(ack.has_value());
      ASSERT_EQ(ack->code, Code::kOk);
      acked[ack->client_msg_id] = ack->message_id;
    }
  }
  const HostPort at = server_->address();
  EXPECT_LE(Metric(at, "chatlab_store_cached_messages"), 2);
  auto expect_whole_history = [&] {
    const auto seen = HistoryOf(server_->address(), bob, conv);
    ASSERT_EQ(seen.size(), acked.size());
    for (const auto& [cmid, id] : acked) {
      ASSERT_TRUE(seen.contains(cmid)) << cmid;
      EXPECT_EQ(seen.at(cmid), std::vector<MessageId>{id}) << cmid;
    }
  };
  expect_whole_history();
  EXPECT_GE(Metric(at, "chatlab_store_history_loads_total"), 1);

  // A restart loads the head and the window (5), not the 40 messages.
  ASSERT_EQ(server_->Kill(SIGTERM), 0);
  server_->Start();
  const double restored = Metric(at, "chatlab_store_records_restored_total");
  EXPECT_GE(restored, 5);
  EXPECT_LE(restored, 6);
  EXPECT_EQ(Metric(at, "chatlab_store_history_loads_total"), 0);
  expect_whole_history();
  EXPECT_GE(Metric(at, "chatlab_store_history_loads_total"), 1);
  EXPECT_LE(Metric(at, "chatlab_store_cached_messages"), 2);

  // A resend far older than the window (5), marked as a resend: looked up on disk, answered
  // duplicate under its first id, before and after the restart. (A first attempt is not looked
  // up: the window alone is its guard, as the core's test shows.)
  Client a;
  ASSERT_EQ(a.Connect(server_->address(), alice.token), "");
  for (const ClientMsgId old : {ClientMsgId{1}, ClientMsgId{7}}) {
    a.Send(SendMessage{old, conv, 0, absl::StrCat("m", old), 3});
    auto found = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->code, Code::kOk);
    EXPECT_TRUE(found->duplicate) << old;
    EXPECT_EQ(found->message_id, acked[old]);
  }
  EXPECT_EQ(Metric(at, "chatlab_store_dedup_found_on_disk_total"), 2);
  // A retry inside the window: the same id, marked duplicate; the next send follows the head.
  a.Send(SendMessage{kMessages, conv, 0, absl::StrCat("m", kMessages)});
  auto dup = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
  ASSERT_TRUE(dup.has_value());
  EXPECT_EQ(dup->code, Code::kOk);
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->message_id, acked[kMessages]);
  a.Send(SendMessage{kMessages + 1, conv, 0, "after the restart"});
  auto next = a.Next<SendAck>(nullptr, std::chrono::seconds(10));
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->code, Code::kOk);
  EXPECT_GT(next->message_id, acked[kMessages]);
  acked[kMessages + 1] = next->message_id;
  expect_whole_history();
}

// The window (5) is far smaller than the burst: the resent burst (marked as resends) is
// recognised on disk, each acknowledged message once under its first id.
TEST_P(ChatdMemoryTest, KillNineDuringABurstKeepsEveryAckedMessageOnce) {
  KillNineDuringABurst(*server_, Login("alice"), Login("bob"), 1000);
  // At least 20 were acknowledged before the kill, so durable; all but the window's last 5 are
  // found on disk.
  EXPECT_GE(Metric(server_->address(), "chatlab_store_dedup_found_on_disk_total"), 20 - 5);
}

INSTANTIATE_TEST_SUITE_P(Engines, ChatdMemoryTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace chatlab::real::testing
