// Real-socket tests of chatd (CTest label "real"): every test starts its own chatd processes on
// free 127.0.0.1 ports with temporary data directories, talks to them as clients do (HTTP and
// WebSocket JSON frames), and kills them at the end. Waits poll with a deadline.
#include <openssl/hmac.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "real-transport/auth.h"
#include "real-transport/util.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

using Json = nlohmann::json;

// POST /api/CALL with the JSON of m; the decoded answer (or the HTTP status on failure).
absl::StatusOr<Message> Api(const HostPort& at, const std::string& token, const std::string& call,
                            const Message& m) {
  auto res = HttpCall(at, "POST", "/api/" + call, ToJson(m), token);
  if (!res.ok()) return res.status();
  if (res->status != 200) return absl::UnknownError(absl::StrCat(res->status, " ", res->body));
  return FromJson(res->body, JsonLimits{64u << 20, 64});
}

std::string Metrics(const HostPort& at) {
  auto res = HttpCall(at, "GET", "/metrics", "");
  return res.ok() ? res->body : "";
}

double Metric(const HostPort& at, const std::string& name) {
  const std::string text = Metrics(at);
  const size_t pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::atof(text.c_str() + pos + name.size() + 2);
}

// ---- Messaging
// -----------------------------------------------------------------------------------

TEST(ChatdTest, OneToOneWithDeliveryAndReadReceipts) {
  Single env({"alice", "bob"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  Client a, b;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  a.Send(SendMessage{1001, conv, 5, "hello bob"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->code, Code::kOk);
  EXPECT_NE(ack->message_id, 0u);
  EXPECT_FALSE(ack->duplicate);
  auto d = b.Next<Deliver>();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->message.body, "hello bob");
  EXPECT_EQ(d->message.sender, alice.user);
  EXPECT_EQ(d->message.message_id, ack->message_id);
  b.Send(Receipt{conv, ReceiptKind::kDelivered, d->message.message_id});
  auto delivered = a.Next<ReceiptUpdate>(
      [](const ReceiptUpdate& r) { return r.kind == ReceiptKind::kDelivered; });
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->reader, bob.user);
  EXPECT_EQ(delivered->up_to, ack->message_id);
  b.Send(Receipt{conv, ReceiptKind::kRead, d->message.message_id});
  auto read =
      a.Next<ReceiptUpdate>([](const ReceiptUpdate& r) { return r.kind == ReceiptKind::kRead; });
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->up_to, ack->message_id);
  // Bob answers; the chain continues (prev_msg_id).
  b.Send(SendMessage{2001, conv, 6, "hi alice"});
  auto reply = a.Next<Deliver>();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->message.prev_msg_id, ack->message_id);
  EXPECT_GT(Metric(env.server->address(), "chatlab_chat_server_acks_total"), 1.5);
}

