// The SimGrid world's insides (sim/world.h is its interface). One class, WorldImpl, whose
// methods live in one file per concern, following the world's seams:
//
//   platform.cc   hosts, links, routes, the population, node clocks (skew, drift, steps)
//   nodes.cc      a node's turn: a message in, CPU cost, disk, effects out (host::NodeEnv)
//   transport.cc  packets between endpoints: faults on node links, bundles, SimGrid comms
//   faults.cc     crashes and restarts of chat servers and services (disks replayed)
//   workload.cc   the client hubs: users going on and offline, sending, reading (host::ClientEnv)
//   metrics.cc    what the run measured, the oracle's final check, results (RunResult)
//   loops.cc      the actors' loops (node, hub, controller) and Run
//
// The deployment's nodes come from host::Deployment (the same registry chatd and the in-process
// cluster use); an endpoint is a deployment slot (services, then chat servers), and the client
// hubs come after them. A sharded store (protocol.store_shards > 1) is one endpoint per shard,
// each with its own host, CPU and disk, in the store's place ("store", "store1", ...).
#ifndef CHATLAB_SIM_WORLD_WORLD_IMPL_H_
#define CHATLAB_SIM_WORLD_WORLD_IMPL_H_

#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u.hpp>

#include <array>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/chat_server.h"
#include "core/client.h"
#include "core/effects.h"
#include "core/oracle.h"
#include "core/random.h"
#include "host/deployment.h"
#include "host/dispatch.h"
#include "host/timer_queue.h"
#include "sim/disk.h"
#include "sim/workload_model.h"
#include "sim/world.h"

