// MessageStore: rebuilding from durable records (Restore) and the read-only views for tests and
// the simulator's oracle. The rest of the store is store.cc; the contract is store.h.
#include "core/store.h"

#include <algorithm>
#include <cassert>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/fields.h"

namespace chatlab {

// ---- Restore from durable records --------------------------------------------------------------

absl::Status MessageStore::Restore(const PersistRecord& record) {
  if (const auto* m = std::get_if<PersistMessage>(&record)) return RestoreMessage(m->message);
  if (const auto* r = std::get_if<PersistMembership>(&record)) {
    if (!r->user.valid() || !r->group.valid()) {
      return absl::InvalidArgumentError(absl::StrCat("restore: membership of ", ToString(r->user),
                                                     " in ", ToString(r->group)));
    }
    const auto group = groups_.find(r->group);
    const bool member = group != groups_.end() && group->second.members.contains(r->user);
    if (r->joined && !member) Join(r->user, r->group);
    if (!r->joined && member) Leave(r->user, r->group);
    if (!r->joined && group == groups_.end()) groups_[r->group];  // the group exists
  } else if (const auto* w = std::get_if<PersistWatermark>(&record)) {
    if (!w->conv.Valid() || !w->reader.valid() || !IsKnownEnumValue(w->kind)) {
      return absl::InvalidArgumentError(
          absl::StrCat("restore: watermark of ", ToString(w->reader), " in ", ToString(w->conv)));
    }
    SetWatermark(w->conv, w->reader, w->kind, w->up_to);
  } else if (const auto* a_ptr = std::get_if<PersistAggregate>(&record)) {
    const auto& a = *a_ptr;
    if (!a.conv.is_group() || !a.conv.Valid() || !IsKnownEnumValue(a.kind)) {
      return absl::InvalidArgumentError(
          absl::StrCat("restore: aggregate of ", ToString(a.conv)));
    }
    MessageId& published = published_[{a.conv, a.kind}];
    published = std::max(published, a.up_to);
  } else {
    return absl::InvalidArgumentError("restore: a batch writer's record is not the store's");
  }
  stats_.records_restored++;
  return absl::OkStatus();
}

absl::Status MessageStore::RestoreMessage(const ChatMessage& m) {
  if (!m.conv.Valid() || !m.sender.valid() || m.message_id == kNoMessage) {
    return absl::InvalidArgumentError(absl::StrCat("restore: invalid message ", m.message_id,
                                                   " in ", ToString(m.conv)));
  }
  Partition& partition = chats_[m.conv];
  if (options_.config.store_tail_cache == 0) {
    // The whole history is replayed: every message in its place (an overwrite in its place).
    if (const auto it = partition.tail.find(m.message_id); it != partition.tail.end()) {
      KeepDedupCopy(it->second);
      it->second = m;
    } else {
      partition.tail.emplace(m.message_id, m);
      cached_messages_++;
    }
  } else if (m.message_id > partition.head()) {
    if (!partition.tail.empty() && m.prev_msg_id != partition.head()) {
      // Not the next message after the tail (the records between were not replayed): the tail
      // starts again from this message.
      cached_messages_ -= partition.tail.size();
      for (const auto& [id, held] : partition.tail) KeepDedupCopy(held);
      partition.tail.clear();
    }
    if (partition.tail.empty()) partition.floor = m.prev_msg_id;
    partition.tail.emplace(m.message_id, m);
    cached_messages_++;
    TrimTail(partition);
  } else if (const auto it = partition.tail.find(m.message_id); it != partition.tail.end()) {
    KeepDedupCopy(it->second);
    it->second = m;  // rewritten in place
  } else if (m.message_id > partition.floor) {
    // Inside the tail's range but not in it: history written with ids out of order (store-minted
    // timestamps, before the tail was bounded). The tail can vouch only for its head.
    const MessageId head = partition.head();
    const auto keep = partition.tail.find(head);
    for (const auto& [id, held] : partition.tail) {
      if (id != head) KeepDedupCopy(held);
    }
    ChatMessage newest = std::move(keep->second);
    cached_messages_ -= partition.tail.size() - 1;
    partition.tail.clear();
    partition.tail.emplace(head, std::move(newest));
    partition.floor = head - 1;
    stats_.restore_tail_resets++;
  }  // else older than the tail: it stays on disk
  if (m.conv.is_group()) {
    groups_[m.conv.group()];  // a group with messages exists even with no members left
  } else {
    user_directs_.insert({UserId(m.conv.low), m.conv});
    user_directs_.insert({UserId(m.conv.high), m.conv});
  }
  const DedupKey key{m.sender, m.client_msg_id};
  if (options_.config.dedup_enabled && !dedup_.contains(key)) RememberDedup(key, m);
  if (options_.config.id_scheme == IdScheme::kSnowflake) snowflake_.Observe(m.message_id);
  stats_.records_restored++;
  return absl::OkStatus();
}

// ---- Read-only views ----------------------------------------------------------------------------

std::vector<ChatMessage> MessageStore::Messages(const ConversationId& conv) const {
  std::vector<ChatMessage> messages;
  const auto chat = chats_.find(conv);
  if (chat == chats_.end()) return messages;
  messages.reserve(chat->second.tail.size());
  for (const auto& [id, message] : chat->second.tail) messages.push_back(message);
  return messages;
}

const ChatMessage* MessageStore::Find(const ConversationId& conv, MessageId id) const {
  const auto chat = chats_.find(conv);
  if (chat == chats_.end()) return nullptr;
  const auto it = chat->second.tail.find(id);
  return it == chat->second.tail.end() ? nullptr : &it->second;
}

MessageId MessageStore::Head(const ConversationId& conv) const {
  const auto chat = chats_.find(conv);
  if (chat == chats_.end()) return kNoMessage;
  assert(!chat->second.tail.empty());
  return chat->second.head();
}

std::vector<ConversationId> MessageStore::Conversations() const {
  std::vector<ConversationId> convs;
  convs.reserve(chats_.size());
  for (const auto& [conv, partition] : chats_) convs.push_back(conv);
  return convs;
}

std::vector<GroupId> MessageStore::Groups() const {
  std::vector<GroupId> groups;
  groups.reserve(groups_.size());
  for (const auto& [group, state] : groups_) groups.push_back(group);
  return groups;
}

std::vector<UserId> MessageStore::Members(GroupId group) const {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return std::vector<UserId>(it->second.members.begin(), it->second.members.end());
}

std::vector<GroupId> MessageStore::GroupsOf(UserId user) const {
  const auto it = user_groups_.find(user);
  if (it == user_groups_.end()) return {};
  return std::vector<GroupId>(it->second.begin(), it->second.end());
}

MessageId MessageStore::Watermark(const ConversationId& conv, UserId reader,
                                  ReceiptKind kind) const {
  const auto it = watermarks_.find(WatermarkKey{conv, reader, kind});
  return it == watermarks_.end() ? kNoMessage : it->second;
}

MessageId MessageStore::PublishedAggregate(const ConversationId& conv, ReceiptKind kind) const {
  const auto it = published_.find({conv, kind});
  return it == published_.end() ? kNoMessage : it->second;
}

}  // namespace chatlab
