#include "sim/disk.h"

#include <cassert>
#include <variant>

namespace chatlab::sim {

SimDisk::SimDisk(double fsync_s, bool index_messages, bool keep_records)
    : fsync_s_(fsync_s), index_messages_(index_messages), keep_records_(keep_records) {
  assert(fsync_s >= 0);
}

double SimDisk::Write(double now, std::vector<PersistRecord> records) {
  Settle(now);
  if (records.empty()) return now;
  double durable_at = 0;
  if (last_end_s_ <= now) {
    // The disk is idle: an fsync starts now.
    last_end_s_ = now + fsync_s_;
    fsyncs_++;
  } else if (last_end_s_ - fsync_s_ <= now) {
    // The latest fsync is running: these records wait for the next one, which starts when it
    // ends.
    last_end_s_ += fsync_s_;
    fsyncs_++;
  }
  // Otherwise the latest fsync has not started yet and takes these records too.
  durable_at = last_end_s_;
  for (PersistRecord& r : records) unsynced_.emplace_back(durable_at, std::move(r));
  records_written_ += records.size();
  assert(durable_at >= now);
  return durable_at;
}

SimDisk::CrashLoss SimDisk::Crash(double now, bool torn_write) {
  Settle(now);
  CrashLoss loss;
  loss.lost = unsynced_.size();
  loss.torn = torn_write && loss.lost > 0;
  unsynced_.clear();
  last_end_s_ = -1;  // the fsync in progress died with the process
  return loss;
}

const std::vector<PersistRecord>& SimDisk::Durable(double now) {
  assert(keep_records_);
  Settle(now);
  return durable_;
}

std::vector<ChatMessage> SimDisk::ReadMessages(double now, const ConversationId& conv,
                                               MessageId after, uint32_t limit, bool unsynced) {
  assert(index_messages_);
  Settle(now);
  // The first `limit` of the durable rows, then the unsynced writes over them: the first
  // `limit` of the union lie among these.
  absl::btree_map<MessageId, const ChatMessage*> seen;
  if (const auto it = durable_messages_.find(conv); it != durable_messages_.end()) {
    for (auto m = it->second.upper_bound(after); m != it->second.end() && seen.size() < limit;
         ++m) {
      seen[m->first] = &m->second;
    }
  }
  for (const auto& [at, record] : unsynced_) {
    if (!unsynced) break;
    const auto* p = std::get_if<PersistMessage>(&record);
    if (p != nullptr && p->message.conv == conv && p->message.message_id > after) {
      seen[p->message.message_id] = &p->message;
    }
  }
  std::vector<ChatMessage> out;
  for (const auto& [id, m] : seen) {
    if (out.size() == limit) break;
    out.push_back(*m);
  }
  return out;
}

std::vector<PersistRecord> SimDisk::HotRecords(double now, uint64_t recent) {
  assert(index_messages_ && keep_records_);
  Settle(now);
  size_t messages = 0;
  for (const PersistRecord& r : durable_) messages += std::holds_alternative<PersistMessage>(r);
  std::vector<PersistRecord> out;
  size_t seen = 0;
  for (const PersistRecord& r : durable_) {
    const auto* p = std::get_if<PersistMessage>(&r);
    if (p == nullptr) {
      out.push_back(r);
      continue;
    }
    ++seen;
    const auto& rows = durable_messages_.at(p->message.conv);
    const bool head = rows.rbegin()->first == p->message.message_id &&
                      rows.rbegin()->second == p->message;  // its last write
    if (head || messages - seen < recent) out.push_back(r);
  }
  return out;
}

std::optional<ChatMessage> SimDisk::FindMessage(double now, UserId sender,
                                                ClientMsgId client_msg_id) {
  assert(index_messages_);
  Settle(now);
  const auto key = durable_keys_.find({sender, client_msg_id});
  if (key == durable_keys_.end()) return std::nullopt;
  const auto& [conv, id] = key->second;
  const ChatMessage& row = durable_messages_.at(conv).at(id);
  if (row.sender != sender || row.client_msg_id != client_msg_id) return std::nullopt;
  return row;
}

void SimDisk::Settle(double now) {
  while (!unsynced_.empty() && unsynced_.front().first <= now) {
    const auto* p = std::get_if<PersistMessage>(&unsynced_.front().second);
    if (index_messages_ && p != nullptr) {
      durable_messages_[p->message.conv].insert_or_assign(p->message.message_id, p->message);
      durable_keys_.try_emplace({p->message.sender, p->message.client_msg_id}, p->message.conv,
                                p->message.message_id);
    }
    if (keep_records_) durable_.push_back(std::move(unsynced_.front().second));
    unsynced_.pop_front();
  }
}

}  // namespace chatlab::sim
