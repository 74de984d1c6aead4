// The store's CPU per request and per item, measured on chatd's own SQLite storage
// (real-transport/storage/sqlite_storage.h, unchanged: WAL, synchronous = FULL), so that the
// simulator's [cost] store keys have a source (docs/cost-model.md).
//
// To measure CPU and not the disk, the database lives in tmpfs (/dev/shm, or $STORE_BENCH_DIR):
// there fsync returns at once, and the disk's share is the simulator's separate cost.fsync_ms.
//
//   BM_CommitMessages/N      one transaction of N message rows (N = 1 is one row per request)
//   BM_CommitMemberships/N   one transaction of N joins (two rows each: both membership tables)
//   BM_CommitWatermarks/N    one transaction of N receipt watermark upserts
//   BM_ReadLast/K            the last K messages of one conversation (a range read, newest first)
//
// Each reports the time per request; benchmarks/store_cost.sh fits time = request + item x N
// over N (or K) and prints the intercept and the slope in microseconds.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/effects.h"
#include "real-transport/storage/sqlite_storage.h"

namespace chatlab {
namespace {

namespace fs = std::filesystem;

constexpr int kConversations = 1000;  // writes rotate over this many direct conversations
constexpr int kBodyBytes = 100;       // the simulator's default workload.body_bytes
// Every write benchmark first fills its table with this many records, so that each request
// size N meets a table of about the same size (a row's cost grows with the table: pages that
// no longer fit SQLite's cache).
constexpr uint64_t kPrefill = 50'000;

// Spreads consecutive i over the key space (a bijection mod 2^64), so memberships and
// watermarks land on random pages as real joins and receipts do.
uint64_t Spread(uint64_t i) { return i * 0x9E3779B97F4A7C15ull; }

// A fresh database directory in tmpfs, removed when the benchmark ends.
class TempDb {
 public:
  TempDb() {
    const char* base = std::getenv("STORE_BENCH_DIR");
    dir_ = fs::path(base != nullptr ? base : "/dev/shm") /
           ("store_cost_bench-" + std::to_string(getpid()) + "-" + std::to_string(next_++));
    fs::create_directories(dir_);
  }
  ~TempDb() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return (dir_ / "store.db").string(); }

