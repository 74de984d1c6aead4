#include "real-transport/storage/storage.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"

namespace chatlab::real {

absl::Status CheckHasTable(const PersistRecord& record) {
  if (std::holds_alternative<PersistQueued>(record) ||
      std::holds_alternative<PersistDequeued>(record)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "storage: a batch writer's record (",
        std::holds_alternative<PersistQueued>(record) ? "PersistQueued" : "PersistDequeued",
        ") has no table: chatd's storage keeps only the message store's records"));
  }
  return absl::OkStatus();
}

absl::Status ReplayHotMessages(std::vector<SeqMessage> rows, const Storage::Restore& restore,
                               uint64_t& loaded) {
  std::sort(rows.begin(), rows.end(),
            [](const SeqMessage& a, const SeqMessage& b) { return a.seq < b.seq; });
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0 && rows[i].seq == rows[i - 1].seq) continue;  // a head among the recent rows
    if (absl::Status s = restore(PersistMessage{std::move(rows[i].message)}); !s.ok()) return s;
    loaded++;
  }
  return absl::OkStatus();
}

absl::Status ShardMismatch(int64_t held, int64_t held_count, uint32_t shard, uint32_t shards) {
  return absl::FailedPreconditionError(absl::StrCat(
      "this database holds store shard ", held, " of ", held_count, ", not shard ", shard, " of ",
      shards,
      " (protocol.store_shards and the process's --index place the shards; resharding a "
      "database is not supported)"));
}

absl::Status Storage::ClaimShard(uint32_t shard, uint32_t shards) {
  // Both engines speak this SQL; the id column keeps the table to one row.
  auto created = QueryInts(
      "CREATE TABLE IF NOT EXISTS store_shard (id INTEGER PRIMARY KEY CHECK (id = 0), "
      "shard INTEGER NOT NULL, shards INTEGER NOT NULL)");
  if (!created.ok()) return created.status();
  auto held = QueryInts("SELECT shard, shards FROM store_shard WHERE id = 0");
  if (!held.ok()) return held.status();
  int64_t held_shard = 0;
  int64_t held_shards = 1;
  if (held->size() == 2) {
    held_shard = (*held)[0];
    held_shards = (*held)[1];
  } else {
    auto any = QueryInts(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM private_chat) OR "
        "EXISTS (SELECT 1 FROM group_chat) OR EXISTS (SELECT 1 FROM group_membership) OR "
        "EXISTS (SELECT 1 FROM receipts) THEN 1 ELSE 0 END");
    if (!any.ok()) return any.status();
    if (any->empty() || (*any)[0] == 0) {
      held_shard = shard;  // a new database: this claim is its first
      held_shards = shards;
    }
  }
  if (held_shard != static_cast<int64_t>(shard) || held_shards != static_cast<int64_t>(shards)) {
    return ShardMismatch(held_shard, held_shards, shard, shards);
  }
  if (held->size() == 2) return absl::OkStatus();
  auto claimed = QueryInts(absl::StrCat("INSERT INTO store_shard (id, shard, shards) VALUES (0, ",
                                        shard, ", ", shards, ")"));
  return claimed.ok() ? absl::OkStatus() : claimed.status();
}

std::vector<std::pair<ConversationId, MessageId>> BatchHeads(
    const std::vector<PersistRecord>& records) {
  absl::btree_map<ConversationId, MessageId> heads;
  for (const PersistRecord& r : records) {
    const auto* p = std::get_if<PersistMessage>(&r);
    if (p == nullptr) continue;
    MessageId& head = heads[p->message.conv];
    // Signed, as the tables compare.
    if (head == kNoMessage ||
        static_cast<int64_t>(p->message.message_id) > static_cast<int64_t>(head)) {
      head = p->message.message_id;
    }
  }
  return {heads.begin(), heads.end()};
}

}  // namespace chatlab::real
