// chatd's durable storage: the message store's Persist records in SQLite.
//
// The tables mirror the seed's (docs/chatd.md): private_chat partitioned by the user pair and
// group_chat by the group, both sorted by message id; group_membership and user_membership,
// changed in one transaction; receipts and receipt_aggregates. The database runs in WAL mode
// with synchronous = FULL, so Commit returns only once the records survive a power cut.
//
// Thread-safety: none. chatd calls Load on the main thread before serving, then Commit only from
// its storage thread.
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/effects.h"

struct sqlite3;
struct sqlite3_stmt;

namespace chatlab::real {

class Storage {
 public:
  // Opens (creating if needed) the database file at path. Errors name the file and SQLite's
  // reason (e.g. FailedPrecondition "cannot open /x/chat.db: unable to open database file").
  static absl::StatusOr<std::unique_ptr<Storage>> Open(const std::string& path);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Replays every durable record through restore: the messages of both chat tables in their
  // insertion order (which rebuilds the dedup index in its FIFO order), then memberships,
  // watermarks and aggregates. Stops at the first error restore returns.
  absl::Status Load(const std::function<absl::Status(const PersistRecord&)>& restore);

  // Writes records in one transaction and commits it (fsync). On error nothing of the batch
  // is visible, and the caller must stop: its memory has run ahead of its disk.
  absl::Status Commit(const std::vector<PersistRecord>& records);

  // Folds the WAL into the database file (on shutdown).
  absl::Status Checkpoint();

  uint64_t messages_loaded() const { return messages_loaded_; }

 private:
  explicit Storage(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  absl::Status Prepare();
  absl::Status Write(const PersistRecord& record);
  absl::Status Error(const char* what) const;

  sqlite3* db_;
  // Prepared statements, owned; finalized in the destructor.
  sqlite3_stmt* insert_private_ = nullptr;
  sqlite3_stmt* insert_group_ = nullptr;
  sqlite3_stmt* join_group_ = nullptr;
  sqlite3_stmt* join_user_ = nullptr;
  sqlite3_stmt* leave_group_ = nullptr;
  sqlite3_stmt* leave_user_ = nullptr;
  sqlite3_stmt* receipt_ = nullptr;
  sqlite3_stmt* aggregate_ = nullptr;
  // The insertion sequence of the next message row. Invariant: > every seq in the tables.
  int64_t seq_next_ = 1;
  uint64_t messages_loaded_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_H_