 private:
  static inline int next_ = 0;
  fs::path dir_;
};

std::unique_ptr<real::SqliteStorage> OpenOrDie(const std::string& path) {
  auto storage = real::SqliteStorage::Open(path);
  if (!storage.ok()) {
    std::fprintf(stderr, "store_cost_bench: %s\n", storage.status().ToString().c_str());
    std::abort();
  }
  return *std::move(storage);
}

// Makes m the i-th message overall: conversations in rotation, ids increasing within each.
void Renumber(ChatMessage& m, uint64_t i) {
  const uint64_t pair = i % kConversations;
  m.conv = ConversationId::Direct(UserId(1 + 2 * pair), UserId(2 + 2 * pair));
  m.sender = UserId(1 + 2 * pair);
  m.message_id = 1'000'000 + i;
  m.prev_msg_id = i >= kConversations ? m.message_id - kConversations : 0;
  m.client_msg_id = i + 1;
  m.sent_at_us = 1'767'225'600'000'000 + static_cast<TimeUs>(i);
}

ChatMessage MessageNumber(uint64_t i, const std::string& body) {
  ChatMessage m;
  m.body = body;
  Renumber(m, i);
  return m;
}

void Commit(real::SqliteStorage& storage, const std::vector<PersistRecord>& records) {
  if (absl::Status s = storage.Commit(records); !s.ok()) {
    std::fprintf(stderr, "store_cost_bench: %s\n", s.ToString().c_str());
    std::abort();
  }
}

// Time per request; the fit needs it in microseconds, whatever the iteration count.
void Report(benchmark::State& state, int64_t items) {
  state.SetItemsProcessed(state.iterations() * items);
  state.counters["items"] = static_cast<double>(items);
}

// Fills storage with kPrefill records made by next(record), 1,000 per transaction.
template <typename Next>
void Prefill(real::SqliteStorage& storage, std::vector<PersistRecord>& records, Next next) {
  std::vector<PersistRecord> fill(1000, records.front());
  for (uint64_t done = 0; done < kPrefill; done += fill.size()) {
    for (auto& r : fill) next(r);
    Commit(storage, fill);
  }
}

void BM_CommitMessages(benchmark::State& state) {
  const int64_t n = state.range(0);
  TempDb db;
  auto storage = OpenOrDie(db.path());
  const std::string body(kBodyBytes, 'x');
  std::vector<PersistRecord> records(static_cast<size_t>(n),
                                     PersistMessage{MessageNumber(0, body)});
  uint64_t i = 0;
  // Renumbering the records in place costs a few ns each; PauseTiming would cost more.
  auto next = [&](PersistRecord& r) { Renumber(std::get<PersistMessage>(r).message, i++); };
  Prefill(*storage, records, next);
  for (auto _ : state) {
    for (auto& r : records) next(r);
    Commit(*storage, records);
  }
  Report(state, n);
}
BENCHMARK(BM_CommitMessages)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

void BM_CommitMemberships(benchmark::State& state) {
  const int64_t n = state.range(0);
  TempDb db;
  auto storage = OpenOrDie(db.path());
  std::vector<PersistRecord> records(static_cast<size_t>(n), PersistMembership{});
  uint64_t i = 0;
  auto next = [&](PersistRecord& r) {
    const uint64_t key = Spread(i++);
    r = PersistMembership{UserId(1 + key % 1'000'000), GroupId(1 + (key >> 32) % 100'000), true};
  };
  Prefill(*storage, records, next);
  for (auto _ : state) {
    for (auto& r : records) next(r);
    Commit(*storage, records);
  }
  Report(state, n);
}
BENCHMARK(BM_CommitMemberships)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

void BM_CommitWatermarks(benchmark::State& state) {
  const int64_t n = state.range(0);
  TempDb db;
  auto storage = OpenOrDie(db.path());
  std::vector<PersistRecord> records(static_cast<size_t>(n), PersistWatermark{});
  uint64_t i = 0;
  auto next = [&](PersistRecord& r) {  // 100,000 conversations: the first pass inserts
    const uint64_t pair = Spread(i) % 100'000;
    r = PersistWatermark{ConversationId::Direct(UserId(1 + 2 * pair), UserId(2 + 2 * pair)),
                         UserId(2 + 2 * pair), ReceiptKind::kDelivered, 1'000'000 + i};
    i++;
  };
  Prefill(*storage, records, next);
  for (auto _ : state) {
    for (auto& r : records) next(r);
    Commit(*storage, records);
  }
  Report(state, n);
}
BENCHMARK(BM_CommitWatermarks)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

// A history read as the store serves GetMessages: the last K messages of one conversation, every
// column read out (the body copied, as a reply would). The table holds 200 messages in each of
// kConversations conversations plus one long conversation of 5,000 that the reads target.
void BM_ReadLast(benchmark::State& state) {
  const int64_t k = state.range(0);
  static TempDb* db = nullptr;  // filled once, shared by every K (and removed at exit)
  if (db == nullptr) {
    db = new TempDb;
    std::atexit([] { delete db; });
    auto storage = OpenOrDie(db->path());
    const std::string body(kBodyBytes, 'x');
    std::vector<PersistRecord> records;
    for (uint64_t i = 0; i < 200 * kConversations; i++) {
      records.push_back(PersistMessage{MessageNumber(i, body)});
      if (records.size() == 1000) {
        Commit(*storage, records);
        records.clear();
      }
    }
    // The long conversation: users 0 and 1 (no other pair uses user 0).
    for (uint64_t i = 0; i < 5000; i++) {
      ChatMessage m = MessageNumber(i, body);
      m.conv = ConversationId::Direct(UserId(0), UserId(1'000'000));
      records.push_back(PersistMessage{m});
      if (records.size() == 1000) {
        Commit(*storage, records);
        records.clear();
      }
    }
    Commit(*storage, records);
    (void)storage->Checkpoint();
  }
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db->path().c_str(), &conn, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::abort();
  }
  sqlite3_stmt* read = nullptr;
  if (sqlite3_prepare_v2(conn,
                         "SELECT message_id, prev_msg_id, sender, client_msg_id, sent_at_us, "
                         "body FROM private_chat WHERE user_low = ?1 AND user_high = ?2 "
                         "ORDER BY message_id DESC LIMIT ?3",
                         -1, &read, nullptr) != SQLITE_OK) {
    std::abort();
  }
  std::vector<ChatMessage> out;
  int64_t rows = 0;
  for (auto _ : state) {
    out.clear();
    sqlite3_bind_int64(read, 1, 0);
    sqlite3_bind_int64(read, 2, 1'000'000);
    sqlite3_bind_int64(read, 3, k);
    while (sqlite3_step(read) == SQLITE_ROW) {
      ChatMessage& m = out.emplace_back();
      m.message_id = static_cast<MessageId>(sqlite3_column_int64(read, 0));
      m.prev_msg_id = static_cast<MessageId>(sqlite3_column_int64(read, 1));
      m.sender = UserId(static_cast<uint64_t>(sqlite3_column_int64(read, 2)));
      m.client_msg_id = static_cast<ClientMsgId>(sqlite3_column_int64(read, 3));
      m.sent_at_us = sqlite3_column_int64(read, 4);
      m.body.assign(static_cast<const char*>(sqlite3_column_blob(read, 5)),
                    static_cast<size_t>(sqlite3_column_bytes(read, 5)));
    }
    sqlite3_reset(read);
    rows += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out);
  }
  if (rows != k * static_cast<int64_t>(state.iterations())) state.SkipWithError("short read");
  sqlite3_finalize(read);
  sqlite3_close(conn);
  Report(state, k);
}
BENCHMARK(BM_ReadLast)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace chatlab
