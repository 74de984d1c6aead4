// Unit tests of the client JSON form (real-transport/json_codec.h): round trips through the
// field lists of core/fields.h, the 64-bit-as-string rule, and the errors that name the problem.
#include "real-transport/json_codec.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/fields.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace chatlab::real {
namespace {

const ConversationId kConv = ConversationId::Direct(UserId(1), UserId(2));

ChatMessage Sample() {
  ChatMessage m;
  m.conv = kConv;
  m.message_id = (uint64_t{1} << 62) + 12345;  // beyond 2^53: must survive exactly
  m.prev_msg_id = 7;
  m.sender = UserId(1);
  m.client_msg_id = ~uint64_t{0};
  m.sent_at_us = -3;
  m.body = "h\xc3\xa9llo \"quoted\"\n";
  return m;
}

std::vector<Message> EveryClientFacingMessage() {
  return {
      SendMessage{7, kConv, -3, "hello"},
      GetMessages{1, ConversationId::Group(GroupId(5)), 9, 50},
      SyncRequest{2},
      JoinGroup{3, GroupId(4)},
      LeaveGroup{3, GroupId(4)},
      Receipt{kConv, ReceiptKind::kRead, 99},
      Typing{kConv, true},
      PresenceQuery{4, {UserId(1), UserId(2)}},
      GetReceipts{5, ConversationId::Group(GroupId(5)), UserId(3), 256},
      SendAck{7, kConv, Code::kOk, 10, 9, true, false},
      Deliver{Sample()},
      MessagesResult{
          5, Code::kPermissionDenied, kConv, {Sample(), Sample()}, true, GroupMode::kPull},
      SyncResult{6, Code::kOk, {ConversationHead{kConv, 3, GroupMode::kNone}}},
      GroupResult{8, Code::kResourceExhausted, GroupId(4), false, GroupMode::kPush},
      ReceiptUpdate{kConv, ReceiptKind::kDelivered, UserId(2), 5},
      TypingUpdate{kConv, UserId(2), false},
      PresenceUpdate{PresenceStatus{UserId(2), true, 123, false}},
      PresenceResult{9, Code::kOk, {PresenceStatus{UserId(2), false, 0, false}}},
      ErrorReply{Code::kInvalidArgument, "bad frame"},
      SessionClosed{Code::kFailedPrecondition, "displaced"},
      ReceiptsResult{10,
                     Code::kOk,
                     ConversationId::Group(GroupId(5)),
                     {MemberReceipts{UserId(2), (uint64_t{1} << 62) + 1, 7}},
                     true},
  };
}

TEST(JsonCodecTest, RoundTripsEveryClientFacingMessage) {
  for (const Message& m : EveryClientFacingMessage()) {
    const std::string json = ToJson(m);
    auto back = FromJson(json);
    ASSERT_TRUE(back.ok()) << json << ": " << back.status();
    EXPECT_TRUE(*back == m) << json;
  }
}

// The oracle for the encoder: the document the codec once built, field by field, and nlohmann's
// dump of it (ensure_ascii off, ill-formed UTF-8 replaced). The codec now writes the text
// directly; it must be the same text, byte for byte.
using Json = nlohmann::ordered_json;
const char* OracleEnumName(ChannelType v) { return v == ChannelType::kGroup ? "group" : "direct"; }
const char* OracleEnumName(ReceiptKind v) { return v == ReceiptKind::kRead ? "read" : "delivered"; }
const char* OracleEnumName(GroupMode v) {
  return v == GroupMode::kPush ? "push" : v == GroupMode::kPull ? "pull" : "none";
}
const char* OracleEnumName(Code v) { return CodeName(v); }

template <typename T>
Json OracleValue(const T& v) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, uint32_t> ||
                std::is_same_v<T, std::string>) {
    return Json(v);
  } else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
    return Json(std::to_string(v));
  } else if constexpr (IdType<T>) {
    return Json(std::to_string(v.value));
  } else if constexpr (WireEnum<T>) {
    return Json(OracleEnumName(v));
  } else if constexpr (VectorType<T>) {
    Json array = Json::array();
    for (const auto& item : v) array.push_back(OracleValue(item));
    return array;
  } else {
    Json object = Json::object();
    VisitFields(v, [&](const char* name, const auto& f) { object[name] = OracleValue(f); });
    return object;
  }
}

