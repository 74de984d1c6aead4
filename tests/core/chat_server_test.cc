// Unit tests of the chat server state machine alone: inputs in, effects out, no environment.
#include "core/chat_server.h"

#include "gtest/gtest.h"

namespace chatlab {
namespace {

const UserId kAlice(1), kBob(2);
const NodeId kSelf(101), kOther(102);
const Topology kTopology{NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};

NodeOptions Options(ProtocolConfig config = {}) {
  return NodeOptions{kSelf, config, kTopology, 42};
}

template <typename T>
std::vector<T> Sent(const Effects& effects) {
  std::vector<T> result;
  for (const Effect& e : effects) {
    if (const auto* n = std::get_if<SendToNode>(&e)) {
      if (const auto* m = std::get_if<T>(&n->msg)) result.push_back(*m);
    } else if (const auto* c = std::get_if<SendToClient>(&e)) {
      if (const auto* m = std::get_if<T>(&c->msg)) result.push_back(*m);
    }
  }
  return result;
}

TEST(ChatServerTest, SessionOpenRegistersMappingAndPresence) {
  ChatServer server(Options());
  Effects out;
  server.Start(0, out);
  out.clear();
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  EXPECT_EQ(Sent<MapRegister>(out).size(), 1u);
  ASSERT_EQ(Sent<PresenceSet>(out).size(), 1u);
  EXPECT_TRUE(Sent<PresenceSet>(out)[0].online);
  out.clear();
  // A second session of the same user on this server: mapping again, no second "online".
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(2), kAlice, out).ok());
  EXPECT_EQ(Sent<PresenceSet>(out).size(), 0u);
  EXPECT_EQ(server.OnSessionOpen(0, SessionId(2), kAlice, out).code(),
            absl::StatusCode::kAlreadyExists);
  out.clear();
  server.OnSessionClose(0, SessionId(1), out);
  EXPECT_TRUE(Sent<MapUnregister>(out).empty());  // one session is left
  server.OnSessionClose(0, SessionId(2), out);
  EXPECT_EQ(Sent<MapUnregister>(out).size(), 1u);
  ASSERT_EQ(Sent<PresenceSet>(out).size(), 1u);
  EXPECT_FALSE(Sent<PresenceSet>(out)[0].online);
}

TEST(ChatServerTest, SessionLimitRefusesNewSessions) {
  ProtocolConfig config;
  config.server_sessions_max = 1;
  ChatServer server(Options(config));
  Effects out;
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  EXPECT_EQ(server.OnSessionOpen(0, SessionId(2), kBob, out).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(server.stats().sessions_refused, 1u);
}

TEST(ChatServerTest, DisplacedSessionsAreClosed) {
  ChatServer server(Options());
  Effects out;
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  server.OnMessage(0, kTopology.mapping, MapDisplaced{kAlice, kOther}, out);
  ASSERT_EQ(Sent<SessionClosed>(out).size(), 1u);
  bool closed = false;
  for (const Effect& e : out) closed = closed || std::holds_alternative<CloseSession>(e);
  EXPECT_TRUE(closed);
  EXPECT_EQ(server.session_count(), 0u);
  EXPECT_TRUE(Sent<MapUnregister>(out).empty());  // the mapping already moved on
}

TEST(ChatServerTest, StoreTimeoutAnswersUnavailableSoTheClientRetries) {
  ChatServer server(Options());
  Effects out;
  server.Start(0, out);
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  server.OnClientMessage(0, SessionId(1),
                         SendMessage{7, ConversationId::Direct(kAlice, kBob), 0, "x"}, out);
  ASSERT_EQ(Sent<StoreAppend>(out).size(), 1u);
  EXPECT_EQ(server.pending_count(), 1u);
  out.clear();
  const TimeUs later = ProtocolConfig{}.request_timeout_us + ProtocolConfig{}.server_tick_us;
  server.OnTimer(later, uint64_t{1} << 56, out);
  ASSERT_EQ(Sent<SendAck>(out).size(), 1u);
  EXPECT_EQ(Sent<SendAck>(out)[0].code, Code::kUnavailable);
  EXPECT_EQ(server.pending_count(), 0u);
  // The store's late answer finds nothing pending and is dropped.
  out.clear();
  server.OnMessage(later, kTopology.store, StoreAppendResult{1, AppendOutcome{}}, out);
  EXPECT_TRUE(Sent<SendAck>(out).empty());
}

TEST(ChatServerTest, PendingLimitRefusesSends) {
  ProtocolConfig config;
  config.server_pending_max = 1;
  ChatServer server(Options(config));
  Effects out;
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  const auto conv = ConversationId::Direct(kAlice, kBob);
  server.OnClientMessage(0, SessionId(1), SendMessage{1, conv, 0, "a"}, out);
  server.OnClientMessage(0, SessionId(1), SendMessage{2, conv, 0, "b"}, out);
  ASSERT_EQ(Sent<SendAck>(out).size(), 1u);
  EXPECT_EQ(Sent<SendAck>(out)[0].client_msg_id, 2u);
  EXPECT_EQ(Sent<SendAck>(out)[0].code, Code::kResourceExhausted);
}

TEST(ChatServerTest, UnexpectedNodeMessagesAreCountedAndIgnored) {
  ChatServer server(Options());
  Effects out;
  server.OnMessage(0, NodeId(9), SendMessage{}, out);
  server.OnMessage(0, NodeId(9), StoreAppendResult{12345, {}}, out);
  EXPECT_EQ(server.stats().unexpected_messages, 1u);
  EXPECT_TRUE(out.empty());
}

TEST(ChatServerTest, WebSessionsAnswerReadsButNeverRegisterOrSend) {
  ChatServer server(Options());
  Effects out;
  server.Start(0, out);
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  // A web session of the same user: no mapping, no presence, the WebSocket session stays.
  ASSERT_TRUE(server.OnWebSessionOpen(0, SessionId(2), kAlice, out).ok());
  EXPECT_TRUE(out.empty());
  server.OnClientMessage(0, SessionId(2), GetMessages{9, ConversationId::Direct(kAlice, kBob), 0, 0},
                         out);
  ASSERT_EQ(Sent<StoreRead>(out).size(), 1u);
  const StoreRead read = Sent<StoreRead>(out)[0];
  EXPECT_EQ(read.reader, kAlice);
  out.clear();
  server.OnMessage(0, kTopology.store,
                   StoreReadResult{read.request_id, Code::kOk, read.conv, {}, false,
                                   GroupMode::kNone},
                   out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<SendToClient>(out[0]).session, SessionId(2));
  out.clear();
  // Sends travel on the WebSocket only.
  server.OnClientMessage(0, SessionId(2),
                         SendMessage{1, ConversationId::Direct(kAlice, kBob), 0, "hi"}, out);
  ASSERT_EQ(Sent<ErrorReply>(out).size(), 1u);
  EXPECT_EQ(Sent<ErrorReply>(out)[0].code, Code::kInvalidArgument);
  EXPECT_TRUE(Sent<StoreAppend>(out).empty());
  out.clear();
  server.OnSessionClose(0, SessionId(2), out);
  EXPECT_TRUE(out.empty());  // no unregister: the WebSocket session is still there
  EXPECT_EQ(server.session_count(), 1u);
}

}  // namespace
}  // namespace chatlab
