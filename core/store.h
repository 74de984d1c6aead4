// The message store: the seed design's database and each conversation's sequencer.
//
// One node holds every table of the seed's schema for its shard of the conversations (one shard,
// all of them, unless config.store_shards > 1; StoreShardOf places a conversation; a request for
// a conversation of another shard is refused with kFailedPrecondition and counted in misrouted,
// so a sender that routes with another shard count is told, never stored in the wrong place):
//   * the chat table, partitioned by ConversationId (a private chat by its user pair, a group by
//     its group id) and sorted by MessageId inside a partition;
//   * group membership (group -> members) and user membership (user -> groups), always changed
//     together, so they never disagree (the two-table design without the distributed
//     transaction, because both live on this one node);
//     A group's two tables live with the group's shard, so user -> groups lists the groups of
//     this shard (a sync asks every shard and the chat server merges the lists);
//   * user -> direct conversations, so that a sync can list a user's private chats;
//   * receipt watermarks per (conversation, reader, kind), and for groups the last published
//     aggregate per (conversation, kind);
//   * the de-duplication index (sender, client_msg_id) -> the stored message.
//
// Being the only writer of every partition makes the store the sequencer: it assigns each
// message its prev_msg_id (the id just before it in the partition), which receivers use to
// detect gaps, and, with IdGenerator::kStore (the default), its id (config.id_scheme).
//
// Id schemes under kStore and their failure modes, kept visible on purpose:
//   * kSnowflake: one SnowflakeGenerator for the store (node bits = self.value & 1023). Strictly
//     increasing whatever the store's clock does (core/snowflake.h).
//   * kTimestamp: id = the store's clock in microseconds (at least 1). When the clock repeats or
//     goes back onto an existing id, the new message OVERWRITES the stored one (id_collisions):
//     a message is silently lost, as with timestamp keys in a real database.
//   * kSequence: head + 1 per partition.
// Validation order of an append: shape (valid conversation and sender, body size) first, then
// the dedup index, then access (party/member). Dedup before access keeps a retry idempotent: a
// sender who left a group after the first attempt still gets the original outcome back rather
// than kPermissionDenied for a message that is in fact stored. A retry is the same message: a
// known (sender, client_msg_id) with another conversation or another body is a reuse of the id
// for a different message, refused with kInvalidArgument (client_msg_id_reuses); the earlier
// message and its answer stand, and nothing is stored.
//
// Batched appends (StoreAppendBatch, from the batch writer) were acknowledged to their senders
// before they reach the store, so the store must not refuse them for anything the chat server
// could not check: the server asked StoreCheckMember before queueing a group message, and the
// store then takes the batched message even if the sender has left the group since (it was
// sent while a member). Shape and the party of a direct chat are still checked: the server
// checks them too, so a refusal there means a malformed request, not a broken promise.
//
// Whatever the scheme, a new id below the partition's head (the clock went back) is counted in
// out_of_order_ids: the message lands in the middle of the history, and the message after it
// keeps a prev_msg_id that skips it.
//
// IdGenerator::kChatServer: the chat server that took the SendMessage minted the id on its own
// clock (StoreAppend.message.message_id, the same field of a batched message; 0 for kSequence)
// and the store is no longer the sequencer, only the keeper of each partition's order. It
// keeps every partition append-only in id order, so that a message never lands inside history
// that readers already hold (their prev_msg_id chains and catch-ups read forward from the last
// id they show, and a sync compares heads only):
//   * a minted id above the head is stored as it is;
//   * a minted id at or below the head (the minting server's clock is behind the one that
//     wrote the head; two servers stamped the same instant; a restarted server's Snowflake
//     reissued an id) is stored as head + 1: counted in ids_lifted, and in out_of_order_ids
//     (below the head) and id_collisions (equal to a stored id); id_lift_max keeps the largest
//     lift, which for timestamp ids is the skew that caused it, in microseconds;
//   * no id (kSequence) is numbered head + 1 (ids_assigned_here).
// So server order = id order = the order appends reached the store, as with kStore, and what
// the clocks cost shows as counts rather than as messages shown out of order. The rejected
// alternative, storing the id as minted and sorting it into the history (the seed's "clock
// skew can happen"), shows an unread message above the ones the user already read (the seed's
// own "very confusing") and cannot be repaired: the message after it already carries a
// prev_msg_id that skips it, and a client that holds the head never reads below it again.
//
// Limits:
//   * store_dedup_window_max: the de-duplication index keeps this many (sender, client_msg_id)
//     entries; beyond it the oldest entry is evicted (FIFO), after which a very late retry of
//     that message is stored again as a new message. An entry names the message as first
//     stored in its partition's tail, and takes a copy of it when the tail lets it go or
//     overwrites it (a bounded tail's eviction, a kTimestamp collision, a restore), so a
//     duplicate is always answered with the first message; the index costs about 56 bytes per
//     entry plus up to body_bytes_max per copy.
//   * store_group_members_max: a join beyond it is refused with kResourceExhausted.
//   * body_bytes_max: a longer body is refused with kInvalidArgument.
//   * get_messages_limit_max: a read's limit of 0 or above it is clamped to it.
//   * receipts_page_max: a per-member receipts read (StoreGetReceipts) answers at most this many
//     members per page (a limit of 0 or above it is clamped to it), so asking about a group of a
//     million members costs pages of O(receipts_page_max log n), never one O(n) answer.
//   * reads waiting for LoadHistory (pending_loads), and appends waiting for LoadDedup
//     (pending_dedup_loads, appends_behind_lookup): no limit of their own; each is a chat
//     server's pending operation, so they are bounded by server_pending_max per chat server.
//   * store_dedup_lookup: a resend (StoreAppend.attempt > 0) that misses the window is looked up
//     on disk (LoadDedup) and answered when the disk has: as a duplicate of the message found,
//     refused as a reuse, or stored. Appends of the same key wait behind the lookup, so a key
//     is never stored twice while its answer is out. Exactly once then holds for any resend,
//     however late; the window only has to cover unmarked copies (network duplicates of a first
//     attempt, delivered within moments).
//   The chat table itself has no limit: it is the durable database, bounded by the deployment's
//   disk, not by this node. The other tables are bounded by the chat and membership tables.
//
// Memory: the tail cache (config.store_tail_cache). With 0 the store holds every message in
// memory (the simulator's default). With N > 0 it holds, per conversation, the newest N
// messages: a contiguous suffix of the partition, every message above the partition's floor
// (the newest id it evicted). A read from at or above the floor is answered at once, as before;
// a read from below it is answered from disk: the store emits LoadHistory and replies when
// OnHistoryLoaded brings the rows (a snapshot as of the load; has_more when more lie above).
// Appends need only the head, so they stay synchronous. What memory then holds grows with
// conversations, memberships and the dedup window, never with history. Bounded mode needs every
// new id above the head: not with id_generator = kStore and id_scheme = kTimestamp (its ids land
// inside the history), refused by ValidateStoreConfig. With a bounded cache a lifted id
// (kChatServer) equal to an evicted message counts in out_of_order_ids but not in
// id_collisions (the store no longer sees it).
//
// Durability: every state change (a stored message with its dedup entry, a membership change, a
// receipt watermark, a published group aggregate) is also emitted as a Persist effect, before
// the reply that reveals it (core/effects.h); Restore replays those records after a restart.
//
// The store replies to every request (to the sending node) with the matching *Result message,
// whose code is kOk or the most specific error. Anything else it receives is counted in
// unexpected_messages and ignored. It arms no timers.
#ifndef CHATLAB_CORE_STORE_H_
#define CHATLAB_CORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <array>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/snowflake.h"
#include "core/types.h"

