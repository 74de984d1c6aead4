// MessageStore: exact de-duplication beyond the window, the look-up of a resend on the store's
// disk (ProtocolConfig::store_dedup_lookup, docs/store-scaling.md). The rest of the store is
// store.cc; the contract is store.h.
#include "core/store.h"

#include <cassert>
#include <optional>
#include <utility>

namespace chatlab {

bool MessageStore::AwaitDedupLoad(NodeId from, const StoreAppend& m, Effects& out) {
  const ProtocolConfig& config = options_.config;
  if (!config.dedup_enabled || !config.store_dedup_lookup) return false;
  const DedupKey key{m.message.sender, m.message.client_msg_id};
  if (const auto loading = dedup_loading_.find(key); loading != dedup_loading_.end()) {
    // Answered after the lookup, in arrival order: a first copy stored now could make the
    // lookup's answer stale, and a second copy would find the first in the window anyway.
    pending_dedup_.at(loading->second).appends.emplace_back(from, m);
    stats_.appends_behind_lookup++;
    return true;
  }
  if (m.attempt == 0 || dedup_.contains(key)) return false;
  const ChatMessage& message = m.message;
  if (!message.conv.Valid() || !message.sender.valid() ||
      message.body.size() > config.body_bytes_max) {
    return false;  // refused at once by Append: nothing to look up
  }
  const uint64_t token = next_load_token_++;
  PendingDedup& pending = pending_dedup_[token];
  pending.key = key;
  pending.appends.emplace_back(from, m);
  dedup_loading_.emplace(key, token);
  stats_.dedup_loads++;
  out.push_back(LoadDedup{token, key.sender, key.client_msg_id});
  return true;
}

void MessageStore::OnDedupLoaded(TimeUs now, uint64_t token, std::optional<ChatMessage> found,
                                 Effects& out) {
  const auto it = pending_dedup_.find(token);
  if (it == pending_dedup_.end()) {
    stats_.dedup_loads_dropped++;
    return;
  }
  PendingDedup pending = std::move(it->second);
  pending_dedup_.erase(it);
  const size_t erased = dedup_loading_.erase(pending.key);
  assert(erased == 1);
  (void)erased;
  // The environment's contract: the first message stored under the key, or nothing.
  const bool stored = found.has_value() && found->sender == pending.key.sender &&
                      found->client_msg_id == pending.key.client_msg_id && Holds(found->conv);
  if (stored) {
    stats_.dedup_found_on_disk++;
    // Back into the window (a cache now), for the resends that follow.
    RememberDedup(pending.key, *found);
  }
  // Whatever the window's size, the appends after the one that stores the message are its
  // duplicates (or reuses).
  std::optional<ChatMessage> first;
  if (stored) first = std::move(found);
  for (auto& [from, append] : pending.appends) {
    StoreAppendResult result;
    result.request_id = append.request_id;
    result.outcome = Append(now, append.message, Access::kCheck, out,
                            first.has_value() ? &*first : nullptr);
    if (!first.has_value() && result.outcome.code == Code::kOk) first = result.outcome.message;
    out.push_back(SendToNode{from, std::move(result)});
  }
}

}  // namespace chatlab
