// The history checker (real-transport/history.h): a recorded history replayed into the core's
// oracle. It must pass a correct history and catch each violation it is fed, and refuse text
// that is not a history, naming where.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "real-transport/history.h"

namespace chatlab::real {
namespace {

using Json = nlohmann::json;

Json Conv() { return {{"type", "direct"}, {"low", "1"}, {"high", "2"}}; }

Json Message(const std::string& id, const std::string& prev, const std::string& sender,
             const std::string& cmid, const std::string& body) {
  return {{"conv", Conv()},        {"message_id", id},  {"prev_msg_id", prev}, {"sender", sender},
          {"client_msg_id", cmid}, {"sent_at_us", "5"}, {"body", body}};
}

Json Ack(const std::string& cmid, const std::string& id, const std::string& prev) {
  return {{"client_msg_id", cmid},
          {"conv", Conv()},
          {"code", "OK"},
          {"message_id", id},
          {"prev_msg_id", prev}};
}

// Alice (1) sends two messages; both are acked and shown to her and to bob (2); bob's receipts
// reach alice. The truth holds both.
Json GoodHistory() {
  Json alice = Json::array({
      {{"t_us", "10"}, {"kind", "sent"}, {"client_msg_id", "7"}, {"conv", Conv()}},
      {{"t_us", "11"}, {"kind", "answered"}, {"ack", Ack("7", "100", "0")}},
      {{"t_us", "11"}, {"kind", "acked"}, {"ack", Ack("7", "100", "0")}},
      {{"t_us", "11"}, {"kind", "displayed"}, {"message", Message("100", "0", "1", "7", "a")}},
      {{"t_us", "12"}, {"kind", "sent"}, {"client_msg_id", "8"}, {"conv", Conv()}},
      {{"t_us", "13"}, {"kind", "answered"}, {"ack", Ack("8", "200", "100")}},
      {{"t_us", "13"}, {"kind", "acked"}, {"ack", Ack("8", "200", "100")}},
      {{"t_us", "13"}, {"kind", "displayed"}, {"message", Message("200", "100", "1", "8", "b")}},
      {{"t_us", "20"},
       {"kind", "receipt_shown"},
       {"receipt", {{"conv", Conv()}, {"kind", "read"}, {"reader", "2"}, {"up_to", "200"}}}},
      {{"t_us", "21"}, {"kind", "connected"}},
  });
  Json bob = Json::array({
      {{"t_us", "14"}, {"kind", "displayed"}, {"message", Message("100", "0", "1", "7", "a")}},
      {{"t_us", "15"}, {"kind", "displayed"}, {"message", Message("200", "100", "1", "8", "b")}},
  });
  Json truth = Json::array(
      {{{"conv", Conv()},
        {"participants", {"1", "2"}},
        {"messages", {Message("100", "0", "1", "7", "a"), Message("200", "100", "1", "8", "b")}}}});
  return {{"format", "chatlab-history/1"},
          {"users",
           {{{"user_id", "1"}, {"name", "alice"}, {"events", alice}},
            {{"user_id", "2"}, {"name", "bob"}, {"events", bob}}}},
          {"truth", truth}};
}

Json& Events(Json& h, int user) { return h["users"][user]["events"]; }

TEST(HistoryCheck, ACorrectHistoryPasses) {
  auto v = CheckHistory(GoodHistory().dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok()) << VerdictJson(*v);
  EXPECT_EQ(v->users, 2u);
  EXPECT_EQ(v->sent, 2u);
  EXPECT_EQ(v->acked, 2u);
  EXPECT_EQ(v->displayed, 4u);
  EXPECT_TRUE(v->final_checked);
}

TEST(HistoryCheck, CatchesAMessageShownTwice) {
  Json h = GoodHistory();
  Events(h, 1).push_back(
      {{"t_us", "16"}, {"kind", "displayed"}, {"message", Message("100", "0", "1", "7", "a")}});
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.duplicates_shown, 1u);
  ASSERT_FALSE(v->violations.empty());
  EXPECT_NE(v->violations[0].find("duplicates_shown: u2 saw message 100"), std::string::npos)
      << v->violations[0];
}

TEST(HistoryCheck, CatchesMessagesShownOutOfOrder) {
  Json h = GoodHistory();
  std::swap(Events(h, 1)[0]["message"], Events(h, 1)[1]["message"]);
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.order_violations, 1u);
}

