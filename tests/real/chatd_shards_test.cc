// Store shards by conversation with real processes and two real PostgreSQL servers: a cluster of
// three chatd processes with protocol.store_shards = 2 keeps shard 0 (process 1) and shard 1
// (process 2) each in its own PostgreSQL; process 3 hosts a chat server only. Each shard's
// database holds exactly its conversations, and a sync lists a user's conversations of both.
// Then kill -9 of each process in turn during a burst: a shard owner's standby (its second place
// in --cluster) takes the shard over, the other shard keeps acknowledging meanwhile, and every
// acknowledged message is there once, the client's resent burst landing exactly once.
#include <libpq-fe.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config.h"
#include "gtest/gtest.h"
#include "real-transport/json_codec.h"
#include "tests/real/harness.h"
#include "tests/real/postgres_harness.h"

namespace chatlab::real::testing {
namespace {

using std::chrono::milliseconds;
constexpr uint32_t kLeaseMs = 1500;
constexpr uint32_t kShards = 2;
const char* const kUsers[] = {"alice", "bob", "carol", "dave", "erin"};

// A direct conversation and the party who sends in it.
struct Pair {
  LoginResult from, to;
  ConversationId conv;
};

// Three processes, shards 0 and 1 on processes 1 and 2, each shard on its own PostgreSQL; with
// `standbys`, processes 1 and 2 each have a standby at their second place.
struct ShardedCluster {
  explicit ShardedCluster(bool standbys) {
    for (auto* pg : {&pg0, &pg1}) {
      EXPECT_TRUE(pg->error().empty()) << pg->error();
      EXPECT_TRUE(pg->CreateDatabase("chat")) << pg->error();
    }
    for (const char* u : kUsers) {
      EXPECT_EQ(RunCommand({CHATD_BIN, "adduser", "--users_db", shared / "users.db", "--password",
                            "pw", "--pbkdf2_iterations", "1000", u}),
                0);
    }
    std::vector<uint16_t> ports, standby_ports;
    std::string list;
    for (int i = 0; i < 3; ++i) {
      ports.push_back(FreePort());
      absl::StrAppend(&list, i ? "," : "", "127.0.0.1:", ports.back());
      if (standbys && i < 2) {
        standby_ports.push_back(FreePort());
        absl::StrAppend(&list, "|127.0.0.1:", standby_ports.back());
      }
    }
    const auto flags = [&](int index) {
      std::vector<std::string> f = {
          "--cluster", list, "--index", std::to_string(index), "--users_db", shared / "users.db",
          "--key_file", shared / "token.key", "--store_shards", std::to_string(kShards),
          "--store_lease_ms", std::to_string(kLeaseMs), "--user_rate_per_s", "1000000",
          "--user_burst", "1000000"};
      if (index <= 2) {
        const LocalPostgres& pg = index == 1 ? pg0 : pg1;
        f.insert(f.end(), {"--store", "postgres", "--store_postgres", pg.ConnInfo("chat")});
      }
      return f;
    };
    for (int i = 0; i < 3; ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      servers.push_back(std::make_unique<Chatd>(dirs.back()->path(), ports[i], flags(i + 1)));
      servers.back()->Start();
    }
    for (size_t i = 0; i < standby_ports.size(); ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      standby.push_back(std::make_unique<Chatd>(dirs.back()->path(), standby_ports[i],
                                                flags(static_cast<int>(i) + 1)));
      standby.back()->Spawn();
    }
    for (const char* u : kUsers) {
      auto l = real::Login(servers[2]->address(), u, "pw");
      EXPECT_TRUE(l.ok()) << l.status();
      if (l.ok()) users.push_back(*l);
    }
  }
  // The direct conversations on `shard`, each once, in a fixed order.
  std::vector<Pair> PairsOn(uint32_t shard) const {
    std::vector<Pair> out;
    for (size_t a = 0; a < users.size(); ++a) {
      for (size_t b = a + 1; b < users.size(); ++b) {
        const auto conv = ConversationId::Direct(users[a].user, users[b].user);
        if (StoreShardOf(conv, kShards) == shard) out.push_back(Pair{users[a], users[b], conv});
      }
    }
    return out;
  }
  HostPort p3() const { return servers[2]->address(); }

