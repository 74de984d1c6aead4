// The message store's disk: where chatd makes the store's Persist records durable
// (core/effects.h, "Durability seam") and reads them back on start.
//
// An interface, so the database is a choice: SqliteStorage (sqlite_storage.h) is chatd's embedded
// default, PostgresStorage (postgres_storage.h) keeps the same tables on a PostgreSQL server,
// MemoryStorage (memory_storage.h) is the same contract in memory, for tests of what sits on top.
// A new engine implements these calls and passes tests/real/storage_conformance_test.cc, which
// runs the same cases against every implementation.
//
// What Load replays is the durable STATE, not the log of records committed: the tables keep the
// latest of everything (docs/chatd.md, "Durability"), so
//   1. every stored message, once per (conversation, message id): the last one committed with
//      that key, in commit order (an overwrite, IdScheme::kTimestamp, takes the place of its
//      last write). Commit order rebuilds the store's dedup index in its FIFO order;
//   2. every membership that holds now, as joined = true (a leave removes the pair; leaves are
//      not replayed), ascending by (group, user);
//   3. every receipt watermark at its greatest committed value, ascending by
//      (conversation type, low, high, reader, kind);
//   4. every group aggregate at its greatest committed value, ascending by (group, kind).
// Keys compare as signed 64-bit integers (how SQL databases hold them; every id scheme's ids are
// below 2^63). The order of 2-4 does not change the store MessageStore::Restore rebuilds. Known
// loss, by design of the tables: a group that every member left and that holds no message is not
// replayed, so it no longer exists after a restart.
//
// A store with a bounded tail cache (store_tail_cache > 0) needs less than every message:
// LoadScope::hot replays, in step 1, only each conversation's newest message and the newest
// `recent` messages overall (its dedup window), each once, in commit order. The engines keep a
// conversation_heads table, one row per conversation upserted in each commit, which lists the
// conversations; each one's newest message is then one descent of the primary key (MAX), so a
// head the table holds too low (a binary without the table wrote after one with it) cannot
// make a restart reuse an id. This costs O(conversations x log history + recent), not
// O(history). Known limit: a conversation first written by such an older binary after the table
// was filled is not listed (a restart with store_tail_cache = 0 replays it all).
// ReadHistory then answers the store's LoadHistory.
//
// Only the message store's records have tables. A batch writer's records (PersistQueued,
// PersistDequeued: its queue is a log, replayed in order) have none, and Commit refuses a batch
// holding one: chatd refuses write_path = batched for that reason.
//
// Thread-safety: an implementation need not be thread-safe. chatd calls Load on its main thread
// before serving, then Commit, ReadHistory and FindMessage only from its storage thread, then
// Checkpoint after that thread has stopped.
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_STORAGE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/effects.h"

namespace chatlab::real {

// Which messages Load replays (above).
struct LoadScope {
  bool hot = false;      // false: every message
  uint64_t recent = 0;   // hot: the newest this many messages, besides each conversation's head
};

class Storage {
 public:
  using Restore = std::function<absl::Status(const PersistRecord&)>;

  virtual ~Storage() = default;

  // Replays the durable records through restore, in the order above (every message, or the hot
  // ones of scope). Stops at the first error restore returns and returns it unchanged; an error
  // of the storage itself is kInternal.
  virtual absl::Status Load(const Restore& restore, const LoadScope& scope) = 0;
  absl::Status Load(const Restore& restore) { return Load(restore, LoadScope{}); }

  // Up to limit committed messages of conv with ids above after, ascending by id. kInternal on
  // an error of the storage (PostgreSQL: after reconnecting for as long as Commit would).
  virtual absl::StatusOr<std::vector<ChatMessage>> ReadHistory(const ConversationId& conv,
                                                               MessageId after,
                                                               uint32_t limit) = 0;

  // The committed message row written first (lowest commit sequence) with this sender and
  // client_msg_id, in either chat table, or nothing: the store's LoadDedup (a resend that missed
  // its window). A row since overwritten by another message under its id is not found. Errors
  // as ReadHistory's.
  virtual absl::StatusOr<std::optional<ChatMessage>> FindMessage(UserId sender,
                                                                 ClientMsgId client_msg_id) = 0;

  // Makes records durable, all or nothing, and returns once they survive a power cut. On error
  // nothing of the batch is visible (kInvalidArgument for a record with no table), and the
  // caller must stop: its memory has run ahead of its disk. An empty batch commits nothing.
  virtual absl::Status Commit(const std::vector<PersistRecord>& records) = 0;

  // Tidies the storage for a clean shutdown (SQLite folds its WAL into the database file).
  virtual absl::Status Checkpoint() = 0;

  // For an engine whose right to write lapses unless renewed (PostgreSQL's lease): renews it.
  // chatd's storage thread calls it after keepalive_ms without a commit; an error is fatal, as a
  // failed commit is. 0: no renewal needed.
  virtual absl::Status KeepAlive() { return absl::OkStatus(); }
  virtual uint32_t keepalive_ms() const { return 0; }

  // Messages replayed by Load so far (restore accepted them).
  virtual uint64_t messages_loaded() const = 0;

  // Which store shard this database holds (protocol.store_shards; the store_shard table): the
  // first call on a database records (shard, shards); a later call with other values is refused
  // with kFailedPrecondition naming both, since its conversations are placed by StoreShardOf
  // over `shards` and a different count would hide them (resharding is not supported). A
  // database written before the table existed is taken as shard 0 of 1: refused for any other
  // claim unless it holds no message, membership or receipt. Call before Load.
  virtual absl::Status ClaimShard(uint32_t shard, uint32_t shards);

 protected:
  // For ClaimShard: runs sql (one statement) and returns its first row's integer columns, or
  // nothing for a statement without rows. kInternal on an error.
  virtual absl::StatusOr<std::vector<int64_t>> QueryInts(const std::string& sql) = 0;
};

// ClaimShard's refusal: the database holds shard held of held_count, not shard of shards.
absl::Status ShardMismatch(int64_t held, int64_t held_count, uint32_t shard, uint32_t shards);

// OK for a record with a table; otherwise the kInvalidArgument Commit returns for it.
absl::Status CheckHasTable(const PersistRecord& record);

// For the engines. A message row with its commit sequence.
struct SeqMessage {
  int64_t seq = 0;
  ChatMessage message;
};
// LoadScope::hot's step 1: rows (the heads and the recent rows, in any order, a row possibly
// twice) replayed once each by ascending seq. Counts the replayed messages in loaded.
absl::Status ReplayHotMessages(std::vector<SeqMessage> rows, const Storage::Restore& restore,
                               uint64_t& loaded);
// Each conversation's greatest message id among records' messages (a commit's update of
// conversation_heads).
std::vector<std::pair<ConversationId, MessageId>> BatchHeads(
    const std::vector<PersistRecord>& records);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_STORAGE_H_