namespace chatlab {

// kInvalidArgument naming the keys when config is not a store configuration that can run: a
// bounded tail cache (store_tail_cache > 0) with ids that can land below the head
// (id_generator = store, id_scheme = timestamp); store_shards outside 1..kStoreShardsMax, or
// above 1 with write_path = batched.
absl::Status ValidateStoreConfig(const ProtocolConfig& config);

// How a group's messages reach its members, given the group's size and activity. Pure.
// A group is large when members > config.hybrid_push_members_max and active when
// rate > config.hybrid_push_rate_max, rate being the group's message count per
// config.hybrid_rate_window_us (see GroupRate).
//   kPush / kPull: fixed by config.group_delivery.
//   kHybrid (the seed's rule): kPull when the group is large and active; otherwise kPush.
//   kHybridEither: kPull when the group is large or active; otherwise kPush.
GroupMode ChooseGroupMode(const ProtocolConfig& config, size_t members, uint32_t rate);

// A group's message rate over fixed windows of `window_us`: the larger of the counts in the
// current and the previous window (so the rate does not drop to 0 the instant a window rolls).
// A clock that goes back stays in the current window.
class GroupRate {
 public:
  // Counts one message at now. REQUIRES: window_us > 0.
  void Add(TimeUs now, TimeUs window_us);
  // The rate seen at now. REQUIRES: window_us > 0.
  uint32_t Rate(TimeUs now, TimeUs window_us) const;

