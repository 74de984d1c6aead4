// Unit tests of the chat server state machine alone: inputs in, effects out, no environment.
#include "core/chat_server.h"

#include "gtest/gtest.h"

namespace chatlab {
namespace {

const UserId kAlice(1), kBob(2);
const NodeId kSelf(101), kOther(102);
const Topology kTopology{NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6), {}};

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

// Every map_refresh_interval_us, at its tick, the server re-sends the users it holds sessions for
// to the mapping and presence, in ascending order and in chunks of lookup_users_max; never
// before the interval, never when it holds none, and never with the interval 0.
TEST(ChatServerTest, RefreshesItsUsersEveryIntervalInChunks) {
  ProtocolConfig config;
  config.server_tick_us = 100 * kUsPerMs;
  config.map_refresh_interval_us = kUsPerSecond;
  config.lookup_users_max = 2;
  ChatServer server(Options(config));
  Effects out;
  server.Start(0, out);
  server.OnTimer(900 * kUsPerMs, ChatServer::kTickTimer, out);
  out.clear();
  server.OnTimer(kUsPerSecond, ChatServer::kTickTimer, out);  // due, but no users: nothing
  EXPECT_TRUE(Sent<MapRefresh>(out).empty());
  for (uint64_t u : {3, 1, 2}) {
    ASSERT_TRUE(server.OnSessionOpen(kUsPerSecond, SessionId(u), UserId(u), out).ok());
  }
  out.clear();
  server.OnTimer(kUsPerSecond + 500 * kUsPerMs, ChatServer::kTickTimer, out);
  EXPECT_TRUE(Sent<MapRefresh>(out).empty()) << "before the next interval";
  server.OnTimer(2 * kUsPerSecond + 50 * kUsPerMs, ChatServer::kTickTimer, out);
  const std::vector<MapRefresh> map = Sent<MapRefresh>(out);
  const std::vector<PresenceRefresh> presence = Sent<PresenceRefresh>(out);
  ASSERT_EQ(map.size(), 2u);
  EXPECT_EQ(map[0].users, (std::vector<UserId>{UserId(1), UserId(2)}));
  EXPECT_EQ(map[1].users, (std::vector<UserId>{UserId(3)}));
  ASSERT_EQ(presence.size(), 2u);
  EXPECT_EQ(presence[0].users, map[0].users);
  EXPECT_EQ(presence[1].users, map[1].users);
  for (const Effect& e : out) {
    const auto* n = std::get_if<SendToNode>(&e);
    if (n == nullptr) continue;
    if (std::holds_alternative<MapRefresh>(n->msg)) {
      EXPECT_EQ(n->to, kTopology.mapping);
    }
    if (std::holds_alternative<PresenceRefresh>(n->msg)) {
      EXPECT_EQ(n->to, kTopology.presence);
    }
  }
  EXPECT_EQ(server.stats().refreshes, 2u);
  out.clear();
  server.OnTimer(3 * kUsPerSecond, ChatServer::kTickTimer, out);  // 950 ms after: not yet
  EXPECT_TRUE(Sent<MapRefresh>(out).empty());
  server.OnTimer(3 * kUsPerSecond + 50 * kUsPerMs, ChatServer::kTickTimer, out);
  EXPECT_EQ(Sent<MapRefresh>(out).size(), 2u);

  ChatServer never(Options());  // map_refresh_interval_us = 0, the simulator's default
  never.Start(0, out);
  ASSERT_TRUE(never.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  for (int s = 1; s <= 5; ++s) never.OnTimer(s * kUsPerSecond, ChatServer::kTickTimer, out);
  EXPECT_TRUE(Sent<MapRefresh>(out).empty());
  EXPECT_TRUE(Sent<PresenceRefresh>(out).empty());
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


// ---- One message, one promise -----------------------------------------------------------------

// The SendAcks the session got for client message id cmid, in order.
std::vector<SendAck> AcksFor(const Effects& effects, ClientMsgId cmid) {
  std::vector<SendAck> acks;
  for (const SendAck& a : Sent<SendAck>(effects)) {
    if (a.client_msg_id == cmid) acks.push_back(a);
  }
  return acks;
}

StoreAppendResult Stored(uint64_t request_id, const ConversationId& conv, ClientMsgId cmid) {
  StoreAppendResult r;
  r.request_id = request_id;
  r.outcome.code = Code::kOk;
  r.outcome.message.conv = conv;
  r.outcome.message.sender = kAlice;
  r.outcome.message.client_msg_id = cmid;
  r.outcome.message.message_id = 1000;
  r.outcome.recipients = {kAlice, kBob};
  return r;
}

// Starts server and opens Alice's session 1; out is left empty.
void StartWithAlice(ChatServer& server, Effects& out) {
  server.Start(0, out);
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
}

TEST(ChatServerTest, RetryCrossingItsAckIsAbsorbed) {
  ChatServer server(Options());
  Effects out;
  StartWithAlice(server, out);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  server.OnClientMessage(0, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  ASSERT_EQ(Sent<StoreAppend>(out).size(), 1u);
  const uint64_t first = Sent<StoreAppend>(out)[0].request_id;
  out.clear();
  server.OnMessage(1, kTopology.store, Stored(first, conv, 7), out);  // acked kOk
  ASSERT_EQ(AcksFor(out, 7).size(), 1u);
  out.clear();
  // The client's retry was already on the wire; it arrives after the kOk went out on this
  // same ordered session, so it needs nothing: no store request, no second answer.
  server.OnClientMessage(2, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  EXPECT_TRUE(Sent<StoreAppend>(out).empty());
  EXPECT_TRUE(AcksFor(out, 7).empty());
  EXPECT_EQ(server.stats().retries_after_ack, 1u);
}

TEST(ChatServerTest, AttemptBesideAnAckedOneIsNeverAnsweredWithARefusal) {
  ChatServer server(Options());
  Effects out;
  StartWithAlice(server, out);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  Effects seen;  // everything the server emitted from here on
  // Two attempts in flight together (the retry left before the first was answered).
  server.OnClientMessage(0, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  server.OnClientMessage(1, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  ASSERT_EQ(Sent<StoreAppend>(out).size(), 2u);
  const uint64_t first = Sent<StoreAppend>(out)[0].request_id;
  seen.insert(seen.end(), out.begin(), out.end());
  out.clear();
  server.OnMessage(2, kTopology.store, Stored(first, conv, 7), out);  // the first: kOk
  seen.insert(seen.end(), out.begin(), out.end());
  out.clear();
  // The second's store request was lost: it times out, and its UNAVAILABLE is withheld.
  const TimeUs later = ProtocolConfig{}.request_timeout_us + ProtocolConfig{}.server_tick_us;
  server.OnTimer(later, uint64_t{1} << 56, out);
  seen.insert(seen.end(), out.begin(), out.end());
  const std::vector<SendAck> acks = AcksFor(seen, 7);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].code, Code::kOk);
  EXPECT_EQ(server.stats().acks_withheld, 1u);
}

TEST(ChatServerTest, ReusedIdForAnotherMessageIsRefusedNotAbsorbed) {
  ChatServer server(Options());
  Effects out;
  StartWithAlice(server, out);
  const auto conv = ConversationId::Direct(kAlice, kBob);
  // Id 7 for "x" and, in flight beside it, id 7 for "y": the store acks the first and refuses
  // the second (the id names another message). The refusal is about "y", so it is sent.
  server.OnClientMessage(0, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  server.OnClientMessage(1, SessionId(1), SendMessage{7, conv, 0, "y"}, out);
  ASSERT_EQ(Sent<StoreAppend>(out).size(), 2u);
  const uint64_t first = Sent<StoreAppend>(out)[0].request_id;
  const uint64_t second = Sent<StoreAppend>(out)[1].request_id;
  out.clear();
  server.OnMessage(2, kTopology.store, Stored(first, conv, 7), out);
  StoreAppendResult refused;
  refused.request_id = second;
  refused.outcome.code = Code::kInvalidArgument;
  server.OnMessage(3, kTopology.store, refused, out);
  std::vector<SendAck> acks = AcksFor(out, 7);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].code, Code::kOk);
  EXPECT_EQ(acks[1].code, Code::kInvalidArgument);
  out.clear();
  // After the kOk, the same id for another body or conversation is refused at once (not
  // absorbed as a retry, which would leave it unanswered); a true retry is still absorbed.
  const auto group = ConversationId::Group(GroupId(5));
  server.OnClientMessage(4, SessionId(1), SendMessage{7, conv, 0, "z"}, out);
  server.OnClientMessage(4, SessionId(1), SendMessage{7, group, 0, "x"}, out);
  server.OnClientMessage(4, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
  EXPECT_TRUE(Sent<StoreAppend>(out).empty());
  acks = AcksFor(out, 7);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].code, Code::kInvalidArgument);
  EXPECT_EQ(acks[1].code, Code::kInvalidArgument);
  EXPECT_EQ(server.stats().retries_after_ack, 1u);
  EXPECT_EQ(server.stats().acks_withheld, 0u);
}

TEST(ChatServerTest, BatchedGroupSendAsksMembershipBeforeQueueing) {
  ProtocolConfig config;
  config.write_path = WritePath::kBatched;
  ChatServer server(Options(config));
  Effects out;
  server.Start(0, out);
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  const auto group = ConversationId::Group(GroupId(9));
  out.clear();
  server.OnClientMessage(0, SessionId(1), SendMessage{7, group, 0, "x"}, out);
  ASSERT_EQ(Sent<StoreCheckMember>(out).size(), 1u);
  EXPECT_TRUE(Sent<WriterEnqueue>(out).empty());  // nothing is promised yet
  const StoreCheckMember check = Sent<StoreCheckMember>(out)[0];
  EXPECT_EQ(check.user, kAlice);
  EXPECT_EQ(check.group, GroupId(9));
  EXPECT_EQ(check.client_msg_id, 7u);
  out.clear();
  // Not a member: refused, never queued, never acked.
  server.OnMessage(1, kTopology.store, StoreCheckMemberResult{check.request_id,
                                                              Code::kPermissionDenied}, out);
  ASSERT_EQ(AcksFor(out, 7).size(), 1u);
  EXPECT_EQ(AcksFor(out, 7)[0].code, Code::kPermissionDenied);
  EXPECT_TRUE(Sent<WriterEnqueue>(out).empty());
  out.clear();
  // A member: queued, then acked by the writer's answer.
  server.OnClientMessage(2, SessionId(1), SendMessage{8, group, 0, "y"}, out);
  const StoreCheckMember check2 = Sent<StoreCheckMember>(out)[0];
  out.clear();
  server.OnMessage(3, kTopology.store, StoreCheckMemberResult{check2.request_id, Code::kOk}, out);
  ASSERT_EQ(Sent<WriterEnqueue>(out).size(), 1u);
  EXPECT_TRUE(AcksFor(out, 8).empty());
  const uint64_t enqueue = Sent<WriterEnqueue>(out)[0].request_id;
  out.clear();
  server.OnMessage(4, kTopology.writer, WriterEnqueueResult{enqueue, Code::kOk}, out);
  ASSERT_EQ(AcksFor(out, 8).size(), 1u);
  EXPECT_EQ(AcksFor(out, 8)[0].code, Code::kOk);
  EXPECT_TRUE(AcksFor(out, 8)[0].queued);
}

// IdGenerator::kChatServer: the server mints the id on its own clock when it takes the send;
// with the store as the generator (the default) it sends none.
TEST(ChatServerTest, MintsIdsOnItsOwnClockOnlyWhenTheGeneratorIsTheChatServer) {
  const TimeUs now = (kChatLabEpochMs + 5000) * kUsPerMs + 123;
  const auto conv = ConversationId::Direct(kAlice, kBob);
  auto minted = [&](ProtocolConfig config, WritePath path) {
    config.write_path = path;
    ChatServer server(Options(config));
    Effects out;
    server.Start(now, out);
    EXPECT_TRUE(server.OnSessionOpen(now, SessionId(1), kAlice, out).ok());
    out.clear();
    server.OnClientMessage(now, SessionId(1), SendMessage{7, conv, 0, "x"}, out);
    if (path == WritePath::kBatched) {
      EXPECT_EQ(Sent<WriterEnqueue>(out).size(), 1u);
      return Sent<WriterEnqueue>(out).empty() ? MessageId{0}
                                              : Sent<WriterEnqueue>(out)[0].message.message_id;
    }
    EXPECT_EQ(Sent<StoreAppend>(out).size(), 1u);
    return Sent<StoreAppend>(out).empty() ? MessageId{0}
                                          : Sent<StoreAppend>(out)[0].message.message_id;
  };
  for (const WritePath path : AllValues<WritePath>()) {
    SCOPED_TRACE(WritePathName(path));
    ProtocolConfig config;
    EXPECT_EQ(minted(config, path), kNoMessage);  // kStore
    config.id_generator = IdGenerator::kChatServer;
    config.id_scheme = IdScheme::kTimestamp;
    EXPECT_EQ(minted(config, path), static_cast<MessageId>(now));
    config.id_scheme = IdScheme::kSequence;
    EXPECT_EQ(minted(config, path), kNoMessage);  // the store numbers sequences
    config.id_scheme = IdScheme::kSnowflake;
    const SnowflakeParts parts = SnowflakeGenerator::Decode(minted(config, path));
    EXPECT_EQ(parts.node, kSelf.value);
    EXPECT_EQ(parts.timestamp_ms, 5000u);
  }
}

// A presence poll names its viewer, so the answer can say which contacts push to that user.
TEST(ChatServerTest, PresenceQueriesNameTheViewer) {
  ChatServer server(Options());
  Effects out;
  server.Start(0, out);
  ASSERT_TRUE(server.OnSessionOpen(0, SessionId(1), kAlice, out).ok());
  out.clear();
  server.OnClientMessage(0, SessionId(1), PresenceQuery{4, {kBob}}, out);
  ASSERT_EQ(Sent<PresenceLookup>(out).size(), 1u);
  EXPECT_EQ(Sent<PresenceLookup>(out)[0].viewer, kAlice);
  EXPECT_EQ(Sent<PresenceLookup>(out)[0].users, std::vector<UserId>{kBob});
  const uint64_t req = Sent<PresenceLookup>(out)[0].request_id;
  out.clear();
  server.OnMessage(1, kTopology.presence,
                   PresenceLookupResult{req, {PresenceStatus{kBob, true, 1, true}}}, out);
  ASSERT_EQ(Sent<PresenceResult>(out).size(), 1u);
  EXPECT_TRUE(Sent<PresenceResult>(out)[0].statuses[0].pushed);  // relayed as it is
}

// GetReceipts travels like GetMessages: to the store for the session's user (who may ask is the
// store's call), back to the asking session under the client's request id; a refusal comes back
// as the store's code, a timeout as ErrorReply{UNAVAILABLE}, and a web session may ask too.
TEST(ChatServerTest, GetReceiptsIsRelayedForTheSessionUserAndAnsweredToItsSession) {
  ChatServer server(Options());
  Effects out;
  StartWithAlice(server, out);
  const auto group = ConversationId::Group(GroupId(42));
  server.OnClientMessage(0, SessionId(1), GetReceipts{77, group, kBob, 10}, out);
  ASSERT_EQ(Sent<StoreGetReceipts>(out).size(), 1u);
  const StoreGetReceipts asked = Sent<StoreGetReceipts>(out)[0];
  EXPECT_EQ(asked.user, kAlice);  // the session's, never the client's say
  EXPECT_EQ(asked.conv, group);
  EXPECT_EQ(asked.after_user, kBob);
  EXPECT_EQ(asked.limit, 10u);
  EXPECT_EQ(std::get<SendToNode>(out[0]).to, kTopology.store);
  out.clear();
  const std::vector<MemberReceipts> members{{UserId(3), 5, 4}, {UserId(4), 5, 0}};
  server.OnMessage(1, kTopology.store,
                   StoreGetReceiptsResult{asked.request_id, Code::kOk, group, members, true}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<SendToClient>(out[0]).session, SessionId(1));
  ASSERT_EQ(Sent<ReceiptsResult>(out).size(), 1u);
  EXPECT_EQ(Sent<ReceiptsResult>(out)[0], (ReceiptsResult{77, Code::kOk, group, members, true}));
  // A refusal keeps the store's code and the conversation.
  out.clear();
  server.OnClientMessage(2, SessionId(1), GetReceipts{78, group, UserId(), 0}, out);
  const uint64_t refused = Sent<StoreGetReceipts>(out)[0].request_id;
  out.clear();
  server.OnMessage(3, kTopology.store,
                   StoreGetReceiptsResult{refused, Code::kPermissionDenied, group, {}, false}, out);
  ASSERT_EQ(Sent<ReceiptsResult>(out).size(), 1u);
  EXPECT_EQ(Sent<ReceiptsResult>(out)[0].code, Code::kPermissionDenied);
  EXPECT_EQ(Sent<ReceiptsResult>(out)[0].request_id, 78u);
  // No answer from the store: ErrorReply{UNAVAILABLE}, and the late answer is dropped.
  out.clear();
  server.OnClientMessage(4, SessionId(1), GetReceipts{79, group, UserId(), 0}, out);
  const uint64_t lost = Sent<StoreGetReceipts>(out)[0].request_id;
  out.clear();
  const TimeUs later = 4 + ProtocolConfig{}.request_timeout_us + ProtocolConfig{}.server_tick_us;
  server.OnTimer(later, ChatServer::kTickTimer, out);
  ASSERT_EQ(Sent<ErrorReply>(out).size(), 1u);
  EXPECT_EQ(Sent<ErrorReply>(out)[0].code, Code::kUnavailable);
  out.clear();
  server.OnMessage(later, kTopology.store,
                   StoreGetReceiptsResult{lost, Code::kOk, group, members, false}, out);
  EXPECT_TRUE(Sent<ReceiptsResult>(out).empty());
  // The Web Service may ask (it is a read).
  ASSERT_TRUE(server.OnWebSessionOpen(later, SessionId(2), kBob, out).ok());
  out.clear();
  server.OnClientMessage(later, SessionId(2), GetReceipts{80, group, UserId(), 0}, out);
  ASSERT_EQ(Sent<StoreGetReceipts>(out).size(), 1u);
  EXPECT_EQ(Sent<StoreGetReceipts>(out)[0].user, kBob);
}

}  // namespace
}  // namespace chatlab
