// The in-process environment: every ChatLab node and client in one process, one event queue, a
// manual clock, and seeded fault injection between nodes.
//
// It is the smallest environment that can run the unchanged core: it carries out effects
// (SendToNode, SendToClient, SendToServer, OpenSession, CloseSession, ArmTimer, PushToDevice)
// in simulated time, and it is deterministic: events are ordered by (time, sequence number) and
// every random draw comes from one seeded generator. The core tests, the randomized property
// test and the demo run on it; the SimGrid environment (sim/) adds a network model and CPU cost.
//
// Model:
//   - node <-> node messages: latency + uniform jitter (which reorders), loss, duplication.
//   - client <-> server sessions: ordered (FIFO per direction) like a WebSocket; a session dies
//     with its server, and messages in flight on a dead session are lost.
//   - chat servers crash (all memory lost, sessions closed) and restart; services do not crash
//     (they stand for replicated, highly available systems).
//   - every message can be passed through the codec (encode, decode) to test it on real traffic.
#ifndef CHATLAB_SIM_INPROC_CLUSTER_H_
#define CHATLAB_SIM_INPROC_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "core/batch_writer.h"
#include "core/chat_server.h"
#include "core/client.h"
#include "core/config.h"
#include "core/effects.h"
#include "core/notification.h"
#include "core/oracle.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "core/random.h"
#include "core/store.h"
#include "core/user_mapping.h"
#include "host/deployment.h"
#include "host/dispatch.h"
#include "host/timer_queue.h"

namespace chatlab::inproc {

// 2026-01-01T00:00:00Z: simulated clocks start here so Snowflake timestamps are realistic.
inline constexpr TimeUs kDefaultStartUs = TimeUs{1767225600} * kUsPerSecond;

struct FaultOptions {
  double loss = 0;        // probability a node -> node message is lost
  double duplicate = 0;   // probability a node -> node message arrives twice
  TimeUs jitter_us = 0;   // extra uniform [0, jitter) delay per node -> node message (reorders)
  double push_loss = 0;   // probability a PushToDevice never reaches the phone
};

struct ClusterOptions {
  ProtocolConfig config;
  int servers = 2;
  uint64_t seed = 1;
  TimeUs node_latency_us = 500;     // one way, node <-> node
  TimeUs client_latency_us = 2000;  // one way, client <-> chat server
  TimeUs push_latency_us = 200 * kUsPerMs;
  FaultOptions faults;
  bool through_codec = true;  // encode and decode every message
  bool keep_views = true;     // clients keep what they show (ClientSession::View)
  TimeUs start_time_us = kDefaultStartUs;
  // When set, gets one human-readable line per event.
  std::function<void(std::string_view)> trace;
};

class Cluster : private host::NodeEnv, private host::ClientEnv {
 public:
  struct Counters {
    uint64_t events = 0;
    uint64_t node_messages = 0;
    uint64_t node_bytes = 0;
    uint64_t client_messages = 0;
    uint64_t lost = 0;
    uint64_t duplicated = 0;
    uint64_t pushes = 0;
    uint64_t pushes_lost = 0;
    uint64_t crashes = 0;
  };

  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  TimeUs now() const { return now_; }
  const host::Deployment& deployment() const { return deployment_; }
  const std::vector<NodeId>& servers() const { return server_ids_; }
  const ClusterOptions& options() const { return options_; }

  // ---- Clients and user actions (effects are carried out at once) ----
  ClientSession& AddClient(UserId user);
  ClientSession& client(UserId user);
  bool HasClient(UserId user) const { return clients_.contains(user); }
  void Connect(UserId user, NodeId server = NodeId());
  void Disconnect(UserId user);
  absl::StatusOr<ClientMsgId> Send(UserId from, const ConversationId& conv, std::string body);
  uint64_t JoinGroup(UserId user, GroupId group);
  uint64_t LeaveGroup(UserId user, GroupId group);
  void MarkRead(UserId user, const ConversationId& conv);
  // The per-member receipts read of conv (ClientSession::GetReceipts); 0 when offline.
  uint64_t GetReceipts(UserId user, const ConversationId& conv);
  void SetTyping(UserId user, const ConversationId& conv, bool active);
  // A raw frame from a client, decoded as a server would (for malformed-input tests).
  void InjectClientFrame(UserId user, std::string_view bytes);

  // ---- Time ----
  void RunFor(TimeUs duration) { RunUntil(now_ + duration); }
  void RunUntil(TimeUs t);
  bool Idle() const { return events_.empty(); }

  // ---- Faults ----
  void SetFaults(const FaultOptions& faults) { options_.faults = faults; }
  void CrashServer(NodeId server);
  void RestartServer(NodeId server);
  bool IsUp(NodeId server) const;

