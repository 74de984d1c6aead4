// The invariant oracle: watches what every user sees and checks the promises of the protocol.
//
// It is a ClientObserver attached to every client of a run (in the in-process harness and in
// the SimGrid simulator alike), so there is one checker, not one per environment. During the run
// it counts what can be seen at once (a message shown twice, a message shown above a newer one,
// a receipt going back); at the end, given the store's final contents (the authoritative
// history) and who belongs to each conversation, it checks that every acknowledged message is
// in the store (none lost: durability) and reached every participant's view (none unshown:
// delivery), that every stored message did (liveness, once faults have healed), and that every
// receipt a user was shown about a member (a peer's, or a group member's from GetReceipts) is
// founded: a member shown as having delivered or read a conversation up to M did display a
// message at or above M.
//
// Order is the server's order, which is message-id order (the store keeps every conversation
// sorted by id, and prev_msg_id links each message to the one before it there): a message shown
// after one with a greater id is an order violation. Whether ids follow the order messages were
// sent in is a property of the id design, not an invariant: with IdGenerator::kChatServer an id
// minted on a clock behind the conversation's head is stored at the head and counted by the
// store (out_of_order_ids, id_collisions), which the reports read as metrics.
//
// A checker that cannot fail proves nothing: tests/core/oracle_test.cc feeds it each violation.
#ifndef CHATLAB_CORE_ORACLE_H_
#define CHATLAB_CORE_ORACLE_H_

#include <compare>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "core/client.h"
#include "core/types.h"

namespace chatlab {

// Integer counts of invariant violations (all must be 0 in a correct run). What one violation of
// each is, and the order every report lists them in, is kInvariants below.
struct InvariantCounts {
  uint64_t lost_acked = 0;
  uint64_t acked_unshown = 0;
  uint64_t duplicates_shown = 0;
  uint64_t order_violations = 0;
  uint64_t receipt_regressions = 0;
  uint64_t undelivered_after_heal = 0;
  uint64_t acks_contradicted = 0;
  uint64_t receipts_unfounded = 0;

  // The sum of every count (ForEachInvariant).
  uint64_t total() const;
};

// One invariant: its name (the key in results.json and in a history verdict, and the word that
// opens its first_violations() sentence), its count in InvariantCounts, and what one violation
// is.
struct Invariant {
  const char* name;
  uint64_t InvariantCounts::*count;
  const char* meaning;
};

// Every invariant, once, in the order every writer lists them (results.json of chatlab run and
// chatplay, the history_check verdict, the summaries): a key's position in those files never
// changes, and a new invariant is added here and nowhere else.
inline constexpr Invariant kInvariants[] = {
    {"lost_acked", &InvariantCounts::lost_acked, "acknowledged, and not in the store"},
    {"acked_unshown", &InvariantCounts::acked_unshown,
     "acknowledged and stored, but missing from a participant's view at the end"},
    {"duplicates_shown", &InvariantCounts::duplicates_shown,
     "a (sender, client_msg_id) shown twice in one view"},
    {"order_violations", &InvariantCounts::order_violations, "a message shown above a newer one"},
    {"receipt_regressions", &InvariantCounts::receipt_regressions,
     "a shown receipt watermark went back"},
    {"undelivered_after_heal", &InvariantCounts::undelivered_after_heal,
     "(message, participant) pairs missing at the end"},
    {"acks_contradicted", &InvariantCounts::acks_contradicted,
     "a send answered kOk, then answered with another code"},
    {"receipts_unfounded", &InvariantCounts::receipts_unfounded,
     "a member shown as having delivered or read up to M who displayed nothing at or after M"},
};
// No two entries share a name or a count.
constexpr bool InvariantsDistinct() {
  for (size_t i = 0; i < std::size(kInvariants); i++) {
    for (size_t j = i + 1; j < std::size(kInvariants); j++) {
      if (std::string_view(kInvariants[i].name) == kInvariants[j].name) return false;
      if (kInvariants[i].count == kInvariants[j].count) return false;
    }
  }
  return true;
}
static_assert(InvariantsDistinct());
// With the above, every field of InvariantCounts is listed in kInvariants.
static_assert(sizeof(InvariantCounts) == std::size(kInvariants) * sizeof(uint64_t));

// Calls f(name, count) for every invariant of counts, in kInvariants order.
template <typename F>
void ForEachInvariant(const InvariantCounts& counts, F&& f) {
  for (const Invariant& invariant : kInvariants) f(invariant.name, counts.*invariant.count);
}

inline uint64_t InvariantCounts::total() const {
  uint64_t sum = 0;
  ForEachInvariant(*this, [&sum](const char*, uint64_t count) { sum += count; });
  return sum;
}

// What the authoritative history says about one conversation at the end of a run.
struct ConversationTruth {
  ConversationId conv;
  std::vector<ChatMessage> messages;  // the store's order (ascending message id)
  std::vector<UserId> participants;   // both parties, or the group's members
};

class Oracle : public ClientObserver {
 public:
  // Latency samples, in microseconds of the global (environment) clock.
  struct Latencies {
    std::vector<TimeUs> end_to_end_us;  // send -> first shown to another participant
    std::vector<TimeUs> ack_us;         // send -> acked
  };

