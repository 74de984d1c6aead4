// Unit tests of the store's per-member receipts read (StoreGetReceipts, core/store.h): who may
// ask, what a page holds, how pages follow each other and where the limit is, the message store
// driven directly through OnMessage (helpers in store_test_util.h).
#include <cstdint>
#include <random>
#include <variant>
#include <vector>

#include "core/store.h"
#include "gtest/gtest.h"
#include "tests/core/store_test_util.h"

namespace chatlab::store_test {
namespace {

constexpr ReceiptKind kDelivered = ReceiptKind::kDelivered;
constexpr ReceiptKind kRead = ReceiptKind::kRead;

StoreGetReceiptsResult GetReceipts(MessageStore& store, UserId user, const ConversationId& conv,
                                   UserId after_user = UserId(), uint32_t limit = 0) {
  return Call<StoreGetReceiptsResult>(store, kT0,
                                      StoreGetReceipts{9, user, conv, after_user, limit});
}

std::vector<UserId> Users(const std::vector<MemberReceipts>& members) {
  std::vector<UserId> users;
  for (const MemberReceipts& m : members) users.push_back(m.user);
  return users;
}

// A group of alice, bob, carol and dave with five messages; bob has read 3, carol delivered 5.
MessageStore GroupStore(ProtocolConfig config = SequenceConfig()) {
  MessageStore store(Options(config));
  for (UserId u : {kAlice, kBob, kCarol, kDave}) Membership(store, u, kGroup, true);
  for (ClientMsgId cmid = 1; cmid <= 5; ++cmid) Append(store, kT0, Msg(kGroupConv, kAlice, cmid));
  Receipt(store, kGroupConv, kBob, kDelivered, 4);
  Receipt(store, kGroupConv, kBob, kRead, 3);
  Receipt(store, kGroupConv, kCarol, kDelivered, 5);
  return store;
}

TEST(StoreGetReceiptsTest, GroupMembersWithTheirWatermarksAscending) {
  MessageStore store = GroupStore();
  const StoreGetReceiptsResult r = GetReceipts(store, kAlice, kGroupConv);
  EXPECT_EQ(r.request_id, 9u);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.conv, kGroupConv);
  EXPECT_FALSE(r.has_more);
  // Every member, the asker included, each with what the receipts said (0: nothing yet).
  EXPECT_EQ(r.members, (std::vector<MemberReceipts>{{kAlice, kNoMessage, kNoMessage},
                                                    {kBob, 4, 3},
                                                    {kCarol, 5, kNoMessage},
                                                    {kDave, kNoMessage, kNoMessage}}));
  // Exactly the marks the store keeps, and the aggregate is their minimum.
  for (const MemberReceipts& m : r.members) {
    EXPECT_EQ(m.delivered_up_to, store.Watermark(kGroupConv, m.user, kDelivered));
    EXPECT_EQ(m.read_up_to, store.Watermark(kGroupConv, m.user, kRead));
  }
  EXPECT_EQ(store.stats().receipt_reads, 1u);
}

TEST(StoreGetReceiptsTest, PagesFollowAfterUserAndStopAtTheLimit) {
  ProtocolConfig config = SequenceConfig();
  config.receipts_page_max = 3;
  MessageStore store = GroupStore(config);
  StoreGetReceiptsResult r = GetReceipts(store, kBob, kGroupConv, UserId(), 2);
  EXPECT_EQ(Users(r.members), (std::vector<UserId>{kAlice, kBob}));
  EXPECT_TRUE(r.has_more);
  r = GetReceipts(store, kBob, kGroupConv, kBob, 2);
  EXPECT_EQ(Users(r.members), (std::vector<UserId>{kCarol, kDave}));
  EXPECT_FALSE(r.has_more);  // exactly full, nothing after: no empty extra page
  r = GetReceipts(store, kBob, kGroupConv, kDave, 2);
  EXPECT_TRUE(r.members.empty());
  EXPECT_FALSE(r.has_more);
  // A limit of 0, or above receipts_page_max, is receipts_page_max.
  for (const uint32_t limit : {0u, 4u, 1000u}) {
    r = GetReceipts(store, kBob, kGroupConv, UserId(), limit);
    EXPECT_EQ(Users(r.members), (std::vector<UserId>{kAlice, kBob, kCarol})) << limit;
    EXPECT_TRUE(r.has_more) << limit;
  }
  // after_user need not be a member: the page starts above it.
  r = GetReceipts(store, kBob, kGroupConv, UserId(kAlice.value), 1);
  EXPECT_EQ(Users(r.members), (std::vector<UserId>{kBob}));
}

TEST(StoreGetReceiptsTest, OnlyAMemberMayAsk) {
  MessageStore store = GroupStore();
  const UserId stranger(99);
  StoreGetReceiptsResult r = GetReceipts(store, stranger, kGroupConv);
  EXPECT_EQ(r.code, Code::kPermissionDenied);
  EXPECT_EQ(r.conv, kGroupConv);  // echoed, also on errors
  EXPECT_TRUE(r.members.empty());
  // A member who left is refused too, and no longer listed for those who stay.
  Membership(store, kDave, kGroup, false);
  EXPECT_EQ(GetReceipts(store, kDave, kGroupConv).code, Code::kPermissionDenied);
  EXPECT_EQ(Users(GetReceipts(store, kAlice, kGroupConv).members),
            (std::vector<UserId>{kAlice, kBob, kCarol}));
  EXPECT_EQ(GetReceipts(store, kAlice, ConversationId::Group(GroupId(404))).code, Code::kNotFound);
  EXPECT_EQ(GetReceipts(store, UserId(), kGroupConv).code, Code::kInvalidArgument);
  EXPECT_EQ(GetReceipts(store, kAlice, ConversationId{}).code, Code::kInvalidArgument);
}

TEST(StoreGetReceiptsTest, DirectChatAnswersBothPartiesToAPartyOnly) {
  MessageStore store(Options(SequenceConfig()));
  for (ClientMsgId cmid = 1; cmid <= 3; ++cmid) Append(store, kT0, Msg(kAliceBob, kAlice, cmid));
  Receipt(store, kAliceBob, kBob, kRead, 2);
  StoreGetReceiptsResult r = GetReceipts(store, kAlice, kAliceBob);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.members,
            (std::vector<MemberReceipts>{{kAlice, kNoMessage, kNoMessage}, {kBob, kNoMessage, 2}}));
  EXPECT_EQ(Users(GetReceipts(store, kBob, kAliceBob, kAlice).members),
            (std::vector<UserId>{kBob}));
  r = GetReceipts(store, kAlice, kAliceBob, UserId(), 1);
  EXPECT_EQ(Users(r.members), (std::vector<UserId>{kAlice}));
  EXPECT_TRUE(r.has_more);
  EXPECT_EQ(GetReceipts(store, kCarol, kAliceBob).code, Code::kPermissionDenied);
  const ConversationId self = ConversationId::Direct(kCarol, kCarol);
  EXPECT_EQ(Users(GetReceipts(store, kCarol, self).members), (std::vector<UserId>{kCarol}));
}