std::string OracleJson(const Message& m) {
  Json object = Json::object();
  object["type"] = kWireNameByIndex[m.index()];
  std::visit(
      [&](const auto& a) {
        VisitFields(a, [&](const char* name, const auto& f) { object[name] = OracleValue(f); });
      },
      m);
  return object.dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST(JsonCodecTest, EncodesEveryMessageAsTheDocumentsDumpWouldByteForByte) {
  for (const Message& m : EveryClientFacingMessage()) {
    EXPECT_EQ(ToJson(m), OracleJson(m));
  }
}

// Bodies are arbitrary bytes: escapes, control characters, DEL, and every way UTF-8 can be
// ill-formed (stray continuations, overlongs, surrogates, beyond U+10FFFF, sequences cut short,
// in the middle and at the end) are encoded as nlohmann's replace handler does.
TEST(JsonCodecTest, EncodesArbitraryBodyBytesAsTheDocumentsDumpWould) {
  const std::string edges[] = {"",
                               "\"",
                               "\\",
                               std::string(1, '\0'),
                               "\x01\x1f\x7f",
                               "\b\f\n\r\t",
                               "\x80",
                               "\xbf",
                               "\xc0\x80",
                               "\xc1\xbf",
                               "\xc2",
                               "\xc2\x80",
                               "\xdf\xbf",
                               "\xe0\x80\x80",
                               "\xe0\xa0\x80",
                               "\xed\xa0\x80",
                               "\xed\x9f\xbf",
                               "\xef\xbf\xbf",
                               "\xe2\x82",
                               "\xe2\x82\xac",
                               "\xf0\x8f\xbf\xbf",
                               "\xf0\x90\x80\x80",
                               "\xf4\x8f\xbf\xbf",
                               "\xf4\x90\x80\x80",
                               "\xf5\x80\x80\x80",
                               "\xff",
                               "a\xe2\x28\xa1"
                               "b",
                               "\xf0\x9f\x98",
                               "\xf0\x9f\x98\x80",
                               "x\xc3",
                               "\xc3(",
                               "h\xc3\xa9llo"};
  for (const std::string& body : edges) {
    const Message m = SendMessage{1, kConv, 2, body};
    EXPECT_EQ(ToJson(m), OracleJson(m)) << "body of " << body.size() << " bytes";
  }
  // Random bodies over an alphabet weighted towards the bytes that matter.
  std::mt19937 rng(20261205);
  static const char kAlphabet[] =
      "ab\"\\\x00\x01\x1f\x7f\x80\x9f\xa0\xbf\xc0\xc2\xdf\xe0\xe1\xed\xef\xf0\xf1\xf4\xf5\xff";
  const std::string alphabet(kAlphabet, sizeof kAlphabet - 1);  // the NUL inside included
  for (int round = 0; round < 20000; ++round) {
    std::string body(std::uniform_int_distribution<int>(0, 12)(rng), ' ');
    for (char& c : body) {
      c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    }
    const Message m = SendMessage{1, kConv, 2, body};
    ASSERT_EQ(ToJson(m), OracleJson(m)) << "round " << round;
  }
}

TEST(JsonCodecTest, SixtyFourBitValuesAreStringsAndEnumsAreNames) {
  const auto j = nlohmann::json::parse(ToJson(Deliver{Sample()}));
  EXPECT_EQ(j["type"], "Deliver");
  EXPECT_EQ(j["message"]["message_id"], std::to_string((uint64_t{1} << 62) + 12345));
  EXPECT_EQ(j["message"]["sent_at_us"], "-3");
  EXPECT_EQ(j["message"]["conv"]["type"], "direct");
  const auto g = nlohmann::json::parse(ToJson(GetMessages{1, kConv, 0, 50}));
  EXPECT_TRUE(g["limit"].is_number());
}

// The per-member receipts as a browser reads them: watermarks (Snowflake ids) as strings.
TEST(JsonCodecTest, ReceiptsResultMembersAreObjectsWithStringWatermarks) {
  const auto j = nlohmann::json::parse(
      ToJson(ReceiptsResult{3,
                            Code::kPermissionDenied,
                            ConversationId::Group(GroupId(9)),
                            {MemberReceipts{UserId(2), (uint64_t{1} << 62) + 1, 0}},
                            false}));
  EXPECT_EQ(j["type"], "ReceiptsResult");
  EXPECT_EQ(j["code"], "PERMISSION_DENIED");
  EXPECT_EQ(j["members"][0]["user"], "2");
  EXPECT_EQ(j["members"][0]["delivered_up_to"], std::to_string((uint64_t{1} << 62) + 1));
  EXPECT_EQ(j["members"][0]["read_up_to"], "0");
  auto ask = FromJson(R"({"type":"GetReceipts","request_id":"4",
                          "conv":{"type":"group","low":"9","high":"0"}})");
  ASSERT_TRUE(ask.ok()) << ask.status();
  EXPECT_EQ(std::get<GetReceipts>(*ask),
            (GetReceipts{4, ConversationId::Group(GroupId(9)), {}, 0}));
}