  // ClientObserver. `now` must be the environment's global clock (not a skewed node clock) so
  // that latencies across users compare.
  void OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) override;
  void OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnAcked(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                   bool duplicate) override;
  void OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) override;

  // The end-of-run check against the store's final contents. Adds to counts() lost_acked (an
  // acknowledged message not in the store), acked_unshown (an acknowledged message in the store
  // that some participant never displayed: once per message, however many missed it),
  // undelivered_after_heal (each stored message and participant that never displayed it, acked
  // or not), and receipts_unfounded: for every receipt shown about a reader this oracle watched
  // (one whose client reported to it), the reader must have displayed a message of that
  // conversation at or above the receipt's watermark (a client sends a receipt only for what it
  // shows). Checked at the end, so that it does not depend on how two users' events interleave (a
  // recorded history orders them by their clocks); the aggregate of a group (reader 0) is not
  // checked (its members change). Call once.
  void CheckFinal(const std::vector<ConversationTruth>& truth);
  // CheckFinal in parts, for a truth too large to hold at once (the simulator at a million
  // users): CheckFinalConversation with each conversation's truth in CheckFinal's order, then
  // EndFinal once. The same checks, counts and first violations as CheckFinal.
  void CheckFinalConversation(const ConversationTruth& t);
  void EndFinal();

  const InvariantCounts& counts() const { return counts_; }
  // A sentence about the first violation of each kind, in the order they were found.
  const std::vector<std::string>& first_violations() const { return first_violations_; }
  const Latencies& latencies() const { return latencies_; }
  // From now on, latency samples are taken only of messages first sent in [from_us, to_us): a
  // measurement window that leaves the warm-up out, as the simulator's (docs/results.md). Every
  // check is unaffected. By default every message is sampled.
  void SetLatencyWindow(TimeUs from_us, TimeUs to_us) {
    window_from_us_ = from_us;
    window_to_us_ = to_us;
  }
  uint64_t sent() const { return sent_.size(); }
  uint64_t acked() const { return acked_count_; }
  // Messages shown to some participant other than their sender, whole run (the latency window
  // does not apply).
  uint64_t delivered() const { return delivered_count_; }

 private:
  using MessageKey = std::pair<UserId, ClientMsgId>;  // (sender, client_msg_id)
  // A conversation in 16 bytes rather than 24: a valid ConversationId's type follows from its
  // high part (0 for a group, a party for a direct chat), so (low, high) names it. Ordered as
  // ConversationId is (direct chats first), so that scans report in the same order. The oracle
  // keeps one or more per message and per (viewer, conversation).
  struct ConvKey {
    uint64_t low = 0;
    uint64_t high = 0;
    explicit ConvKey(const ConversationId& c) : low(c.low), high(c.high) {}
    ConversationId conv() const {
      return high == 0 ? ConversationId::Group(GroupId(low))
                       : ConversationId{ChannelType::kDirect, low, high};
    }
    friend bool operator==(const ConvKey&, const ConvKey&) = default;
    friend auto operator<=>(const ConvKey& a, const ConvKey& b) {
      return std::tuple(a.high == 0, a.low, a.high) <=> std::tuple(b.high == 0, b.low, b.high);
    }
  };
  struct SentInfo {
    ConvKey conv;
    TimeUs sent_at_us = 0;
    bool acked = false;
    bool answered_ok = false;  // some SendAck with kOk reached the sender
    bool shown_to_other = false;
    bool stored = false;  // in the final truth (CheckFinalConversation)
  };
  void Violation(const char* kind, std::string detail, bool first_of_kind);
  // The receipts_unfounded part of CheckFinal.
  void CheckReceiptsFounded();

  InvariantCounts counts_;
  std::vector<std::string> first_violations_;
  Latencies latencies_;
  TimeUs window_from_us_ = std::numeric_limits<TimeUs>::min();
  TimeUs window_to_us_ = std::numeric_limits<TimeUs>::max();
  bool Sampled(TimeUs sent_at_us) const {
    return sent_at_us >= window_from_us_ && sent_at_us < window_to_us_;
  }
  uint64_t acked_count_ = 0;
  uint64_t delivered_count_ = 0;
  absl::btree_map<MessageKey, SentInfo> sent_;
  // Every display, as (viewer, message key): a key names one message of one conversation (the
  // store refuses a key reused for another), so the conversation is left out of it. One set for
  // the run rather than one per view: at a million users a set per (viewer, conversation) cost
  // three times the bytes of its few keys.
  absl::btree_set<std::pair<UserId, MessageKey>> shown_;
  // The greatest message id each viewer displayed in each conversation.
  absl::btree_map<std::pair<UserId, ConvKey>, MessageId> max_shown_;
  // (viewer, conv, kind, reader) -> shown watermark.
  absl::btree_map<std::tuple<UserId, ConvKey, ReceiptKind, UserId>, MessageId> receipts_;
  // The highest receipt watermark any viewer was shown about a reader: (reader, conv, kind) ->
  // (watermark, the first viewer shown it).
  absl::btree_map<std::tuple<UserId, ConvKey, ReceiptKind>, std::pair<MessageId, UserId>> claims_;
  // Users whose client reported to this oracle (a viewer or a sender): only their receipts can
  // be checked against what they displayed.
  absl::btree_set<UserId> watched_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_ORACLE_H_
