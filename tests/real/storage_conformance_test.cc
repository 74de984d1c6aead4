// Storage conformance: the same cases against every implementation of real-transport/storage/
// storage.h, so an engine is interchangeable when it passes them (a new one adds a Backend
// below). Each case commits through one handle and loads through a fresh one on the same data,
// as chatd does across a restart.
//
// What it holds an implementation to:
//   * every record kind round-trips bit for bit (ids above 2^63, bytes of any value);
//   * Load replays the latest state in storage.h's order: messages in commit order with an
//     overwrite in its last place, the memberships that hold now, the greatest watermark and
//     aggregate per key;
//   * a MessageStore restored from it equals the live store that emitted the records, whatever
//     the batching, and every implementation replays the very same sequence;
//   * a refused batch (a batch writer's record) leaves nothing visible and the storage usable;
//   * Load stops at restore's first error and returns it unchanged;
//   * FindMessage is the first row still written under a (sender, client_msg_id);
//   * ReadHistory is one partition's range in id order; a hot Load replays each conversation's
//     head and the newest messages, once each, in commit order; and a store with a bounded tail
//     restored that way answers every read as the live store does.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/random.h"
#include "core/snowflake.h"
#include "core/store.h"
#include "gtest/gtest.h"
#include "host/dispatch.h"
#include "real-transport/storage/memory_storage.h"
#include "real-transport/storage/postgres_storage.h"
#include "real-transport/storage/sqlite_storage.h"
#include "real-transport/storage/storage.h"
#include "tests/real/harness.h"
#include "tests/real/postgres_harness.h"

namespace chatlab::real {
namespace {

// ---- Backends: one per implementation ----------------------------------------------------------

// SQLite on a file in a fresh directory; Open opens the file again.
class SqliteBackend {
 public:
  static constexpr const char* kName = "sqlite";
  std::string path() const { return dir_ / "chat.db"; }
  std::unique_ptr<Storage> Open() {
    auto storage = SqliteStorage::Open(path());
    EXPECT_TRUE(storage.ok()) << storage.status();
    return storage.ok() ? std::move(*storage) : nullptr;
  }

 private:
  testing::TempDir dir_;
};

// In memory; Open gives another handle on the same tables.
class MemoryBackend {
 public:
  static constexpr const char* kName = "memory";
  std::unique_ptr<Storage> Open() { return tables_.Reopen(); }

 private:
  MemoryStorage tables_;
};

// PostgreSQL: a server this test process starts (tests/real/postgres_harness.h), shared by its
// cases, and a fresh database per backend; Open connects again.
class PostgresBackend {
 public:
  static constexpr const char* kName = "postgres";
  PostgresBackend() {
    static int next = 0;
    database_ = absl::StrCat("conformance_", ++next);
    ready_ = Server().error().empty() && Server().CreateDatabase(database_);
    EXPECT_TRUE(ready_) << Server().error();
  }
  std::unique_ptr<Storage> Open() {
    if (!ready_) return nullptr;
    auto storage = PostgresStorage::Open(Server().ConnInfo(database_));
    EXPECT_TRUE(storage.ok()) << storage.status();
    return storage.ok() ? std::move(*storage) : nullptr;
  }

