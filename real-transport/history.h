// A recorded history, checked by the core's oracle (core/oracle.h) outside any simulator.
//
// The simulator attaches the oracle to its clients while they run. A client that is not the
// core's ClientSession (the browser client, web/) or a run the oracle could not watch (a real
// cluster, issue 16) instead records what each user saw as a JSON history; CheckHistory replays
// it into the same Oracle, in time order, and, when the history carries the store's final
// contents ("truth"), runs the end-of-run check too. The format is docs/history-format.md.
//
// A pure function of bytes: no socket, file or clock. `history_check FILE` is its command line,
// tests/real/history_check_test.cc shows it failing on each violation it is fed.
#ifndef CHATLAB_REAL_TRANSPORT_HISTORY_H_
#define CHATLAB_REAL_TRANSPORT_HISTORY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/oracle.h"

namespace chatlab::real {

// The largest history text CheckHistory reads (a browser keeps far less; a cluster run that
// needs more splits its history by conversation).
inline constexpr size_t kHistoryBytesMax = 256u << 20;

struct HistoryVerdict {
  InvariantCounts counts;               // all zero when every promise held
  std::vector<std::string> violations;  // the first violation of each kind, as a sentence
  uint64_t users = 0;
  uint64_t events = 0;         // events fed to the oracle (informational kinds included)
  uint64_t sent = 0;           // messages the users sent
  uint64_t acked = 0;          // of those, acknowledged
  uint64_t delivered = 0;      // of those, shown to another participant (whole history)
  uint64_t displayed = 0;      // displayed events
  bool final_checked = false;  // the history had "truth", so lost and undelivered were checked
  Oracle::Latencies latencies;  // the oracle's send -> ack and send -> first shown to another
  bool ok() const { return counts.total() == 0; }
};

// Parses a history (docs/history-format.md) and replays it into an Oracle. InvalidArgument,
// naming the event ("users[1].events[7].message.conv: ..."), when the text is not such a
// history: not JSON, a wrong format tag, an unknown event kind, a field of the wrong type;
// ResourceExhausted above kHistoryBytesMax. Violations are not errors: they are the verdict.
absl::StatusOr<HistoryVerdict> CheckHistory(std::string_view text);

// The verdict as one JSON object (the counts by the oracle's names, the sentences, the totals).
std::string VerdictJson(const HistoryVerdict& v);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_HISTORY_H_