namespace chatlab::sim::world {

namespace s4u = simgrid::s4u;

// Transport framing added to each message's encoded size (HTTP or WebSocket headers).
inline constexpr uint64_t kFramingBytes = 60;
// Simulated clocks start at 2026-01-01T00:00:00Z so Snowflake timestamps are realistic.
inline constexpr TimeUs kStartUs = TimeUs{1767225600} * kUsPerSecond;

// Every recovery path the results name (results.json "recovery_paths"; docs/results.md says what
// each counts). AccumulateRecovery and RestartService fill them.
inline constexpr const char* kRecoveryPaths[] = {
    "gap_catch_up",          "retry_deduplicated",
    "contradicting_ack_withheld", "retry_after_ack_absorbed", "displacement",      "broker_dead_consumer_purged",
    "broker_stale_dropped",  "broker_redelivered",     "hybrid_mode_change",
    "writer_batch_resent",   "forward_failed_to_notification", "batched_group_send_checked",
    "restore_after_crash",   "records_replayed",       "torn_tail_discarded",
    "history_read_from_disk", "dedup_found_on_disk"};

// count, mean and p50/p95/p99 in ms of samples in microseconds (metrics.cc).
Quantiles Summarize(std::vector<TimeUs> v);

struct Packet {
  enum class Kind : uint8_t { kNode, kToServer, kToClient, kOpen, kOpenResult, kClose, kClosed,
                              kPush };
  Kind kind = Kind::kNode;
  int from_ep = -1;
  SessionId session;
  UserId user;
  uint64_t seq = 0;  // per session and direction
  bool ok = false;
  Message msg;
  PushToDevice push;
};

// What one SimGrid communication carries: the packets one actor emitted at one simulated instant
// to one endpoint, in emission order, and their total size on the wire. A 10,000-member push
// is then one communication per client host instead of 10,000 (SimGrid's per-communication
// bookkeeping, not the network, would otherwise bound the fan-outs we can simulate).
struct Bundle {
  std::vector<std::unique_ptr<Packet>> packets;
  uint64_t bytes = 0;
};

// A bundle on its way to an endpoint under network.model = "uncontended": it arrives at `at`;
// bundles due at the same instant arrive in sending order (`seq`).
struct Arrival {
  double at = 0;
  uint64_t seq = 0;
  std::unique_ptr<Bundle> bundle;
};

// One actor's sends: bundles being filled this instant, and communications started and not yet
// reaped.
struct Outbox {
  std::vector<std::pair<int, std::unique_ptr<Bundle>>> pending;  // by first packet's order
  absl::flat_hash_map<int, size_t> slot;                         // destination -> pending index
  std::deque<s4u::CommPtr> sends;
};

// An endpoint's timers (host::TimerQueue orders them by due time, then arming order).
// 24 bytes: a hub keeps a few per user (a million users' timers at a time).
struct TimerEntry {
  uint32_t kind = 0;   // what fires (per endpoint type)
  // The user (hub events), the destination endpoint (deferred sends), or, for a node's timers
  // (kNodeTimer, kHistoryLoaded, kDedupLoaded), the node's incarnation when armed (Incarnation32:
  // one that fires after a restart is stale).
  uint32_t index = 0;
  uint64_t id = 0;      // timer id / payload
  TimeUs local_at = 0;  // the armed time on the owner's clock (timers fire at or after it)
};
static_assert(sizeof(TimerEntry) == 24);
// A node's incarnation as a TimerEntry keeps it: modulo 2^32 (a node restarts far fewer times).
inline uint32_t Incarnation32(uint64_t incarnation) { return static_cast<uint32_t>(incarnation); }
using Timers = host::TimerQueue<double, TimerEntry>;

// Node timer kinds.
inline constexpr uint32_t kNodeTimer = 1;
inline constexpr uint32_t kDeferredSend = 2;
inline constexpr uint32_t kHistoryLoaded = 3;  // id: the answer's key in history_answers_
inline constexpr uint32_t kDedupLoaded = 4;    // id: the answer's key in dedup_answers_
// Hub event kinds.
inline constexpr uint32_t kClientTimer = 1;
inline constexpr uint32_t kWorkloadSend = 2;
inline constexpr uint32_t kGoOnline = 3;
inline constexpr uint32_t kGoOffline = 4;
inline constexpr uint32_t kTypedSend = 5;
inline constexpr uint32_t kReadConv = 6;
inline constexpr uint32_t kHeal = 7;
inline constexpr uint32_t kBackgroundWake = 8;   // the device wakes the app in the background
inline constexpr uint32_t kBackgroundSleep = 9;  // ... and puts it back to sleep
inline constexpr uint32_t kIntroduce = 10;       // id: the contact introduced (setup traffic)

// failover_load_ratio compares node messages in this many seconds after the first crash with
// as many seconds before it.
inline constexpr size_t kFailoverWindowS = 10;

struct Clock {
  TimeUs skew_us = 0;
  double drift = 0;  // fraction
  double step_at_s = -1;
  TimeUs step_us = 0;
};

// An alarm in the uncontended model's wake-up heap (WorldImpl::wake_heap_): the heap holds the
// keys themselves, so sifting reads no endpoint.
struct Alarm {
  double at = 0;
  uint64_t seq = 0;  // order the alarm was set (or moved): ties wake in it
  int ep = 0;
};
// Set in an Alarm's seq: it wakes after the alarms without it due at the same instant.
inline constexpr uint64_t kLastAlarm = uint64_t{1} << 63;
// Endpoint::wake_pos when the endpoint has no alarm, and when its alarm, due now, waits for the
// next round at this instant (SchedulerLoop).
inline constexpr int kNoAlarm = -1;
inline constexpr int kDeferredAlarm = -2;

struct Endpoint {
  std::string name;
  int region = 0;
  NodeId node;  // for node endpoints
  s4u::Host* host = nullptr;
  s4u::Mailbox* mailbox = nullptr;
  Clock clock;
  Timers timers;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;     // node messages sent (not client traffic)
  double busy_s = 0;
  // In the measurement window (Scenario::window_start_s/end_s): messages that arrived at the
  // live node, the sum of their (effects leave - arrival), the CPU they cost, node messages sent.
  uint64_t window_arrivals = 0;
  double sojourn_s = 0;
  double window_busy_s = 0;
  uint64_t window_out = 0;
  double sampled_in_system = 0;  // sum of the window's periodic samples of messages in the node
  double sampled_writer_waiting = 0;
  // The node's core counters (WindowCounters) over the window, summed over incarnations:
  // window_phase 0 before the window, 1 in it (window_base: the counters when this
  // incarnation entered it), 2 after it. Taken at the node's first event at or after each edge,
  // which is exact: the counters change only when the node runs.
  int window_phase = 0;
  std::vector<uint64_t> window_base;
  std::vector<uint64_t> window_sum;
  // The node's CPU as a FIFO single server: a message that arrives at t starts processing at
  // max(t, busy_until_s) and its effects leave when its processing ends. (Equivalent to a
  // SimGrid exec on a host that runs nothing else, without a mailbox backlog in SimGrid.)
  double busy_until_s = 0;
  struct Output {
    double at = 0;
    uint64_t incarnation = 0;
    Effects effects;
  };
  std::deque<Output> outputs;  // ordered by at (FIFO service)
  // The node's disk, for durable services (every store shard, writer); null for the others.
  // Survives the node's crashes: that is what it is for.
  std::unique_ptr<SimDisk> disk;
  // network.model = "uncontended" (transport.cc): the bundles on their way here (a min-heap on
  // (at, seq)), this host's access link, and when it runs next: its alarm in the world's
  // wake-up heap (due at `alarm_at`; `wake_pos` is its place in the heap, kNoAlarm when it has
  // none, kDeferredAlarm while its alarm waits for the next round at this instant). `blocked`:
  // it waits for its alarm, which an earlier arrival moves (otherwise it is running and looks at
  // its inbox before it next waits, or paused until its alarm, or done at the end of the run,
  // with no alarm).
  std::vector<Arrival> inbox;
  bool blocked = false;
  double access_latency_s = 0;
  double access_bandwidth_Bps = 0;
  double alarm_at = 0;
  int wake_pos = kNoAlarm;
};

// Packets that arrived ahead of their turn on a session, by direction and sequence number. Rare
// (a small communication overtaking a bigger one on the same route), so a session allocates it
// only then.
struct HeldPackets {
  enum Direction { kToClient = 0, kToServer = 1 };
  using Queue = std::map<uint64_t, std::unique_ptr<Packet>>;
  std::unique_ptr<std::array<Queue, 2>> held;
  void Hold(Direction d, std::unique_ptr<Packet> p) {
    if (!held) held = std::make_unique<std::array<Queue, 2>>();
    const uint64_t seq = p->seq;
    (*held)[d][seq] = std::move(p);
  }
  // The held packet with sequence number seq, taken out; null when it is not here.
  std::unique_ptr<Packet> Take(Direction d, uint64_t seq) {
    if (!held) return nullptr;
    Queue& q = (*held)[d];
    if (q.empty() || q.begin()->first != seq) return nullptr;
    std::unique_ptr<Packet> p = std::move(q.begin()->second);
    q.erase(q.begin());
    return p;
  }
};

// A session's packets are numbered per direction so each side takes them in order. 32 bits:
// one session would need 4G packets one way to wrap (a whole 1M-user run handles about 40M), and
// a million sessions keep them. 40 bytes: a million of them are in sessions_ (SessionTable).
struct SessionInfo {
  uint32_t hub : 31 = 0;
  uint32_t open : 1 = 1;
  int server_ep = 0;
  UserId user;
  uint32_t to_client_seq = 0, to_server_seq = 0;
  uint32_t to_client_expected = 0, to_server_expected = 0;
  HeldPackets held;
};
static_assert(sizeof(SessionInfo) == 40);

// The sessions by id: a hash table of 16-byte slots (id -> index) beside a deque of the
// sessions, whose freed entries are reused, rather than one table of 48-byte slots, as a hash
// table is up to half empty after it grows (at a million sessions 78 bytes each rather than
// 103; 69 rather than 74 averaged over sizes). Only point lookups. A pointer from Find stays
// valid until that session is erased (a later session may then reuse its entry).
class SessionTable {
 public:
  SessionInfo* Find(uint64_t id) {
    const auto it = index_.find(id);
    return it == index_.end() ? nullptr : &infos_[it->second];
  }
  // The session `id`, added (a default SessionInfo) if absent.
  SessionInfo& FindOrAdd(uint64_t id) {
    const auto [it, added] = index_.try_emplace(id, 0);
    if (!added) return infos_[it->second];
    if (free_.empty()) {
      assert(infos_.size() < std::numeric_limits<uint32_t>::max());
      it->second = static_cast<uint32_t>(infos_.size());
      return infos_.emplace_back();
    }
    it->second = free_.back();
    free_.pop_back();
    return infos_[it->second];
  }
  // Forgets session `id` (its held packets are freed now), if present.
  void Erase(uint64_t id) {
    const auto it = index_.find(id);
    if (it == index_.end()) return;
    infos_[it->second] = SessionInfo();
    free_.push_back(it->second);
    index_.erase(it);
  }