 private:
  static int64_t WindowOf(TimeUs now, TimeUs window_us);
  // Index of the window that count_current_ belongs to (floor(now / window_us)); starts before
  // every real window so the first Add opens one.
  int64_t window_ = std::numeric_limits<int64_t>::min();
  uint32_t count_current_ = 0;   // messages in window_
  uint32_t count_previous_ = 0;  // messages in window_ - 1
};

class MessageStore : public Node {
 public:
  struct Stats {
    uint64_t requests = 0;          // every store request handled (not unexpected messages)
    uint64_t appends = 0;           // append attempts, single and batched
    uint64_t appends_rejected = 0;  // appends answered with an error code
    uint64_t messages_stored = 0;   // appends that wrote a message (including overwrites)
    uint64_t batch_requests = 0;    // StoreAppendBatch requests
    uint64_t reads = 0;             // StoreRead requests
    uint64_t messages_read = 0;     // messages returned by reads
    uint64_t syncs = 0;             // StoreSync requests
    uint64_t membership_ops = 0;    // StoreMembership requests
    uint64_t members_queries = 0;   // StoreMembers requests
    uint64_t receipt_ops = 0;       // StoreReceipt requests
    uint64_t receipt_reads = 0;     // StoreGetReceipts requests (per-member "Message info")
    uint64_t member_checks = 0;     // StoreCheckMember requests
    uint64_t duplicates = 0;        // appends answered from the dedup index
    uint64_t dedup_evictions = 0;   // dedup entries dropped at store_dedup_window_max
    uint64_t client_msg_id_reuses = 0;  // appends refused: their id names a different message
    // Ids equal to a stored id of their partition. IdGenerator::kStore: the append overwrote
    // that message (kTimestamp). kChatServer: the minted id was lifted to the head (no loss).
    uint64_t id_collisions = 0;
    // Ids below the partition's head: a message newer than one already stored got an older id
    // (the clock of its generator is behind). kStore: it was stored inside the history.
    // kChatServer: the minted id was lifted to the head.
    uint64_t out_of_order_ids = 0;
    // IdGenerator::kChatServer only:
    uint64_t ids_minted_elsewhere = 0;  // appends that carried a chat server's id
    uint64_t ids_assigned_here = 0;     // appends that carried none (kSequence): head + 1
    uint64_t ids_lifted = 0;            // minted ids at or below the head, stored as head + 1
    uint64_t id_lift_max = 0;           // the largest head + 1 - minted (timestamp ids: us)
    uint64_t unexpected_messages = 0;
    // Requests for a conversation another shard holds (StoreShardOf over this store's
    // store_shards), refused with kFailedPrecondition: the sender routes with another count.
    uint64_t misrouted = 0;
    uint64_t records_restored = 0;  // PersistRecords replayed through Restore
    uint64_t history_loads = 0;     // reads answered from disk (LoadHistory effects)
    uint64_t history_messages_loaded = 0;  // messages those loads brought
    uint64_t history_loads_dropped = 0;    // OnHistoryLoaded with no pending read (a bug)
    // config.store_dedup_lookup: resends that missed the window and were looked up on disk
    // (LoadDedup effects), those found there (then answered as duplicates or refused reuses),
    // appends that waited behind a lookup of their key, and answers with no pending lookup.
    uint64_t dedup_loads = 0;
    uint64_t dedup_found_on_disk = 0;
    uint64_t appends_behind_lookup = 0;
    uint64_t dedup_loads_dropped = 0;
    // Restored messages inside the tail's range but not in it (ids out of order on disk): the
    // tail was cut back to its head.
    uint64_t restore_tail_resets = 0;
  };

  explicit MessageStore(const NodeOptions& options);

  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  const SnowflakeGenerator& snowflake() const { return snowflake_; }

