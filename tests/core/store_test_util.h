// Shared helpers of the message store unit tests (store_test.cc, store_state_test.cc,
// store_ids_test.cc): constants, a config, and calls that drive a MessageStore through OnMessage
// and return its single reply.
#ifndef CHATLAB_TESTS_CORE_STORE_TEST_UTIL_H_
#define CHATLAB_TESTS_CORE_STORE_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/snowflake.h"
#include "core/store.h"
#include "gtest/gtest.h"

namespace chatlab::store_test {

constexpr NodeId kStoreNode(5);
constexpr NodeId kServer(100);
constexpr UserId kAlice(1);
constexpr UserId kBob(2);
constexpr UserId kCarol(3);
constexpr UserId kDave(4);
constexpr GroupId kGroup(10);

inline const ConversationId kAliceBob = ConversationId::Direct(kAlice, kBob);
inline const ConversationId kGroupConv = ConversationId::Group(kGroup);

// 1000 s after the snowflake epoch, in microseconds since the Unix epoch.
constexpr int64_t kT0SinceEpochMs = 1000 * 1000;
constexpr TimeUs kT0 = (kChatLabEpochMs + kT0SinceEpochMs) * kUsPerMs;

inline ProtocolConfig SequenceConfig() {
  ProtocolConfig config;
  config.id_scheme = IdScheme::kSequence;
  return config;
}

inline NodeOptions Options(const ProtocolConfig& config, NodeId self = kStoreNode) {
  NodeOptions options;
  options.self = self;
  options.config = config;
  options.topology.store = self;
  return options;
}

inline ChatMessage Msg(const ConversationId& conv, UserId sender, ClientMsgId cmid,
                       std::string body = "hi") {
  ChatMessage m;
  m.conv = conv;
  m.sender = sender;
  m.client_msg_id = cmid;
  m.sent_at_us = 42;
  m.body = std::move(body);
  return m;
}

// Sends msg from kServer and returns the single reply, which must go back to kServer. Persist
// effects (checked by the durability tests below) must all come before the reply.
template <typename Reply>
inline Reply Call(MessageStore& store, TimeUs now, const Message& msg) {
  Effects all;
  store.OnMessage(now, kServer, msg, all);
  Effects out;
  for (Effect& e : all) {
    if (std::holds_alternative<Persist>(e)) {
      EXPECT_TRUE(out.empty()) << "a Persist effect after the reply";
      continue;
    }
    out.push_back(std::move(e));
  }
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1) return Reply{};
  const auto* send = std::get_if<SendToNode>(&out[0]);
  EXPECT_NE(send, nullptr);
  if (send == nullptr) return Reply{};
  EXPECT_EQ(send->to, kServer);
  const auto* reply = std::get_if<Reply>(&send->msg);
  EXPECT_NE(reply, nullptr);
  return reply == nullptr ? Reply{} : *reply;
}

inline AppendOutcome Append(MessageStore& store, TimeUs now, const ChatMessage& m,
                            uint64_t request_id = 7) {
  const auto result = Call<StoreAppendResult>(store, now, StoreAppend{request_id, m});
  EXPECT_EQ(result.request_id, request_id);
  return result.outcome;
}

inline StoreMembershipResult Membership(MessageStore& store, UserId user, GroupId group, bool join,
                                        TimeUs now = kT0) {
  return Call<StoreMembershipResult>(store, now, StoreMembership{3, user, group, join});
}

inline StoreReadResult Read(MessageStore& store, UserId reader, const ConversationId& conv,
                            MessageId after_id, uint32_t limit, TimeUs now = kT0) {
  return Call<StoreReadResult>(store, now, StoreRead{4, reader, conv, after_id, limit});
}

inline StoreReceiptResult Receipt(MessageStore& store, const ConversationId& conv, UserId reader,
                                  ReceiptKind kind, MessageId up_to) {
  return Call<StoreReceiptResult>(store, kT0, StoreReceipt{5, conv, reader, kind, up_to});
}

inline std::vector<MessageId> Ids(const std::vector<ChatMessage>& messages) {
  std::vector<MessageId> ids;
  for (const ChatMessage& m : messages) ids.push_back(m.message_id);
  return ids;
}
}  // namespace chatlab::store_test

#endif  // CHATLAB_TESTS_CORE_STORE_TEST_UTIL_H_