  LocalPostgres pg0, pg1;
  TempDir shared;
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<Chatd>> servers;  // process i + 1
  std::vector<std::unique_ptr<Chatd>> standby;  // process i + 1's standby
  std::vector<LoginResult> users;
};

// The direct conversations (low, high) with messages in a shard's database.
std::set<std::pair<uint64_t, uint64_t>> ConversationsIn(const LocalPostgres& pg) {
  std::set<std::pair<uint64_t, uint64_t>> out;
  PGconn* conn = PQconnectdb(pg.ConnInfo("chat").c_str());
  PGresult* r = PQexec(conn, "SELECT DISTINCT user_low, user_high FROM private_chat");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  for (int i = 0; i < PQntuples(r); ++i) {
    out.emplace(std::stoull(PQgetvalue(r, i, 0)), std::stoull(PQgetvalue(r, i, 1)));
  }
  PQclear(r);
  PQfinish(conn);
  return out;
}

// One message from p.from in p.conv through `at`, answered OK within `wait`.
bool SendOk(const HostPort& at, const Pair& p, ClientMsgId id, milliseconds wait) {
  Client c;
  if (c.Connect(at, p.from.token) != "") return false;
  c.Send(SendMessage{id, p.conv, 0, absl::StrCat("probe ", id)});
  auto ack = c.Next<SendAck>(nullptr, wait);
  return ack.has_value() && ack->code == Code::kOk;
}

TEST(ChatdShards, EachShardsDatabaseHoldsItsConversationsAndASyncListsBoth) {
  ShardedCluster env(/*standbys=*/false);
  ASSERT_EQ(env.users.size(), std::size(kUsers));
  // A user with a conversation on each shard.
  std::optional<Pair> on0, on1;
  for (const Pair& a : env.PairsOn(0)) {
    for (const Pair& b : env.PairsOn(1)) {
      if (!on0 && a.from.user == b.from.user) {
        on0 = a;
        on1 = b;
      }
    }
  }
  ASSERT_TRUE(on0 && on1) << "no user has a conversation on each shard";
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(SendOk(env.p3(), *on0, static_cast<ClientMsgId>(i), milliseconds(10000)));
    ASSERT_TRUE(SendOk(env.p3(), *on1, static_cast<ClientMsgId>(100 + i), milliseconds(10000)));
  }
  using Key = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(ConversationsIn(env.pg0), (std::set<Key>{{on0->conv.low, on0->conv.high}}));
  EXPECT_EQ(ConversationsIn(env.pg1), (std::set<Key>{{on1->conv.low, on1->conv.high}}));
  // Read back through every process: each routes the read to the conversation's shard.
  for (const auto& server : env.servers) {
    EXPECT_EQ(HistoryOf(server->address(), on0->to, on0->conv).size(), 5u);
    EXPECT_EQ(HistoryOf(server->address(), on1->to, on1->conv).size(), 5u);
  }
  Client c;
  ASSERT_EQ(c.Connect(env.servers[0]->address(), on0->from.token), "");
  c.Send(SyncRequest{7});
  auto sync = c.Next<SyncResult>();
  ASSERT_TRUE(sync.has_value());
  ASSERT_EQ(sync->code, Code::kOk);
  std::set<ConversationId> listed;
  for (const ConversationHead& h : sync->heads) listed.insert(h.conv);
  EXPECT_EQ(listed, (std::set<ConversationId>{on0->conv, on1->conv}));

  // Process 1 stopped (its lease released) and started again under another shard count: its
  // database holds shard 0 of 2, and chatd refuses to start rather than hide conversations.
  EXPECT_EQ(env.servers[0]->Kill(SIGTERM), 0) << env.servers[0]->Log();
  TempDir again;
  const std::string log = again / "chatd.log";
  EXPECT_NE(RunChatdToExit(again.path(),
                           {"--cluster", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
                            "--index", "1", "--users_db", env.shared / "users.db", "--key_file",
                            env.shared / "token.key", "--store_shards", "3", "--store",
                            "postgres", "--store_postgres", env.pg0.ConnInfo("chat")},
                           log),
            0);
  std::ifstream f(log);
  const std::string text(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(text.find("holds store shard 0 of 2, not shard 0 of 3"), std::string::npos) << text;
}

// Standby places need a lease: with SQLite, or for a process that hosts no shard, two processes
// would serve one place, so chatd refuses the cluster list.
TEST(ChatdShards, StandbyPlacesWithoutALeaseAreRefused) {
  TempDir dir;
  const std::string log = dir / "chatd.log";
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--cluster", "127.0.0.1:1|127.0.0.1:2,127.0.0.1:3", "--index",
                                 "1", "--store_shards", "2"},  // sqlite
        std::vector<std::string>{"--cluster", "127.0.0.1:1,127.0.0.1:2|127.0.0.1:4", "--index",
                                 "1", "--store_shards", "1"}}) {  // process 2 hosts no shard
    EXPECT_NE(RunChatdToExit(dir.path(), flags, log), 0);
  }
  std::ifstream f(log);
  const std::string text(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(text.find("--cluster lists standby places for process 1"), std::string::npos) << text;
  EXPECT_NE(text.find("--cluster lists standby places for process 2"), std::string::npos) << text;
}

