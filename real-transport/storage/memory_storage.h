// Storage in memory: the contract of storage.h without a disk, for tests of what sits on top of
// a Storage (chatd's commit pipeline) and as the reference the conformance test holds every
// engine to.
//
// It keeps what SqliteStorage's tables keep, keyed the same way, and Load replays it in the
// same order, so both restore the same MessageStore from the same commits: messages by
// (conversation, message id) in commit order, the memberships that hold now, and the greatest
// watermark and aggregate per key (storage.h lists the order). Keys compare as signed 64-bit
// integers and a group message's conversation is kept as (group, 0), exactly as SQLite holds
// them. "Durable" here means visible to Load and to every handle from Reopen; nothing survives
// the process.
//
// Thread-safety: the committed tables are guarded by a mutex shared by every handle, so a test
// may look at them (records_committed, Load on another handle) while a storage thread commits.
#ifndef CHATLAB_REAL_TRANSPORT_STORAGE_MEMORY_STORAGE_H_
#define CHATLAB_REAL_TRANSPORT_STORAGE_MEMORY_STORAGE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/effects.h"
#include "real-transport/storage/storage.h"

namespace chatlab::real {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  // Another handle on the same committed tables, as reopening the same database file would
  // give: what one commits the other loads. Its messages_loaded starts at 0.
  std::unique_ptr<MemoryStorage> Reopen() const;

  using Storage::Load;
  absl::Status Load(const Restore& restore, const LoadScope& scope) override;
  absl::StatusOr<std::vector<ChatMessage>> ReadHistory(const ConversationId& conv,
                                                       MessageId after, uint32_t limit) override;
  absl::StatusOr<std::optional<ChatMessage>> FindMessage(UserId sender,
                                                         ClientMsgId client_msg_id) override;
  // Checks every record first, so a refused batch changes nothing.
  absl::Status Commit(const std::vector<PersistRecord>& records) override;
  absl::Status Checkpoint() override { return absl::OkStatus(); }
  uint64_t messages_loaded() const override { return messages_loaded_; }
  absl::Status ClaimShard(uint32_t shard, uint32_t shards) override;

  // Records of every committed batch so far, counted as Commit received them (overwrites and
  // repeated watermarks included).
  uint64_t records_committed() const;

 protected:
  absl::StatusOr<std::vector<int64_t>> QueryInts(const std::string& sql) override;

 private:
  struct Tables;
  explicit MemoryStorage(std::shared_ptr<Tables> tables);

  std::shared_ptr<Tables> tables_;
  uint64_t messages_loaded_ = 0;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_STORAGE_MEMORY_STORAGE_H_
