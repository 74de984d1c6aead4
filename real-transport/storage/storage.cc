#include "real-transport/storage/storage.h"

#include <variant>

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

}  // namespace chatlab::real