  // Rebuilds state from one durable record (the Persist effects of an earlier incarnation),
  // before Start. REQUIRES: records are replayed in the order they were emitted. Emits nothing.
  // The group message rates (GroupRate, for the hybrids) are soft and start from zero. A Snowflake
  // store never issues an id at or below a restored one. Returns kInvalidArgument for a record
  // no store could have emitted (corrupt storage); the caller refuses to start.
  // With a bounded tail cache (store_tail_cache > 0) every membership, watermark and aggregate
  // record must be replayed, but of the messages only each partition's newest and the newest
  // store_dedup_window_max overall (the dedup window), in the order written: the restarted store
  // answers older reads with LoadHistory. A message older than its partition's restored tail
  // is ignored; a message that does not follow the tail (its prev_msg_id is not the tail's
  // newest) starts the tail afresh; one inside the tail's range that the tail lacks (history
  // written with ids out of order) cuts the tail back to its head (restore_tail_resets).
  absl::Status Restore(const PersistRecord& record);

  // The answer to the LoadHistory effect `token`: the partition's messages above its `after`,
  // ascending, at most its `limit` (more is an environment bug, trimmed). Replies to the read
  // that asked. A token with no pending read (never issued, or already answered) is counted in
  // history_loads_dropped and ignored.
  void OnHistoryLoaded(TimeUs now, uint64_t token, std::vector<ChatMessage> messages,
                       Effects& out);
  // Reads waiting for a LoadHistory answer.
  size_t pending_loads() const { return pending_loads_.size(); }

  // The answer to the LoadDedup effect `token`: the first message stored under its (sender,
  // client_msg_id), or nothing. The appends waiting on that key (the resend that asked and any
  // append of the same key that arrived since) are then answered in arrival order, as if the
  // window had held the message: a duplicate of it, a refused reuse, or newly stored. A found
  // message goes back into the window. A token with no pending lookup is counted in
  // dedup_loads_dropped and ignored.
  void OnDedupLoaded(TimeUs now, uint64_t token, std::optional<ChatMessage> found,
                     Effects& out);
  // Dedup keys waiting for a LoadDedup answer.
  size_t pending_dedup_loads() const { return pending_dedup_.size(); }

  // ---- Read-only views for tests and the simulator's oracle ----
  // The partition's messages held in memory, ascending by id (empty if none): all of them with
  // store_tail_cache = 0, the cached tail otherwise (the oracle then reads the disk).
  std::vector<ChatMessage> Messages(const ConversationId& conv) const;
  // The stored message with this id if it is in memory, or nullptr. The pointer is valid until
  // the next call that changes the store.
  const ChatMessage* Find(const ConversationId& conv, MessageId id) const;
  // The partition's greatest id, or kNoMessage.
  MessageId Head(const ConversationId& conv) const;
  // Every conversation with at least one stored message, ascending.
  std::vector<ConversationId> Conversations() const;
  // Every group that exists (joined at least once; groups are never deleted), ascending.
  std::vector<GroupId> Groups() const;
  // The group's members, ascending (empty for an unknown group).
  std::vector<UserId> Members(GroupId group) const;
  // The groups the user is a member of, ascending (from the user membership table).
  std::vector<GroupId> GroupsOf(UserId user) const;
  // reader's watermark of kind in conv (kNoMessage if none).
  MessageId Watermark(const ConversationId& conv, UserId reader, ReceiptKind kind) const;
  // The last published group aggregate of kind in conv (kNoMessage if none).
  MessageId PublishedAggregate(const ConversationId& conv, ReceiptKind kind) const;
  // Number of entries in the dedup index. Invariant: <= config.store_dedup_window_max.
  size_t dedup_size() const { return dedup_.size(); }
  // Messages held in memory over every partition. Invariant: <= store_tail_cache per partition
  // when store_tail_cache > 0.
  size_t cached_messages() const { return cached_messages_; }

