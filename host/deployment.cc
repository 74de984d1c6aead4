#include "host/deployment.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/batch_writer.h"
#include "core/chat_server.h"
#include "core/notification.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "core/random.h"
#include "core/store.h"
#include "core/user_mapping.h"

namespace chatlab::host {
namespace {

template <typename T>
std::unique_ptr<Node> Make(const NodeOptions& options) {
  return std::make_unique<T>(options);
}

template <typename T>
absl::Status RestoreInto(Node& node, const PersistRecord& record) {
  return static_cast<T&>(node).Restore(record);
}

bool Always(const ProtocolConfig&) { return true; }

// The registry. Node ids are part of the wire (a Snowflake id carries the node; chatd's peers
// address nodes by id): never renumber a row, add new services at the end.
const ServiceSpec kServices[] = {
    {Role::kStore, "store", NodeId(1), true, &Always, &Make<MessageStore>,
     &RestoreInto<MessageStore>},
    {Role::kWriter, "writer", NodeId(2), true,
     [](const ProtocolConfig& c) { return c.write_path == WritePath::kBatched; },
     &Make<BatchWriter>, &RestoreInto<BatchWriter>},
    {Role::kMapping, "mapping", NodeId(3), false, &Always, &Make<UserMappingService>, nullptr},
    {Role::kPresence, "presence", NodeId(4), false, &Always, &Make<PresenceService>, nullptr},
    {Role::kNotification, "notification", NodeId(5), false, &Always, &Make<NotificationService>,
     nullptr},
    {Role::kBroker, "broker", NodeId(6), false,
     [](const ProtocolConfig& c) { return c.forwarding == ForwardingStrategy::kQueue; },
     &Make<QueueBroker>, nullptr},
};

}  // namespace

std::span<const ServiceSpec> Services() { return kServices; }

const ServiceSpec* FindService(std::string_view name) {
  for (const ServiceSpec& s : kServices) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const ServiceSpec* FindService(NodeId id) {
  if (ShardOfStore(id) > 0) id = StoreShardId(0);
  for (const ServiceSpec& s : kServices) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

NodeId StoreShardId(int shard) {
  assert(shard >= 0 && static_cast<uint32_t>(shard) < kStoreShardsMax);
  return shard == 0 ? kServices[0].id
                    : NodeId(kFirstStoreShard + static_cast<uint64_t>(shard) - 1);
}

std::string StoreShardName(int shard) {
  assert(shard >= 0 && static_cast<uint32_t>(shard) < kStoreShardsMax);
  const std::string name(kServices[0].name);
  return shard == 0 ? name : absl::StrCat(name, shard);
}

int ShardOfStore(NodeId id) {
  if (id == kServices[0].id) return 0;
  if (id.value >= kFirstStoreShard && id.value < kFirstStoreShard + kStoreShardsMax - 1) {
    return static_cast<int>(id.value - kFirstStoreShard) + 1;
  }
  return -1;
}

std::string ServiceNames() {
  std::string out;
  for (const ServiceSpec& s : kServices) {
    absl::StrAppend(&out, out.empty() ? "" : "|", std::string(s.name));
  }
  return out;
}

Topology CoreTopology(const ProtocolConfig& config, bool only_needed) {
  Topology t;
  for (const ServiceSpec& s : kServices) {
    const NodeId id = !only_needed || s.needed(config) ? s.id : NodeId();
    switch (s.role) {
      case Role::kStore:
        t.store = id;
        if (config.store_shards > 1) {
          for (uint32_t k = 0; k < config.store_shards; k++) {
            t.stores.push_back(StoreShardId(static_cast<int>(k)));
          }
        }
        break;
      case Role::kWriter: t.writer = id; break;
      case Role::kMapping: t.mapping = id; break;
      case Role::kPresence: t.presence = id; break;
      case Role::kNotification: t.notification = id; break;
      case Role::kBroker: t.broker = id; break;
      case Role::kChatServer: break;
    }
  }
  return t;
}

uint64_t NodeSeed(uint64_t seed, NodeId id, uint64_t incarnation, bool chat_server) {
  // Chat servers mix the incarnation into the node's seed; services keep the first
  // incarnation's seed unchanged and mix a later one on top (so a run without service crashes
  // draws what it always drew).
  if (chat_server) return MixSeed(seed, id.value * 1000003 + incarnation);
  const uint64_t first = MixSeed(seed, id.value * 1000003);
  return incarnation == 0 ? first : MixSeed(first, incarnation);
}

// ---- Deployment --------------------------------------------------------------------------------

Deployment::Deployment(Options options) : options_(std::move(options)) {
  assert(options_.servers >= 1);
  for (const ServiceSpec& s : kServices) {
    if (options_.only_needed && !s.needed(options_.config)) continue;
    if (s.role == Role::kStore) {
      const int shards = static_cast<int>(std::max<uint32_t>(options_.config.store_shards, 1));
      for (int k = 0; k < shards; k++) {
        store_slots_.push_back(static_cast<int>(slots_.size()));
        slots_.push_back(NodeSlot{s.role, StoreShardId(k), StoreShardName(k), &s, -1, k});
      }
      continue;
    }
    slots_.push_back(NodeSlot{s.role, s.id, std::string(s.name), &s, -1});
  }
  first_server_ = static_cast<int>(slots_.size());
  for (int i = 0; i < options_.servers; i++) {
    slots_.push_back(
        NodeSlot{Role::kChatServer, ChatServerId(i), absl::StrCat("server", i), nullptr, i});
  }
  topology_ = CoreTopology(options_.config, options_.only_needed);
}

int Deployment::IndexOf(NodeId id) const {
  if (id.value >= kFirstChatServer &&
      id.value < kFirstChatServer + static_cast<uint64_t>(options_.servers)) {
    return first_server_ + static_cast<int>(id.value - kFirstChatServer);
  }
  for (int i = 0; i < first_server_; i++) {
    if (slots_[static_cast<size_t>(i)].id == id) return i;
  }
  return -1;
}

int Deployment::IndexOf(Role role) const {
  for (int i = 0; i < first_server_; i++) {
    if (slots_[static_cast<size_t>(i)].role == role) return i;
  }
  return -1;
}

// ---- NodeTable ---------------------------------------------------------------------------------

NodeTable::NodeTable(const Deployment& deployment, uint64_t seed)
    : deployment_(deployment),
      seed_(seed),
      nodes_(deployment.size()),
      incarnations_(deployment.size(), 0) {}

ChatServer* NodeTable::server(size_t slot) const {
  if (deployment_.slot(slot).role != Role::kChatServer) return nullptr;
  return static_cast<ChatServer*>(nodes_[slot].get());
}

Node& NodeTable::Create(size_t slot) {
  assert(nodes_[slot] == nullptr);
  const NodeSlot& s = deployment_.slot(slot);
  const bool chat_server = s.role == Role::kChatServer;
  if (chat_server || incarnations_[slot] > 0) incarnations_[slot]++;
  const NodeOptions options{s.id, deployment_.config(), deployment_.topology(),
                            NodeSeed(seed_, s.id, incarnations_[slot], chat_server)};
  nodes_[slot] = chat_server ? std::make_unique<ChatServer>(options) : s.service->make(options);
  return *nodes_[slot];
}

void NodeTable::Destroy(size_t slot) {
  if (nodes_[slot] == nullptr) return;
  nodes_[slot].reset();
  incarnations_[slot]++;
}

}  // namespace chatlab::host
