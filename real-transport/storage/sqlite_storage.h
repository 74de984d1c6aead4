// Storage in SQLite: chatd's disk for the message store (storage.h is the contract).
//
// The tables mirror the seed's (docs/chatd.md): private_chat partitioned by the user pair and
// group_chat by the group, both sorted by message id; group_membership and user_membership,
// changed in one transaction; receipts and receipt_aggregates. Each message row also holds a
// global insertion sequence `seq`, by which Load merges the two chat tables back into commit
// order. conversation_heads keeps each conversation's greatest message id (one upsert per
// conversation per commit; filled from the chat tables when a database written before it opens),
// so a hot Load reads O(conversations) rows. ReadHistory is one range read on the primary key;
// FindMessage one look-up per chat table on its (sender, client_msg_id) index.
// The database runs in WAL mode with synchronous = FULL, so Commit returns only once the
// records survive a power cut.
//
// Thread-safety: none (storage.h). The connection is opened without SQLite's own mutex.
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_SQLITE_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_SQLITE_STORAGE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/effects.h"
#include "real-transport/storage/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace chatlab::real {

// Creates an empty file at path with mode 0600 when none exists, so that a database SQLite then
// opens there is readable by this user only (SQLite creates the -wal and -shm files with the
// mode of the database file). chat.db and users.db hold messages and password hashes: neither
// may be readable by other users whatever the umask. An existing file is left as it is.
// FailedPrecondition naming the path and the reason when it cannot be created.
absl::Status CreatePrivateFile(const std::string& path);

class SqliteStorage final : public Storage {
 public:
  // Opens (creating if needed, mode 0600) the database file at path. Errors name the file and SQLite's
  // reason (e.g. FailedPrecondition "cannot open /x/chat.db: unable to open database file").
  static absl::StatusOr<std::unique_ptr<SqliteStorage>> Open(const std::string& path);
  ~SqliteStorage() override;
  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

  using Storage::Load;
  absl::Status Load(const Restore& restore, const LoadScope& scope) override;
  absl::StatusOr<std::vector<ChatMessage>> ReadHistory(const ConversationId& conv,
                                                       MessageId after, uint32_t limit) override;
  absl::StatusOr<std::optional<ChatMessage>> FindMessage(UserId sender,
                                                         ClientMsgId client_msg_id) override;
  // One transaction (BEGIN IMMEDIATE ... COMMIT); rolled back on any error.
  absl::Status Commit(const std::vector<PersistRecord>& records) override;
  // Folds the WAL into the database file.
  absl::Status Checkpoint() override;
  uint64_t messages_loaded() const override { return messages_loaded_; }

 protected:
  absl::StatusOr<std::vector<int64_t>> QueryInts(const std::string& sql) override;

 private:
  explicit SqliteStorage(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  absl::Status Prepare();
  absl::Status FillHeads();
  absl::Status LoadHotMessages(const Restore& restore, uint64_t recent);
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
  sqlite3_stmt* head_ = nullptr;
  sqlite3_stmt* read_private_ = nullptr;
  sqlite3_stmt* read_group_ = nullptr;
  sqlite3_stmt* find_ = nullptr;
  // The insertion sequence of the next message row. Invariant: > every seq in the tables.
  int64_t seq_next_ = 1;
  uint64_t messages_loaded_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_SQLITE_STORAGE_H_