 private:
  absl::flat_hash_map<uint64_t, uint32_t> index_;
  std::deque<SessionInfo> infos_;
  std::vector<uint32_t> free_;  // entries of infos_ no session holds
};

// A user: who it is (the shared workload model's PopulationUser: region, hub, home server used
// for sticky reconnects, contacts, groups), and what the simulator tracks about it.
struct UserState : PopulationUser {
  bool joined_groups = false;
  bool background = false;        // connected only because the device woke the app
  bool online_truth = false;      // connected, as the presence service should report it
  // Invalidates scheduled background wakes (their ids carry it shifted left by one). 32 bits,
  // beside the flags: a user wakes far fewer than 2^32 times in a run.
  uint32_t wake_generation = 0;
  double online_changed_s = 0;    // when online_truth last changed
  double last_connect_s = -1, last_disconnect_s = -1;
  double open_started_s = -1;     // when the device last asked for a session (OpenSession)
};

class WorldImpl;

// The observer of every client of one hub: feeds the oracle, schedules reads, measures the
// read-after-write gap.
class HubObserver : public ClientObserver {
 public:
  HubObserver(WorldImpl* w, int hub) : w_(w), hub_(hub) {}
  void OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) override;
  void OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnAcked(TimeUs now, UserId sender, const SendAck& ack) override;
  void OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                   bool duplicate) override;
  void OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) override;
  void OnPresenceShown(TimeUs now, UserId viewer, const PresenceStatus& s, bool pushed,
                       std::optional<bool> was_online) override;

 private:
  WorldImpl* w_;
  int hub_;
};

