// Reads the store's final contents through chatd's Web Service, as the users of a run saw it
// at the end, for a history's truth (docs/history-format.md): what the oracle's end-of-run check
// holds every view against (lost acked messages, undelivered messages, unfounded receipts).
//
// Only the API every client has (POST /api/sync, /api/get_messages, /api/receipts, each with the
// user's token): the store answers with its permission checks, so the truth is what the store
// says, not what the player believes it sent.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_TRUTH_READER_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_TRUTH_READER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/oracle.h"
#include "real-transport/util.h"

namespace chatlab::real {

// A user to read as: its id, a valid token, and the process to ask.
struct TruthReader {
  UserId user;
  std::string token;
  HostPort at;
};

// Every conversation some reader's sync lists, read by the first reader (in the given order)
// that lists it: its messages ascending by id (every page), and its participants: a direct
// chat's two parties, or a group's members as the store has them now (the reader and the
// members GetReceipts lists, every page), ascending. Ordered by conversation. Blocking HTTP
// calls, one at a time. Unavailable naming the call and the answer when one fails.
absl::StatusOr<std::vector<ConversationTruth>> ReadTruth(const std::vector<TruthReader>& readers);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_TRUTH_READER_H_
