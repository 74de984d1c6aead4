#include "real-transport/chatd/store_open.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "real-transport/storage/postgres_storage.h"
#include "real-transport/storage/sqlite_storage.h"
#include "real-transport/util.h"

namespace chatlab::real {

absl::Status UsableDataDir(const std::string& dir) {
  if ((mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) || access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", dir, " is unusable: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<StoreDisk> OpenStoreDisk(const ChatdOptions& options, int shard,
                                        std::function<void(const std::string&)> waiting) {
  StoreDisk disk;
  if (options.store == "sqlite") {
    disk.name = options.data_dir + "/chat.db";
    auto storage = SqliteStorage::Open(disk.name);
    if (!storage.ok()) return storage.status();
    disk.storage = std::move(*storage);
  } else if (options.store == "postgres") {
    if (options.store_postgres.empty()) {
      return absl::InvalidArgumentError(
          "--store postgres needs --store_postgres (a libpq connection string, e.g. "
          "\"host=127.0.0.1 port=5432 dbname=chat user=chatd\")");
    }
    disk.name = "the PostgreSQL database of --store_postgres";
    if (options.store_lease_ms < 100) {
      return absl::InvalidArgumentError("--store_lease_ms must be at least 100");
    }
    LeaseOptions lease;
    lease.owner = DataDirOwner(options.data_dir);
    lease.ttl_ms = options.store_lease_ms;
    lease.waiting = std::move(waiting);
    auto storage =
        PostgresStorage::Open(options.store_postgres, options.store_retry_ms, std::move(lease));
    if (!storage.ok()) return storage.status();
    disk.storage = std::move(*storage);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--store ", options.store, ": expected sqlite or postgres"));
  }
  const uint32_t shards = options.config.store_shards;
  if (absl::Status s = disk.storage->ClaimShard(static_cast<uint32_t>(shard), shards); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot use ", disk.name, ": ", s.message()));
  }
  return disk;
}

}  // namespace chatlab::real
