// ClientSession: what the user sees (read-only queries). The protocol is client.cc; the contract
// is client.h.
#include "core/client.h"

#include <vector>

namespace chatlab {

// ---- Queries -----------------------------------------------------------------------------------

std::vector<ChatMessage> ClientSession::View(const ConversationId& conv) const {
  auto it = convs_.find(conv);
  if (it == convs_.end() || it->second.extra == nullptr) return {};
  return it->second.extra->view;
}

MessageId ClientSession::LastShown(const ConversationId& conv) const {
  auto it = convs_.find(conv);
  return it == convs_.end() ? kNoMessage : it->second.last_shown;
}

MessageId ClientSession::ReceiptShown(const ConversationId& conv, ReceiptKind kind,
                                      UserId reader) const {
  auto it = convs_.find(conv);
  if (it == convs_.end()) return kNoMessage;
  const Conversation& c = it->second;
  if (MainReader(conv) == reader) {  // as ReceiptSlot files it
    if (kind == ReceiptKind::kDelivered) return c.delivered_shown;
    if (kind == ReceiptKind::kRead) return c.read_shown;
  }
  if (c.extra == nullptr) return kNoMessage;
  auto rit = c.extra->receipts.find({kind, reader});
  return rit == c.extra->receipts.end() ? kNoMessage : rit->second;
}

std::vector<MemberReceipts> ClientSession::MemberReceiptsShown(const ConversationId& conv) const {
  std::vector<MemberReceipts> members;
  const auto it = convs_.find(conv);
  if (it == convs_.end() || it->second.Reading() == nullptr) return members;
  const std::vector<UserId>& shown = it->second.Reading()->members;
  members.reserve(shown.size());
  for (const UserId user : shown) {
    members.push_back(MemberReceipts{user, ReceiptShown(conv, ReceiptKind::kDelivered, user),
                                     ReceiptShown(conv, ReceiptKind::kRead, user)});
  }
  return members;
}

bool ClientSession::IsTyping(const ConversationId& conv, UserId who, TimeUs now) const {
  auto it = convs_.find(conv);
  if (it == convs_.end() || it->second.extra == nullptr) return false;
  const auto& typing_until = it->second.extra->typing_until;
  auto tit = typing_until.find(who);
  return tit != typing_until.end() && now < tit->second;
}

std::optional<PresenceStatus> ClientSession::Presence(UserId who) const {
  auto it = presence_.find(who);
  if (it == presence_.end()) return std::nullopt;
  return PresenceStatus{who, it->second.online, it->second.last_seen_us, it->second.pushed};
}

std::vector<ConversationId> ClientSession::Conversations() const {
  std::vector<ConversationId> result;
  result.reserve(convs_.size());
  for (const auto& [conv, c] : convs_) result.push_back(conv);
  return result;
}

bool ClientSession::HasPendingCatchUp() const {
  for (const auto& [conv, c] : convs_) {
    if (c.catchup_request != 0 || c.HoldsAny()) return true;
  }
  return false;
}

}  // namespace chatlab
