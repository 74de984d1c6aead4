// Storage in PostgreSQL (libpq): the message store's disk on a database server, for deployments
// that outgrow one machine's file (storage.h is the contract; docs/chatd.md, "Storage engines").
//
// The tables are SQLite's (sqlite_storage.h), with the seed's partition and sort keys as primary
// keys: private_chat (user_low, user_high, message_id), group_chat (group_id, message_id),
// group_membership (group_id, user_id) and user_membership (user_id, group_id), changed in one
// transaction, receipts and receipt_aggregates. Ids are BIGINT holding the uint64 bit for bit;
// bodies are BYTEA. Each message row holds `seq` from the sequence chat_seq, drawn anew on an
// overwrite, by which Load merges the two chat tables back into commit order.
//
// Commit is one transaction on one connection; it returns after COMMIT, which with PostgreSQL's
// defaults (fsync on, synchronous_commit on) means the WAL record is flushed: the records survive
// a crash of the server or of the machine. Open refuses a server whose synchronous_commit is off
// or whose fsync is off, since an ack would then not mean durable.
//
// Limits of this version: one statement round trip per record (no pipelining), one connection,
// no reconnect: a lost connection fails the commit, and chatd stops (its memory has run ahead of
// its disk) and must be restarted; the database named in the connection string must exist.
//
// Thread-safety: none (storage.h).
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/effects.h"
#include "real-transport/storage/storage.h"

struct pg_conn;

namespace chatlab::real {

class PostgresStorage final : public Storage {
 public:
  // Connects with a libpq connection string ("host=127.0.0.1 port=5432 dbname=chat user=chatd")
  // and creates the tables if missing. Errors name the server and libpq's reason.
  static absl::StatusOr<std::unique_ptr<PostgresStorage>> Open(const std::string& conninfo);
  ~PostgresStorage() override;
  PostgresStorage(const PostgresStorage&) = delete;
  PostgresStorage& operator=(const PostgresStorage&) = delete;

  absl::Status Load(const Restore& restore) override;
  // BEGIN ... COMMIT; rolled back on any error.
  absl::Status Commit(const std::vector<PersistRecord>& records) override;
  // Nothing to fold: the server checkpoints on its own.
  absl::Status Checkpoint() override { return absl::OkStatus(); }
  uint64_t messages_loaded() const override { return messages_loaded_; }

 private:
  explicit PostgresStorage(pg_conn* conn) : conn_(conn) {}
  // Runs sql (no parameters, results ignored).
  absl::Status Exec(const char* sql);
  absl::Status Write(const PersistRecord& record);

  pg_conn* conn_;
  uint64_t messages_loaded_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_