TEST(JsonCodecTest, NumbersAreAcceptedAndMissingFieldsDefault) {
  auto m = FromJson(R"({"type":"GetMessages","request_id":4,
                        "conv":{"type":"group","low":5,"high":0}})");
  ASSERT_TRUE(m.ok()) << m.status();
  const auto& g = std::get<GetMessages>(*m);
  EXPECT_EQ(g.request_id, 4u);
  EXPECT_EQ(g.conv, ConversationId::Group(GroupId(5)));
  EXPECT_EQ(g.limit, 0u);
}

TEST(JsonCodecTest, ErrorsNameTheProblem) {
  struct Case {
    std::string text;
    absl::StatusCode code;
    std::string detail;
  };
  const Case cases[] = {
      {"", absl::StatusCode::kInvalidArgument, "not valid JSON"},
      {"\"just a string\"", absl::StatusCode::kInvalidArgument, "JSON object"},
      {R"({"type":7})", absl::StatusCode::kInvalidArgument, "must be a string"},
      {R"({"type":"Nope"})", absl::StatusCode::kInvalidArgument, "unknown message type"},
      {R"({"type":"Typing","active":"yes"})", absl::StatusCode::kInvalidArgument,
       "Typing.active: expected true or false"},
      {R"({"type":"Receipt","conv":{"type":"direct","low":"1","high":"2"},"kind":"seen"})",
       absl::StatusCode::kInvalidArgument, "Receipt.kind: unknown enum value"},
      {R"({"type":"GetMessages","limit":"4294967296"})", absl::StatusCode::kInvalidArgument,
       "GetMessages.limit: over 2^32 - 1"},
      {R"({"type":"GetMessages","conv":{"type":"direct","low":"3","high":"2"}})",
       absl::StatusCode::kInvalidArgument, "GetMessages.conv: invalid conversation id"},
      {R"({"type":"PresenceQuery","users":["1","x"]})", absl::StatusCode::kInvalidArgument,
       "PresenceQuery.users[1]"},
      {R"({"type":"SyncRequest","extra":1})", absl::StatusCode::kInvalidArgument,
       "SyncRequest.extra: unknown field"},
      {std::string(100, '['), absl::StatusCode::kInvalidArgument, "json_depth_max"},
      {std::string(300000, ' '), absl::StatusCode::kResourceExhausted, "frame_bytes_max"},
  };
  for (const Case& c : cases) {
    auto m = FromJson(c.text);
    ASSERT_FALSE(m.ok()) << c.text.substr(0, 80);
    EXPECT_EQ(m.status().code(), c.code) << m.status();
    EXPECT_NE(m.status().message().find(c.detail), std::string::npos) << m.status();
  }
}

// Found by fuzz/json_codec_fuzz.cc: a message that left its conversation out decoded with the
// default conversation d0-0, which is invalid, which no binary frame can carry, and whose ToJson
// did not decode again. A conversation cannot be left out, at any depth.
TEST(JsonCodecTest, LeftOutConversationIsRefused) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"type":"StoreReceipt","reader":"4","kind":"delivered","up_to":"6"})",
       "StoreReceipt.conv: missing"},
      {R"({"type":"SendMessage","client_msg_id":"1","body":"hi"})", "SendMessage.conv: missing"},
      {R"({"type":"Deliver"})", "Deliver.message: missing"},
      {R"({"type":"MessagesResult","conv":{"type":"group","low":"5"},"messages":[{}]})",
       "MessagesResult.messages[0].conv: missing"},
  };
  for (const auto& [text, detail] : cases) {
    auto m = FromJson(text);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
    EXPECT_NE(m.status().message().find(detail), std::string::npos) << m.status();
  }
  EXPECT_FALSE(FromJsonAs("GetMessages", R"({"limit":5})").ok());
  // Lists may still be left out or empty, and messages without a conversation need none.
  EXPECT_TRUE(FromJson(R"({"type":"MessagesResult","conv":{"type":"group","low":"5"}})").ok());
  EXPECT_TRUE(FromJson(R"({"type":"SyncRequest"})").ok());
}

TEST(JsonCodecTest, FromJsonAsTakesTheTypeFromTheEndpoint) {
  auto m = FromJsonAs("JoinGroup", R"({"request_id":"1","group":"5"})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(std::get<JoinGroup>(*m).group, GroupId(5));
  EXPECT_FALSE(FromJsonAs("JoinGroup", R"({"type":"LeaveGroup","group":"5"})").ok());
  EXPECT_TRUE(FromJsonAs("SyncRequest", "").ok());
}

}  // namespace
}  // namespace chatlab::real
