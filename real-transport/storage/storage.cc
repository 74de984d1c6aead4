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