TEST(ChatdTest, OfflineRecipientCatchesUpOnReconnect) {
  Single env({"alice", "bob"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  std::vector<MessageId> ids;
  for (int i = 1; i <= 3; ++i) {
    a.Send(SendMessage{static_cast<ClientMsgId>(i), conv, 0, absl::StrCat("offline ", i)});
    auto ack = a.Next<SendAck>();
    ASSERT_TRUE(ack && ack->code == Code::kOk);
    ids.push_back(ack->message_id);
  }
  // Bob was offline: the notification service pushed to his phone (counted by chatd).
  EXPECT_TRUE(Eventually([&] { return Metric(env.server->address(), "chatd_pushes_total") >= 3; }));
  Client b;
  ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
  b.Send(SyncRequest{7});
  auto sync = b.Next<SyncResult>();
  ASSERT_TRUE(sync.has_value());
  ASSERT_EQ(sync->heads.size(), 1u);
  EXPECT_EQ(sync->heads[0].conv, conv);
  EXPECT_EQ(sync->heads[0].head_id, ids.back());
  b.Send(GetMessages{8, conv, 0, 0});
  auto history = b.Next<MessagesResult>();
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(history->messages[i].message_id, ids[i]);
    EXPECT_EQ(history->messages[i].prev_msg_id, i == 0 ? 0 : ids[i - 1]);
  }
  // The same through the Web Service.
  auto web = Api(env.server->address(), bob.token, "get_messages", GetMessages{9, conv, ids[0], 0});
  ASSERT_TRUE(web.ok()) << web.status();
  ASSERT_TRUE(std::holds_alternative<MessagesResult>(*web));
  EXPECT_EQ(std::get<MessagesResult>(*web).messages.size(), 2u);
}

TEST(ChatdTest, GroupsJoinPostAndLeave) {
  Single env({"alice", "bob", "carol"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto carol = env.Login("carol");
  const GroupId group(77);
  const auto conv = ConversationId::Group(group);
  for (const auto* u : {&alice, &bob, &carol}) {
    auto r = Api(env.server->address(), u->token, "join_group", JoinGroup{1, group});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(std::get<GroupResult>(*r).joined);
  }
  Client a, b, c;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
  ASSERT_EQ(c.Connect(env.server->address(), carol.token), "");
  a.Send(SendMessage{1, conv, 0, "first"});
  ASSERT_TRUE(b.Next<Deliver>([](const Deliver& d) { return d.message.body == "first"; }));
  ASSERT_TRUE(c.Next<Deliver>([](const Deliver& d) { return d.message.body == "first"; }));
  auto left = Api(env.server->address(), carol.token, "leave_group", LeaveGroup{2, group});
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(std::get<GroupResult>(*left).joined);
  a.Send(SendMessage{2, conv, 0, "second"});
  ASSERT_TRUE(b.Next<Deliver>([](const Deliver& d) { return d.message.body == "second"; }));
  // Carol is no longer a member: she cannot post or read, and got nothing new.
  c.Send(SendMessage{3, conv, 0, "still here?"});
  auto refused = c.Next<SendAck>();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, Code::kPermissionDenied);
  c.Send(GetMessages{4, conv, 0, 0});
  auto read = c.Next<MessagesResult>();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->code, Code::kPermissionDenied);
  EXPECT_EQ(c.Count<Deliver>([](const Deliver& d) { return d.message.body == "second"; }), 0u);
}

// The per-member ticks of a group message over real sockets: the JSON frames of GetReceipts and
// ReceiptsResult on the WebSocket, the same call on the Web Service, a page limit, and the
// refusal of a user who is not a member.
TEST(ChatdTest, GroupMessageInfoListsEachMembersReceipts) {
  Single env({"alice", "bob", "carol"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto carol = env.Login("carol");
  const auto conv = ConversationId::Group(GroupId(78));
  for (const auto* u : {&alice, &bob}) {
    auto r = Api(env.server->address(), u->token, "join_group", JoinGroup{1, GroupId(78)});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  Client a, b;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
  a.Send(SendMessage{1, conv, 0, "who read this?"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->code, Code::kOk);
  const MessageId id = ack->message_id;
  ASSERT_TRUE(b.Next<Deliver>());
  b.Send(Receipt{conv, ReceiptKind::kDelivered, id});
  b.Send(Receipt{conv, ReceiptKind::kRead, id});
  a.Send(Receipt{conv, ReceiptKind::kRead, id});
  // Read by all once both read: the aggregate comes pushed; the members' marks are asked for.
  ASSERT_TRUE(a.Next<ReceiptUpdate>([id](const ReceiptUpdate& r) {
    return r.kind == ReceiptKind::kRead && r.reader == UserId() && r.up_to == id;
  }));
  a.Send(GetReceipts{5, conv, UserId(), 0});
  auto info = a.Next<ReceiptsResult>();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->request_id, 5u);
  EXPECT_EQ(info->code, Code::kOk);
  EXPECT_FALSE(info->has_more);
  std::map<uint64_t, MemberReceipts> by_user;
  for (const MemberReceipts& m : info->members) by_user[m.user.value] = m;
  ASSERT_EQ(by_user.size(), 2u);
  EXPECT_EQ(by_user[bob.user.value], (MemberReceipts{bob.user, id, id}));
  EXPECT_EQ(by_user[alice.user.value].read_up_to, id);
  // One member a page: has_more, and the next page starts after it.
  a.Send(GetReceipts{6, conv, UserId(), 1});
  auto page = a.Next<ReceiptsResult>([](const ReceiptsResult& r) { return r.request_id == 6; });
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->members.size(), 1u);
  EXPECT_TRUE(page->has_more);
  // The Web Service answers the same call; carol, not a member, is refused.
  auto web = Api(env.server->address(), bob.token, "receipts", GetReceipts{7, conv, UserId(), 0});
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(std::get<ReceiptsResult>(*web).members, info->members);
  auto refused =
      Api(env.server->address(), carol.token, "receipts", GetReceipts{8, conv, UserId(), 0});
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(std::get<ReceiptsResult>(*refused).code, Code::kPermissionDenied);
  EXPECT_TRUE(std::get<ReceiptsResult>(*refused).members.empty());
}

TEST(ChatdTest, TypingAndPresence) {
  Single env({"alice", "bob"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  {
    Client b;
    ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
    a.Send(SendMessage{1, conv, 0, "hi"});  // makes them contacts (presence ranking)
    ASSERT_TRUE(b.Next<Deliver>());
    a.Send(Typing{conv, true});
    auto typing = b.Next<TypingUpdate>();
    ASSERT_TRUE(typing.has_value());
    EXPECT_EQ(typing->user, alice.user);
    EXPECT_TRUE(typing->active);
    a.Send(PresenceQuery{5, {bob.user}});
    auto polled = a.Next<PresenceResult>();
    ASSERT_TRUE(polled.has_value());
    ASSERT_EQ(polled->statuses.size(), 1u);
    EXPECT_TRUE(polled->statuses[0].online);
    b.Close();
    ASSERT_TRUE(b.WaitClosed());
  }
  auto offline = a.Next<PresenceUpdate>(
      [&](const PresenceUpdate& p) { return p.status.user == bob.user && !p.status.online; });
  ASSERT_TRUE(offline.has_value());
  EXPECT_GT(offline->status.last_seen_us, 0);
  Client b2;
  ASSERT_EQ(b2.Connect(env.server->address(), bob.token), "");
  ASSERT_TRUE(a.Next<PresenceUpdate>(
      [&](const PresenceUpdate& p) { return p.status.user == bob.user && p.status.online; }));
}

// A retry is stored once, under the first attempt's id. Each retry's copy is delivered again (the
// server cannot presume the first attempt's fan-out happened: docs/protocol-nodes.md,
// StoreAppendResult), every copy with that one id, so the recipient's client shows it once.
TEST(ChatdTest, RetriedSendWithTheSameClientMessageIdIsStoredOnceUnderOneId) {
  Single env({"alice", "bob"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  Client b;
  ASSERT_EQ(b.Connect(env.server->address(), bob.token), "");
  MessageId id = 0;
  {
    Client a;
    ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
    a.Send(SendMessage{555, conv, 0, "once"});
    a.Send(SendMessage{555, conv, 0, "once"});
    auto first = a.Next<SendAck>();
    auto second = a.Next<SendAck>();
    ASSERT_TRUE(first && second);
    EXPECT_FALSE(first->duplicate);
    EXPECT_TRUE(second->duplicate);
    EXPECT_EQ(first->message_id, second->message_id);
    id = first->message_id;
  }
  // A retry from a new connection (the client reconnected) is still the same message.
  Client a2;
  ASSERT_EQ(a2.Connect(env.server->address(), alice.token), "");
  a2.Send(SendMessage{555, conv, 0, "once"});
  auto third = a2.Next<SendAck>();
  ASSERT_TRUE(third.has_value());
  EXPECT_TRUE(third->duplicate);
  EXPECT_EQ(third->message_id, id);
  a2.Send(SendMessage{556, conv, 0, "next"});
  for (int copy = 0; copy < 3; ++copy) {  // the first attempt's and each retry's
    const auto d = b.Next<Deliver>([](const Deliver& d) { return d.message.client_msg_id == 555; });
    ASSERT_TRUE(d) << "copy " << copy;
    EXPECT_EQ(d->message.message_id, id);
  }
  ASSERT_TRUE(b.Next<Deliver>([](const Deliver& d) { return d.message.client_msg_id == 556; }));
  EXPECT_EQ(b.Count<Deliver>([](const Deliver& d) { return d.message.client_msg_id == 555; }), 0u);
  auto history = Api(env.server->address(), bob.token, "get_messages", GetMessages{1, conv, 0, 0});
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(std::get<MessagesResult>(*history).messages.size(), 2u);
}

TEST(ChatdTest, ReusedClientMessageIdForAnotherMessageIsRefused) {
  Single env({"alice", "bob"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  const auto other = ConversationId::Direct(alice.user, UserId(alice.user.value + 100));
  const auto refused = [](const SendAck& ack) { return ack.code == Code::kInvalidArgument; };
  {
    Client a;
    ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
    a.Send(SendMessage{777, conv, 0, "first"});
    auto ok = a.Next<SendAck>();
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->code, Code::kOk);
    // The same id for another body, on the session that just acked it.
    a.Send(SendMessage{777, conv, 0, "second"});
    auto no = a.Next<SendAck>();
    ASSERT_TRUE(no.has_value());
    EXPECT_EQ(no->code, Code::kInvalidArgument);
    EXPECT_FALSE(no->duplicate);
    EXPECT_EQ(no->message_id, kNoMessage);
  }
  // From a new connection the store decides: another body or conversation is refused, the
  // true retry is still OK duplicate with the original id.
  Client a2;
  ASSERT_EQ(a2.Connect(env.server->address(), alice.token), "");
  a2.Send(SendMessage{777, conv, 0, "third"});
  ASSERT_TRUE(a2.Next<SendAck>(refused));
  a2.Send(SendMessage{777, other, 0, "first"});
  ASSERT_TRUE(a2.Next<SendAck>(refused));
  a2.Send(SendMessage{777, conv, 0, "first"});
  auto retry = a2.Next<SendAck>();
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->code, Code::kOk);
  EXPECT_TRUE(retry->duplicate);
  auto history = Api(env.server->address(), bob.token, "get_messages", GetMessages{1, conv, 0, 0});
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(std::get<MessagesResult>(*history).messages.size(), 1u);
  EXPECT_EQ(std::get<MessagesResult>(*history).messages[0].body, "first");
  EXPECT_EQ(Metric(env.server->address(), "chatlab_store_client_msg_id_reuses_total"), 2);
}

// ---- A cluster of processes
// ----------------------------------------------------------------------

class ChatdClusterTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatdClusterTest, UsersOnDifferentProcessesChat) {
  Cluster cluster(3, GetParam(), {"alice", "bob"});
  const HostPort p2 = cluster.servers[1]->address();
  const HostPort p3 = cluster.servers[2]->address();
  auto alice = real::Login(p2, "alice", "pw");
  auto bob = real::Login(p3, "bob", "pw");
  ASSERT_TRUE(alice.ok() && bob.ok());
  const auto conv = ConversationId::Direct(alice->user, bob->user);
  Client a, b;
  ASSERT_EQ(a.Connect(p2, alice->token), "");
  ASSERT_EQ(b.Connect(p3, bob->token), "");
  // The mapping (on process 1) learns where bob is before alice's message needs it.
  ASSERT_TRUE(Eventually([&] {
    return Metric(cluster.servers[0]->address(), "chatd_node_messages_received_total") >= 2;
  }));
  a.Send(SendMessage{1, conv, 0, "across processes"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack && ack->code == Code::kOk);
  auto d = b.Next<Deliver>();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->message.body, "across processes");
  b.Send(Receipt{conv, ReceiptKind::kRead, d->message.message_id});
  ASSERT_TRUE(a.Next<ReceiptUpdate>());
  b.Send(SendMessage{2, conv, 0, "and back"});
  auto back = a.Next<Deliver>();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->message.prev_msg_id, ack->message_id);
  EXPECT_GT(Metric(p2, "chatlab_chat_server_forwards_sent_total"), 0.5);
  // Bob opens a session on process 2 too: the older one on process 3 is displaced.
  Client b2;
  ASSERT_EQ(b2.Connect(p2, bob->token), "");
  auto closed = b.Next<SessionClosed>();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->code, Code::kFailedPrecondition);
  EXPECT_TRUE(b.WaitClosed());
  a.Send(SendMessage{3, conv, 0, "now local"});
  ASSERT_TRUE(b2.Next<Deliver>([](const Deliver& m) { return m.message.body == "now local"; }));
}

// Every forwarding strategy core/config.h names, by its flag value.
std::vector<std::string> ForwardingNames() {
  std::vector<std::string> names;
  for (chatlab::ForwardingStrategy f : chatlab::AllValues<chatlab::ForwardingStrategy>()) {
    names.emplace_back(chatlab::ForwardingStrategyName(f));
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Forwarding, ChatdClusterTest, ::testing::ValuesIn(ForwardingNames()));

// ---- Authentication and authorization
// ------------------------------------------------------------

TEST(ChatdAuthTest, EveryRefusal) {
  Single env({"alice", "bob", "carol"});
  const HostPort at = env.server->address();
  // Login.
  auto wrong = HttpCall(at, "POST", "/login", R"({"user":"alice","password":"nope"})");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  auto unknown = HttpCall(at, "POST", "/login", R"({"user":"mallory","password":"pw"})");
  EXPECT_EQ(unknown->status, 401);
  auto garbage = HttpCall(at, "POST", "/login", "{not json");
  EXPECT_EQ(garbage->status, 400);
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  const auto carol = env.Login("carol");
  // WebSocket: no token, a forged token, an expired token.
  {
    Client c;
    EXPECT_NE(c.Connect(at, ""), "");
  }
  {
    std::string forged = alice.token;
    forged.back() = forged.back() == '0' ? '1' : '0';
    Client c;
    EXPECT_NE(c.Connect(at, forged), "");
  }
  {
    auto key = TokenKey::LoadOrCreate(env.dir / "token.key");
    ASSERT_TRUE(key.ok());
    Client c;
    EXPECT_NE(c.Connect(at, key->Mint(alice.user, NowUs() - 1)), "");
    // Another user id under a valid signature would need the key: a token for bob minted with
    // a different key does not verify.
    auto other = TokenKey::LoadOrCreate(env.dir / "other.key");
    Client c2;
    EXPECT_NE(c2.Connect(at, other->Mint(bob.user, NowUs() + kUsPerSecond * 60)), "");
  }
  // HTTP API: no token, bad token.
  auto no_token = HttpCall(at, "POST", "/api/get_messages", "{}");
  EXPECT_EQ(no_token->status, 401);
  auto bad_token = HttpCall(at, "POST", "/api/join_group", R"({"group":"1"})", "1.2.3");
  EXPECT_EQ(bad_token->status, 401);
  // Node endpoint without (or with a wrong) MAC.
  auto node = HttpCall(at, "POST", "/node", Encode(MapRegister{bob.user}));
  EXPECT_EQ(node->status, 401);
  // Alice cannot send into, or read, bob and carol's conversation.
  const auto bob_carol = ConversationId::Direct(bob.user, carol.user);
  Client a;
  ASSERT_EQ(a.Connect(at, alice.token), "");
  a.Send(SendMessage{1, bob_carol, 0, "let me in"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->code, Code::kPermissionDenied);
  a.Send(GetMessages{2, bob_carol, 0, 0});
  auto read = a.Next<MessagesResult>();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->code, Code::kPermissionDenied);
  auto web_read = Api(at, alice.token, "get_messages", GetMessages{3, bob_carol, 0, 0});
  ASSERT_TRUE(web_read.ok());
  EXPECT_EQ(std::get<MessagesResult>(*web_read).code, Code::kPermissionDenied);
  // A sender field cannot be smuggled in: the message has none, and the frame is refused.
  a.SendRaw(absl::StrCat(R"({"type":"SendMessage","client_msg_id":"9","sender":")", bob.user.value,
                         R"(","conv":{"type":"direct","low":"2","high":"3"},"body":"x"})"));
  auto smuggled = a.Next<ErrorReply>();
  ASSERT_TRUE(smuggled.has_value());
  EXPECT_NE(smuggled->detail.find("sender: unknown field"), std::string::npos);
  // Groups: not a member cannot post or read; an unknown group is NOT_FOUND.
  ASSERT_TRUE(Api(at, bob.token, "join_group", JoinGroup{1, GroupId(9)}).ok());
  a.Send(SendMessage{4, ConversationId::Group(GroupId(9)), 0, "hi group"});
  auto group_ack = a.Next<SendAck>();
  ASSERT_TRUE(group_ack.has_value());
  EXPECT_EQ(group_ack->code, Code::kPermissionDenied);
  a.Send(GetMessages{5, ConversationId::Group(GroupId(9)), 0, 0});
  auto group_read = a.Next<MessagesResult>();
  ASSERT_TRUE(group_read.has_value());
  EXPECT_EQ(group_read->code, Code::kPermissionDenied);
  a.Send(SendMessage{6, ConversationId::Group(GroupId(10)), 0, "nobody here"});
  auto missing = a.Next<SendAck>();
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code, Code::kNotFound);
  // Nothing of this reached bob and carol's conversation.
  auto history = Api(at, bob.token, "get_messages", GetMessages{7, bob_carol, 0, 0});
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE(std::get<MessagesResult>(*history).messages.empty());
}

// ---- Malformed input and limits
// ------------------------------------------------------------------

TEST(ChatdInputTest, MalformedOversizedAndBinaryFramesGetErrorsAndTheConnectionGoesOn) {
  Single env({"alice", "bob"}, {"--frame_bytes_max", "4096"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  struct Case {
    std::string frame;
    bool binary;
    Code code;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {"this is not json", false, Code::kInvalidArgument, "not valid JSON"},
      {"[1,2,3]", false, Code::kInvalidArgument, "must be a JSON object"},
      {R"({"type":"Launch"})", false, Code::kInvalidArgument, "unknown message type"},
      {R"({"client_msg_id":"1"})", false, Code::kInvalidArgument, "missing \"type\""},
      {R"({"type":"SendMessage","conv":{"type":"direct","low":"0","high":"1"}})", false,
       Code::kInvalidArgument, "invalid conversation"},
      {R"({"type":"SendMessage","client_msg_id":-4})", false, Code::kInvalidArgument,
       "client_msg_id"},
      // With a conversation: the codec refuses a message that leaves it out before the core
      // could say this.
      {R"({"type":"SendAck","conv":{"type":"direct","low":"1","high":"2"}})", false,
       Code::kInvalidArgument, "not a client request"},
      {std::string(200, '[') + std::string(200, ']'), false, Code::kInvalidArgument,
       "json_depth_max"},
      {std::string(10000, 'x'), false, Code::kResourceExhausted, "frame_bytes_max"},
      {R"({"type":"SyncRequest"})", true, Code::kInvalidArgument, "binary frame"},
  };
  for (const Case& c : cases) {
    a.SendRaw(c.frame, c.binary);
    auto error = a.Next<ErrorReply>();
    ASSERT_TRUE(error.has_value()) << c.frame.substr(0, 60);
    EXPECT_EQ(error->code, c.code) << error->detail;
    EXPECT_NE(error->detail.find(c.detail), std::string::npos) << error->detail;
  }
  // A huge frame (far over the limit) is discarded piece by piece; the connection goes on.
  a.SendRaw(std::string(3 << 20, 'y'));
  auto huge = a.Next<ErrorReply>();
  ASSERT_TRUE(huge.has_value());
  EXPECT_EQ(huge->code, Code::kResourceExhausted);
  a.Send(SendMessage{1, ConversationId::Direct(alice.user, bob.user), 0, "still fine"});
  auto ack = a.Next<SendAck>();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->code, Code::kOk);
  EXPECT_FALSE(a.closed());
  // Garbage on a raw TCP connection does not hurt the server.
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), env.server->port()});
    boost::asio::write(s, boost::asio::buffer(std::string("\x16\x03\x01 garbage\r\n\r\n")));
  }
  auto health = HttpCall(env.server->address(), "GET", "/healthz", "");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_GE(Metric(env.server->address(), "chatd_frame_errors_total"), 10);
}

