// Unit tests of the client's per-member receipts read (ClientSession::GetReceipts, core/client.h),
// the client driven directly: it pages through the members, shows each member's watermarks
// only forward, reports the members when the last page is in, coalesces refreshes, asks a lost
// page again, and survives a broken answer. The last tests attach the oracle (core/oracle.h)
// and show its receipts_unfounded check failing on a deliberately broken answer.
#include <cstdint>
#include <vector>

#include "core/client.h"
#include "core/oracle.h"
#include "gtest/gtest.h"

namespace chatlab {
namespace {

constexpr UserId kMe(1);
constexpr UserId kBob(2);
constexpr UserId kCarol(3);
constexpr UserId kDave(4);
const ConversationId kGroup = ConversationId::Group(GroupId(42));
// The client's request-timeout timer (core/client.cc: kind 6, payload the request id).
constexpr uint64_t RequestTimer(uint64_t request) { return (uint64_t{6} << 56) | request; }

std::vector<GetReceipts> Asked(const Effects& out) {
  std::vector<GetReceipts> asked;
  for (const Effect& e : out) {
    const auto* send = std::get_if<SendToServer>(&e);
    if (send == nullptr) continue;
    if (const auto* g = std::get_if<GetReceipts>(&send->msg)) asked.push_back(*g);
  }
  return asked;
}

// Records what the client reports about receipts.
struct Seen : ClientObserver {
  struct Report {
    ConversationId conv;
    Code code;
    std::vector<MemberReceipts> members;
  };
  void OnReceiptShown(TimeUs, UserId, const ReceiptUpdate& r) override { shown.push_back(r); }
  void OnMemberReceipts(TimeUs, UserId, const ConversationId& conv, Code code,
                        const std::vector<MemberReceipts>& members) override {
    reports.push_back(Report{conv, code, members});
  }
  std::vector<ReceiptUpdate> shown;
  std::vector<Report> reports;
};

class ClientReceiptsTest : public ::testing::Test {
 protected:
  void Connect(uint32_t page_max, ClientObserver* observer) {
    ProtocolConfig config;
    config.receipts_page_max = page_max;
    config.client_sync_interval_us = 0;
    client_ = std::make_unique<ClientSession>(ClientSession::Options{kMe, config, 1, observer});
    Effects out;
    client_->Connect(0, NodeId(), out);
    client_->OnConnected(0, SessionId(1), NodeId(7), out);
  }
  // Asks for kGroup's receipts; returns the page requests sent.
  std::vector<GetReceipts> Ask(TimeUs now = 1) {
    Effects out;
    client_->GetReceipts(now, kGroup, out);
    return Asked(out);
  }
  // Answers a page; returns the page requests that follow.
  std::vector<GetReceipts> Answer(const GetReceipts& page, std::vector<MemberReceipts> members,
                                  bool has_more, Code code = Code::kOk, TimeUs now = 2) {
    Effects out;
    client_->OnServerMessage(
        now, ReceiptsResult{page.request_id, code, page.conv, std::move(members), has_more}, out);
    return Asked(out);
  }
  std::unique_ptr<ClientSession> client_;
  Seen seen_;
};

TEST_F(ClientReceiptsTest, PagesThroughTheMembersAndReportsThemWithoutTheViewer) {
  Connect(/*page_max=*/2, &seen_);
  std::vector<GetReceipts> pages = Ask();
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].conv, kGroup);
  EXPECT_EQ(pages[0].after_user, UserId());
  EXPECT_EQ(pages[0].limit, 2u);
  pages = Answer(pages[0], {{kMe, 9, 9}, {kBob, 10, 8}}, /*has_more=*/true);
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].after_user, kBob);  // the next page starts after the last member
  EXPECT_TRUE(seen_.reports.empty());    // not complete yet
  EXPECT_TRUE(Answer(pages[0], {{kCarol, 10, 0}, {kDave, 0, 0}}, false).empty());
  ASSERT_EQ(seen_.reports.size(), 1u);
  EXPECT_EQ(seen_.reports[0].code, Code::kOk);
  EXPECT_EQ(seen_.reports[0].members,
            (std::vector<MemberReceipts>{{kBob, 10, 8}, {kCarol, 10, 0}, {kDave, 0, 0}}));
  EXPECT_EQ(client_->MemberReceiptsShown(kGroup), seen_.reports[0].members);
  // Each member's marks are shown like pushed receipts (reader = the member), the viewer's not.
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kRead, kBob), 8u);
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kDelivered, kCarol), 10u);
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kRead, kMe), kNoMessage);
  EXPECT_EQ(seen_.shown,
            (std::vector<ReceiptUpdate>{{kGroup, ReceiptKind::kDelivered, kBob, 10},
                                        {kGroup, ReceiptKind::kRead, kBob, 8},
                                        {kGroup, ReceiptKind::kDelivered, kCarol, 10}}));
  EXPECT_EQ(client_->stats().receipt_pages, 2u);
}