 private:
  static testing::LocalPostgres& Server() {
    static testing::LocalPostgres* server = new testing::LocalPostgres();  // stopped at exit
    static const bool stop_at_exit = [] {
      std::atexit([] { delete server; });
      return true;
    }();
    (void)stop_at_exit;
    return *server;
  }
  std::string database_;
  bool ready_ = false;
};

// ---- Records as text, so sequences compare with a readable diff --------------------------------

std::string Describe(const PersistRecord& record) {
  if (const auto* p = std::get_if<PersistMessage>(&record)) {
    const ChatMessage& m = p->message;
    return absl::StrCat("message ", ToString(m.conv), " #", m.message_id, " prev ", m.prev_msg_id,
                        " from ", ToString(m.sender), " cmid ", m.client_msg_id, " at ",
                        m.sent_at_us, " body '", absl::CHexEscape(m.body), "'");
  }
  if (const auto* ms = std::get_if<PersistMembership>(&record)) {
    return absl::StrCat("membership ", ToString(ms->user), " ", ms->joined ? "in " : "out of ",
                        ToString(ms->group));
  }
  if (const auto* w = std::get_if<PersistWatermark>(&record)) {
    return absl::StrCat("watermark ", ToString(w->conv), " ", ToString(w->reader), " kind ",
                        static_cast<int>(w->kind), " up to ", w->up_to);
  }
  if (const auto* a = std::get_if<PersistAggregate>(&record)) {
    return absl::StrCat("aggregate ", ToString(a->conv), " kind ", static_cast<int>(a->kind),
                        " up to ", a->up_to);
  }
  return "a batch writer's record";
}

// Loads everything from a fresh handle on backend's data.
template <typename Backend>
std::vector<std::string> Replay(Backend& backend) {
  std::vector<std::string> out;
  std::unique_ptr<Storage> storage = backend.Open();
  const absl::Status s = storage->Load([&](const PersistRecord& r) {
    out.push_back(Describe(r));
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Loads the hot records (LoadScope::hot with `recent`) from a fresh handle.
template <typename Backend>
std::vector<std::string> ReplayHot(Backend& backend, uint64_t recent) {
  std::vector<std::string> out;
  std::unique_ptr<Storage> storage = backend.Open();
  const absl::Status s = storage->Load(
      [&](const PersistRecord& r) {
        out.push_back(Describe(r));
        return absl::OkStatus();
      },
      LoadScope{true, recent});
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// ---- Record builders ---------------------------------------------------------------------------

constexpr UserId kAlice(1);
constexpr UserId kBob(2);
constexpr GroupId kGroup(10);
const ConversationId kAliceBob = ConversationId::Direct(kAlice, kBob);
const ConversationId kGroupConv = ConversationId::Group(kGroup);

PersistRecord Msg(const ConversationId& conv, MessageId id, std::string body = "hi",
                  UserId sender = kAlice) {
  ChatMessage m;
  m.conv = conv;
  m.message_id = id;
  m.prev_msg_id = id - 1;
  m.sender = sender;
  m.client_msg_id = id * 10;
  m.sent_at_us = 42;
  m.body = std::move(body);
  return PersistMessage{std::move(m)};
}
PersistRecord Member(UserId user, GroupId group, bool joined = true) {
  return PersistMembership{user, group, joined};
}
PersistRecord Mark(const ConversationId& conv, UserId reader, ReceiptKind kind, MessageId up_to) {
  return PersistWatermark{conv, reader, kind, up_to};
}
PersistRecord Aggregate(const ConversationId& conv, ReceiptKind kind, MessageId up_to) {
  return PersistAggregate{conv, kind, up_to};
}

template <typename Backend>
class StorageConformanceTest : public ::testing::Test {
 protected:
  void CommitAll(const std::vector<std::vector<PersistRecord>>& batches) {
    std::unique_ptr<Storage> storage = backend_.Open();
    for (const auto& batch : batches) {
      const absl::Status s = storage->Commit(batch);
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  Backend backend_;
};

using Backends = ::testing::Types<SqliteBackend, MemoryBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(StorageConformanceTest, Backends, BackendNames);

TYPED_TEST(StorageConformanceTest, EmptyStorageLoadsNothing) {
  std::unique_ptr<Storage> storage = this->backend_.Open();
  EXPECT_TRUE(storage->Commit({}).ok());
  int calls = 0;
  EXPECT_TRUE(storage
                  ->Load([&](const PersistRecord&) {
                    calls++;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(storage->messages_loaded(), 0u);
  EXPECT_TRUE(storage->Checkpoint().ok());
}

TYPED_TEST(StorageConformanceTest, EachRecordKindRoundTripsBitForBit) {
  ChatMessage odd;  // every field at an extreme: ids above 2^63, bytes of any value
  odd.conv = ConversationId{ChannelType::kDirect, 7, ~uint64_t{0}};
  odd.message_id = (uint64_t{1} << 63) + 5;
  odd.prev_msg_id = (uint64_t{1} << 63) + 4;
  odd.sender = UserId(~uint64_t{0});
  odd.client_msg_id = ~uint64_t{0} - 1;
  odd.sent_at_us = -3;
  odd.body = std::string("\0\xff\n\"'", 5);
  this->CommitAll({{PersistMessage{odd}, Msg(kGroupConv, 3, "group"), Member(kBob, kGroup),
                    Mark(kAliceBob, kBob, ReceiptKind::kRead, 9),
                    Mark(kGroupConv, kAlice, ReceiptKind::kDelivered, 3),
                    Aggregate(kGroupConv, ReceiptKind::kDelivered, 2)}});

  std::vector<PersistRecord> loaded;
  std::unique_ptr<Storage> storage = this->backend_.Open();
  ASSERT_TRUE(storage
                  ->Load([&](const PersistRecord& r) {
                    loaded.push_back(r);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(loaded.size(), 6u);
  const auto* m = std::get_if<PersistMessage>(&loaded[0]);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->message, odd);
  EXPECT_EQ(Describe(loaded[1]), Describe(Msg(kGroupConv, 3, "group")));
  EXPECT_EQ(Describe(loaded[2]), Describe(Member(kBob, kGroup)));
  // Watermarks by (type, low, high, reader, kind): the direct conversation (type 1) first.
  EXPECT_EQ(Describe(loaded[3]), Describe(Mark(kAliceBob, kBob, ReceiptKind::kRead, 9)));
  EXPECT_EQ(Describe(loaded[4]), Describe(Mark(kGroupConv, kAlice, ReceiptKind::kDelivered, 3)));
  EXPECT_EQ(Describe(loaded[5]), Describe(Aggregate(kGroupConv, ReceiptKind::kDelivered, 2)));
  EXPECT_EQ(storage->messages_loaded(), 2u);
}

TYPED_TEST(StorageConformanceTest, LoadReplaysTheLatestStateInItsOrder) {
  const ConversationId kAliceCarol = ConversationId::Direct(kAlice, UserId(3));
  const GroupId kOther(11);
  this->CommitAll({
      {Msg(kAliceBob, 1, "first"), Msg(kGroupConv, 5), Member(kAlice, kGroup), Member(kBob, kGroup),
       Mark(kAliceBob, kBob, ReceiptKind::kDelivered, 1)},
      {Msg(kAliceCarol, 2), Member(kAlice, kOther), Member(kAlice, kGroup, /*joined=*/false),
       Aggregate(kGroupConv, ReceiptKind::kRead, 5)},
      {Msg(kAliceBob, 1, "overwritten"),  // same key: replaces "first", in its place in time
       Mark(kAliceBob, kBob, ReceiptKind::kDelivered, 7),
       Mark(kAliceBob, kBob, ReceiptKind::kDelivered, 3),  // lower: the greatest stays
       Aggregate(kGroupConv, ReceiptKind::kRead, 2), Member(kBob, kGroup)},  // joined twice
  });
  EXPECT_EQ(Replay(this->backend_), (std::vector<std::string>{
                                        Describe(Msg(kGroupConv, 5)),
                                        Describe(Msg(kAliceCarol, 2)),
                                        Describe(Msg(kAliceBob, 1, "overwritten")),
                                        Describe(Member(kBob, kGroup)),
                                        Describe(Member(kAlice, kOther)),
                                        Describe(Mark(kAliceBob, kBob, ReceiptKind::kDelivered, 7)),
                                        Describe(Aggregate(kGroupConv, ReceiptKind::kRead, 5)),
                                    }));
}

TYPED_TEST(StorageConformanceTest, ReadHistoryIsOnePartitionsRangeInIdOrder) {
  const ConversationId kAliceCarol = ConversationId::Direct(kAlice, UserId(3));
  this->CommitAll({{Msg(kAliceBob, 1), Msg(kGroupConv, 1), Msg(kAliceBob, 2)},
                   {Msg(kAliceCarol, 3), Msg(kAliceBob, 4), Msg(kAliceBob, 2, "again")},
                   {Msg(kAliceBob, 6)}});
  std::unique_ptr<Storage> storage = this->backend_.Open();
  auto read = [&](const ConversationId& conv, MessageId after, uint32_t limit) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<ChatMessage>> rows = storage->ReadHistory(conv, after, limit);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (rows.ok()) {
      for (const ChatMessage& m : *rows) out.push_back(Describe(PersistMessage{m}));
    }
    return out;
  };
  EXPECT_EQ(read(kAliceBob, 0, 2),
            (std::vector<std::string>{Describe(Msg(kAliceBob, 1)),
                                      Describe(Msg(kAliceBob, 2, "again"))}));
  EXPECT_EQ(read(kAliceBob, 2, 10),
            (std::vector<std::string>{Describe(Msg(kAliceBob, 4)), Describe(Msg(kAliceBob, 6))}));
  EXPECT_EQ(read(kAliceBob, 6, 10), std::vector<std::string>{});
  EXPECT_EQ(read(kGroupConv, 0, 10), (std::vector<std::string>{Describe(Msg(kGroupConv, 1))}));
  EXPECT_EQ(read(ConversationId::Direct(kBob, UserId(9)), 0, 10), std::vector<std::string>{});
}

// FindMessage (the store's LoadDedup): the first row written under (sender, client_msg_id) in
// either chat table, ids at the extremes bit for bit, and a row overwritten under its id by
// another message no longer found under its old key.
TYPED_TEST(StorageConformanceTest, FindMessageIsTheFirstRowOfItsKey) {
  auto keyed = [](const ConversationId& conv, MessageId id, UserId sender, ClientMsgId cmid,
                  std::string body) {
    PersistRecord r = Msg(conv, id, std::move(body), sender);
    std::get<PersistMessage>(r).message.client_msg_id = cmid;
    return r;
  };
  const UserId kExtreme(~uint64_t{0});
  const ClientMsgId kBig = ~uint64_t{0} - 1;
  this->CommitAll({{keyed(kAliceBob, 1, kAlice, 10, "first"), keyed(kGroupConv, 2, kAlice, 20, "g")},
                   {keyed(kGroupConv, 3, kAlice, 10, "a reuse, later"),
                    keyed(kAliceBob, 4, kBob, 10, "bob's 10"),
                    keyed(ConversationId::Direct(kAlice, kExtreme), 5, kExtreme, kBig, "edge")}});
  std::unique_ptr<Storage> storage = this->backend_.Open();
  auto find = [&](UserId sender, ClientMsgId cmid) -> std::string {
    absl::StatusOr<std::optional<ChatMessage>> found = storage->FindMessage(sender, cmid);
    EXPECT_TRUE(found.ok()) << found.status();
    if (!found.ok() || !found->has_value()) return "none";
    return Describe(PersistMessage{**found});
  };
  EXPECT_EQ(find(kAlice, 10), Describe(keyed(kAliceBob, 1, kAlice, 10, "first")));
  EXPECT_EQ(find(kAlice, 20), Describe(keyed(kGroupConv, 2, kAlice, 20, "g")));
  EXPECT_EQ(find(kBob, 10), Describe(keyed(kAliceBob, 4, kBob, 10, "bob's 10")));
  EXPECT_EQ(find(kExtreme, kBig),
            Describe(keyed(ConversationId::Direct(kAlice, kExtreme), 5, kExtreme, kBig, "edge")));
  EXPECT_EQ(find(kAlice, 30), "none");
  EXPECT_EQ(find(kBob, 20), "none");
  // Message 1 overwritten by Carol's: Alice's 10 is now the later group row.
  const absl::Status s =
      storage->Commit({keyed(kAliceBob, 1, UserId(3), 77, "overwrites 1")});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(find(kAlice, 10), Describe(keyed(kGroupConv, 3, kAlice, 10, "a reuse, later")));
  EXPECT_EQ(find(UserId(3), 77), Describe(keyed(kAliceBob, 1, UserId(3), 77, "overwrites 1")));
}

TYPED_TEST(StorageConformanceTest, AHotLoadReplaysEachHeadAndTheNewestInCommitOrder) {
  const ConversationId kAliceCarol = ConversationId::Direct(kAlice, UserId(3));
  this->CommitAll({{Msg(kAliceBob, 1), Msg(kAliceBob, 2), Msg(kAliceCarol, 1), Msg(kGroupConv, 5)},
                   {Msg(kAliceBob, 3), Msg(kGroupConv, 6), Member(kAlice, kGroup)},
                   {Msg(kAliceBob, 4), Mark(kAliceBob, kBob, ReceiptKind::kRead, 2)}});
  const std::vector<std::string> state = {Describe(Member(kAlice, kGroup)),
                                          Describe(Mark(kAliceBob, kBob, ReceiptKind::kRead, 2))};
  auto with_state = [&](std::vector<std::string> messages) {
    messages.insert(messages.end(), state.begin(), state.end());
    return messages;
  };
  // The heads alone, in commit order.
  EXPECT_EQ(ReplayHot(this->backend_, 0),
            with_state({Describe(Msg(kAliceCarol, 1)), Describe(Msg(kGroupConv, 6)),
                        Describe(Msg(kAliceBob, 4))}));
  // The two newest are heads too: each once.
  EXPECT_EQ(ReplayHot(this->backend_, 2), ReplayHot(this->backend_, 0));
  EXPECT_EQ(ReplayHot(this->backend_, 5),
            with_state({Describe(Msg(kAliceCarol, 1)), Describe(Msg(kGroupConv, 5)),
                        Describe(Msg(kAliceBob, 3)), Describe(Msg(kGroupConv, 6)),
                        Describe(Msg(kAliceBob, 4))}));
  EXPECT_EQ(ReplayHot(this->backend_, 100), Replay(this->backend_));
}

// A database keeps the store shard it was first claimed as (protocol.store_shards, --index):
// reopened as another shard, or for another shard count, it is refused naming both.
TYPED_TEST(StorageConformanceTest, ADatabaseKeepsTheShardItWasClaimedAs) {
  {
    std::unique_ptr<Storage> storage = this->backend_.Open();
    ASSERT_TRUE(storage->ClaimShard(1, 2).ok());
    ASSERT_TRUE(storage->Commit({Msg(kAliceBob, 1)}).ok());
  }
  std::unique_ptr<Storage> storage = this->backend_.Open();
  EXPECT_TRUE(storage->ClaimShard(1, 2).ok());
  for (const auto& [shard, shards] : {std::pair{0u, 2u}, std::pair{1u, 3u}, std::pair{0u, 1u}}) {
    const absl::Status s = storage->ClaimShard(shard, shards);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(s.message().find(absl::StrCat("holds store shard 1 of 2, not shard ", shard, " of ",
                                            shards)),
              std::string::npos)
        << s;
  }
}

// A database with messages written before shards were recorded is shard 0 of 1.
TYPED_TEST(StorageConformanceTest, AnUnclaimedDatabaseWithMessagesIsShardZeroOfOne) {
  this->CommitAll({{Msg(kAliceBob, 1)}});
  std::unique_ptr<Storage> storage = this->backend_.Open();
  const absl::Status s = storage->ClaimShard(1, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("holds store shard 0 of 1"), std::string::npos) << s;
  EXPECT_TRUE(storage->ClaimShard(0, 1).ok());
}

TYPED_TEST(StorageConformanceTest, ARefusedBatchLeavesNothingVisible) {
  this->CommitAll({{Msg(kAliceBob, 1), Member(kAlice, kGroup)}});
  {
    std::unique_ptr<Storage> storage = this->backend_.Open();
    // Valid records first, then one without a table: the whole batch is refused.
    const absl::Status queued = storage->Commit({Msg(kAliceBob, 2), Member(kBob, kGroup),
                                                 Mark(kAliceBob, kBob, ReceiptKind::kRead, 1),
                                                 PersistQueued{NodeId(101), 1, {}, 0}});
    EXPECT_EQ(queued.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(queued.message().find("PersistQueued"), std::string::npos) << queued;
    const absl::Status dequeued = storage->Commit({PersistDequeued{1}});
    EXPECT_EQ(dequeued.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(dequeued.message().find("PersistDequeued"), std::string::npos) << dequeued;
    EXPECT_EQ(Replay(this->backend_), (std::vector<std::string>{Describe(Msg(kAliceBob, 1)),
                                                                Describe(Member(kAlice, kGroup))}));
    // The storage is still usable, and a later message comes after the earlier ones.
    ASSERT_TRUE(storage->Commit({Msg(kAliceBob, 3)}).ok());
  }
  EXPECT_EQ(Replay(this->backend_),
            (std::vector<std::string>{Describe(Msg(kAliceBob, 1)), Describe(Msg(kAliceBob, 3)),
                                      Describe(Member(kAlice, kGroup))}));
}

TYPED_TEST(StorageConformanceTest, LoadStopsAtTheFirstRestoreErrorAndReturnsIt) {
  this->CommitAll(
      {{Msg(kAliceBob, 1), Msg(kAliceBob, 2), Msg(kAliceBob, 3), Member(kBob, kGroup)}});
  for (const int fail_at : {2, 4}) {  // a message; the membership after every message
    SCOPED_TRACE(fail_at);
    std::unique_ptr<Storage> storage = this->backend_.Open();
    int calls = 0;
    const absl::Status s = storage->Load([&](const PersistRecord&) {
      return ++calls == fail_at ? absl::DataLossError("record 2 is corrupt") : absl::OkStatus();
    });
    EXPECT_EQ(s, absl::DataLossError("record 2 is corrupt"));
    EXPECT_EQ(calls, fail_at);
    EXPECT_EQ(storage->messages_loaded(), static_cast<uint64_t>(std::min(fail_at - 1, 3)));
  }
}

TYPED_TEST(StorageConformanceTest, AGroupEveryMemberLeftWithoutMessagesIsNotReplayed) {
  // The tables keep memberships, not their history: storage.h's known loss.
  this->CommitAll({{Member(kAlice, kGroup)}, {Member(kAlice, kGroup, /*joined=*/false)}});
  EXPECT_TRUE(Replay(this->backend_).empty());
}

// ---- A real store's records
// ----------------------------------------------------------------------

constexpr TimeUs kT0 = (kChatLabEpochMs + 1000 * 1000) * kUsPerMs;
constexpr NodeId kServer(101);
constexpr int kUsers = 5;
const GroupId kGroups[] = {GroupId(10), GroupId(11)};

NodeOptions StoreOptions() {
  NodeOptions o;
  o.self = NodeId(1);
  o.topology.store = o.self;
  o.seed = 7;
  return o;
}

// What a store shows through its read-only views: equal views, equal stores.
std::vector<std::string> View(const MessageStore& store) {
  std::vector<std::string> out;
  for (const ConversationId& conv : store.Conversations()) {
    for (const ChatMessage& m : store.Messages(conv)) out.push_back(Describe(PersistMessage{m}));
    out.push_back(absl::StrCat("head ", ToString(conv), " ", store.Head(conv)));
  }
  for (GroupId g : store.Groups()) {
    std::vector<std::string> members;
    for (UserId u : store.Members(g)) members.push_back(ToString(u));
    out.push_back(absl::StrCat("group ", ToString(g), ": ", absl::StrJoin(members, " ")));
  }
  for (uint64_t u = 1; u <= kUsers; u++) {
    std::vector<std::string> groups;
    for (GroupId g : store.GroupsOf(UserId(u))) groups.push_back(ToString(g));
    out.push_back(absl::StrCat("u", u, " in: ", absl::StrJoin(groups, " ")));
    for (const ConversationId& conv : store.Conversations()) {
      for (ReceiptKind kind : {ReceiptKind::kDelivered, ReceiptKind::kRead}) {
        out.push_back(absl::StrCat("mark ", ToString(conv), " u", u, " ", static_cast<int>(kind),
                                   " ", store.Watermark(conv, UserId(u), kind)));
        if (u == 1 && conv.is_group()) {
          out.push_back(absl::StrCat("published ", ToString(conv), " ", static_cast<int>(kind), " ",
                                     store.PublishedAggregate(conv, kind)));
        }
      }
    }
  }
  out.push_back(absl::StrCat("dedup ", store.dedup_size()));
  return out;
}

// Drives a store with a seeded workload of joins, leaves, sends (with retries, which dedup) and
// receipts; returns the Persist records it emitted, cut into batches of 1 to 8.
std::vector<std::vector<PersistRecord>> Workload(MessageStore& store, uint64_t seed) {
  Rng rng(seed);
  std::vector<PersistRecord> records;
  TimeUs now = kT0;
  uint64_t request = 1;
  auto call = [&](const Message& msg) {
    Effects out;
    store.OnMessage(now += 1000, kServer, msg, out);
    for (PersistRecord& r : host::TakePersists(out)) records.push_back(std::move(r));
  };
  std::map<std::pair<uint64_t, ClientMsgId>, ChatMessage> sent;  // (sender, id) -> first message
  auto user = [&] { return UserId(1 + rng.Uniform(kUsers)); };
  auto conv = [&](UserId sender) {
    return rng.Bernoulli(0.5) ? ConversationId::Group(kGroups[rng.Uniform(2)])
                              : ConversationId::Direct(sender, user());
  };
  for (int u = 1; u <= kUsers; u++) {
    call(StoreMembership{request++, UserId(u), kGroups[u % 2], true});
  }
  for (int i = 0; i < 200; i++) {
    const UserId u = user();
    switch (rng.Uniform(4)) {
      case 0:
        call(StoreMembership{request++, u, kGroups[rng.Uniform(2)], rng.Bernoulli(0.7)});
        break;
      case 1:
      case 2: {
        // Ids repeat: a repeat is a retry of the first message under that id (same conversation
        // and body), which the dedup index answers.
        const ClientMsgId cmid = 1 + rng.Uniform(40);
        auto [it, fresh] = sent.try_emplace({u.value, cmid});
        ChatMessage& m = it->second;
        if (fresh) {
          m.conv = conv(u);
          m.sender = u;
          m.client_msg_id = cmid;
          m.body = absl::StrCat("m", i);
        }
        m.sent_at_us = now;
        call(StoreAppend{request++, m});
        break;
      }
      default: {
        const ConversationId c = conv(u);
        const ReceiptKind kind = rng.Bernoulli(0.5) ? ReceiptKind::kDelivered : ReceiptKind::kRead;
        call(StoreReceipt{request++, c, u, kind, store.Head(c) - rng.Uniform(2)});
        break;
      }
    }
  }
  // Everyone back in both groups, so no group is left empty (storage.h's known loss).
  for (int u = 1; u <= kUsers; u++) {
    for (GroupId g : kGroups) call(StoreMembership{request++, UserId(u), g, true});
  }
  std::vector<std::vector<PersistRecord>> batches;
  for (size_t i = 0; i < records.size();) {
    const size_t n = std::min<size_t>(1 + rng.Uniform(8), records.size() - i);
    batches.emplace_back(records.begin() + static_cast<ptrdiff_t>(i),
                         records.begin() + static_cast<ptrdiff_t>(i + n));
    i += n;
  }
  return batches;
}

// Restores a fresh store from a fresh handle on backend's data.
template <typename Backend>
std::unique_ptr<MessageStore> Restored(Backend& backend) {
  auto store = std::make_unique<MessageStore>(StoreOptions());
  std::unique_ptr<Storage> storage = backend.Open();
  const absl::Status s = storage->Load([&](const PersistRecord& r) { return store->Restore(r); });
  EXPECT_TRUE(s.ok()) << s;
  return store;
}

// Drives live with Workload(seed) and commits its records to backend through one handle.
template <typename Backend>
void CommitWorkload(Backend& backend, MessageStore& live, uint64_t seed) {
  const auto batches = Workload(live, seed);
  std::unique_ptr<Storage> storage = backend.Open();
  for (const auto& batch : batches) ASSERT_TRUE(storage->Commit(batch).ok());
}

TYPED_TEST(StorageConformanceTest, ARestoredStoreEqualsTheLiveOne) {
  for (uint64_t seed = 1; seed <= 5; seed++) {
    SCOPED_TRACE(seed);
    TypeParam backend;
    MessageStore live(StoreOptions());
    CommitWorkload(backend, live, seed);
    ASSERT_FALSE(this->HasFatalFailure());
    ASSERT_GT(live.stats().messages_stored, 50u);
    ASSERT_GT(live.stats().duplicates, 0u);
    std::unique_ptr<MessageStore> restored = Restored(backend);
    EXPECT_EQ(View(*restored), View(live));
    EXPECT_EQ(restored->stats().records_restored, static_cast<uint64_t>(Replay(backend).size()));
    // The restored dedup index answers a retry of the last message with the stored original.
    const ConversationId conv = live.Conversations().back();
    const ChatMessage last = live.Messages(conv).back();
    Effects out;
    restored->OnMessage(kT0 + 10 * kUsPerSecond, kServer, StoreAppend{999, last}, out);
    EXPECT_TRUE(host::TakePersists(out).empty()) << "a retry stored a second copy";
    EXPECT_EQ(restored->Messages(conv), live.Messages(conv));
  }
}

// A store whose memory holds 3 messages per conversation, restored by a hot Load, answers every
// read as the live store that keeps all, its LoadHistory answered by ReadHistory.
TYPED_TEST(StorageConformanceTest, ABoundedStoreRestoredHotAnswersAsTheLiveOne) {
  for (uint64_t seed = 1; seed <= 3; seed++) {
    SCOPED_TRACE(seed);
    TypeParam backend;
    MessageStore live(StoreOptions());
    CommitWorkload(backend, live, seed);
    ASSERT_FALSE(this->HasFatalFailure());
    NodeOptions options = StoreOptions();
    options.config.store_tail_cache = 3;
    options.config.store_dedup_window_max = 16;
    MessageStore bounded(options);
    std::unique_ptr<Storage> reader = backend.Open();
    ASSERT_TRUE(reader
                    ->Load([&](const PersistRecord& r) { return bounded.Restore(r); },
                           LoadScope{true, 16})
                    .ok());
    EXPECT_LT(reader->messages_loaded(), live.stats().messages_stored);
    EXPECT_LE(bounded.cached_messages(), 3 * live.Conversations().size());
    uint64_t request = 1;
    auto answer = [&](MessageStore& store, const StoreRead& read) {
      Effects out;
      store.OnMessage(kT0, kServer, read, out);
      if (!out.empty()) {
        if (const auto* load = std::get_if<LoadHistory>(&out[0])) {
          absl::StatusOr<std::vector<ChatMessage>> rows =
              reader->ReadHistory(load->conv, load->after, load->limit);
          EXPECT_TRUE(rows.ok()) << rows.status();
          const uint64_t token = load->token;
          out.clear();
          store.OnHistoryLoaded(kT0, token, rows.ok() ? *rows : std::vector<ChatMessage>{}, out);
        }
      }
      EXPECT_EQ(out.size(), 1u);
      return out.empty() ? Message{} : std::get<SendToNode>(out[0]).msg;
    };
    for (const ConversationId& conv : live.Conversations()) {
      EXPECT_EQ(bounded.Head(conv), live.Head(conv));
      const UserId reader_user = conv.is_group() ? live.Members(conv.group()).front()
                                                 : UserId(conv.low);
      std::vector<MessageId> froms = {kNoMessage};
      for (const ChatMessage& m : live.Messages(conv)) froms.push_back(m.message_id);
      for (const MessageId after : froms) {
        for (const uint32_t limit : {1u, 4u, 50u}) {
          const StoreRead read{request++, reader_user, conv, after, limit};
          EXPECT_EQ(answer(bounded, read), answer(live, read)) << ToString(conv) << " " << after;
        }
      }
    }
    EXPECT_GT(bounded.stats().history_loads, 0u);
  }
}

// A chat.db written before conversation_heads existed gets the table, filled, when it opens.
TEST(StorageConformance, AnOlderSqliteDatabaseGetsItsHeadsOnOpen) {
  SqliteBackend backend;
  {
    std::unique_ptr<Storage> storage = backend.Open();
    ASSERT_TRUE(storage->Commit({Msg(kAliceBob, 1), Msg(kAliceBob, 2), Msg(kGroupConv, 7)}).ok());
  }
  const std::vector<std::string> heads = ReplayHot(backend, 0);
  EXPECT_EQ(heads, (std::vector<std::string>{Describe(Msg(kAliceBob, 2)),
                                             Describe(Msg(kGroupConv, 7))}));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(backend.path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE conversation_heads", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(ReplayHot(backend, 0), heads);
}

// Not typed: every implementation replays the very same sequence for the same commits.
TEST(StorageConformance, EveryImplementationReplaysTheSameSequence) {
  for (uint64_t seed = 1; seed <= 5; seed++) {
    SCOPED_TRACE(seed);
    MessageStore live(StoreOptions());
    const auto batches = Workload(live, seed);
    SqliteBackend sqlite;
    MemoryBackend memory;
    const std::unique_ptr<Storage> storages[] = {sqlite.Open(), memory.Open()};
    for (const std::unique_ptr<Storage>& storage : storages) {
      for (const auto& batch : batches) ASSERT_TRUE(storage->Commit(batch).ok());
    }
    const std::vector<std::string> from_sqlite = Replay(sqlite);
    EXPECT_FALSE(from_sqlite.empty());
    EXPECT_EQ(Replay(memory), from_sqlite);
  }
}

}  // namespace
}  // namespace chatlab::real