TEST(HistoryCheck, CatchesAnAcknowledgedMessageThatNeverArrived) {
  Json h = GoodHistory();
  Events(h, 1).erase(1);  // bob never shows message 200
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.acked_unshown, 1u);
  EXPECT_EQ(v->counts.undelivered_after_heal, 1u);
  EXPECT_EQ(v->counts.lost_acked, 0u);  // the store has it
}

TEST(HistoryCheck, CatchesAnAcknowledgedMessageTheStoreLost) {
  Json h = GoodHistory();
  h["truth"][0]["messages"].erase(1);  // both saw message 200; the store no longer has it
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.lost_acked, 1u);
  EXPECT_EQ(v->counts.acked_unshown, 0u);
  EXPECT_EQ(v->counts.total(), 1u);
  EXPECT_NE(VerdictJson(*v).find("\"lost_acked\": 1"), std::string::npos) << VerdictJson(*v);
}

TEST(HistoryCheck, CatchesAReceiptGoingBack) {
  Json h = GoodHistory();
  Events(h, 0).push_back(
      {{"t_us", "30"},
       {"kind", "receipt_shown"},
       {"receipt", {{"conv", Conv()}, {"kind", "read"}, {"reader", "2"}, {"up_to", "100"}}}});
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.receipt_regressions, 1u);
}

TEST(HistoryCheck, CatchesAnAckContradicted) {
  Json h = GoodHistory();
  Json ack = Ack("7", "0", "0");
  ack["code"] = "UNAVAILABLE";
  Events(h, 0).push_back({{"t_us", "31"}, {"kind", "answered"}, {"ack", ack}});
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.acks_contradicted, 1u);
}

TEST(HistoryCheck, WithoutTruthOnlyTheRunningChecksApply) {
  Json h = GoodHistory();
  h.erase("truth");
  Events(h, 1).erase(1);
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok());
  EXPECT_FALSE(v->final_checked);
}

TEST(HistoryCheck, EachUsersOrderStandsEvenIfItsClockStepsBack) {
  Json h = GoodHistory();
  Events(h, 1)[1]["t_us"] = "1";  // bob's clock stepped back: still shown after message 100
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok()) << VerdictJson(*v);
}

// A window leaves the first message (sent at 10) out of the latencies, not out of the checks.
TEST(HistoryCheck, AWindowSamplesLatenciesOfMessagesSentInItOnly) {
  Json h = GoodHistory();
  h["window"] = {{"from_us", "12"}, {"to_us", "13"}};
  Events(h, 1).push_back(  // a duplicate of the message outside the window is still caught
      {{"t_us", "16"}, {"kind", "displayed"}, {"message", Message("100", "0", "1", "7", "a")}});
  auto v = CheckHistory(h.dump());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->counts.duplicates_shown, 1u);
  EXPECT_EQ(v->latencies.ack_us, std::vector<TimeUs>{1});         // message 8: 12 -> 13
  EXPECT_EQ(v->latencies.end_to_end_us, std::vector<TimeUs>{3});  // 12 -> bob at 15
  EXPECT_EQ(v->delivered, 2u);  // counted whatever the window
  h = GoodHistory();
  auto all = CheckHistory(h.dump());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->latencies.ack_us.size(), 2u);
  h["window"] = {{"from_us", "12"}};
  v = CheckHistory(h.dump());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("window"), std::string::npos) << v.status();
  h["window"] = {{"from_us", "12"}, {"to_us", "11"}};
  EXPECT_FALSE(CheckHistory(h.dump()).ok());
}

TEST(HistoryCheck, RefusesWhatIsNotAHistoryNamingWhere) {
  EXPECT_FALSE(CheckHistory("not json").ok());
  Json h = GoodHistory();
  h["format"] = "chatlab-history/2";
  EXPECT_EQ(CheckHistory(h.dump()).status().code(), absl::StatusCode::kInvalidArgument);
  h = GoodHistory();
  Events(h, 1)[0]["kind"] = "shown";
  auto v = CheckHistory(h.dump());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("users[1].events[0]: unknown event kind \"shown\""),
            std::string::npos)
      << v.status();
  h = GoodHistory();
  Events(h, 0)[3]["message"]["conv"]["low"] = "0";
  v = CheckHistory(h.dump());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("users[0].events[3].message"), std::string::npos)
      << v.status();
}

}  // namespace
}  // namespace chatlab::real
