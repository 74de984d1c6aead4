#include "real-transport/storage/memory_storage.h"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"

namespace chatlab::real {
namespace {

// Ids as SQL databases hold them (bit for bit, signed), so keys sort as SqliteStorage's do.
int64_t S(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t U(int64_t v) { return static_cast<uint64_t>(v); }

// private_chat (1, user_low, user_high, message_id) and group_chat (2, group, 0, message_id).
using MessageKey = std::tuple<int, int64_t, int64_t, int64_t>;
// receipts (conv_type, conv_low, conv_high, reader, kind).
using WatermarkKey = std::tuple<int, int64_t, int64_t, int64_t, int>;
// receipt_aggregates (group, kind).
using AggregateKey = std::pair<int64_t, int>;

MessageKey KeyOf(const ChatMessage& m) {
  return m.conv.is_group() ? MessageKey{2, S(m.conv.low), 0, S(m.message_id)}
                           : MessageKey{1, S(m.conv.low), S(m.conv.high), S(m.message_id)};
}

}  // namespace

struct MemoryStorage::Tables {
  mutable std::mutex mu;
  // The chat tables: the message of each key and its insertion sequence, and the same rows by
  // sequence. Invariant: the two hold the same rows; seq_next > every sequence.
  absl::btree_map<MessageKey, int64_t> message_seq;
  absl::btree_map<int64_t, ChatMessage> messages;
  int64_t seq_next = 1;
  absl::btree_set<std::pair<int64_t, int64_t>> members;  // (group, user)
  absl::btree_map<WatermarkKey, int64_t> watermarks;
  absl::btree_map<AggregateKey, int64_t> aggregates;
  uint64_t records_committed = 0;
  // ClaimShard's (shard, shards); none until the first claim.
  std::optional<std::pair<uint32_t, uint32_t>> shard;

  void Write(const PersistRecord& record) {
    if (const auto* p = std::get_if<PersistMessage>(&record)) {
      ChatMessage m = p->message;
      if (m.conv.is_group()) m.conv = ConversationId::Group(m.conv.group());
      const auto [it, inserted] = message_seq.try_emplace(KeyOf(m), seq_next);
      if (!inserted) {  // INSERT OR REPLACE: the row moves to the end of the commit order
        messages.erase(it->second);
        it->second = seq_next;
      }
      messages[seq_next++] = std::move(m);
    } else if (const auto* ms = std::get_if<PersistMembership>(&record)) {
      const std::pair<int64_t, int64_t> key{S(ms->group.value), S(ms->user.value)};
      if (ms->joined) {
        members.insert(key);
      } else {
        members.erase(key);
      }
    } else if (const auto* w = std::get_if<PersistWatermark>(&record)) {
      const WatermarkKey key{static_cast<int>(w->conv.type), S(w->conv.low), S(w->conv.high),
                             S(w->reader.value), static_cast<int>(w->kind)};
      const auto [it, inserted] = watermarks.try_emplace(key, S(w->up_to));
      if (!inserted) it->second = std::max(it->second, S(w->up_to));
    } else if (const auto* a = std::get_if<PersistAggregate>(&record)) {
      const AggregateKey key{S(a->conv.low), static_cast<int>(a->kind)};
      const auto [it, inserted] = aggregates.try_emplace(key, S(a->up_to));
      if (!inserted) it->second = std::max(it->second, S(a->up_to));
    }
  }

