// Design switches and named limits of the ChatLab protocol.
//
// Every tradeoff the seed design argues about is a plain value here, so a scenario file (or a
// chatd config) picks it. Every queue, window and table has a named limit; what happens at the
// limit is documented beside it and in docs/architecture.md.
#ifndef CHATLAB_CORE_CONFIG_H_
#define CHATLAB_CORE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace chatlab {

// How the sequencer picks message ids (the per-conversation sort key).
enum class IdScheme : uint8_t {
  kSnowflake = 0,  // 41-bit ms timestamp | 10-bit node | 12-bit sequence (core/snowflake.h)
  kTimestamp = 1,  // the sequencer's clock in microseconds: collides and goes back with the clock
  kSequence = 2,   // 1, 2, 3, ... per conversation
};

// Which node mints a message's id (the per-conversation sort key) by config.id_scheme.
enum class IdGenerator : uint8_t {
  // The message store, the one writer of every partition: ids are in insert order whatever the
  // clocks do (a single sequencer).
  kStore = 0,
  // Each chat server on its own clock when it takes a SendMessage (Snowflake with the server's
  // node bits, or its clock in microseconds; kSequence has no per-server form, so the store
  // numbers those). The store keeps every partition append-only: a minted id at or below the
  // partition's head (clock skew between servers, two servers stamping the same microsecond)
  // is stored as head + 1 and counted (core/store.h).
  kChatServer = 1,
};

// How a chat server reaches the chat server that holds a recipient.
enum class ForwardingStrategy : uint8_t {
  kDirect = 0,    // one HTTP-style request per message
  kBuffered = 1,  // per-destination buffer flushed every ~50 ms with a randomized offset
  kQueue = 2,     // per-destination-server queue in a broker node, delivered in order
};

// How group messages reach members. The two hybrids differ only in their rule (ChooseGroupMode
// in core/store.h); both are measured so that the seed's rule can be compared with the other.
enum class GroupDelivery : uint8_t {
  kPush = 0,    // fan out to every member's server
  kPull = 1,    // members poll get_messages
  // The seed's rule ("for smaller groups or inactive groups, it is okay to do pushing ... for
  // very active and large groups, clients must query"): pull only when the group is large AND
  // active, push otherwise.
  kHybrid = 2,
  // Pull when the group is large OR active: fewer pushes, more reads (ChatLab's rule before the
  // seed's was modelled; kept as a variant to measure against it).
  kHybridEither = 3,
};

// Whether a deployment may switch groups between push and pull at run time (either hybrid).
constexpr bool IsHybrid(GroupDelivery v) {
  return v == GroupDelivery::kHybrid || v == GroupDelivery::kHybridEither;
}

// How a chat server persists a message before acking.
enum class WritePath : uint8_t {
  kDirect = 0,   // one store request per message; ack after the store write
  kBatched = 1,  // enqueue to the batch writer; ack after the enqueue (read-after-write gap)
};

// Who gets pushed presence changes.
enum class PresenceFanout : uint8_t {
  kAll = 0,        // every known contact
  kShortList = 1,  // the top contacts by recent activity; the rest poll
};

std::string_view IdSchemeName(IdScheme v);
std::string_view IdGeneratorName(IdGenerator v);
std::string_view ForwardingStrategyName(ForwardingStrategy v);
std::string_view GroupDeliveryName(GroupDelivery v);
std::string_view WritePathName(WritePath v);
std::string_view PresenceFanoutName(PresenceFanout v);
std::optional<IdScheme> ParseIdScheme(std::string_view s);
std::optional<IdGenerator> ParseIdGenerator(std::string_view s);
std::optional<ForwardingStrategy> ParseForwardingStrategy(std::string_view s);
std::optional<GroupDelivery> ParseGroupDelivery(std::string_view s);
std::optional<WritePath> ParseWritePath(std::string_view s);
std::optional<PresenceFanout> ParsePresenceFanout(std::string_view s);

// Every value of a switch, in declaration order, and its names as "a|b|c" for help texts and
// errors. A new value (a new forwarding strategy, say) is one row of its name table in
// config.cc, and every scenario parser, flag, generator and test that lists values through these
// picks it up.
template <typename E>
std::vector<E> AllValues();
template <typename E>
std::string Choices();
#define CHATLAB_DECLARE_SWITCH(E)       \
  template <>                          \
  std::vector<E> AllValues<E>();       \
  template <>                          \
  std::string Choices<E>();
CHATLAB_DECLARE_SWITCH(IdScheme)
CHATLAB_DECLARE_SWITCH(IdGenerator)
CHATLAB_DECLARE_SWITCH(ForwardingStrategy)
CHATLAB_DECLARE_SWITCH(GroupDelivery)
CHATLAB_DECLARE_SWITCH(WritePath)
CHATLAB_DECLARE_SWITCH(PresenceFanout)
#undef CHATLAB_DECLARE_SWITCH