  // ---- Inspection ----
  MessageStore& store() { return Service<MessageStore>(host::Role::kStore); }  // shard 0
  // Store shard k (config.store_shards).
  MessageStore& store(int shard) {
    return *static_cast<MessageStore*>(FindNode(host::StoreShardId(shard)));
  }
  BatchWriter& writer() { return Service<BatchWriter>(host::Role::kWriter); }
  UserMappingService& mapping() { return Service<UserMappingService>(host::Role::kMapping); }
  PresenceService& presence() { return Service<PresenceService>(host::Role::kPresence); }
  NotificationService& notification() {
    return Service<NotificationService>(host::Role::kNotification);
  }
  QueueBroker& broker() { return Service<QueueBroker>(host::Role::kBroker); }
  ChatServer* server(NodeId id);  // null while crashed
  Oracle& oracle() { return oracle_; }
  const Counters& counters() const { return counters_; }
  // FNV-1a over every processed event (time, kind, endpoints, encoded message).
  uint64_t trace_digest() const { return digest_; }
  // The store's final history with each conversation's participants, for Oracle::CheckFinal.
  std::vector<ConversationTruth> Truth() const;

 private:
  struct NodeDelivery {
    NodeId from;
    NodeId to;
    Message msg;
  };
  struct ToServer {
    SessionId session;
    Message msg;
  };
  struct ToClient {
    SessionId session;
    Message msg;
  };
  struct NodeTimer {
    NodeId node;
    uint64_t incarnation;
    uint64_t timer_id;
  };
  struct ClientTimer {
    UserId user;
    uint64_t timer_id;
  };
  struct SessionOpen {
    UserId user;
    NodeId server;
  };
  struct ClientSideClose {  // the server (or its crash) closed the session
    SessionId session;
  };
  struct ServerSideClose {  // the client closed the session
    SessionId session;
  };
  struct Push {
    chatlab::PushToDevice push;
  };
  struct HistoryLoaded {  // the answer to a store's LoadHistory
    NodeId store;
    uint64_t token;
    std::vector<ChatMessage> messages;
  };
  struct DedupLoaded {  // the answer to a store's LoadDedup
    NodeId store;
    uint64_t token;
    std::optional<ChatMessage> found;
  };
  using EventKind = std::variant<NodeDelivery, ToServer, ToClient, NodeTimer, ClientTimer,
                                 SessionOpen, ClientSideClose, ServerSideClose, Push,
                                 HistoryLoaded, DedupLoaded>;
  struct SessionState {
    UserId user;
    NodeId server;
    uint64_t server_incarnation = 0;
    bool server_open = true;
    bool client_open = true;
    TimeUs last_to_client_us = 0;
    TimeUs last_to_server_us = 0;
  };

  // host::NodeEnv: what the nodes ask for.
  void SendToNode(NodeId from, NodeId to, Message msg) override;
  void SendToClient(NodeId from, SessionId session, Message msg) override;
  void CloseSession(NodeId from, SessionId session) override;
  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) override;
  void PushToDevice(NodeId from, const chatlab::PushToDevice& push) override;
  // The in-process services never restart, so only the store's messages are kept: the disk a
  // bounded tail cache (store_tail_cache > 0) reads from, answered after node_latency_us.
  void Persist(NodeId from, PersistRecord record) override;
  void LoadHistory(NodeId node, const chatlab::LoadHistory& load) override;
  void LoadDedup(NodeId node, const chatlab::LoadDedup& load) override;
  // host::ClientEnv: what the clients ask for.
  void SendToServer(UserId user, Message msg) override;
  void OpenSession(UserId user, NodeId server) override;
  void CloseSession(UserId user, SessionId session) override;
  void ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) override;

  template <typename T>
  T& Service(host::Role role) {
    return *static_cast<T*>(nodes_.node(static_cast<size_t>(deployment_.IndexOf(role))));
  }
  void Schedule(TimeUs at, EventKind what) { events_.Arm(at, std::move(what)); }
  void Process(EventKind& e);
  void ProcessNodeDelivery(NodeDelivery& d);
  void ApplyNode(NodeId from, Effects& effects) { host::Dispatch(from, effects, *this); }
  void ApplyClient(UserId user, Effects& effects) { host::Dispatch(user, effects, *this); }
  Message ThroughCodec(Message msg);
  Node* FindNode(NodeId id);
  uint64_t IncarnationOf(NodeId id) const;
  TimeUs SessionArrival(SessionState& s, bool to_client);
  void Digest(std::string_view kind, uint64_t a, uint64_t b, const Message* msg);

  ClusterOptions options_;
  Rng rng_;
  TimeUs now_;
  uint64_t session_next_ = 1;
  uint64_t digest_ = 1469598103934665603ULL;
  Counters counters_;
  // Every pending event, by (time, order scheduled): the whole run's one timer queue.
  host::TimerQueue<TimeUs, EventKind> events_;
  // The store's persisted messages (last write per id), by conversation.
  absl::btree_map<ConversationId, absl::btree_map<MessageId, ChatMessage>> history_;
  // Per store shard: where each (sender, client_msg_id) was first written in history_.
  absl::btree_map<std::tuple<NodeId, UserId, ClientMsgId>, std::pair<ConversationId, MessageId>>
      dedup_keys_;
  host::Deployment deployment_;
  host::NodeTable nodes_;
  std::vector<NodeId> server_ids_;
  absl::btree_map<UserId, std::unique_ptr<ClientSession>> clients_;
  absl::btree_map<SessionId, SessionState> sessions_;
  Oracle oracle_;
};

}  // namespace chatlab::inproc

#endif  // CHATLAB_SIM_INPROC_CLUSTER_H_