TEST_F(ClientReceiptsTest, AShownWatermarkNeverGoesBack) {
  Connect(256, &seen_);
  Answer(Ask()[0], {{kBob, 10, 8}}, false);
  // A later read (a lagging replica, a reordered answer) says less: what is shown stays.
  Answer(Ask(3)[0], {{kBob, 7, 5}, {kCarol, 4, 4}}, false);
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kDelivered, kBob), 10u);
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kRead, kBob), 8u);
  ASSERT_EQ(seen_.reports.size(), 2u);
  EXPECT_EQ(seen_.reports[1].members, (std::vector<MemberReceipts>{{kBob, 10, 8}, {kCarol, 4, 4}}));
  EXPECT_EQ(client_->stats().stale_receipts_ignored, 2u);
  for (const ReceiptUpdate& r : seen_.shown) EXPECT_NE(r.up_to, 5u);  // never shown lower
  // A pushed update for a member moves the same mark.
  Effects out;
  client_->OnServerMessage(4, ReceiptUpdate{kGroup, ReceiptKind::kRead, kCarol, 9}, out);
  EXPECT_EQ(client_->MemberReceiptsShown(kGroup)[1], (MemberReceipts{kCarol, 4, 9}));
}

TEST_F(ClientReceiptsTest, ARefreshAskedDuringAReadIsReadOnceAfterIt) {
  Connect(256, &seen_);
  const std::vector<GetReceipts> first = Ask();
  ASSERT_EQ(first.size(), 1u);
  Effects out;
  EXPECT_EQ(client_->GetReceipts(1, kGroup, out), first[0].request_id);  // the same read
  EXPECT_EQ(client_->GetReceipts(1, kGroup, out), first[0].request_id);
  EXPECT_TRUE(Asked(out).empty());
  const std::vector<GetReceipts> again = Answer(first[0], {{kBob, 1, 1}}, false);
  ASSERT_EQ(again.size(), 1u);  // two refreshes asked: one more read
  EXPECT_EQ(again[0].after_user, UserId());
  EXPECT_NE(again[0].request_id, first[0].request_id);
  EXPECT_TRUE(Answer(again[0], {{kBob, 2, 2}}, false).empty());
  EXPECT_EQ(seen_.reports.size(), 2u);
}

TEST_F(ClientReceiptsTest, ARefusalIsReportedWithItsCode) {
  Connect(2, &seen_);
  const std::vector<GetReceipts> pages = Answer(Ask()[0], {}, false, Code::kPermissionDenied);
  EXPECT_TRUE(pages.empty());
  ASSERT_EQ(seen_.reports.size(), 1u);
  EXPECT_EQ(seen_.reports[0].code, Code::kPermissionDenied);
  EXPECT_TRUE(seen_.reports[0].members.empty());
  EXPECT_TRUE(client_->MemberReceiptsShown(kGroup).empty());
}

TEST_F(ClientReceiptsTest, ALostPageIsAskedAgainAndItsLateAnswerIgnored) {
  Connect(2, &seen_);
  const GetReceipts first = Ask()[0];
  const GetReceipts second = Answer(first, {{kBob, 1, 1}, {kCarol, 1, 1}}, true)[0];
  Effects out;
  client_->OnTimer(10 * kUsPerSecond, RequestTimer(second.request_id), out);
  const std::vector<GetReceipts> retried = Asked(out);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].after_user, kCarol);  // the same page, under a new request id
  EXPECT_NE(retried[0].request_id, second.request_id);
  EXPECT_TRUE(Answer(second, {{kDave, 5, 5}}, false).empty());  // late: ignored
  EXPECT_TRUE(seen_.reports.empty());
  Answer(retried[0], {{kDave, 3, 3}}, false);
  ASSERT_EQ(seen_.reports.size(), 1u);
  EXPECT_EQ(seen_.reports[0].members.size(), 3u);
  EXPECT_EQ(client_->ReceiptShown(kGroup, ReceiptKind::kRead, kDave), 3u);
}

