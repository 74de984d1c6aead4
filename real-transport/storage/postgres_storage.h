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
// A lost connection (the server restarted, a network cut) is not an error at once: Commit
// reconnects and runs the whole transaction again, with backoff from 50 ms to 1 s, for up to
// retry_ms. That is safe because every statement is idempotent on the state (an upsert of the
// same row, a membership insert or delete, a watermark's GREATEST), and no later batch can have
// been committed in between (one caller, one batch at a time): if the lost COMMIT had in fact
// succeeded, the retry writes the same state again (the message rows draw a new seq, which only
// moves them later in the replay order, among the latest). Meanwhile nothing is acknowledged.
// Past retry_ms Commit fails, and chatd stops. A failed statement on a live connection is an
// error at once, as before.
//
// Load reads the messages row by row (single-row mode): the history is not held twice. A hot
// Load and ReadHistory are the SQLite engine's queries (sqlite_storage.h): conversation_heads,
// filled once from the chat tables when missing, and range reads on the primary keys.
//
// The lease: one process writes the store. The database holds one row, store_lease(shard 0,
// owner, epoch, expires_at). Open takes it when it has expired (epoch + 1: the fencing token of
// the new holder) or is its own owner's (re-entrant: a restart of the same owner takes it at once
// and keeps the epoch, so an owner must be one process at a time; chatd's owner is its host and
// data directory, which a lock file keeps to one process); otherwise Open waits, reporting the
// holder through LeaseOptions::waiting, until it expires. Every commit transaction first renews it with
// `UPDATE ... WHERE epoch = <ours>`: a process whose lease was taken over (it was paused, cut
// off, or slower than its ttl) matches no row, so its commit fails (kFailedPrecondition,
// "fenced") and it acknowledges nothing more; chatd exits. The row lock that UPDATE takes orders
// a commit and a takeover: either the commit renews first and the takeover finds the lease live,
// or the takeover commits first and the commit is fenced. KeepAlive renews it between commits;
// Checkpoint (a clean shutdown) lets it expire at once, so a standby takes over without waiting.
// Reads (Load, ReadHistory) are not fenced: a deposed process may answer a read from what it
// sees until its next commit or keep-alive fails (at most ttl / 3 later).
//
// Limits of this version: one statement round trip per record (no pipelining), one connection;
// the database named in the connection string must exist; one lease for the whole store (shards
// each with their own lease are docs/store-scaling.md's step 2).
//
// Thread-safety: none (storage.h).
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/effects.h"
#include "real-transport/storage/storage.h"

struct pg_conn;

namespace chatlab::real {

// Who may write the store (above).
struct LeaseOptions {
  std::string owner;     // stable across restarts of the same process slot; empty: host and pid
  uint32_t ttl_ms = 10000;
  // Called while Open waits for another owner's lease, with who holds it and until when.
  std::function<void(const std::string&)> waiting;
};

class PostgresStorage final : public Storage {
 public:
  // Connects with a libpq connection string ("host=127.0.0.1 port=5432 dbname=chat user=chatd")
  // and creates the tables if missing. Errors name the server and libpq's reason.
  // retry_ms: how long Commit keeps reconnecting after a lost connection before it fails.
  // lease: see above; Open returns once this process holds it.
  static absl::StatusOr<std::unique_ptr<PostgresStorage>> Open(const std::string& conninfo,
                                                              uint32_t retry_ms = 60000,
                                                              LeaseOptions lease = {});
  ~PostgresStorage() override;
  PostgresStorage(const PostgresStorage&) = delete;
  PostgresStorage& operator=(const PostgresStorage&) = delete;

  using Storage::Load;
  absl::Status Load(const Restore& restore, const LoadScope& scope) override;
  // One range read on the primary key, reconnecting as Commit does.
  absl::StatusOr<std::vector<ChatMessage>> ReadHistory(const ConversationId& conv,
                                                       MessageId after, uint32_t limit) override;
  // One look-up per chat table on its (sender, client_msg_id) index, reconnecting likewise.
  absl::StatusOr<std::optional<ChatMessage>> FindMessage(UserId sender,
                                                         ClientMsgId client_msg_id) override;
  // BEGIN ... COMMIT; rolled back on any error.
  // (retried on a lost connection, above).
  absl::Status Commit(const std::vector<PersistRecord>& records) override;
  // Connections made after a lost one (counted; for tests and logs).
  uint64_t reconnects() const { return reconnects_; }
  // Nothing to fold (the server checkpoints on its own): lets the lease expire now.
  absl::Status Checkpoint() override;
  // Renews the lease; kFailedPrecondition ("fenced") if another process holds it now.
  absl::Status KeepAlive() override;
  uint32_t keepalive_ms() const override { return std::max<uint32_t>(lease_.ttl_ms / 3, 1); }
  // The lease's epoch this process holds (the fencing token).
  int64_t epoch() const { return epoch_; }
  uint64_t messages_loaded() const override { return messages_loaded_; }

 protected:
  absl::StatusOr<std::vector<int64_t>> QueryInts(const std::string& sql) override;

 private:
  PostgresStorage(pg_conn* conn, uint32_t retry_ms, LeaseOptions lease)
      : conn_(conn), retry_ms_(retry_ms), lease_(std::move(lease)) {}
  // Takes the lease (waiting for another owner's to expire).
  absl::Status AcquireLease();
  // Renews the lease inside the caller's transaction or on its own; fenced if not ours.
  absl::Status RenewLease();
  // Runs sql (no parameters, results ignored).
  absl::Status Exec(const char* sql);
  absl::Status Write(const PersistRecord& record);
  // What every session needs: quiet notices, the prepared statements.
  absl::Status SetUpSession();
  // One attempt: BEGIN, the records, COMMIT; rolled back on error.
  absl::Status CommitOnce(const std::vector<PersistRecord>& records);
  // Runs attempt; after a lost connection reconnects (backoff 50 ms to 1 s, prepared statements
  // again) and runs it again, for up to retry_ms.
  absl::Status WithReconnect(const std::function<absl::Status()>& attempt);
  absl::Status LoadHotMessages(const Restore& restore, uint64_t recent);
  // Runs sql (a message query) and hands f each row as it arrives (single-row mode); stops
  // handing rows at f's first error and returns it.
  absl::Status ForEachMessage(const std::string& sql,
                              const std::function<absl::Status(SeqMessage)>& f);
  // Memberships, watermarks and aggregates (Load's steps 2-4).
  absl::Status LoadState(const Restore& restore);

  pg_conn* conn_;
  uint32_t retry_ms_;
  LeaseOptions lease_;
  int64_t epoch_ = 0;  // the lease's epoch we hold; 0 before AcquireLease
  uint64_t messages_loaded_ = 0;
  uint64_t reconnects_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_POSTGRES_STORAGE_H_
