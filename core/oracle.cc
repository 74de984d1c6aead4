#include "core/oracle.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace chatlab {

void Oracle::OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) {
  watched_.insert(sender);
  sent_.insert_or_assign({sender, id}, SentInfo{ConvKey(conv), now, false, false});
}

void Oracle::OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) {
  (void)now;
  auto it = sent_.find({sender, ack.client_msg_id});
  if (it == sent_.end()) return;
  if (ack.code == Code::kOk) {
    it->second.answered_ok = true;
    return;
  }
  if (!it->second.answered_ok) return;  // a retryable answer before the kOk is fine
  counts_.acks_contradicted++;
  Violation("acks_contradicted",
            absl::StrCat(ToString(sender), "/", ack.client_msg_id, " in ", ToString(ack.conv),
                         " was acknowledged, then answered ", CodeName(ack.code)),
            counts_.acks_contradicted == 1);
}

void Oracle::OnAcked(TimeUs now, UserId sender, const SendAck& ack) {
  auto it = sent_.find({sender, ack.client_msg_id});
  if (it == sent_.end() || it->second.acked) return;
  it->second.acked = true;
  acked_count_++;
  if (Sampled(it->second.sent_at_us)) latencies_.ack_us.push_back(now - it->second.sent_at_us);
}

void Oracle::OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                         bool duplicate) {
  watched_.insert(viewer);
  MessageId& max_shown = max_shown_[{viewer, ConvKey(m.conv)}];
  const MessageKey key{m.sender, m.client_msg_id};
  const bool shown_before = !shown_.emplace(viewer, key).second;
  if (shown_before || duplicate) {
    counts_.duplicates_shown++;
    Violation("duplicates_shown",
              absl::StrCat(ToString(viewer), " saw message ", m.message_id, " (",
                           ToString(m.sender), "/", m.client_msg_id, ") twice in ",
                           ToString(m.conv)),
              counts_.duplicates_shown == 1);
  }
  // Judge order by what this view shows, not by the client's own flag alone, so a client bug
  // that forgets to set the flag is still caught.
  if (out_of_order || m.message_id < max_shown) {
    counts_.order_violations++;
    Violation("order_violations",
              absl::StrCat(ToString(viewer), " saw message ", m.message_id, " in ",
                           ToString(m.conv), " after newer message ", max_shown),
              counts_.order_violations == 1);
  }
  max_shown = std::max(max_shown, m.message_id);
  if (viewer == m.sender) return;
  auto it = sent_.find(key);
  if (it != sent_.end() && !it->second.shown_to_other) {
    it->second.shown_to_other = true;
    delivered_count_++;
    if (Sampled(it->second.sent_at_us)) {
      latencies_.end_to_end_us.push_back(now - it->second.sent_at_us);
    }
  }
}

void Oracle::OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) {
  (void)now;
  watched_.insert(viewer);
  if (shown.reader.valid()) {
    auto& [mark, first_viewer] =
        claims_[std::make_tuple(shown.reader, ConvKey(shown.conv), shown.kind)];
    if (shown.up_to > mark) {
      mark = shown.up_to;
      first_viewer = viewer;
    }
  }
  MessageId& last =
      receipts_[std::make_tuple(viewer, ConvKey(shown.conv), shown.kind, shown.reader)];
  if (shown.up_to < last) {
    counts_.receipt_regressions++;
    Violation("receipt_regressions",
              absl::StrCat(ToString(viewer), " saw the ",
                           shown.kind == ReceiptKind::kRead ? "read" : "delivery",
                           " receipt of ", ToString(shown.reader), " in ", ToString(shown.conv),
                           " go back from ", last, " to ", shown.up_to),
              counts_.receipt_regressions == 1);
  }
  last = std::max(last, shown.up_to);
}

void Oracle::CheckFinal(const std::vector<ConversationTruth>& truth) {
  for (const ConversationTruth& t : truth) CheckFinalConversation(t);
  EndFinal();
}

void Oracle::CheckFinalConversation(const ConversationTruth& t) {
  for (const ChatMessage& m : t.messages) {
    const MessageKey key{m.sender, m.client_msg_id};
    auto sit = sent_.find(key);
    if (sit != sent_.end()) sit->second.stored = true;
    const bool acked = sit != sent_.end() && sit->second.acked;
    std::vector<UserId> missing;  // participants that never displayed it
    for (UserId p : t.participants) {
      if (shown_.contains({p, key})) continue;
      missing.push_back(p);
      counts_.undelivered_after_heal++;
      Violation("undelivered_after_heal",
                absl::StrCat("message ", m.message_id, " (", ToString(m.sender), "/",
                             m.client_msg_id, ") in ", ToString(t.conv),
                             " never reached ", ToString(p)),
                counts_.undelivered_after_heal == 1);
    }
    // Stored, so not lost: a delivery failure, not a durability one.
    if (acked && !missing.empty()) {
      counts_.acked_unshown++;
      Violation("acked_unshown",
                absl::StrCat(
                    "acknowledged message ", m.message_id, " (", ToString(m.sender), "/",
                    m.client_msg_id, ") in ", ToString(t.conv),
                    " is in the store but missing from the view of ", ToString(missing.front()),
                    missing.size() > 1 ? absl::StrCat(" and ", missing.size() - 1, " more") : "",
                    " at the end"),
                counts_.acked_unshown == 1);
    }
  }
}

void Oracle::EndFinal() {
  CheckReceiptsFounded();
  for (const auto& [key, info] : sent_) {
    if (!info.acked || info.stored) continue;
    counts_.lost_acked++;
    Violation("lost_acked",
              absl::StrCat("acknowledged message ", ToString(key.first), "/", key.second, " in ",
                           ToString(info.conv.conv()), " is not in the store"),
              counts_.lost_acked == 1);
  }
}

void Oracle::CheckReceiptsFounded() {
  for (const auto& [key, claim] : claims_) {
    const auto& [reader, conv, kind] = key;
    const auto& [mark, viewer] = claim;
    if (!watched_.contains(reader)) continue;  // not watched: what it displayed is unknown
    const auto view = max_shown_.find({reader, conv});
    const MessageId displayed = view == max_shown_.end() ? kNoMessage : view->second;
    if (displayed >= mark) continue;
    counts_.receipts_unfounded++;
    Violation("receipts_unfounded",
              absl::StrCat(ToString(viewer), " was shown that ", ToString(reader),
                           kind == ReceiptKind::kRead ? " read " : " delivered ",
                           ToString(conv.conv()),
                           " up to ", mark, ", but the newest message ", ToString(reader),
                           " displayed there is ", displayed),
              counts_.receipts_unfounded == 1);
  }
}

void Oracle::Violation(const char* kind, std::string detail, bool first_of_kind) {
  if (!first_of_kind) return;
  first_violations_.push_back(absl::StrCat(kind, ": ", detail));
}

}  // namespace chatlab