// What the measurement window saw (window.cc fills it; docs/results.md defines each figure).
struct WindowMeasures {
  double start_s = 0, end_s = 0;
  uint64_t sent = 0;  // messages users sent in the window
  // Messages sent in the window, until acked and shown to another participant (never
  // iterated: looked up by (sender, client_msg_id)).
  struct Sent {
    double sent_s = 0;
    bool acked = false;
    bool shown = false;
  };
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, Sent> pending;
  std::vector<int64_t> end_to_end_us, ack_us;
  std::vector<int64_t> delivery_online_us, delivery_offline_us;
  uint64_t delivery_after_heal = 0;  // (message, recipient) pairs first shown at or after it
  uint64_t displays = 0;             // displays (to a recipient) that happened in the window
  // Node and client messages (what node_messages and client_messages count) by class: setup is
  // connection, presence and sync traffic; the rest is message traffic (WindowMessageClass).
  uint64_t setup_total = 0;       // whole run
  uint64_t setup = 0;             // sent in the window
  uint64_t traffic = 0;           // message traffic sent in the window, node + client
  uint64_t node_traffic = 0;      // ... node messages only
  uint64_t store_reads = 0, store_messages_read = 0;  // StoreRead, and messages their results held
  uint64_t writer_enqueues = 0;   // WriterEnqueue requests
  // Forwarding hops, whole run and window: ForwardBatch, ForwardResult, QueuePublish,
  // QueueDeliver, QueueAck (kHopNames).
  uint64_t hops[5] = {0, 0, 0, 0, 0};
  uint64_t window_hops[5] = {0, 0, 0, 0, 0};
  uint64_t forward_entries = 0;  // entries of ForwardBatch and QueuePublish sent by servers
  absl::btree_set<std::pair<int, int>> forward_pairs;  // (from server ep, to server ep)
  // Chat servers up: (time, servers up from then), in time order, from the start.
  std::vector<std::pair<double, int>> servers_up;
};