  // What Load replays, in its order (storage.h).
  std::vector<PersistRecord> Replay(const LoadScope& scope) const {
    std::vector<PersistRecord> out;
    if (!scope.hot) {
      for (const auto& [seq, m] : messages) out.push_back(PersistMessage{m});
    } else {
      // Each conversation's greatest key (its head) and the newest `recent` rows, by seq.
      absl::btree_set<int64_t> hot;
      for (auto it = message_seq.begin(); it != message_seq.end(); ++it) {
        const auto next = std::next(it);
        const auto conv = [](const MessageKey& k) {
          return std::make_tuple(std::get<0>(k), std::get<1>(k), std::get<2>(k));
        };
        if (next == message_seq.end() || conv(next->first) != conv(it->first)) {
          hot.insert(it->second);
        }
      }
      uint64_t taken = 0;
      for (auto it = messages.rbegin(); it != messages.rend() && taken < scope.recent;
           ++it, ++taken) {
        hot.insert(it->first);
      }
      for (const int64_t seq : hot) out.push_back(PersistMessage{messages.at(seq)});
    }
    for (const auto& [group, user] : members) {
      out.push_back(PersistMembership{UserId(U(user)), GroupId(U(group)), true});
    }
    for (const auto& [key, up_to] : watermarks) {
      const auto& [type, low, high, reader, kind] = key;
      out.push_back(
          PersistWatermark{ConversationId{static_cast<ChannelType>(type), U(low), U(high)},
                           UserId(U(reader)), static_cast<ReceiptKind>(kind), U(up_to)});
    }
    for (const auto& [key, up_to] : aggregates) {
      out.push_back(PersistAggregate{ConversationId::Group(GroupId(U(key.first))),
                                     static_cast<ReceiptKind>(key.second), U(up_to)});
    }
    return out;
  }
};

MemoryStorage::MemoryStorage() : tables_(std::make_shared<Tables>()) {}

MemoryStorage::MemoryStorage(std::shared_ptr<Tables> tables) : tables_(std::move(tables)) {}

std::unique_ptr<MemoryStorage> MemoryStorage::Reopen() const {
  return std::unique_ptr<MemoryStorage>(new MemoryStorage(tables_));
}

absl::Status MemoryStorage::Commit(const std::vector<PersistRecord>& records) {
  for (const PersistRecord& r : records) {
    if (absl::Status s = CheckHasTable(r); !s.ok()) return s;
  }
  std::lock_guard<std::mutex> lock(tables_->mu);
  for (const PersistRecord& r : records) tables_->Write(r);
  tables_->records_committed += records.size();
  return absl::OkStatus();
}

absl::Status MemoryStorage::Load(const Restore& restore, const LoadScope& scope) {
  std::vector<PersistRecord> replay;
  {
    std::lock_guard<std::mutex> lock(tables_->mu);
    replay = tables_->Replay(scope);
  }
  for (const PersistRecord& r : replay) {
    if (absl::Status s = restore(r); !s.ok()) return s;
    if (std::holds_alternative<PersistMessage>(r)) messages_loaded_++;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ChatMessage>> MemoryStorage::ReadHistory(const ConversationId& conv,
                                                                    MessageId after,
                                                                    uint32_t limit) {
  std::lock_guard<std::mutex> lock(tables_->mu);
  ChatMessage probe;
  probe.conv = conv.is_group() ? ConversationId::Group(conv.group()) : conv;
  probe.message_id = after;
  MessageKey key = KeyOf(probe);
  std::vector<ChatMessage> out;
  for (auto it = tables_->message_seq.upper_bound(key);
       it != tables_->message_seq.end() && out.size() < limit; ++it) {
    const auto& [type, low, high, id] = it->first;
    if (type != std::get<0>(key) || low != std::get<1>(key) || high != std::get<2>(key)) break;
    out.push_back(tables_->messages.at(it->second));
  }
  return out;
}

absl::StatusOr<std::optional<ChatMessage>> MemoryStorage::FindMessage(
    UserId sender, ClientMsgId client_msg_id) {
  std::lock_guard<std::mutex> lock(tables_->mu);
  // A scan in commit order: the reference, not the fast path.
  for (const auto& [seq, m] : tables_->messages) {
    if (m.sender == sender && m.client_msg_id == client_msg_id) return m;
  }
  return std::nullopt;
}

absl::Status MemoryStorage::ClaimShard(uint32_t shard, uint32_t shards) {
  std::lock_guard<std::mutex> lock(tables_->mu);
  if (!tables_->shard) {
    // As the engines: a database with messages and no claim is shard 0 of 1.
    const bool empty = tables_->messages.empty() && tables_->members.empty() &&
                       tables_->watermarks.empty();
    tables_->shard = empty ? std::make_pair(shard, shards) : std::make_pair(0u, 1u);
  }
  const auto [held_shard, held_shards] = *tables_->shard;
  if (held_shard != shard || held_shards != shards) {
    return ShardMismatch(held_shard, held_shards, shard, shards);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> MemoryStorage::QueryInts(const std::string& sql) {
  return absl::UnimplementedError(absl::StrCat("MemoryStorage has no SQL: ", sql));
}

uint64_t MemoryStorage::records_committed() const {
  std::lock_guard<std::mutex> lock(tables_->mu);
  return tables_->records_committed;
}

}  // namespace chatlab::real