 private:
  // Members' receipt watermarks of one kind as a histogram: watermark -> number of members
  // holding it. Its first key is the group's aggregate (the min over members) in O(log n), where
  // a scan over members would cost O(n) per receipt and O(n^2) per group message.
  using MarkHistogram = absl::btree_map<MessageId, uint32_t>;
  static constexpr size_t kReceiptKinds = 2;  // delivered, read
  struct Group {
    absl::btree_set<UserId> members;  // mirrored by user_groups_
    GroupRate rate;                   // appended messages, for the hybrids
    // Hybrids: the mode the last append ran in, soft like rate. A push -> pull change at an
    // append sets AppendOutcome::mode_switched (after a restart, kNone counts as push, so a
    // switch may be announced twice: members read one message more).
    GroupMode last_mode = GroupMode::kNone;
    // Indexed by ReceiptKind - 1. Invariant: marks[k] counts exactly the members, each at
    // Watermark(conv, member, k); GroupAggregate checks it against a scan in debug builds.
    std::array<MarkHistogram, kReceiptKinds> marks;
  };
  struct DedupKey {  // always built with both fields (no default initializer: a member
                    // initializer would not be usable in PendingDedup's map below)
    UserId sender;
    ClientMsgId client_msg_id;
    friend auto operator<=>(const DedupKey&, const DedupKey&) = default;
  };
  // The message first stored under a dedup key: the tail's own (chats_[conv].tail[id]) while
  // the tail holds it, a copy of its own (copy) once the tail let it go or never held it (found
  // on disk, or restored below a bounded tail). A copy per key was a fifth of the simulator's
  // memory at the seed's scale; the tail already holds almost every message of the window.
  struct DedupEntry {
    ConversationId conv;
    MessageId id = kNoMessage;
    std::unique_ptr<const ChatMessage> copy;
  };
  struct WatermarkKey {
    ConversationId conv;
    UserId reader;
    ReceiptKind kind = ReceiptKind::kDelivered;
    friend auto operator<=>(const WatermarkKey&, const WatermarkKey&) = default;
  };
  // One conversation's partition as memory holds it. Invariant: tail is not empty, and holds
  // every stored message of the partition with an id above floor (a contiguous suffix); with
  // store_tail_cache = 0, floor stays kNoMessage (the whole partition), otherwise tail holds at
  // most store_tail_cache messages. The head is tail's last id.
  struct Partition {
    absl::btree_map<MessageId, ChatMessage> tail;
    MessageId floor = kNoMessage;
    MessageId head() const { return tail.empty() ? kNoMessage : tail.rbegin()->first; }
  };
  // A read waiting for its LoadHistory answer.
  struct PendingRead {
    NodeId from;
    StoreRead request;  // limit already clamped
  };
  // A dedup key waiting for its LoadDedup answer, with the appends of that key that wait on it
  // (the resend that asked first), in arrival order.
  struct PendingDedup {
    DedupKey key;
    std::vector<std::pair<NodeId, StoreAppend>> appends;
  };

  void OnStoreAppend(TimeUs now, NodeId from, const StoreAppend& m, Effects& out);
  // config.store_dedup_lookup: parks m behind a pending lookup of its key, or starts one when m
  // is a resend (attempt > 0) of a well-formed message whose key is not in the window. Returns
  // whether m was parked (OnDedupLoaded answers it).
  bool AwaitDedupLoad(NodeId from, const StoreAppend& m, Effects& out);
  void OnStoreAppendBatch(TimeUs now, NodeId from, const StoreAppendBatch& m, Effects& out);
  void OnStoreRead(TimeUs now, NodeId from, const StoreRead& m, Effects& out);
  void OnStoreSync(TimeUs now, NodeId from, const StoreSync& m, Effects& out);
  void OnStoreMembership(TimeUs now, NodeId from, const StoreMembership& m, Effects& out);
  void OnStoreMembers(NodeId from, const StoreMembers& m, Effects& out);
  void OnStoreReceipt(NodeId from, const StoreReceipt& m, Effects& out);
  // One page of the members' (parties') watermarks of a conversation, for a member (party)
  // only: the per-member receipts that OnStoreReceipt aggregates rather than pushes.
  void OnStoreGetReceipts(NodeId from, const StoreGetReceipts& m, Effects& out);
  void OnStoreCheckMember(NodeId from, const StoreCheckMember& m, Effects& out);

