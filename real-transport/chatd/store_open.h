// Opening a store shard's disk: the engine chosen by --store, the PostgreSQL lease, and the
// shard claim that keeps a database to the shard it was written as.
//
// A chatd process hosts store shard index-1 when its --index is at most protocol.store_shards
// (docs/chatd.md, "Process roles"). Its disk is <data_dir>/chat.db (sqlite) or the database of
// --store_postgres (postgres; each shard its own database, on its own server or not). Opening
// checks, in order: the engine's own checks (postgres_storage.h: fsync on, the lease taken,
// which may wait for a live owner), then Storage::ClaimShard (a database written as another
// shard, or for another shard count, is refused).
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_STORE_OPEN_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_STORE_OPEN_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "real-transport/chatd.h"
#include "real-transport/storage/storage.h"

namespace chatlab::real {

struct StoreDisk {
  std::unique_ptr<Storage> storage;
  // What logs and errors call it (never a connection string: it may hold a password).
  std::string name;
};

// Creates the data directory (mode 0700) if missing; an error names it when it is unusable.
absl::Status UsableDataDir(const std::string& dir);

// Opens shard `shard` of options.config.store_shards. `waiting` is told why, each time the
// PostgreSQL lease is held by a live owner (a standby waits until it expires).
absl::StatusOr<StoreDisk> OpenStoreDisk(const ChatdOptions& options, int shard,
                                        std::function<void(const std::string&)> waiting);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_STORE_OPEN_H_