// The protocol-wide configuration. Every node of one deployment must use the same values.
struct ProtocolConfig {
  // ---- Design switches ----
  IdScheme id_scheme = IdScheme::kSnowflake;
  IdGenerator id_generator = IdGenerator::kStore;
  ForwardingStrategy forwarding = ForwardingStrategy::kDirect;
  GroupDelivery group_delivery = GroupDelivery::kPush;
  WritePath write_path = WritePath::kDirect;
  PresenceFanout presence_fanout = PresenceFanout::kShortList;
  // "What if we don't?" switches. Off is a broken design on purpose: the oracle must catch it.
  bool dedup_enabled = true;          // store and client de-duplication
  bool gap_detection_enabled = true;  // client prev_msg_id checks

  // ---- Timing ----
  TimeUs buffered_flush_interval_us = 50 * kUsPerMs;  // buffered forwarding window
  TimeUs buffered_flush_jitter_us = 25 * kUsPerMs;    // + uniform [0, jitter) per flush
  TimeUs request_timeout_us = 2 * kUsPerSecond;       // server waiting on a service
  TimeUs server_tick_us = 100 * kUsPerMs;             // server housekeeping period
  TimeUs client_retry_initial_us = 500 * kUsPerMs;    // first resend of an unacked message
  TimeUs client_retry_max_us = 8 * kUsPerSecond;      // backoff cap
  TimeUs client_sync_interval_us = 30 * kUsPerSecond; // periodic catch-up (0 = only on connect)
  TimeUs client_request_timeout_us = 5 * kUsPerSecond;  // client waiting on a read
  TimeUs group_poll_interval_us = 5 * kUsPerSecond;   // pull-mode groups
  // A client reads all its contacts' statuses on every connect, then every
  // presence_poll_interval_us polls the contacts that do not push to it (whose last status said
  // pushed = false), in either fan-out mode; 0 = no reads at all.
  TimeUs presence_poll_interval_us = 60 * kUsPerSecond;
  // Every this long (checked at each poll) the poll reads all contacts, pushed or not, to repair
  // what a lost push or audience notice, or a presence service restart (which forgets every
  // audience), left stale. 0 = only on connect.
  TimeUs presence_refresh_interval_us = 10 * 60 * kUsPerSecond;
  // Every this long a chat server re-sends the users it holds sessions for to the user mapping
  // (MapRefresh) and the presence service (PresenceRefresh), so that a service that lost its
  // state (a restart, a Redis flush) learns them again without users reconnecting, and their
  // mappings' expiry restarts. 0 = never (the simulator's default; chatd's is 5 s).
  TimeUs map_refresh_interval_us = 0;
  // A mapping neither registered nor refreshed for this long reads as absent: a dead server's
  // users look offline instead of being forwarded to it; presence, refreshed alike, reads them
  // offline too (core/presence.h, "Expiry"). 0 = never expires. Requires
  // map_refresh_interval_us > 0 and mapping_ttl_us > 2 * (map_refresh_interval_us +
  // server_tick_us), so that one lost refresh expires nobody (ValidateMappingConfig).
  TimeUs mapping_ttl_us = 0;
  TimeUs typing_ttl_us = 10 * kUsPerSecond;           // typing shown without refresh
  TimeUs writer_flush_window_us = 20 * kUsPerMs;      // batch writer: timer from first item
  TimeUs queue_consumer_timeout_us = 10 * kUsPerSecond;  // broker: consumer presumed dead
  TimeUs queue_stale_after_us = 30 * kUsPerSecond;    // broker: entries older are discarded
  // Hybrid: the length of the fixed windows (aligned to multiples of it on the store's clock)
  // in which the store counts a group's appended messages. A group's rate is the larger of the
  // counts of the current and the previous window (core/store.h GroupRate).
  TimeUs hybrid_rate_window_us = 10 * kUsPerSecond;
  // Hybrid: how often a client re-reads each group it was told is push, to learn that the group
  // has switched to pull. 0 = never. A backstop only: the server announces each switch to pull
  // (GroupModeUpdate) and every sync answer carries each group's mode, so it matters only where
  // an announcement can be lost (a fault between servers) and client_sync_interval_us is 0.
  TimeUs hybrid_mode_check_us = 0;

  // ---- Thresholds ----
  // Hybrid: a group is large when it has more than hybrid_push_members_max members, active when
  // its rate (messages per hybrid_rate_window_us, see above) exceeds hybrid_push_rate_max. With
  // the defaults a group is active from 51 messages in one 10 s window: a steady rate above
  // 5 messages per second, or a burst of 51 inside one window. It stays active until a whole
  // window passes below the threshold (10 to 20 s after the burst).
  uint32_t hybrid_push_members_max = 100;       // members
  uint32_t hybrid_push_rate_max = 50;           // messages per hybrid_rate_window_us
  uint32_t presence_short_list_size = 16;       // short-list fan-out size
  uint32_t writer_batch_max = 100;              // batch writer: flush at this many items