TEST_F(ClientReceiptsTest, OfflineAsksNothingAndAReadDiesWithItsSession) {
  Connect(2, &seen_);
  const GetReceipts page = Ask()[0];
  Effects out;
  client_->OnDisconnected(5, out);
  out.clear();
  EXPECT_EQ(client_->GetReceipts(6, kGroup, out), 0u);
  EXPECT_TRUE(out.empty());
  client_->OnConnected(7, SessionId(2), NodeId(7), out);
  EXPECT_TRUE(Answer(page, {{kBob, 1, 1}}, false).empty());  // from the old session
  EXPECT_TRUE(seen_.reports.empty());
  EXPECT_EQ(Ask(8).size(), 1u);  // a fresh read, not blocked by the dead one
}

TEST_F(ClientReceiptsTest, ABrokenAnswerCanNeitherRepeatAMemberNorLoop) {
  Connect(2, &seen_);
  const GetReceipts first = Ask()[0];
  // Out of order and repeated, and has_more with nothing above after_user.
  std::vector<GetReceipts> next =
      Answer(first, {{kCarol, 1, 1}, {kBob, 2, 2}, {kCarol, 3, 3}}, true);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].after_user, kCarol);
  next = Answer(next[0], {{kBob, 9, 9}}, true);  // nothing above carol: the read ends
  EXPECT_TRUE(next.empty());
  ASSERT_EQ(seen_.reports.size(), 1u);
  EXPECT_EQ(seen_.reports[0].members, (std::vector<MemberReceipts>{{kCarol, 1, 1}}));
}

// ---- The oracle on per-member ticks ------------------------------------------------------------

ChatMessage GroupMessage(MessageId id, UserId sender, ClientMsgId cmid) {
  ChatMessage m;
  m.conv = kGroup;
  m.message_id = id;
  m.prev_msg_id = id - 1;
  m.sender = sender;
  m.client_msg_id = cmid;
  return m;
}

// Carol displayed message 10, Bob displayed 10 and 11. An answer that says Bob read 11 and
// Carol delivered 10 is founded; one that says Carol read 11 is not.
class ClientReceiptsOracleTest : public ClientReceiptsTest {
 protected:
  void SetUp() override {
    Connect(256, &oracle_);
    oracle_.OnDisplayed(1, kBob, GroupMessage(10, kMe, 1), false, false);
    oracle_.OnDisplayed(1, kBob, GroupMessage(11, kMe, 2), false, false);
    oracle_.OnDisplayed(1, kCarol, GroupMessage(10, kMe, 1), false, false);
  }
  Oracle oracle_;
};

TEST_F(ClientReceiptsOracleTest, FoundedTicksPass) {
  Answer(Ask()[0], {{kBob, 11, 11}, {kCarol, 10, 0}}, false);
  oracle_.CheckFinal({});
  EXPECT_EQ(oracle_.counts().receipts_unfounded, 0u);
  EXPECT_EQ(oracle_.counts().total(), 0u);
}

TEST_F(ClientReceiptsOracleTest, ABrokenAnswerClaimingAnUnreadMessageReadFails) {
  Answer(Ask()[0], {{kBob, 11, 11}, {kCarol, 11, 11}}, false);  // Carol never displayed 11
  oracle_.CheckFinal({});
  EXPECT_EQ(oracle_.counts().receipts_unfounded, 2u);  // her delivered and her read
  ASSERT_FALSE(oracle_.first_violations().empty());
  EXPECT_NE(oracle_.first_violations()[0].find("receipts_unfounded: u1 was shown that u3"),
            std::string::npos)
      << oracle_.first_violations()[0];
}

TEST_F(ClientReceiptsOracleTest, MembersTheOracleDoesNotWatchAreNotJudged) {
  // Dave's client never reported to this oracle: what he displayed is unknown.
  Answer(Ask()[0], {{kDave, 11, 11}}, false);
  oracle_.CheckFinal({});
  EXPECT_EQ(oracle_.counts().receipts_unfounded, 0u);
}

}  // namespace
}  // namespace chatlab
