#include "core/store.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <limits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/fields.h"

namespace chatlab {
namespace {

void Reply(NodeId to, Message msg, Effects& out) { out.push_back(SendToNode{to, std::move(msg)}); }

size_t MarkIndex(ReceiptKind kind) {
  assert(IsKnownEnumValue(kind));
  return static_cast<size_t>(kind) - 1;
}

// Whether an append under a known (sender, client_msg_id) repeats the stored message (a retry)
// rather than reusing the id for another one: the same conversation and the same body.
bool SameMessage(const ChatMessage& stored, const ChatMessage& request) {
  return stored.conv == request.conv && stored.body == request.body;
}

// Takes one member off watermark mark in a group's histogram.
void Unmark(absl::btree_map<MessageId, uint32_t>& marks, MessageId mark) {
  const auto it = marks.find(mark);
  assert(it != marks.end() && it->second > 0);
  if (--it->second == 0) marks.erase(it);
}

}  // namespace

absl::Status ValidateStoreConfig(const ProtocolConfig& config) {
  if (config.store_shards < 1 || config.store_shards > kStoreShardsMax) {
    return absl::InvalidArgumentError(absl::StrCat("protocol.store_shards = ", config.store_shards,
                                                   ": expected 1 to ", kStoreShardsMax));
  }
  if (config.store_shards > 1 && config.write_path == WritePath::kBatched) {
    return absl::InvalidArgumentError(
        "protocol.store_shards > 1 with write_path = batched: the batch writer feeds one store; "
        "set store_shards = 1 or write_path = direct");
  }
  if (config.store_dedup_lookup && config.write_path == WritePath::kBatched) {
    return absl::InvalidArgumentError(
        "protocol.store_dedup_lookup with write_path = batched: a batched append carries no "
        "attempt, so the store cannot tell a resend; set store_dedup_lookup = false or "
        "write_path = direct");
  }
  if (config.store_tail_cache > 0 && config.id_generator == IdGenerator::kStore &&
      config.id_scheme == IdScheme::kTimestamp) {
    return absl::InvalidArgumentError(
        "protocol.store_tail_cache > 0 needs every new id above its partition's head, and "
        "id_generator = store with id_scheme = timestamp can store an id inside the history: "
        "set store_tail_cache = 0, or id_scheme = snowflake or sequence, or id_generator = "
        "chat_server");
  }
  return absl::OkStatus();
}

GroupMode ChooseGroupMode(const ProtocolConfig& config, size_t members, uint32_t rate) {
  const bool large = members > config.hybrid_push_members_max;
  const bool active = rate > config.hybrid_push_rate_max;
  switch (config.group_delivery) {
    case GroupDelivery::kPush:
      return GroupMode::kPush;
    case GroupDelivery::kPull:
      return GroupMode::kPull;
    case GroupDelivery::kHybrid:
      return large && active ? GroupMode::kPull : GroupMode::kPush;
    case GroupDelivery::kHybridEither:
      return large || active ? GroupMode::kPull : GroupMode::kPush;
  }
  assert(false && "unknown GroupDelivery");
  return GroupMode::kPush;
}

// ---- GroupRate ----------------------------------------------------------------------------------

int64_t GroupRate::WindowOf(TimeUs now, TimeUs window_us) {
  assert(window_us > 0);
  int64_t window = now / window_us;
  if (now % window_us < 0) window -= 1;  // floor, also for a clock before 0
  return window;
}

void GroupRate::Add(TimeUs now, TimeUs window_us) {
  const int64_t window = WindowOf(now, window_us);
  if (window > window_) {
    count_previous_ = window == window_ + 1 ? count_current_ : 0;
    count_current_ = 0;
    window_ = window;
  }
  if (count_current_ < std::numeric_limits<uint32_t>::max()) count_current_++;
}

uint32_t GroupRate::Rate(TimeUs now, TimeUs window_us) const {
  const int64_t window = WindowOf(now, window_us);
  if (window <= window_) return std::max(count_current_, count_previous_);
  if (window == window_ + 1) return count_current_;  // current_ is now the previous window
  return 0;
}

// ---- MessageStore: dispatch ---------------------------------------------------------------------

MessageStore::MessageStore(const NodeOptions& options)
    : options_(options),
      snowflake_(static_cast<uint32_t>(options.self.value & SnowflakeGenerator::kNodeMax)) {
  assert(options_.config.hybrid_rate_window_us > 0);
  assert(options_.config.receipts_page_max > 0);
  const auto& stores = options_.topology.stores;
  if (stores.size() > 1) {
    shard_ = static_cast<int>(std::find(stores.begin(), stores.end(), options_.self) -
                              stores.begin());
    if (shard_ == static_cast<int>(stores.size())) shard_ = -1;
  }
}

bool MessageStore::Holds(const ConversationId& conv) const {
  return shard_ < 0 || !conv.Valid() ||
         StoreShardOf(conv, static_cast<uint32_t>(options_.topology.stores.size())) ==
             static_cast<uint32_t>(shard_);
}

bool MessageStore::RefuseMisrouted(NodeId from, const Message& msg, Effects& out) {
  if (shard_ < 0) return false;
  constexpr Code kRefused = Code::kFailedPrecondition;
  Message reply;
  if (const auto* m = std::get_if<StoreAppend>(&msg)) {
    if (Holds(m->message.conv)) return false;
    StoreAppendResult r{m->request_id, {}};
    r.outcome.code = kRefused;
    reply = std::move(r);
  } else if (const auto* m = std::get_if<StoreRead>(&msg)) {
    if (Holds(m->conv)) return false;
    reply = StoreReadResult{m->request_id, kRefused, m->conv, {}, false, GroupMode::kNone};
  } else if (const auto* m = std::get_if<StoreMembership>(&msg)) {
    if (Holds(ConversationId::Group(m->group))) return false;
    reply = StoreMembershipResult{m->request_id, kRefused, m->group, false, GroupMode::kNone};
  } else if (const auto* m = std::get_if<StoreMembers>(&msg)) {
    if (Holds(ConversationId::Group(m->group))) return false;
    reply = StoreMembersResult{m->request_id, kRefused, m->group, {}};
  } else if (const auto* m = std::get_if<StoreReceipt>(&msg)) {
    if (Holds(m->conv)) return false;
    reply = StoreReceiptResult{m->request_id, kRefused, {}, {}};
  } else if (const auto* m = std::get_if<StoreCheckMember>(&msg)) {
    if (Holds(ConversationId::Group(m->group))) return false;
    reply = StoreCheckMemberResult{m->request_id, kRefused};
  } else if (const auto* m = std::get_if<StoreGetReceipts>(&msg)) {
    if (Holds(m->conv)) return false;
    reply = StoreGetReceiptsResult{m->request_id, kRefused, m->conv, {}, false};
  } else {
    return false;  // no conversation (a sync), or not a request
  }
  stats_.misrouted++;
  Reply(from, std::move(reply), out);
  return true;
}

void MessageStore::Start(TimeUs now, Effects& out) {
  // Nothing to arm: the store only answers requests.
  (void)now;
  (void)out;
}

void MessageStore::OnTimer(TimeUs now, uint64_t timer_id, Effects& out) {
  // The store arms no timers; a stray one is ignored.
  (void)now;
  (void)timer_id;
  (void)out;
}

void MessageStore::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (RefuseMisrouted(from, msg, out)) return;
  if (const auto* m = std::get_if<StoreAppend>(&msg)) {
    OnStoreAppend(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreAppendBatch>(&msg)) {
    OnStoreAppendBatch(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreRead>(&msg)) {
    OnStoreRead(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreSync>(&msg)) {
    OnStoreSync(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreMembership>(&msg)) {
    OnStoreMembership(now, from, *m, out);
  } else if (const auto* m = std::get_if<StoreMembers>(&msg)) {
    OnStoreMembers(from, *m, out);
  } else if (const auto* m = std::get_if<StoreReceipt>(&msg)) {
    OnStoreReceipt(from, *m, out);
  } else if (const auto* m = std::get_if<StoreCheckMember>(&msg)) {
    OnStoreCheckMember(from, *m, out);
  } else if (const auto* m = std::get_if<StoreGetReceipts>(&msg)) {
    OnStoreGetReceipts(from, *m, out);
  } else {
    stats_.unexpected_messages++;
    return;
  }
  stats_.requests++;
}

// ---- Appends ------------------------------------------------------------------------------------

void MessageStore::OnStoreAppend(TimeUs now, NodeId from, const StoreAppend& m, Effects& out) {
  if (AwaitDedupLoad(from, m, out)) return;
  StoreAppendResult result;
  result.request_id = m.request_id;
  result.outcome = Append(now, m.message, Access::kCheck, out);
  Reply(from, std::move(result), out);
}

void MessageStore::OnStoreAppendBatch(TimeUs now, NodeId from, const StoreAppendBatch& m,
                                      Effects& out) {
  stats_.batch_requests++;
  StoreAppendBatchResult result;
  result.request_id = m.request_id;
  result.outcomes.reserve(m.messages.size());
  for (const ChatMessage& message : m.messages) {
    result.outcomes.push_back(Append(now, message, Access::kPrechecked, out));
  }
  assert(result.outcomes.size() == m.messages.size());
  Reply(from, std::move(result), out);
}

AppendOutcome MessageStore::Append(TimeUs now, const ChatMessage& request, Access access,
                                   Effects& out, const ChatMessage* first) {
  const ProtocolConfig& config = options_.config;
  const ConversationId& conv = request.conv;
  stats_.appends++;
  AppendOutcome outcome;
  outcome.message = request;
  outcome.message.message_id = kNoMessage;
  outcome.message.prev_msg_id = kNoMessage;
  if (!conv.Valid() || !request.sender.valid() || request.body.size() > config.body_bytes_max) {
    outcome.code = Code::kInvalidArgument;
    stats_.appends_rejected++;
    return outcome;
  }
  const DedupKey key{request.sender, request.client_msg_id};
  if (config.dedup_enabled && first == nullptr) {
    const auto it = dedup_.find(key);
    if (it != dedup_.end()) first = &DedupMessage(it->second);
  }
  if (first != nullptr && !SameMessage(*first, request)) {
    // The id names another message: answering OK duplicate would point the sender at it while
    // this one goes nowhere. Refused; the earlier message and its OK stand.
    outcome.code = Code::kInvalidArgument;
    stats_.appends_rejected++;
    stats_.client_msg_id_reuses++;
    return outcome;
  }
  if (first != nullptr) {
    stats_.duplicates++;
    outcome.message = *first;
    outcome.duplicate = true;
    outcome.recipients = Recipients(first->conv);
    outcome.group_mode = ModeOf(now, first->conv);
    return outcome;
  }
  outcome.code = CheckAccess(conv, request.sender);
  if (outcome.code == Code::kPermissionDenied && access == Access::kPrechecked &&
      conv.is_group()) {
    outcome.code = Code::kOk;  // a member when it was acked; left since
  }
  if (outcome.code != Code::kOk) {
    stats_.appends_rejected++;
    return outcome;
  }

  Partition& partition = chats_[conv];
  const MessageId head = partition.head();
  const MessageId id = config.id_generator == IdGenerator::kChatServer
                           ? AdmitMintedId(request.message_id, partition)
                           : AssignId(now, partition);
  assert(id != kNoMessage);
  // A bounded tail holds only the newest messages: ValidateStoreConfig keeps ids above the head.
  assert(config.store_tail_cache == 0 || id > head);
  if (id < head) stats_.out_of_order_ids++;
  auto& tail = partition.tail;
  const auto at_or_after = tail.lower_bound(id);
  if (at_or_after != tail.end() && at_or_after->first == id) stats_.id_collisions++;
  const MessageId prev =
      at_or_after == tail.begin() ? partition.floor : std::prev(at_or_after)->first;
  assert(prev < id);
  // Chat-server ids keep the partition append-only: every message lands at the head.
  assert(config.id_generator != IdGenerator::kChatServer || (id > head && prev == head));

  const auto [slot, added] = tail.try_emplace(id);  // overwrites on a collision
  if (added) {
    cached_messages_++;
  } else {
    KeepDedupCopy(slot->second);
  }
  ChatMessage& stored = slot->second;
  stored = request;
  stored.message_id = id;
  stored.prev_msg_id = prev;
  stats_.messages_stored++;
  if (conv.is_group()) {
    groups_.at(conv.group()).rate.Add(now, config.hybrid_rate_window_us);
  } else {
    user_directs_.insert({UserId(conv.low), conv});
    user_directs_.insert({UserId(conv.high), conv});
  }
  if (config.dedup_enabled) RememberDedup(key, stored, /*in_tail=*/true);
  out.push_back(Persist{PersistMessage{stored}});

  outcome.message = stored;
  TrimTail(partition);  // stored is the head (bounded) or nothing is evicted: not used below
  outcome.recipients = Recipients(conv);
  outcome.group_mode = ModeOf(now, conv);
  if (conv.is_group() && IsHybrid(config.group_delivery)) {
    GroupMode& last = groups_.at(conv.group()).last_mode;
    outcome.mode_switched = outcome.group_mode == GroupMode::kPull && last != GroupMode::kPull;
    last = outcome.group_mode;
  }
  assert(outcome.code == Code::kOk);
  // Empty only for a prechecked group message whose sender, the last member, left since.
  assert(!outcome.recipients.empty() || access == Access::kPrechecked);
  return outcome;
}

MessageId MessageStore::AssignId(TimeUs now, const Partition& partition) {
  assert(options_.config.id_generator == IdGenerator::kStore);
  switch (options_.config.id_scheme) {
    case IdScheme::kSnowflake:
      return snowflake_.Next(now);
    case IdScheme::kTimestamp:
      return static_cast<MessageId>(std::max<TimeUs>(now, 1));
    case IdScheme::kSequence:
      return partition.head() + 1;
  }
  assert(false && "unknown IdScheme");
  return kNoMessage;
}

MessageId MessageStore::AdmitMintedId(MessageId minted, const Partition& partition) {
  assert(options_.config.id_generator == IdGenerator::kChatServer);
  const MessageId head = partition.head();
  assert(head < std::numeric_limits<MessageId>::max());
  if (minted == kNoMessage) {
    // kSequence has no per-server form (or the server minted nothing): number it here.
    stats_.ids_assigned_here++;
    return head + 1;
  }
  stats_.ids_minted_elsewhere++;
  if (minted > head) return minted;
  // The id is behind the head (the minting server's clock is behind the server that wrote the
  // head) or equal to a stored id (two servers stamped the same instant). Stored under it, it
  // would land inside history the readers already hold (and overwrite a message on a
  // collision); it is stored at the head instead. Counted as the schemes' anomalies.
  if (minted < head) stats_.out_of_order_ids++;
  if (partition.tail.contains(minted)) stats_.id_collisions++;  // bounded: if still cached
  stats_.ids_lifted++;
  stats_.id_lift_max = std::max(stats_.id_lift_max, head + 1 - minted);
  return head + 1;
}

void MessageStore::RememberDedup(const DedupKey& key, const ChatMessage& stored, bool in_tail) {
  const uint32_t window_max = options_.config.store_dedup_window_max;
  DedupEntry entry;
  entry.conv = stored.conv;
  entry.id = stored.message_id;
  const ChatMessage* held = in_tail ? &stored : Find(stored.conv, stored.message_id);
  assert(!in_tail || held == Find(stored.conv, stored.message_id));
  if (held == nullptr || held->sender != key.sender || held->client_msg_id != key.client_msg_id) {
    entry.copy = std::make_unique<const ChatMessage>(stored);
  }
  const bool inserted = dedup_.emplace(key, std::move(entry)).second;
  assert(inserted);
  (void)inserted;
  dedup_fifo_.push_back(key);
  while (dedup_.size() > window_max) {
    const size_t erased = dedup_.erase(dedup_fifo_.front());
    assert(erased == 1);
    (void)erased;
    dedup_fifo_.pop_front();
    stats_.dedup_evictions++;
  }
  assert(dedup_.size() == dedup_fifo_.size());
  assert(dedup_.size() <= window_max);
}

const ChatMessage& MessageStore::DedupMessage(const DedupEntry& entry) const {
  if (entry.copy != nullptr) return *entry.copy;
  const ChatMessage* held = Find(entry.conv, entry.id);
  assert(held != nullptr);
  return *held;
}

void MessageStore::KeepDedupCopy(const ChatMessage& leaving) {
  const auto it = dedup_.find(DedupKey{leaving.sender, leaving.client_msg_id});
  if (it == dedup_.end()) return;
  DedupEntry& entry = it->second;
  if (entry.copy != nullptr || entry.conv != leaving.conv || entry.id != leaving.message_id) {
    return;  // names another message, or has its copy
  }
  entry.copy = std::make_unique<const ChatMessage>(leaving);
}

void MessageStore::TrimTail(Partition& partition) {
  const uint32_t cap = options_.config.store_tail_cache;
  if (cap == 0) return;
  while (partition.tail.size() > cap) {
    KeepDedupCopy(partition.tail.begin()->second);
    partition.floor = partition.tail.begin()->first;
    partition.tail.erase(partition.tail.begin());
    cached_messages_--;
  }
  assert(!partition.tail.empty());
  assert(partition.floor < partition.tail.begin()->first);
}

// ---- Access, recipients, mode -------------------------------------------------------------------

Code MessageStore::CheckAccess(const ConversationId& conv, UserId user) const {
  assert(conv.Valid());
  if (!conv.is_group()) return conv.HasParty(user) ? Code::kOk : Code::kPermissionDenied;
  const auto it = groups_.find(conv.group());
  if (it == groups_.end()) return Code::kNotFound;
  return it->second.members.contains(user) ? Code::kOk : Code::kPermissionDenied;
}

std::vector<UserId> MessageStore::Recipients(const ConversationId& conv) const {
  if (!conv.is_group()) {
    std::vector<UserId> parties{UserId(conv.low)};
    if (conv.high != conv.low) parties.push_back(UserId(conv.high));
    return parties;
  }
  return Members(conv.group());
}

GroupMode MessageStore::ModeOf(TimeUs now, const ConversationId& conv) const {
  if (!conv.is_group()) return GroupMode::kNone;
  const auto it = groups_.find(conv.group());
  if (it == groups_.end()) return GroupMode::kNone;
  const uint32_t rate = it->second.rate.Rate(now, options_.config.hybrid_rate_window_us);
  return ChooseGroupMode(options_.config, it->second.members.size(), rate);
}

// ---- Reads --------------------------------------------------------------------------------------

void MessageStore::OnStoreRead(TimeUs now, NodeId from, const StoreRead& m, Effects& out) {
  stats_.reads++;
  StoreReadResult result;
  result.request_id = m.request_id;
  result.conv = m.conv;
  if (!m.conv.Valid() || !m.reader.valid()) {
    result.code = Code::kInvalidArgument;
  } else {
    result.code = CheckAccess(m.conv, m.reader);
  }
  if (result.code == Code::kOk) {
    const uint32_t limit_max = options_.config.get_messages_limit_max;
    const uint32_t limit = (m.limit == 0 || m.limit > limit_max) ? limit_max : m.limit;
    const auto chat = chats_.find(m.conv);
    if (chat != chats_.end() && m.after_id < chat->second.floor) {
      // Below the tail: the rows are on disk only. Answered by OnHistoryLoaded.
      const uint64_t token = next_load_token_++;
      StoreRead request = m;
      request.limit = limit;
      pending_loads_.emplace(token, PendingRead{from, request});
      stats_.history_loads++;
      out.push_back(LoadHistory{token, m.conv, m.after_id, limit});
      return;
    }
    if (chat != chats_.end()) {
      const auto& tail = chat->second.tail;
      for (auto it = tail.upper_bound(m.after_id); it != tail.end(); ++it) {
        if (result.messages.size() == limit) {
          result.has_more = true;
          break;
        }
        result.messages.push_back(it->second);
      }
    }
    result.group_mode = ModeOf(now, m.conv);
    stats_.messages_read += result.messages.size();
  }
  assert(result.messages.size() <= options_.config.get_messages_limit_max);
  Reply(from, std::move(result), out);
}

void MessageStore::OnHistoryLoaded(TimeUs now, uint64_t token, std::vector<ChatMessage> messages,
                                   Effects& out) {
  const auto pending = pending_loads_.find(token);
  if (pending == pending_loads_.end()) {
    stats_.history_loads_dropped++;
    return;
  }
  const NodeId from = pending->second.from;
  const StoreRead request = std::move(pending->second.request);
  pending_loads_.erase(pending);
  // The environment's contract: the partition's rows above `after`, ascending, at most `limit`.
  std::erase_if(messages, [&](const ChatMessage& m) {
    return m.conv != request.conv || m.message_id <= request.after_id;
  });
  assert(std::is_sorted(messages.begin(), messages.end(),
                        [](const ChatMessage& a, const ChatMessage& b) {
                          return a.message_id < b.message_id;
                        }));
  if (messages.size() > request.limit) messages.resize(request.limit);

  Partition& partition = chats_.at(request.conv);  // a partition is never removed
  // Rows that reach down from the floor extend the tail while it has room: a restarted store
  // (a tail of one) warms from the catch-ups its clients make.
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (partition.tail.size() >= options_.config.store_tail_cache) break;
    if (it->message_id > partition.floor) continue;
    if (it->message_id != partition.floor) break;  // not contiguous (cannot happen: ascending)
    partition.tail.emplace(it->message_id, *it);
    cached_messages_++;
    partition.floor = it->prev_msg_id;
  }

  StoreReadResult result;
  result.request_id = request.request_id;
  result.conv = request.conv;
  const MessageId last = messages.empty() ? request.after_id : messages.back().message_id;
  result.has_more = partition.head() > last;
  result.messages = std::move(messages);
  result.group_mode = ModeOf(now, request.conv);
  stats_.messages_read += result.messages.size();
  stats_.history_messages_loaded += result.messages.size();
  Reply(from, std::move(result), out);
}

void MessageStore::OnStoreSync(TimeUs now, NodeId from, const StoreSync& m, Effects& out) {
  stats_.syncs++;
  StoreSyncResult result;
  result.request_id = m.request_id;
  if (!m.user.valid()) {
    result.code = Code::kInvalidArgument;
    Reply(from, std::move(result), out);
    return;
  }
  // Direct conversations sort before groups (ChannelType order), so appending the two sorted
  // sets keeps the heads ordered by ConversationId.
  // ConversationId{} sorts before every conversation (direct, low 0).
  for (auto it = user_directs_.lower_bound({m.user, ConversationId{}});
       it != user_directs_.end() && it->first == m.user; ++it) {
    const ConversationId& conv = it->second;
    result.heads.push_back(ConversationHead{conv, Head(conv), GroupMode::kNone});
  }
  if (const auto groups = user_groups_.find(m.user); groups != user_groups_.end()) {
    for (const GroupId group : groups->second) {
      const ConversationId conv = ConversationId::Group(group);
      result.heads.push_back(ConversationHead{conv, Head(conv), ModeOf(now, conv)});
    }
  }
  assert(std::is_sorted(
      result.heads.begin(), result.heads.end(),
      [](const ConversationHead& a, const ConversationHead& b) { return a.conv < b.conv; }));
  Reply(from, std::move(result), out);
}

// ---- Membership ---------------------------------------------------------------------------------

void MessageStore::OnStoreMembership(TimeUs now, NodeId from, const StoreMembership& m,
                                     Effects& out) {
  stats_.membership_ops++;
  StoreMembershipResult result;
  result.request_id = m.request_id;
  result.group = m.group;
  if (!m.user.valid() || !m.group.valid()) {
    result.code = Code::kInvalidArgument;
    Reply(from, std::move(result), out);
    return;
  }
  const auto group = groups_.find(m.group);
  const bool member = group != groups_.end() && group->second.members.contains(m.user);
  if (m.join && !member) {
    const size_t count = group == groups_.end() ? 0 : group->second.members.size();
    if (count >= options_.config.store_group_members_max) {
      result.code = Code::kResourceExhausted;
    } else {
      Join(m.user, m.group);
      out.push_back(Persist{PersistMembership{m.user, m.group, true}});
    }
  } else if (!m.join && member) {
    Leave(m.user, m.group);
    out.push_back(Persist{PersistMembership{m.user, m.group, false}});
  }
  const auto after = groups_.find(m.group);
  result.joined = after != groups_.end() && after->second.members.contains(m.user);
  result.group_mode = ModeOf(now, ConversationId::Group(m.group));
  assert(result.joined == (m.join ? result.code == Code::kOk : false));
  Reply(from, std::move(result), out);
}

void MessageStore::Join(UserId user, GroupId group_id) {
  Group& group = groups_[group_id];  // creates the group on its first join
  const bool added = group.members.insert(user).second;
  const bool mirrored = user_groups_[user].insert(group_id).second;
  assert(added);
  assert(mirrored);
  (void)added;
  (void)mirrored;
  const ConversationId conv = ConversationId::Group(group_id);
  for (const ReceiptKind kind : {ReceiptKind::kDelivered, ReceiptKind::kRead}) {
    group.marks[MarkIndex(kind)][Watermark(conv, user, kind)]++;
  }
  assert(group.members.size() <= options_.config.store_group_members_max);
}

void MessageStore::Leave(UserId user, GroupId group_id) {
  // The group stays (with its history) even when its last member leaves.
  Group& group = groups_.at(group_id);
  const size_t removed = group.members.erase(user);
  assert(removed == 1);
  (void)removed;
  const ConversationId conv = ConversationId::Group(group_id);
  for (const ReceiptKind kind : {ReceiptKind::kDelivered, ReceiptKind::kRead}) {
    Unmark(group.marks[MarkIndex(kind)], Watermark(conv, user, kind));
  }
  const auto groups = user_groups_.find(user);
  assert(groups != user_groups_.end());
  const size_t unmirrored = groups->second.erase(group_id);
  assert(unmirrored == 1);
  (void)unmirrored;
  if (groups->second.empty()) user_groups_.erase(groups);
}

void MessageStore::OnStoreCheckMember(NodeId from, const StoreCheckMember& m, Effects& out) {
  stats_.member_checks++;
  StoreCheckMemberResult result;
  result.request_id = m.request_id;
  if (!m.group.valid() || !m.user.valid()) {
    result.code = Code::kInvalidArgument;
  } else if (options_.config.dedup_enabled &&
             dedup_.contains(DedupKey{m.user, m.client_msg_id})) {
    result.code = Code::kOk;  // already stored: queueing it again yields a duplicate outcome
  } else {
    result.code = CheckAccess(ConversationId::Group(m.group), m.user);
  }
  Reply(from, std::move(result), out);
}

void MessageStore::OnStoreMembers(NodeId from, const StoreMembers& m, Effects& out) {
  stats_.members_queries++;
  StoreMembersResult result;
  result.request_id = m.request_id;
  result.group = m.group;
  if (!m.group.valid()) {
    result.code = Code::kInvalidArgument;
  } else if (!groups_.contains(m.group)) {
    result.code = Code::kNotFound;
  } else {
    result.members = Members(m.group);
  }
  Reply(from, std::move(result), out);
}

// ---- Receipts -----------------------------------------------------------------------------------

void MessageStore::OnStoreReceipt(NodeId from, const StoreReceipt& m, Effects& out) {
  stats_.receipt_ops++;
  StoreReceiptResult result;
  result.request_id = m.request_id;
  result.update.conv = m.conv;
  result.update.kind = m.kind;
  if (!m.conv.Valid() || !m.reader.valid() || !IsKnownEnumValue(m.kind)) {
    result.code = Code::kInvalidArgument;
  } else {
    result.code = CheckAccess(m.conv, m.reader);
  }
  if (result.code != Code::kOk) {
    Reply(from, std::move(result), out);
    return;
  }
  const MessageId up_to = std::min(m.up_to, Head(m.conv));
  const MessageId old_mark = Watermark(m.conv, m.reader, m.kind);
  if (up_to > old_mark) {
    SetWatermark(m.conv, m.reader, m.kind, up_to);
    out.push_back(Persist{PersistWatermark{m.conv, m.reader, m.kind, up_to}});
  }
  const MessageId mark = std::max(old_mark, up_to);
  assert(mark >= old_mark);
  assert(mark <= Head(m.conv));

  if (!m.conv.is_group()) {
    result.update.reader = m.reader;
    result.update.up_to = mark;
    if (mark != old_mark) result.recipients.push_back(m.conv.Peer(m.reader));
  } else {
    const Group& group = groups_.at(m.conv.group());
    const MessageId aggregate = GroupAggregate(m.conv, group, m.kind);
    const MessageId old_published = PublishedAggregate(m.conv, m.kind);
    const MessageId published = std::max(old_published, aggregate);
    result.update.reader = UserId();
    result.update.up_to = published;
    if (published != old_published) {
      published_[{m.conv, m.kind}] = published;
      out.push_back(Persist{PersistAggregate{m.conv, m.kind, published}});
      result.recipients = Members(m.conv.group());
    }
  }
  Reply(from, std::move(result), out);
}

void MessageStore::OnStoreGetReceipts(NodeId from, const StoreGetReceipts& m, Effects& out) {
  stats_.receipt_reads++;
  StoreGetReceiptsResult result;
  result.request_id = m.request_id;
  result.conv = m.conv;
  if (!m.conv.Valid() || !m.user.valid()) {
    result.code = Code::kInvalidArgument;
  } else {
    // The same rule as reading the conversation: a party, or a member now (NOT_FOUND for a
    // group that never existed). Whoever may read the messages may see who read them.
    result.code = CheckAccess(m.conv, m.user);
  }
  if (result.code != Code::kOk) {
    Reply(from, std::move(result), out);
    return;
  }
  const uint32_t limit_max = options_.config.receipts_page_max;
  const uint32_t limit = (m.limit == 0 || m.limit > limit_max) ? limit_max : m.limit;
  const auto add = [&](UserId member) {
    if (result.members.size() == limit) {
      result.has_more = true;
      return false;
    }
    result.members.push_back(MemberReceipts{member,
                                            Watermark(m.conv, member, ReceiptKind::kDelivered),
                                            Watermark(m.conv, member, ReceiptKind::kRead)});
    return true;
  };
  if (m.conv.is_group()) {
    // Members in id order from after_user: O(limit log n) per page, whatever the group's size.
    const absl::btree_set<UserId>& members = groups_.at(m.conv.group()).members;
    for (auto it = members.upper_bound(m.after_user); it != members.end() && add(*it); ++it) {
    }
  } else {
    for (const UserId party : Recipients(m.conv)) {
      if (party > m.after_user && !add(party)) break;
    }
  }
  assert(result.members.size() <= limit);
  assert(std::is_sorted(
      result.members.begin(), result.members.end(),
      [](const MemberReceipts& a, const MemberReceipts& b) { return a.user < b.user; }));
  assert(result.members.empty() || result.members.front().user > m.after_user);
  Reply(from, std::move(result), out);
}

MessageId MessageStore::GroupAggregate(const ConversationId& conv, const Group& group,
                                       ReceiptKind kind) const {
  assert(!group.members.empty());
  const MarkHistogram& marks = group.marks[MarkIndex(kind)];
  assert(!marks.empty());
#ifndef NDEBUG
  MessageId scanned = std::numeric_limits<MessageId>::max();
  for (const UserId member : group.members) {
    scanned = std::min(scanned, Watermark(conv, member, kind));
  }
  assert(scanned == marks.begin()->first);
#else
  (void)conv;
#endif
  return marks.begin()->first;
}

void MessageStore::SetWatermark(const ConversationId& conv, UserId reader, ReceiptKind kind,
                                MessageId up_to) {
  MessageId& mark = watermarks_[WatermarkKey{conv, reader, kind}];
  if (up_to <= mark) return;
  if (conv.is_group()) {
    const auto group = groups_.find(conv.group());
    if (group != groups_.end() && group->second.members.contains(reader)) {
      MarkHistogram& marks = group->second.marks[MarkIndex(kind)];
      Unmark(marks, mark);
      marks[up_to]++;
    }
  }
  mark = up_to;
}

}  // namespace chatlab