TEST(StoreGetReceiptsTest, IsAReadPersistingNothing) {
  MessageStore store = GroupStore();
  Effects out;
  store.OnMessage(kT0, kServer, StoreGetReceipts{1, kAlice, kGroupConv, UserId(), 0}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<SendToNode>(out[0]));
}

// Walking the pages with any page size yields every current member once, in order, with the
// store's watermarks, whatever joins, leaves and receipts came before.
TEST(StoreGetReceiptsTest, PagesConcatenateToTheMembersAtEveryPageSize) {
  constexpr uint64_t kUsers = 9;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    MessageStore store(Options(SequenceConfig()));
    Membership(store, kAlice, kGroup, true);
    for (int step = 0; step < 60; ++step) {
      const UserId user(1 + rng() % kUsers);
      switch (rng() % 4) {
        case 0:
          Membership(store, user, kGroup, rng() % 3 != 0);
          break;
        case 1:
          Append(store, kT0, Msg(kGroupConv, kAlice, 100 + static_cast<uint64_t>(step)));
          break;
        default:
          if (!store.Members(kGroup).empty()) {
            const std::vector<UserId> members = store.Members(kGroup);
            Receipt(store, kGroupConv, members[rng() % members.size()],
                    rng() % 2 ? kRead : kDelivered, rng() % (store.Head(kGroupConv) + 1));
          }
      }
    }
    Membership(store, kAlice, kGroup, true);
    std::vector<MemberReceipts> expected;
    for (const UserId u : store.Members(kGroup)) {
      expected.push_back(
          {u, store.Watermark(kGroupConv, u, kDelivered), store.Watermark(kGroupConv, u, kRead)});
    }
    for (uint32_t page = 1; page <= kUsers + 1; ++page) {
      std::vector<MemberReceipts> walked;
      UserId after;
      for (int pages = 0;; ++pages) {
        ASSERT_LE(pages, static_cast<int>(kUsers)) << "paging does not end";
        const StoreGetReceiptsResult r = GetReceipts(store, kAlice, kGroupConv, after, page);
        ASSERT_EQ(r.code, Code::kOk);
        ASSERT_LE(r.members.size(), page);
        walked.insert(walked.end(), r.members.begin(), r.members.end());
        if (!r.has_more) break;
        ASSERT_FALSE(r.members.empty());
        after = r.members.back().user;
      }
      EXPECT_EQ(walked, expected) << "page size " << page;
    }
  }
}

}  // namespace
}  // namespace chatlab::store_test