  // How an append's group membership is decided.
  enum class Access {
    kCheck,       // the sender must be a member now (StoreAppend)
    kPrechecked,  // checked before the batch writer acked it (StoreAppendBatch): the group must
                  // exist, the sender may have left since
  };
  // Validates, de-duplicates, sequences and stores one message. first: the message stored
  // under request's dedup key, found on disk (OnDedupLoaded); nullptr: the window decides.
  // Emits Persist{PersistMessage} into out when it stores something.
  AppendOutcome Append(TimeUs now, const ChatMessage& request, Access access, Effects& out,
                       const ChatMessage* first = nullptr);
  absl::Status RestoreMessage(const ChatMessage& m);
  // kOk when user may read/write conv: a party of a direct chat, a member of an existing group.
  Code CheckAccess(const ConversationId& conv, UserId user) const;
  // Picks the id for a new message in partition (which may be empty) per config.id_scheme.
  // REQUIRES: config.id_generator == kStore.
  MessageId AssignId(TimeUs now, const Partition& partition);
  // The id under which a message minted elsewhere (0: not minted) is stored: above the head.
  // REQUIRES: config.id_generator == kChatServer.
  MessageId AdmitMintedId(MessageId minted, const Partition& partition);
  // Enters stored (the message first stored under key) into the window; in_tail: the caller
  // knows its tail holds it (Append), else the tail is looked up.
  void RememberDedup(const DedupKey& key, const ChatMessage& stored, bool in_tail = false);
  // The message a dedup entry names.
  const ChatMessage& DedupMessage(const DedupEntry& entry) const;
  // Call before `leaving` (a message in a tail) is erased or overwritten there: the dedup entry
  // that points at it takes a copy.
  void KeepDedupCopy(const ChatMessage& leaving);
  // Evicts the oldest cached messages of partition beyond store_tail_cache (0: none).
  void TrimTail(Partition& partition);
  // Parties (direct) or members (group) of conv, ascending, each once.
  std::vector<UserId> Recipients(const ConversationId& conv) const;
  GroupMode ModeOf(TimeUs now, const ConversationId& conv) const;
  MessageId GroupAggregate(const ConversationId& conv, const Group& group, ReceiptKind kind) const;
  void Join(UserId user, GroupId group_id);
  void Leave(UserId user, GroupId group_id);
  // Sets reader's watermark of kind in conv to up_to (>= the old one), keeping the group's
  // histogram in step when reader is a member.
  void SetWatermark(const ConversationId& conv, UserId reader, ReceiptKind kind, MessageId up_to);

  // Whether conv is this shard's (always, with one shard), and the misrouted request's refusal.
  bool Holds(const ConversationId& conv) const;
  bool RefuseMisrouted(NodeId from, const Message& msg, Effects& out);

  NodeOptions options_;
  int shard_ = -1;  // this store's index in topology.stores; -1: the only store
  SnowflakeGenerator snowflake_;
  // The chat table as memory holds it (Partition). Invariant: no partition is empty; every
  // message's conv is its key and its message_id its key inside the partition.
  absl::btree_map<ConversationId, Partition> chats_;
  // Group membership. Invariant: u in groups_[g].members <=> g in user_groups_[u].
  absl::btree_map<GroupId, Group> groups_;
  // User membership. Invariant: no set is empty.
  absl::btree_map<UserId, absl::btree_set<GroupId>> user_groups_;
  // Direct conversations with at least one stored message, as (party, conversation): one set
  // rather than a set per user, whose node for a user's one or two chats cost more than them.
  absl::btree_set<std::pair<UserId, ConversationId>> user_directs_;
  // Receipt watermarks. Invariant: a value never decreases and is <= its partition's head.
  absl::btree_map<WatermarkKey, MessageId> watermarks_;
  // Last published group aggregate per (group conversation, kind). Never decreases.
  absl::btree_map<std::pair<ConversationId, ReceiptKind>, MessageId> published_;
  // The dedup index: the message as first stored. Invariant: size == dedup_fifo_.size() and
  // <= config.store_dedup_window_max; an entry without a copy names a message its tail holds,
  // stored under the entry's key.
  absl::btree_map<DedupKey, DedupEntry> dedup_;
  // Dedup keys in insertion order, oldest first (the eviction order).
  std::deque<DedupKey> dedup_fifo_;
  // Reads below a partition's floor, by LoadHistory token.
  absl::btree_map<uint64_t, PendingRead> pending_loads_;
  // Dedup lookups by LoadDedup token, and the token of each key being looked up.
  // Invariant: dedup_loading_[p.key] == token for every (token, p) in pending_dedup_, and
  // neither map holds anything else; no key being looked up is in dedup_.
  absl::btree_map<uint64_t, PendingDedup> pending_dedup_;
  absl::btree_map<DedupKey, uint64_t> dedup_loading_;
  uint64_t next_load_token_ = 1;  // LoadHistory and LoadDedup tokens
  size_t cached_messages_ = 0;  // sum of the partitions' tail sizes
  Stats stats_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_STORE_H_
