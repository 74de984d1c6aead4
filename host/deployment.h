// The deployment: which nodes exist, their ids and roles, declared once for every environment.
//
// An environment (the in-process cluster, the SimGrid world, chatd) asks the deployment which
// nodes to run instead of writing its own list. A service is one row of the registry
// (deployment.cc, `kServices`): its role, its name, its node id, whether it keeps a disk, when a
// deployment needs it and how to make one. Adding a service is adding that row; every
// environment then starts it, routes to it, crashes and restores it by name.
//
// NodeTable holds the live state machines of a deployment with their incarnations: a crash
// drops a node's memory and bumps its incarnation (so timers armed before it are stale), a
// (re)start makes a fresh node with the seed NodeSeed gives.
//
// Like core/, this layer does no I/O, reads no clock and starts no thread (host/CMakeLists.txt
// enforces it); docs/host.md is its design.
#ifndef CHATLAB_HOST_DEPLOYMENT_H_
#define CHATLAB_HOST_DEPLOYMENT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/chat_server.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab::host {

enum class Role : uint8_t {
  kStore,
  kWriter,
  kMapping,
  kPresence,
  kNotification,
  kBroker,
  kChatServer,
};

// One registered service (a singleton node; chat servers are not services).
struct ServiceSpec {
  Role role;
  std::string_view name;  // "store", ...: scenario selectors, crash specs, logs, metrics
  NodeId id;
  // It emits Persist records and needs a disk; Restore replays them after a restart.
  bool durable;
  // Whether a deployment running `config` needs the service. The simulator and the in-process
  // cluster run every service whatever the config; chatd runs only the needed ones.
  bool (*needed)(const ProtocolConfig& config);
  std::unique_ptr<Node> (*make)(const NodeOptions& options);
  // Replays one durable record into a fresh node (durable services only; null otherwise).
  absl::Status (*restore)(Node& node, const PersistRecord& record);
};

// Every service, in start order (services start before chat servers; a sharded store's shards
// take the store's place, in shard order).
std::span<const ServiceSpec> Services();
// The service named name (or with node id id); null if there is none.
const ServiceSpec* FindService(std::string_view name);
const ServiceSpec* FindService(NodeId id);
// "store|writer|...": for help texts and error messages.
std::string ServiceNames();

// Chat servers are numbered from 0; server i has node id kFirstChatServer + i.
inline constexpr uint64_t kFirstChatServer = 101;
inline NodeId ChatServerId(int index) {
  return NodeId(kFirstChatServer + static_cast<uint64_t>(index));
}

// Message store shards (config.store_shards): shard 0 is the registry's store (n1, named
// "store"); shard k > 0 is node kFirstStoreShard + k - 1, named "store<k>". Every store shard is
// a slot of its own with the store's ServiceSpec.
inline constexpr uint64_t kFirstStoreShard = 31;  // shards 1..63: n31..n93, below chat servers
NodeId StoreShardId(int shard);
// The slot name of store shard k: "store" for shard 0, "store<k>" after it (what crash, clock
// and partition entries of a scenario name).
std::string StoreShardName(int shard);
// The shard of a store node id, or -1 when id is not a store shard.
int ShardOfStore(NodeId id);

// The core's view of where the services are. `only_needed`: services config does not need are
// left out (NodeId()), as chatd runs them.
Topology CoreTopology(const ProtocolConfig& config, bool only_needed);

// The seed of node `id`'s incarnation `incarnation` in a run seeded with `seed`: what every
// environment passes in NodeOptions::seed, so a node behaves alike wherever it runs.
uint64_t NodeSeed(uint64_t seed, NodeId id, uint64_t incarnation, bool chat_server);

// One node of a deployment.
struct NodeSlot {
  Role role = Role::kStore;
  NodeId id;
  std::string name;                     // "store", ..., "server0", "server1", ...
  const ServiceSpec* service = nullptr;  // null for chat servers
  int server_index = -1;                 // chat servers: 0, 1, ...; services: -1
  int shard = -1;                        // store shards: 0, 1, ...; every other node: -1
};

// The nodes of one deployment: its services, then `servers` chat servers. Slots are numbered
// 0..size()-1 in that order, which is the start order.
class Deployment {
 public:
  struct Options {
    int servers = 1;
    ProtocolConfig config;
    // Leave out services the config does not need (chatd). The simulator keeps them all.
    bool only_needed = false;
  };
  explicit Deployment(Options options);

  const std::vector<NodeSlot>& slots() const { return slots_; }
  size_t size() const { return slots_.size(); }
  const NodeSlot& slot(size_t i) const { return slots_[i]; }
  // The slot of node id, or -1 when the deployment has no such node (a caller must say so,
  // never drop a message without a word).
  int IndexOf(NodeId id) const;
  // The slot of the service with this role; -1 when it is not deployed. kStore: shard 0.
  int IndexOf(Role role) const;
  // The slots of the store shards, shard k at index k.
  const std::vector<int>& store_slots() const { return store_slots_; }
  int servers() const { return options_.servers; }
  int first_server() const { return first_server_; }  // slot of chat server 0
  const Topology& topology() const { return topology_; }
  const ProtocolConfig& config() const { return options_.config; }

 private:
  Options options_;
  std::vector<NodeSlot> slots_;
  int first_server_ = 0;
  std::vector<int> store_slots_;
  Topology topology_;
};

// The live nodes of a deployment. A slot holds a node, or nothing while it is down.
class NodeTable {
 public:
  NodeTable(const Deployment& deployment, uint64_t seed);

  Node* node(size_t slot) const { return nodes_[slot].get(); }
  // The chat server in slot (null while down, or if slot is not a chat server).
  ChatServer* server(size_t slot) const;
  uint64_t incarnation(size_t slot) const { return incarnations_[slot]; }
  bool up(size_t slot) const { return nodes_[slot] != nullptr; }

  // Makes a fresh node in an empty slot and returns it; the caller restores its disk (if any)
  // and calls Start. A chat server's first start is incarnation 1; a service's is 0, and each
  // later start is a new incarnation.
  Node& Create(size_t slot);
  // Drops the node's memory (a crash or a stop). Timers armed by it are now stale.
  void Destroy(size_t slot);

 private:
  const Deployment& deployment_;
  uint64_t seed_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<uint64_t> incarnations_;
};

}  // namespace chatlab::host

#endif  // CHATLAB_HOST_DEPLOYMENT_H_
