// The oracle must be able to fail: feed it each kind of violation directly.
#include "core/oracle.h"

#include "gtest/gtest.h"

namespace chatlab {
namespace {

const UserId kAlice(1), kBob(2);
const ConversationId kConv = ConversationId::Direct(kAlice, kBob);

ChatMessage Msg(MessageId id, MessageId prev, ClientMsgId cmid) {
  ChatMessage m;
  m.conv = kConv;
  m.message_id = id;
  m.prev_msg_id = prev;
  m.sender = kAlice;
  m.client_msg_id = cmid;
  return m;
}

TEST(OracleTest, CleanRunHasNoViolations) {
  Oracle o;
  o.OnSent(0, kAlice, 1, kConv);
  o.OnAcked(10, kAlice, SendAck{1, kConv, Code::kOk, 100});
  o.OnDisplayed(10, kAlice, Msg(100, 0, 1), false, false);
  o.OnDisplayed(20, kBob, Msg(100, 0, 1), false, false);
  o.CheckFinal({ConversationTruth{kConv, {Msg(100, 0, 1)}, {kAlice, kBob}}});
  EXPECT_EQ(o.counts().total(), 0u);
  ASSERT_EQ(o.latencies().end_to_end_us.size(), 1u);
  EXPECT_EQ(o.latencies().end_to_end_us[0], 20);
  EXPECT_EQ(o.latencies().ack_us[0], 10);
}

TEST(OracleTest, DuplicateShownIsCaughtEvenWithADifferentId) {
  Oracle o;
  o.OnDisplayed(0, kBob, Msg(100, 0, 1), false, false);
  o.OnDisplayed(0, kBob, Msg(101, 100, 1), false, false);  // stored twice under new ids
  EXPECT_EQ(o.counts().duplicates_shown, 1u);
  ASSERT_FALSE(o.first_violations().empty());
}

TEST(OracleTest, OrderViolationIsCaughtWithoutTheClientFlag) {
  Oracle o;
  o.OnDisplayed(0, kBob, Msg(200, 100, 2), false, false);
  o.OnDisplayed(0, kBob, Msg(100, 0, 1), /*out_of_order=*/false, false);
  EXPECT_EQ(o.counts().order_violations, 1u);
}

TEST(OracleTest, ReceiptRegressionIsCaught) {
  Oracle o;
  o.OnReceiptShown(0, kAlice, ReceiptUpdate{kConv, ReceiptKind::kRead, kBob, 200});
  o.OnReceiptShown(0, kAlice, ReceiptUpdate{kConv, ReceiptKind::kRead, kBob, 100});
  EXPECT_EQ(o.counts().receipt_regressions, 1u);
}

// Stored but never shown to bob: a delivery failure, not a loss.
TEST(OracleTest, AckedAndStoredButNeverShownIsUnshownAndUndelivered) {
  Oracle o;
  o.OnSent(0, kAlice, 1, kConv);
  o.OnAcked(10, kAlice, SendAck{1, kConv, Code::kOk, 100});
  o.OnDisplayed(10, kAlice, Msg(100, 0, 1), false, false);
  o.CheckFinal({ConversationTruth{kConv, {Msg(100, 0, 1)}, {kAlice, kBob}}});
  EXPECT_EQ(o.counts().acked_unshown, 1u);
  EXPECT_EQ(o.counts().undelivered_after_heal, 1u);
  EXPECT_EQ(o.counts().lost_acked, 0u);
  ASSERT_EQ(o.first_violations().size(), 2u);
  EXPECT_EQ(o.first_violations()[1],
            "acked_unshown: acknowledged message 100 (u1/1) in d1-2 is in the store but missing "
            "from the view of u2 at the end");
}

// Not in the store, though both users saw it: lost, whatever the views say.
TEST(OracleTest, AckedButNotStoredIsLost) {
  Oracle o;
  o.OnSent(0, kAlice, 1, kConv);
  o.OnAcked(10, kAlice, SendAck{1, kConv, Code::kOk, 100});
  o.OnDisplayed(10, kAlice, Msg(100, 0, 1), false, false);
  o.OnDisplayed(20, kBob, Msg(100, 0, 1), false, false);
  o.CheckFinal({ConversationTruth{kConv, {}, {kAlice, kBob}}});
  EXPECT_EQ(o.counts().lost_acked, 1u);
  EXPECT_EQ(o.counts().acked_unshown, 0u);
  EXPECT_EQ(o.counts().undelivered_after_heal, 0u);
}

TEST(OracleTest, AckedButNeverStoredOrShownIsLostOnly) {
  Oracle o;
  o.OnSent(0, kAlice, 1, kConv);
  o.OnAcked(10, kAlice, SendAck{1, kConv, Code::kOk, 0, 0, false, true});
  o.CheckFinal({});
  EXPECT_EQ(o.counts().lost_acked, 1u);
  EXPECT_EQ(o.counts().total(), 1u);
}

// Not acknowledged: missing from a view is a liveness failure only.
TEST(OracleTest, UnackedAndNeverShownIsUndeliveredOnly) {
  Oracle o;
  o.OnSent(0, kAlice, 1, kConv);
  o.OnDisplayed(10, kAlice, Msg(100, 0, 1), false, false);
  o.CheckFinal({ConversationTruth{kConv, {Msg(100, 0, 1)}, {kAlice, kBob}}});
  EXPECT_EQ(o.counts().undelivered_after_heal, 1u);
  EXPECT_EQ(o.counts().total(), 1u);
}

}  // namespace
}  // namespace chatlab