  // ---- Limits (each with a designed behaviour at the limit) ----
  uint32_t body_bytes_max = 64 * 1024;          // SendMessage rejected kInvalidArgument
  uint32_t client_outbox_max = 1024;            // Send refused kResourceExhausted
  uint32_t client_held_max = 4096;              // held out-of-order messages: newest dropped
  uint32_t get_messages_limit_max = 500;        // larger limits are clamped
  // Members per ReceiptsResult page (GetReceipts, the per-member "Message info"): a limit of 0
  // or above it is clamped to it and has_more pages the rest. At least 1.
  uint32_t receipts_page_max = 256;
  uint32_t server_pending_max = 65536;          // server ops in flight: new work refused
  uint32_t server_sessions_max = 1 << 20;       // sessions per chat server: connect refused
  uint32_t server_forward_buffer_max = 4096;    // buffered entries per destination: flush now
  uint32_t store_dedup_window_max = 1 << 20;    // (sender, cmid) entries kept; FIFO eviction
  // Exact de-duplication beyond the window: a resend (SendMessage.attempt > 0, carried in
  // StoreAppend.attempt) whose (sender, client_msg_id) is not in the window is looked up on
  // disk (a LoadDedup effect, core/effects.h) before it is stored, so a client that resends
  // after any gap is answered with its first copy. The window then only has to cover copies
  // nobody marked as resent (a network duplicate of a first attempt). Off: a resend older than
  // the window is stored again (the simulator's default, whose window holds a million). Not
  // with write_path = batched (a batched append carries no attempt). ValidateStoreConfig.
  bool store_dedup_lookup = false;
  // Messages the store keeps in memory per conversation, newest first: a read further back is
  // a LoadHistory effect its environment answers from disk (core/effects.h). 0 keeps every
  // message in memory (the simulator's default; chatd's is 64). Not with id_generator = store
  // and id_scheme = timestamp, whose ids can land below the cached tail (store.h).
  uint32_t store_tail_cache = 0;
  // Message stores, each the one writer of its share of the conversations (StoreShardOf, the
  // seed's partition key): chat servers send a conversation's requests to its shard's store, and
  // ask every shard for a sync. 1 to kStoreShardsMax. Each shard keeps its own dedup window, so
  // a client_msg_id reused in a conversation on another shard is stored rather than refused.
  // Not with write_path = batched (the batch writer feeds one store). ValidateStoreConfig.
  uint32_t store_shards = 1;
  uint32_t store_group_members_max = 1 << 20;   // members per group: join refused
  uint32_t writer_queue_max = 100000;           // batch writer items: enqueue refused
  uint32_t broker_queue_max = 100000;           // entries per server queue: oldest dropped
  uint32_t presence_contacts_max = 256;         // contacts tracked per user: least active out
  uint32_t notification_dedup_max = 100000;     // (user, conv, id) pushes remembered; FIFO
  // Users per MapLookup/PresenceQuery/PresenceLookup: callers split larger lists into several
  // requests of at most this many (a client with hundreds of contacts sends one query per
  // lookup_users_max of them); a request over it is refused (PresenceQuery) or answered for its
  // first lookup_users_max users (PresenceLookup).
  uint32_t lookup_users_max = 4096;
};

inline constexpr uint32_t kStoreShardsMax = 64;

// The shard (0..shards-1) of a conversation among `shards` message stores: a hash of the
// conversation id (the seed's partition key). A deployment's data is placed by it, so it must
// never change: tests/core/shard_test.cc pins its values.
uint32_t StoreShardOf(const ConversationId& conv, uint32_t shards);

// Where the singleton services live. Every node of one deployment gets the same topology.
struct Topology {
  NodeId store;         // the store of shard 0 (the only one when store_shards = 1)
  NodeId writer;        // batch writer (WritePath::kBatched)
  NodeId mapping;       // user mapping service
  NodeId presence;
  NodeId notification;
  NodeId broker;        // queue broker (ForwardingStrategy::kQueue)
  // Every store shard, shard k at index k (host::StoreShardId); empty means {store}. Last, so
  // that a topology spelled out field by field needs no change.
  std::vector<NodeId> stores;

  // The store that holds conv's partition.
  NodeId StoreFor(const ConversationId& conv) const {
    if (stores.size() <= 1) return store;
    return stores[StoreShardOf(conv, static_cast<uint32_t>(stores.size()))];
  }
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_CONFIG_H_