// What the run measured besides the core's own stats (metrics.cc fills and collects it).
struct Measures {
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> committed;  // (sender, cmid) stored
  uint64_t raw_checks = 0, raw_misses = 0;
  uint64_t raw_checks_window = 0, raw_misses_window = 0;  // acks in [window.start_s, end_s)
  std::vector<int64_t> presence_staleness_us;
  uint64_t presence_view_changes = 0;
  std::vector<int64_t> offline_delivery_us;
  std::vector<int64_t> offline_fetch_us;
  uint64_t background_wakes = 0;
  std::vector<uint64_t> node_msgs_per_s;          // node messages sent, by whole second
  // Users cut off by a crash, not yet back, with the time of the crash that cut them off.
  absl::flat_hash_map<uint64_t, double> failover_waiting;
  std::vector<int64_t> failover_reconnect_us;  // per user back: its crash -> its reconnect
  uint64_t failover_affected = 0;
  double failover_crash_s = -1, failover_last_back_s = -1;
  uint64_t samples = 0;
  uint64_t client_messages = 0;
  uint64_t displays = 0;
  uint64_t node_messages = 0, node_bytes = 0;
  std::map<std::string, uint64_t> faults;
  // How often each recovery path ran, summed over node incarnations (docs/results.md).
  std::map<std::string, uint64_t> recovery;
  WindowMeasures window;
};

class WorldImpl : private host::NodeEnv, private host::ClientEnv {
 public:
  explicit WorldImpl(const RunOptions& o);
  RunResult Run();

  // Called by HubObserver.
  Oracle oracle_;
  void ScheduleRead(int hub, UserId viewer, const ConversationId& conv);
  void CheckReadAfterWrite(UserId sender, const SendAck& ack);
  void ObservePresence(UserId viewer, const PresenceStatus& s, std::optional<bool> was_online);
  void ObserveDisplay(UserId viewer, const ChatMessage& m);
  void SetOnline(UserId user, bool online);

 private:
  friend class HubObserver;
  // ---- platform.cc ----
  void BuildPlatform();
  void BuildPopulation();
  bool Selects(const std::string& selector, int ep) const;
  TimeUs LocalNow(const Endpoint& e, double t) const;
  double SimTimeOf(const Endpoint& e, TimeUs local_at, double now) const;

  // ---- loops.cc ----
  // The loop each endpoint's actor runs under SimGrid's network models: reap finished sends,
  // take the turn (due timers and outputs), flush this instant's bundles, then wait for a
  // bundle or the instant NextTurn names, and Handle each packet of a bundle.
  void ActorLoop(int ep);
  // network.model = "uncontended": one actor runs every endpoint. Step is one endpoint's run
  // until it would wait (the same loop, bundles taken from its inbox), ending with its alarm
  // set; SchedulerLoop starts every endpoint, then Steps the endpoints whose alarms are due in
  // the wake-up heap's order, waiting on its bell for the next alarm between instants.
  void Step(int ep);
  void SchedulerLoop();
  // An endpoint's parts of the loop: starting (a node's Start or a chat server's first start;
  // a hub's users' first events), its turn, when its next turn is due, and one packet in.
  void NodeStart(int ep);
  void HubStart(int hub);
  void Turn(int ep, double now);
  void NodeTurn(int ep, double now);
  double NextTurn(int ep) const;
  void Handle(int ep, std::unique_ptr<Packet> p);
  void ControllerLoop();