TEST(ChatdShards, KillNineOfEachProcessInTurnDuringABurstLosesNothingAcknowledged) {
  ShardedCluster env(/*standbys=*/true);
  ASSERT_EQ(env.users.size(), std::size(kUsers));
  // The bursts number their messages 1..kBurst, and a sender's client_msg_id names one message
  // (reused in another conversation of the same shard, it is refused): each burst on shard 0
  // has a sender of its own.
  const std::vector<Pair> on1 = env.PairsOn(1);
  std::vector<Pair> on0;
  for (const Pair& p : env.PairsOn(0)) {
    for (const Pair& q : {p, Pair{p.to, p.from, p.conv}}) {
      bool fresh = true;
      for (const Pair& taken : on0) fresh = fresh && taken.from.user != q.from.user;
      if (fresh && on0.size() < 2) {
        on0.push_back(q);
        break;
      }
    }
  }
  ASSERT_EQ(on0.size(), 2u);
  ASSERT_GE(on1.size(), 1u);
  std::optional<Pair> probe;  // a third conversation on shard 0
  for (const Pair& p : env.PairsOn(0)) {
    if (p.conv != on0[0].conv && p.conv != on0[1].conv) probe = p;
  }
  ASSERT_TRUE(probe.has_value());
  for (const auto& s : env.standby) {
    EXPECT_FALSE(s->WaitHealthy(milliseconds(200))) << "a standby serves before its takeover";
  }
  constexpr int kBurst = 300;

  // 1. Process 2, the owner of shard 1: its standby takes the shard over, and shard 0 keeps
  //    acknowledging through the outage.
  {
    const Pair& p = on1[0];
    std::map<ClientMsgId, MessageId> acked;
    BurstUntilStopped(env.p3(), p.from, p.conv, kBurst, [&] { env.servers[1]->Kill(SIGKILL); },
                      &acked);
    ASSERT_FALSE(HasFatalFailure());
    const auto killed = Clock::now();
    EXPECT_TRUE(SendOk(env.p3(), *probe, 1000000, milliseconds(5000)))
        << "shard 0 stopped acknowledging while shard 1's owner was down";
    const double other_shard_s = std::chrono::duration<double>(Clock::now() - killed).count();
    ASSERT_TRUE(env.standby[1]->WaitHealthy(milliseconds(kLeaseMs + 10000)))
        << env.standby[1]->Log();
    const double takeover_s = std::chrono::duration<double>(Clock::now() - killed).count();
    ResentBurstLandsOnce(env.p3(), p.from, p.to, p.conv, kBurst, acked);
    ASSERT_FALSE(HasFatalFailure());
    const double resumed_s = std::chrono::duration<double>(Clock::now() - killed).count();
    std::printf("shard 1 owner killed: shard 0 acked in %.2f s; standby serving after %.2f s; "
                "resent burst of %d all acked %.2f s after the kill (lease %u ms)\n",
                other_shard_s, takeover_s, kBurst, resumed_s, kLeaseMs);
    EXPECT_LT(takeover_s, kLeaseMs / 1000.0 + 5);
  }
  // 2. Process 1: shard 0 and the services; its standby takes both over.
  {
    const Pair& p = on0[0];
    std::map<ClientMsgId, MessageId> acked;
    BurstUntilStopped(env.p3(), p.from, p.conv, kBurst, [&] { env.servers[0]->Kill(SIGKILL); },
                      &acked);
    ASSERT_FALSE(HasFatalFailure());
    const auto killed = Clock::now();
    ASSERT_TRUE(env.standby[0]->WaitHealthy(milliseconds(kLeaseMs + 10000)))
        << env.standby[0]->Log();
    const double takeover_s = std::chrono::duration<double>(Clock::now() - killed).count();
    std::printf("shard 0 owner (and the services) killed: standby serving after %.2f s\n",
                takeover_s);
    ResentBurstLandsOnce(env.p3(), p.from, p.to, p.conv, kBurst, acked);
    ASSERT_FALSE(HasFatalFailure());
  }
  // 3. Process 3, the chat server the bursts went through: restarted, it serves every
  //    acknowledged message from the shards its standby-served peers hold.
  KillNineDuringABurst(*env.servers[2], on0[1].from, on0[1].to, kBurst);
  ASSERT_FALSE(HasFatalFailure());
  // Nothing of shard 1 moved to shard 0's database or back.
  for (const auto& [low, high] : ConversationsIn(env.pg0)) {
    EXPECT_EQ(StoreShardOf(ConversationId{ChannelType::kDirect, low, high}, kShards), 0u);
  }
  for (const auto& [low, high] : ConversationsIn(env.pg1)) {
    EXPECT_EQ(StoreShardOf(ConversationId{ChannelType::kDirect, low, high}, kShards), 1u);
  }
}

}  // namespace
}  // namespace chatlab::real::testing