TEST(ChatdLimitsTest, ConnectionsMaxAndUserRate) {
  Single env({"alice", "bob"},
             {"--connections_max", "2", "--user_rate_per_s", "5", "--user_burst", "5"});
  const auto alice = env.Login("alice");
  Client a1, a2, a3;
  ASSERT_EQ(a1.Connect(env.server->address(), alice.token), "");
  ASSERT_EQ(a2.Connect(env.server->address(), alice.token), "");
  EXPECT_NE(a3.Connect(env.server->address(), alice.token), "");  // 503 at connections_max
  for (int i = 0; i < 20; ++i) a1.Send(SyncRequest{static_cast<uint64_t>(i + 1)});
  auto limited = a1.Next<ErrorReply>();
  ASSERT_TRUE(limited.has_value());
  EXPECT_EQ(limited->code, Code::kResourceExhausted);
  EXPECT_NE(limited->detail.find("user_rate_per_s"), std::string::npos);
  EXPECT_GE(Metric(env.server->address(), "chatd_connections_refused_total"), 1);
}

TEST(ChatdLimitsTest, SlowReaderIsDroppedAtSendQueueMax) {
  Single env({"alice", "bob"}, {"--send_queue_bytes_max", "200000"});
  const auto alice = env.Login("alice");
  const auto bob = env.Login("bob");
  // Bob connects and never reads.
  boost::asio::io_context io;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> slow(io);
  slow.next_layer().open(boost::asio::ip::tcp::v4());
  slow.next_layer().set_option(boost::asio::socket_base::receive_buffer_size(4096));
  slow.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), env.server->port()});
  slow.handshake("127.0.0.1", "/ws?token=" + bob.token);
  Client a;
  ASSERT_EQ(a.Connect(env.server->address(), alice.token), "");
  const auto conv = ConversationId::Direct(alice.user, bob.user);
  const std::string body(60000, 'z');
  int sent = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        for (int i = 0; i < 20; ++i)
          a.Send(SendMessage{static_cast<ClientMsgId>(++sent), conv, 0, body});
        return Metric(env.server->address(), "chatd_connections_dropped_slow_total") >= 1;
      },
      std::chrono::seconds(20)))
      << Metrics(env.server->address());
  // The server goes on: alice is still served. Her sync waits behind the 60 KB sends she has in
  // flight (their acks come first), which under ASan on a loaded machine takes seconds.
  a.Send(SyncRequest{99});
  EXPECT_TRUE(a.Next<SyncResult>([](const SyncResult& r) { return r.request_id == 99; },
                                 std::chrono::seconds(30)));
}