  // ---- nodes.cc ----
  Node* NodeAt(int ep) const;
  ChatServer* ServerAt(int ep) const;
  bool IsNode(int ep) const { return ep < hub_ep0_; }
  // A store shard's endpoint (any shard; store_eps_ lists them).
  bool IsStore(int ep) const {
    return IsNode(ep) && deployment_.slot(static_cast<size_t>(ep)).role == host::Role::kStore;
  }
  // The endpoint of the service a fault entry names ("store", "store1", "writer", ...: a slot
  // name), or -1 when the deployment has none by that name.
  int ServiceEndpoint(const std::string& name) const;
  int ServerEndpoint(int server) const { return first_server_ep_ + server; }
  // The endpoint of node id. A node the deployment does not have is a bug: it stops the run.
  int EndpointOfNode(NodeId id) const;
  void HandleAtNode(int ep, std::unique_ptr<Packet> p);
  void ProcessAtServer(int ep, Packet& p, Effects& effects, TimeUs local);
  void ApplyNodeEffects(int ep, Effects& effects);
  // Effects computed by the CPU until done_s: written to disk, then sent when their Persists are
  // synced, in order behind the node's earlier outputs.
  void QueueNodeEffects(int ep, Effects& effects, double done_s);
  // Simulated CPU seconds the node at ep spends on packet p, which produced effects
  // (sim/world/cost.h; docs/cost-model.md).
  double CpuSeconds(int ep, const Packet& p, const Effects& effects) const;
  // Takes the Persist effects out of effects, writes them to ep's disk at at_s, and returns
  // when they are durable (at_s when there were none or ep has no disk).
  double WriteToDisk(int ep, Effects& effects, double at_s);
  // host::NodeEnv.
  void SendToNode(NodeId from, NodeId to, Message msg) override;
  void SendToClient(NodeId from, SessionId session, Message msg) override;
  void CloseSession(NodeId from, SessionId session) override;
  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) override;
  void PushToDevice(NodeId from, const chatlab::PushToDevice& push) override;
  // Reads the asking store shard's disk now (a shard's conversations are on its disk only) and
  // answers after cost.store_history_read_us (a row's CPU is not charged: the answer does not
  // queue behind the store's requests).
  void LoadHistory(NodeId node, const chatlab::LoadHistory& load) override;
  // The same for a dedup lookup: one point read, priced as cost.store_history_read_us too.
  void LoadDedup(NodeId node, const chatlab::LoadDedup& load) override;
  void Persist(NodeId node, PersistRecord record) override;

  // ---- transport.cc ----
  void SendNodeMessage(int from_ep, int to_ep, Message msg);
  void Transmit(int from_ep, int to_ep, std::unique_ptr<Packet> p);
  void ReapSends();  // finishes the running actor's completed communications
  // network.model = "uncontended": the time a bundle of `bytes` takes from one endpoint to
  // another (the route's latencies plus its size over the route's narrowest bandwidth, capped
  // as CM02 caps it at network/TCP-gamma / (2 x latency));
  // WakeAt makes ep run at `at` at the latest; PopArrival takes ep's next arrival.
  // `last`: after every other alarm due at the same instant (a pause's resume: SimGrid ended
  // a sleep after the timers due at its instant).
  double TransitTime(int from_ep, int to_ep, uint64_t bytes) const;
  void WakeAt(int ep, double at, bool last = false);
  // The kernel timer's callback: rings the scheduler's bell. The heap's order and its sifts:
  void RingBell();
  void PushAlarm(const Alarm& alarm);  // back into the heap with its own time and order
  void WakeSiftUp(size_t i);
  void WakeSiftDown(size_t i);
  // A controller's restart armed timers on ep while it was blocked: wake it for them.
  void WakeForNewTimers(int ep);
  std::unique_ptr<Bundle> PopArrival(Endpoint& e);
  std::unique_ptr<Bundle> Receive(Bundle* b);
  void FlushSends();  // starts one communication per destination of the running actor's bundles
  bool Partitioned(int from_ep, int to_ep, double now) const;
  // The running endpoint's outbox: the one Step runs (uncontended: no simcall in a step), else
  // the running actor's, by SimGrid pid (any simcall, a send or a wait, lets other actors run
  // before it returns).
  Outbox& Out() {
    if (current_out_ != nullptr) return *current_out_;
    return *outbox_of_pid_[static_cast<size_t>(s4u::this_actor::get_pid())];
  }
  void BindOutbox(size_t index);  // the running actor sends through sends_[index]

  // ---- faults.cc ----
  void CrashServer(int server);
  void RestartServer(int server);
  // Services (store, writer, mapping, ...): a crash loses memory and unsynced disk writes; a
  // restart replays the disk (durable services) and starts afresh.
  void CrashService(int ep, bool torn_write);
  void RestartService(int ep);
  // Pauses ([[faults.pause]]): each node's windows [at, resume), from the scenario, set before
  // the actors start. A paused node's actor sleeps through its window (ActorLoop): bundles sent
  // to it wait in its mailbox and its timers and finished outputs wait, all taken at the resume.
  void PlanPauses();
  // The end of ep's pause window that holds now, or now when ep is not paused.
  double PausedUntil(int ep, double now) const;

  // ---- workload.cc ----
  void HandleAtHub(int hub, std::unique_ptr<Packet> p);
  // Returns false when the session ended (and s is gone).
  bool DeliverToClient(int hub, SessionInfo& s, Packet& p);
  void ApplyClientEffects(UserId user, Effects& effects) { host::Dispatch(user, effects, *this); }
  void FireHubEvent(int hub, const TimerEntry& t);
  void WorkloadSend(int hub, UserId user, double now);
  void ScheduleHub(int hub, double at, uint32_t kind, uint32_t index, uint64_t id,
                   TimeUs local_at = 0);
  ClientSession& Client(UserId u) { return clients_[u.value - 1]; }
  int HubEndpoint(int hub) const { return hub_ep0_ + hub; }
  // host::ClientEnv.
  void SendToServer(UserId user, Message msg) override;
  void OpenSession(UserId user, NodeId server) override;
  void CloseSession(UserId user, SessionId session) override;
  void ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) override;

  // ---- window.cc ----
  // Counts a node or client message (p) leaving now towards its destination.
  void CountForWindow(const Packet& p, int from_ep, int to_ep, double now);
  void WindowSent(UserId sender, ClientMsgId id, double now);
  void WindowAcked(UserId sender, ClientMsgId id, double now);
  void WindowDisplayed(UserId viewer, const ChatMessage& m, double now);
  void WindowServersUp(double now);  // after a chat server crash or restart
  // The node's core counters that the window needs (fixed length per role; zeros when down).
  std::vector<uint64_t> WindowCounters(int ep) const;
  // Advances ep's window phase to now: call before the node runs at now (and at a crash, and
  // with now = infinity at the end).
  void WindowMark(int ep, double now);
  // Before a crash discards the node: its window counts so far.
  void WindowCrash(int ep, double now);
  void CollectWindow(RunMetrics& m);
  double PerWindowS(double count) const;  // count / window length (0 for an empty window)

  // ---- metrics.cc ----
  // Adds a node's recovery counters to measures_.recovery (before a crash discards it, and at
  // the end).
  void AccumulateRecovery(int ep);
  // What a store shard committed, for the read-after-write metric.
  void NoteStoreOutput(int ep, const Effects& effects);
  // The oracle's final check against every store shard's history (each conversation read from
  // its shard: memory, or the shard's disk with a bounded tail cache).
  void CheckFinalTruth();
  void SampleQueues();
  void Digest(double t, int ep, uint64_t kind, uint64_t a, uint64_t b);
  void Trace(double t, const std::string& line);
  RunResult Collect(double wall_s);

  const RunOptions& options_;
  const Scenario& sc_;
  const uint64_t seed_;
  Rng rng_;  // faults and placement
  host::Deployment deployment_;
  host::NodeTable nodes_;
  std::vector<int> store_eps_;  // shard k's endpoint at index k (one entry unsharded)
  int writer_ep_ = 0, presence_ep_ = 0;
  int first_server_ep_ = 0;
  std::vector<Endpoint> endpoints_;
  int servers_ = 0;
  int hub_ep0_ = 0;
  int hubs_ = 0;
  double end_s_ = 0;
  bool healed_ = false;
  // Every client's counters, summed: one Stats for the run (ClientSession::Options::shared_stats).
  const std::shared_ptr<ClientSession::Stats> client_stats_ =
      std::make_shared<ClientSession::Stats>();
  // A deque: it never moves them (a ClientSession cannot move). At 176 bytes each, libstdc++'s
  // deque puts two in each block it allocates: no per-client allocation.
  std::deque<ClientSession> clients_;
  std::vector<UserState> users_;
  std::vector<std::vector<UserId>> hub_users_;
  std::vector<std::unique_ptr<HubObserver>> observers_;
  std::vector<Rng> hub_rngs_;
  SessionTable sessions_;
  std::vector<absl::btree_set<uint64_t>> server_sessions_;  // by server index
  uint64_t session_next_ = 1;
  std::map<uint64_t, std::unique_ptr<Packet>> deferred_;  // delayed sends by id
  uint64_t deferred_next_ = 1;
  // LoadHistory answers on their way back to the store shard that asked (the timer is armed on
  // its endpoint): (token, rows) by timer id.
  std::map<uint64_t, std::pair<uint64_t, std::vector<ChatMessage>>> history_answers_;
  uint64_t history_answer_next_ = 1;
  // LoadDedup answers, the same way: (token, the message found or nothing) by timer id.
  std::map<uint64_t, std::pair<uint64_t, std::optional<ChatMessage>>> dedup_answers_;
  Measures measures_;
  std::vector<Outbox*> outbox_of_pid_;
  std::vector<Outbox> sends_;                // by endpoint, + 1 for the controller
  absl::flat_hash_set<Bundle*> in_flight_;   // sent, not yet received: freed at the end
  // network.model = "uncontended": packets skip SimGrid's communications (transport.cc).
  bool uncontended_ = false;
  double latency_factor_ = 1, bandwidth_factor_ = 1, tcp_gamma_ = 0;
  double wan_latency_s_ = 0, wan_bandwidth_Bps_ = 0;
  uint64_t arrival_seq_ = 0;
  // The uncontended model's wake-ups: the endpoints with an alarm, in a binary min-heap on
  // (time, order set) that an alarm moved earlier sifts up in place. The one actor that runs the
  // endpoints (SchedulerLoop) waits on sched_bell_ between instants, which one SimGrid kernel
  // timer, due at the heap's top, rings: set once per distinct wake-up time (and when the
  // controller sets an earlier alarm while it waits). current_out_: the outbox of the endpoint
  // Step runs (null outside a step and under SimGrid's models).
  std::vector<Alarm> wake_heap_;
  uint64_t wake_seq_ = 0;
  simgrid::kernel::timer::Timer* wake_timer_ = nullptr;
  double wake_timer_at_ = 0;
  s4u::SemaphorePtr sched_bell_;
  bool sched_waiting_ = false;
  // The scheduler's round (SchedulerLoop): the first alarm order set in it, and the alarms due
  // now but set during it, held out of the heap until the round ends.
  uint64_t round_first_seq_ = 0;
  std::vector<Alarm> deferred_alarms_;
  Outbox* current_out_ = nullptr;
  std::vector<bool> torn_pending_;           // by service endpoint
  std::vector<std::vector<std::pair<double, double>>> pauses_;  // by endpoint: [at, resume)
  uint64_t digest_ = 1469598103934665603ULL;
  uint64_t events_ = 0;
  std::chrono::steady_clock::time_point wall_start_;
  double wall_at_load_start_s_ = 0, wall_at_load_end_s_ = 0;  // RunResult::wall_time_load_s
  std::string network_model_;
};

}  // namespace chatlab::sim::world

#endif  // CHATLAB_SIM_WORLD_WORLD_IMPL_H_