// ---- Durability
// ----------------------------------------------------------------------------------

TEST(ChatdDurabilityTest, KillNineDuringABurstKeepsEveryAckedMessageOnce) {
  Single env({"alice", "bob"}, {"--user_rate_per_s", "1000000", "--user_burst", "1000000"});
  KillNineDuringABurst(*env.server, env.Login("alice"), env.Login("bob"), 3000);
}

// ---- Operations
// ----------------------------------------------------------------------------------

TEST(ChatdOpsTest, FlagsConfigDataDirAndGracefulShutdown) {
  TempDir dir;
  const std::string log = dir / "out.log";
  EXPECT_EQ(RunCommand({CHATD_BIN, "--data_dir", dir.path(), "--no_such_flag", "1"}, log), 2);
  {
    std::ifstream f(log);
    std::string text(std::istreambuf_iterator<char>(f), {});
    EXPECT_NE(text.find("no_such_flag"), std::string::npos) << text;
  }
  {
    std::ofstream(dir / "bad.toml") << "listen = \"127.0.0.1:0\"\nbogus_key = 3\n";
    EXPECT_EQ(RunCommand({CHATD_BIN, "--data_dir", dir.path(), "--config", dir / "bad.toml"}, log),
              2);
    std::ifstream f(log);
    std::string text(std::istreambuf_iterator<char>(f), {});
    EXPECT_NE(text.find("bogus_key"), std::string::npos);
  }
  std::ofstream(dir / "a_file") << "x";
  EXPECT_EQ(RunCommand({CHATD_BIN, "--data_dir", dir / "a_file", "--listen", "127.0.0.1:0"}, log),
            1);
  {
    std::ifstream f(log);
    std::string text(std::istreambuf_iterator<char>(f), {});
    EXPECT_NE(text.find("unusable"), std::string::npos) << text;
  }
  EXPECT_EQ(RunCommand({CHATD_BIN, "--data_dir", dir.path(), "--write_path", "batched"}, log), 1);
  // A config file sets the listen port; the server serves /healthz and /metrics; SIGTERM drains
  // and exits 0.
  const uint16_t port = FreePort();
  std::ofstream(dir / "ok.toml") << "log_level = \"info\"\nsend_queue_max = 64\n";
  Chatd server(dir.path(), port, {"--config", dir / "ok.toml"});
  server.Start();
  AddUser(dir.path(), "alice");
  auto alice = real::Login(server.address(), "alice", "pw");
  ASSERT_TRUE(alice.ok());
  Client a;
  ASSERT_EQ(a.Connect(server.address(), alice->token), "");
  EXPECT_TRUE(Eventually([&] { return Metric(server.address(), "chatd_connections") == 1; }));
  const std::string metrics = Metrics(server.address());
  for (const char* name : {"chatd_send_queue_depth_max", "chatd_send_ack_latency_seconds_bucket",
                           "chatd_storage_commits_total", "chatlab_store_appends_total"}) {
    EXPECT_NE(metrics.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(server.Kill(SIGTERM), 0);
  EXPECT_TRUE(a.WaitClosed());
  // The core told the session why before the close (1001).
  auto closed = a.Next<SessionClosed>(nullptr, std::chrono::milliseconds(100));
  ASSERT_TRUE(closed.has_value()) << "no SessionClosed before the close";
  EXPECT_EQ(closed->code, Code::kUnavailable);
  EXPECT_EQ(closed->detail, "server shutting down");
  EXPECT_NE(server.Log().find("\"event\":\"stopped\""), std::string::npos);
}

}  // namespace
}  // namespace chatlab::real::testing
