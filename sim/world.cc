#include "sim/world.h"

#include <xbt/config.hpp>
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <deque>
#include <queue>
#include <unistd.h>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/batch_writer.h"
#include "core/chat_server.h"
#include "core/client.h"
#include "core/codec.h"
#include "core/notification.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "core/random.h"
#include "core/store.h"
#include "core/user_mapping.h"
#include "sim/disk.h"

namespace chatlab::sim {
namespace {

namespace s4u = simgrid::s4u;

// Transport framing added to each message's encoded size (HTTP or WebSocket headers).
constexpr uint64_t kFramingBytes = 60;
// Simulated clocks start at 2026-01-01T00:00:00Z so Snowflake timestamps are realistic.
constexpr TimeUs kStartUs = TimeUs{1767225600} * kUsPerSecond;

enum EndpointIndex : int {
  kStoreEp = 0,
  kWriterEp = 1,
  kMappingEp = 2,
  kPresenceEp = 3,
  kNotificationEp = 4,
  kBrokerEp = 5,
  kFirstServerEp = 6,
};
const char* kServiceNames[] = {"store", "writer", "mapping", "presence", "notification", "broker"};

// Every recovery path the results name (results.json "recovery_paths"; docs/results.md says what
// each counts). AccumulateRecovery and RestartService fill them.
const char* kRecoveryPaths[] = {
    "gap_catch_up",          "retry_deduplicated",
    "contradicting_ack_withheld", "retry_after_ack_absorbed", "displacement",      "broker_dead_consumer_purged",
    "broker_stale_dropped",  "broker_redelivered",     "hybrid_mode_change",
    "writer_batch_resent",   "forward_failed_to_notification", "batched_group_send_checked",
    "restore_after_crash",   "records_replayed",       "torn_tail_discarded"};

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

// One actor's sends: bundles being filled this instant, and communications started and not yet
// reaped.
struct Outbox {
  std::vector<std::pair<int, std::unique_ptr<Bundle>>> pending;  // by first packet's order
  absl::flat_hash_map<int, size_t> slot;                         // destination -> pending index
  std::deque<s4u::CommPtr> sends;
};

uint64_t Fnv(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ULL;
  }
  return h;
}

struct TimerEntry {
  double at = 0;
  uint64_t seq = 0;
  uint32_t kind = 0;     // what fires (per endpoint type)
  uint32_t index = 0;    // user index (hubs) or unused
  uint64_t id = 0;       // timer id / payload
  uint64_t incarnation = 0;
  TimeUs local_at = 0;   // the armed time on the owner's clock (timers fire at or after it)
};
struct TimerLater {
  bool operator()(const TimerEntry& a, const TimerEntry& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};
using TimerHeap = std::priority_queue<TimerEntry, std::vector<TimerEntry>, TimerLater>;

// Node timer kinds.
constexpr uint32_t kNodeTimer = 1;
constexpr uint32_t kDeferredSend = 2;
// Hub event kinds.
constexpr uint32_t kClientTimer = 1;
constexpr uint32_t kWorkloadSend = 2;
constexpr uint32_t kGoOnline = 3;
constexpr uint32_t kGoOffline = 4;
constexpr uint32_t kTypedSend = 5;
constexpr uint32_t kReadConv = 6;
constexpr uint32_t kHeal = 7;
constexpr uint32_t kBackgroundWake = 8;   // the device wakes the app in the background
constexpr uint32_t kBackgroundSleep = 9;  // ... and puts it back to sleep

// failover_load_ratio compares node messages in this many seconds after the first crash with
// as many seconds before it.
constexpr size_t kFailoverWindowS = 10;

struct Clock {
  TimeUs skew_us = 0;
  double drift = 0;  // fraction
  double step_at_s = -1;
  TimeUs step_us = 0;
};

struct Endpoint {
  std::string name;
  int region = 0;
  NodeId node;  // for node endpoints
  s4u::Host* host = nullptr;
  s4u::Mailbox* mailbox = nullptr;
  Clock clock;
  TimerHeap timers;
  uint64_t timer_seq = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;     // node messages sent (not client traffic)
  double busy_s = 0;
  uint64_t window_arrivals = 0;  // messages arrived during the workload period
  double sojourn_s = 0;          // ... and the sum of their (effects leave - arrival)
  double sampled_in_system = 0;  // sum of periodic samples of messages in the node
  double sampled_writer_waiting = 0;
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
  // The node's disk, for nodes that persist (store, writer); null for the others. Survives the
  // node's crashes: that is what it is for.
  std::unique_ptr<SimDisk> disk;
};

struct SessionInfo {
  int hub = 0;
  int server_ep = 0;
  UserId user;
  bool open = true;
  uint64_t to_client_seq = 0, to_server_seq = 0;
  uint64_t to_client_expected = 0, to_server_expected = 0;
  std::map<uint64_t, std::unique_ptr<Packet>> to_client_held, to_server_held;
};

struct UserState {
  int hub = 0;
  int region = 0;
  int home_server = 0;   // server index used for sticky reconnects
  bool joined_groups = false;
  bool background = false;        // connected only because the device woke the app
  uint64_t wake_generation = 0;   // invalidates scheduled background wakes
  bool online_truth = false;      // connected, as the presence service should report it
  double online_changed_s = 0;    // when online_truth last changed
  double last_connect_s = -1, last_disconnect_s = -1;
  std::vector<UserId> contacts;
  std::vector<GroupId> groups;
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
  void OnPresenceShown(TimeUs now, UserId viewer, const PresenceStatus& s, bool pushed) override;

 private:
  WorldImpl* w_;
  int hub_;
};

class WorldImpl {
 public:
  explicit WorldImpl(const RunOptions& o);
  RunResult Run();

  // Called by HubObserver.
  Oracle oracle_;
  void ScheduleRead(int hub, UserId viewer, const ConversationId& conv);
  void CheckReadAfterWrite(UserId sender, const SendAck& ack);
  void ObservePresence(UserId viewer, const PresenceStatus& s);
  void ObserveDisplay(UserId viewer, const ChatMessage& m);
  void SetOnline(UserId user, bool online);

 private:
  friend class HubObserver;
  void BuildPlatform();
  void BuildPopulation();
  void NodeLoop(int ep);
  void HubLoop(int hub);
  void ControllerLoop();

  // Nodes.
  Node* NodeAt(int ep);
  ChatServer* ServerAt(int ep);
  TimeUs LocalNow(const Endpoint& e, double t) const;
  double SimTimeOf(const Endpoint& e, TimeUs local_at, double now) const;
  void HandleAtNode(int ep, std::unique_ptr<Packet> p);
  void ProcessAtServer(int ep, Packet& p, Effects& effects, TimeUs local);
  void ApplyNodeEffects(int ep, Effects& effects);
  double CostFlops(int ep, const Packet& p, const Effects& effects) const;
  void SendNodeMessage(int from_ep, int to_ep, Message msg);
  void Transmit(int from_ep, int to_ep, std::unique_ptr<Packet> p);
  void ReapSends();  // finishes the running actor's completed communications
  std::unique_ptr<Bundle> Receive(Bundle* b);
  void FlushSends();  // starts one communication per destination of the running actor's bundles
  bool Partitioned(int from_ep, int to_ep, double now) const;
  bool Selects(const std::string& selector, int ep) const;
  void CrashServer(int server);
  void RestartServer(int server);
  // Services (store, writer, mapping, presence, notification, broker): a crash loses memory and
  // unsynced disk writes; a restart replays the disk (store, writer) and starts afresh.
  void CrashService(int ep, bool torn_write);
  void RestartService(int ep);
  std::unique_ptr<Node> MakeService(int ep);
  // Takes the Persist effects out of effects, writes them to ep's disk at at_s, and returns
  // when they are durable (at_s when there were none or ep has no disk).
  double WriteToDisk(int ep, Effects& effects, double at_s);
  // Adds a node's recovery counters to recovery_ (before a crash discards it, and at the end).
  void AccumulateRecovery(int ep);
  int EndpointOfNode(NodeId id) const;

  // Hubs.
  void HandleAtHub(int hub, std::unique_ptr<Packet> p);
  // Returns false when the session ended (and s is gone).
  bool DeliverToClient(int hub, SessionInfo& s, Packet& p);
  void ApplyClientEffects(int hub, UserId user, Effects& effects);
  void FireHubEvent(int hub, const TimerEntry& t);
  void WorkloadSend(int hub, UserId user, double now);
  void ScheduleHub(int hub, double at, uint32_t kind, uint32_t index, uint64_t id,
                   TimeUs local_at = 0);
  double NextSendGap(Rng& rng) const;
  ClientSession& Client(UserId u) { return *clients_[u.value - 1]; }
  int HubEndpoint(int hub) const { return hub_ep0_ + hub; }

  void Digest(double t, int ep, uint64_t kind, uint64_t a, uint64_t b);
  void Trace(double t, const std::string& line);
  RunResult Collect(double wall_s);

  const RunOptions& options_;
  const Scenario& sc_;
  const uint64_t seed_;
  Rng rng_;        // faults and placement
  Topology topology_;
  std::vector<Endpoint> endpoints_;
  int servers_ = 0;
  int hub_ep0_ = 0;
  int hubs_ = 0;
  double end_s_ = 0;
  bool healed_ = false;
  std::vector<std::unique_ptr<Node>> nodes_;  // by endpoint (null for hubs, crashed servers)
  std::vector<uint64_t> incarnation_;         // by endpoint
  std::vector<std::unique_ptr<ClientSession>> clients_;
  std::vector<UserState> users_;
  std::vector<std::vector<UserId>> hub_users_;
  std::vector<std::unique_ptr<HubObserver>> observers_;
  std::vector<Rng> hub_rngs_;
  absl::flat_hash_map<uint64_t, SessionInfo> sessions_;
  std::vector<absl::btree_set<uint64_t>> server_sessions_;  // by server index
  uint64_t session_next_ = 1;
  std::map<uint64_t, std::unique_ptr<Packet>> deferred_;  // delayed sends by id
  uint64_t deferred_next_ = 1;
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> committed_;  // (sender, cmid) stored
  uint64_t raw_checks_ = 0, raw_misses_ = 0;
  // Experiment metrics (see docs/results.md).
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, bool> presence_shown_;  // (viewer, user)
  std::vector<int64_t> presence_staleness_us_;
  uint64_t presence_view_changes_ = 0;
  std::vector<int64_t> offline_delivery_us_;
  uint64_t background_wakes_ = 0;
  std::vector<uint64_t> node_msgs_per_s_;   // node messages sent, by whole simulated second
  absl::flat_hash_set<uint64_t> failover_waiting_;  // users cut off by a crash, not yet back
  uint64_t failover_affected_ = 0;
  double failover_crash_s_ = -1, failover_last_back_s_ = -1;
  uint64_t samples_ = 0;
  uint64_t client_messages_ = 0;
  uint64_t displays_ = 0;
  void SampleQueues();
  // The running actor's outbox. By SimGrid pid, not a "current" pointer: any simcall (a send, a
  // wait) lets other actors run before it returns.
  Outbox& Out() { return *outbox_of_pid_[static_cast<size_t>(s4u::this_actor::get_pid())]; }
  void BindOutbox(size_t index) {  // the running actor sends through sends_[index]
    const auto pid = static_cast<size_t>(s4u::this_actor::get_pid());
    if (outbox_of_pid_.size() <= pid) outbox_of_pid_.resize(pid + 1, nullptr);
    outbox_of_pid_[pid] = &sends_[index];
  }
  std::vector<Outbox*> outbox_of_pid_;
  std::vector<Outbox> sends_;                // by endpoint, + 1 for the controller
  absl::flat_hash_set<Bundle*> in_flight_;   // sent, not yet received: freed at the end
  std::map<std::string, uint64_t> faults_;
  // How often each recovery path ran, summed over node incarnations (docs/results.md).
  std::map<std::string, uint64_t> recovery_;
  std::vector<bool> torn_pending_ = std::vector<bool>(kFirstServerEp, false);  // by service
  uint64_t digest_ = 1469598103934665603ULL;
  uint64_t events_ = 0;
  uint64_t node_messages_ = 0, node_bytes_ = 0;
  std::chrono::steady_clock::time_point wall_start_;
  std::string network_model_;
};

// ---- Observer ----------------------------------------------------------------------------------

void HubObserver::OnSent(TimeUs now, UserId sender, ClientMsgId id, const ConversationId& conv) {
  w_->oracle_.OnSent(now, sender, id, conv);
}
void HubObserver::OnSendAnswered(TimeUs now, UserId sender, const SendAck& ack) {
  w_->oracle_.OnSendAnswered(now, sender, ack);
}

void HubObserver::OnAcked(TimeUs now, UserId sender, const SendAck& ack) {
  w_->oracle_.OnAcked(now, sender, ack);
  w_->CheckReadAfterWrite(sender, ack);
}
void HubObserver::OnDisplayed(TimeUs now, UserId viewer, const ChatMessage& m, bool out_of_order,
                              bool duplicate) {
  w_->oracle_.OnDisplayed(now, viewer, m, out_of_order, duplicate);
  if (!duplicate) w_->ObserveDisplay(viewer, m);
  if (m.sender != viewer) w_->ScheduleRead(hub_, viewer, m.conv);
}
void HubObserver::OnReceiptShown(TimeUs now, UserId viewer, const ReceiptUpdate& shown) {
  w_->oracle_.OnReceiptShown(now, viewer, shown);
}
void HubObserver::OnPresenceShown(TimeUs /*now*/, UserId viewer, const PresenceStatus& s,
                                  bool /*pushed*/) {
  w_->ObservePresence(viewer, s);
}

// ---- Construction ------------------------------------------------------------------------------

WorldImpl::WorldImpl(const RunOptions& o)
    : options_(o), sc_(o.scenario), seed_(o.seed), rng_(MixSeed(o.seed, 0xfa017)) {
  servers_ = sc_.servers();
  hubs_ = sc_.client_hosts();
  hub_ep0_ = kFirstServerEp + servers_;
  end_s_ = sc_.duration_s + sc_.quiet_s;
  topology_ = Topology{NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5), NodeId(6)};
  endpoints_.resize(static_cast<size_t>(hub_ep0_ + hubs_));
  sends_ = std::vector<Outbox>(endpoints_.size() + 1);
  for (int i = 0; i < kFirstServerEp; i++) {
    endpoints_[i].name = kServiceNames[i];
    endpoints_[i].region = sc_.services_region;
    endpoints_[i].node = NodeId(static_cast<uint64_t>(i + 1));
  }
  for (int s = 0; s < servers_; s++) {
    Endpoint& e = endpoints_[kFirstServerEp + s];
    e.name = absl::StrCat("server", s);
    e.region = s / sc_.servers_per_region;
    e.node = NodeId(101 + static_cast<uint64_t>(s));
  }
  for (int h = 0; h < hubs_; h++) {
    Endpoint& e = endpoints_[hub_ep0_ + h];
    e.name = absl::StrCat("clients", h);
    e.region = h / sc_.hosts_per_region();
  }
  for (const ClockSpec& c : sc_.clocks) {
    for (int ep = 0; ep < hub_ep0_; ep++) {
      if (!Selects(c.node, ep)) continue;
      Clock& k = endpoints_[ep].clock;
      k.skew_us = static_cast<TimeUs>(std::llround(c.skew_ms * 1000));
      k.drift = c.drift_ppm * 1e-6;
      k.step_at_s = c.step_at_s;
      k.step_us = static_cast<TimeUs>(std::llround(c.step_ms * 1000));
    }
  }
  const double fsync_s = sc_.fsync_ms / 1000;
  endpoints_[kStoreEp].disk = std::make_unique<SimDisk>(fsync_s);
  endpoints_[kWriterEp].disk = std::make_unique<SimDisk>(fsync_s);
  incarnation_.assign(endpoints_.size(), 0);
  nodes_.resize(endpoints_.size());
  server_sessions_.resize(static_cast<size_t>(servers_));
}

bool WorldImpl::Selects(const std::string& sel, int ep) const {
  if (ep >= hub_ep0_) return sel == "clients" || sel == absl::StrCat("region:", endpoints_[ep].region);
  if (ep < kFirstServerEp) return sel == "services" || sel == kServiceNames[ep];
  const int s = ep - kFirstServerEp;
  return sel == absl::StrCat("server:", s) || sel == absl::StrCat("region:", endpoints_[ep].region);
}

int WorldImpl::EndpointOfNode(NodeId id) const {
  if (id.value >= 1 && id.value <= 6) return static_cast<int>(id.value - 1);
  if (id.value >= 101 && id.value < 101 + static_cast<uint64_t>(servers_)) {
    return kFirstServerEp + static_cast<int>(id.value - 101);
  }
  return -1;
}

void WorldImpl::BuildPlatform() {
  auto* zone = s4u::create_full_zone("world");
  const double speed = sc_.host_speed_gflops * 1e9;
  std::vector<s4u::Link*> access(endpoints_.size());
  for (size_t i = 0; i < endpoints_.size(); i++) {
    Endpoint& e = endpoints_[i];
    e.host = zone->create_host(e.name, speed);
    const bool hub = static_cast<int>(i) >= hub_ep0_;
    access[i] = zone->create_link(e.name + "-link",
                                  (hub ? sc_.client_bandwidth_mbps : sc_.access_bandwidth_mbps) *
                                      1e6 / 8)
                    ->set_latency((hub ? sc_.client_latency_ms : sc_.access_latency_ms) / 1000)
                    ->seal();
  }
  std::map<std::pair<int, int>, s4u::Link*> wan;
  for (int a = 0; a < sc_.regions; a++) {
    for (int b = a + 1; b < sc_.regions; b++) {
      wan[{a, b}] = zone->create_link(absl::StrCat("wan-", a, "-", b),
                                      sc_.inter_region_bandwidth_mbps * 1e6 / 8)
                        ->set_latency(sc_.inter_region_latency_ms / 1000)
                        ->seal();
    }
  }
  for (size_t i = 0; i < endpoints_.size(); i++) {
    for (size_t j = i + 1; j < endpoints_.size(); j++) {
      std::vector<s4u::LinkInRoute> links{s4u::LinkInRoute(access[i])};
      const int ra = endpoints_[i].region, rb = endpoints_[j].region;
      if (ra != rb) links.emplace_back(wan[{std::min(ra, rb), std::max(ra, rb)}]);
      links.emplace_back(access[j]);
      zone->add_route(endpoints_[i].host->get_netpoint(), endpoints_[j].host->get_netpoint(),
                      nullptr, nullptr, links, true);
    }
  }
  zone->seal();
  for (Endpoint& e : endpoints_) e.mailbox = s4u::Mailbox::by_name(e.name);
}

void WorldImpl::BuildPopulation() {
  Rng rng(MixSeed(seed_, 0x9091));
  const int n = sc_.users;
  users_.resize(static_cast<size_t>(n));
  hub_users_.resize(static_cast<size_t>(hubs_));
  for (int h = 0; h < hubs_; h++) {
    observers_.push_back(std::make_unique<HubObserver>(this, h));
    hub_rngs_.emplace_back(MixSeed(seed_, 0x40b0 + static_cast<uint64_t>(h)));
  }
  for (int i = 0; i < n; i++) {
    UserState& u = users_[static_cast<size_t>(i)];
    u.region = i % sc_.regions;
    u.hub = u.region * sc_.hosts_per_region() +
            static_cast<int>(rng.Uniform(static_cast<uint64_t>(sc_.hosts_per_region())));
    u.home_server = u.region * sc_.servers_per_region +
                    static_cast<int>(rng.Uniform(static_cast<uint64_t>(sc_.servers_per_region)));
    for (int c = 0; c < sc_.contacts_per_user; c++) {
      uint64_t peer = 1 + rng.Uniform(static_cast<uint64_t>(n));
      if (peer == static_cast<uint64_t>(i + 1)) peer = 1 + (peer % static_cast<uint64_t>(n));
      u.contacts.push_back(UserId(peer));
    }
    hub_users_[static_cast<size_t>(u.hub)].push_back(UserId(static_cast<uint64_t>(i + 1)));
    ClientSession::Options co;
    co.user = UserId(static_cast<uint64_t>(i + 1));
    co.config = sc_.protocol;
    co.seed = MixSeed(seed_, 0xc11e47ULL + static_cast<uint64_t>(i));
    co.observer = observers_[static_cast<size_t>(u.hub)].get();
    clients_.push_back(std::make_unique<ClientSession>(co));
  }
  for (int g = 0; g < sc_.groups; g++) {
    const int size = sc_.group_size_min +
                     static_cast<int>(rng.Uniform(static_cast<uint64_t>(
                         sc_.group_size_max - sc_.group_size_min + 1)));
    absl::btree_set<uint64_t> members;
    while (static_cast<int>(members.size()) < size) {
      members.insert(1 + rng.Uniform(static_cast<uint64_t>(n)));
    }
    for (uint64_t m : members) users_[m - 1].groups.push_back(GroupId(static_cast<uint64_t>(g + 1)));
  }
}

// ---- Clocks ------------------------------------------------------------------------------------

TimeUs WorldImpl::LocalNow(const Endpoint& e, double t) const {
  TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(t * 1e6 * (1 + e.clock.drift)));
  local += e.clock.skew_us;
  if (e.clock.step_at_s >= 0 && t >= e.clock.step_at_s) local += e.clock.step_us;
  return local;
}

double WorldImpl::SimTimeOf(const Endpoint& e, TimeUs at, double now) const {
  TimeUs base = at - kStartUs - e.clock.skew_us;
  if (e.clock.step_at_s >= 0 && now >= e.clock.step_at_s) base -= e.clock.step_us;
  const double t = static_cast<double>(base) / 1e6 / (1 + e.clock.drift);
  return std::max(t, now);
}

// ---- Nodes -------------------------------------------------------------------------------------

Node* WorldImpl::NodeAt(int ep) { return nodes_[static_cast<size_t>(ep)].get(); }

ChatServer* WorldImpl::ServerAt(int ep) {
  return ep >= kFirstServerEp && ep < hub_ep0_ ? static_cast<ChatServer*>(NodeAt(ep)) : nullptr;
}

void WorldImpl::NodeLoop(int ep) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  e.mailbox->set_receiver(s4u::Actor::self());
  Bundle* incoming = nullptr;
  std::vector<s4u::CommPtr> comms(1);
  while (true) {
    ReapSends();
    double now = s4u::Engine::get_clock();
    while (!e.timers.empty() && e.timers.top().at <= now) {
      TimerEntry t = e.timers.top();
      e.timers.pop();
      if (t.kind == kDeferredSend) {
        auto it = deferred_.find(t.id);
        std::unique_ptr<Packet> p = std::move(it->second);
        deferred_.erase(it);
        const int to = static_cast<int>(t.index);
        Transmit(ep, to, std::move(p));
        continue;
      }
      if (t.incarnation != incarnation_[static_cast<size_t>(ep)]) continue;
      Node* node = NodeAt(ep);
      if (node == nullptr) continue;
      Effects effects;
      node->OnTimer(std::max(LocalNow(e, now), t.local_at), t.id, effects);
      Digest(now, ep, 100, t.id, 0);
      ApplyNodeEffects(ep, effects);
    }
    while (!e.outputs.empty() && e.outputs.front().at <= now) {
      Endpoint::Output o = std::move(e.outputs.front());
      e.outputs.pop_front();
      if (o.incarnation == incarnation_[static_cast<size_t>(ep)]) ApplyNodeEffects(ep, o.effects);
    }
    FlushSends();
    if (now >= end_s_) break;
    if (!comms[0]) comms[0] = e.mailbox->get_async<Bundle>(&incoming);
    double next = std::min(e.timers.empty() ? end_s_ : e.timers.top().at, end_s_);
    if (!e.outputs.empty()) next = std::min(next, e.outputs.front().at);
    const ssize_t got = s4u::Comm::wait_any_for(comms, std::max(0.0, next - now));
    if (got < 0) continue;
    comms[0] = nullptr;
    const std::unique_ptr<Bundle> bundle = Receive(incoming);
    for (auto& p : bundle->packets) HandleAtNode(ep, std::move(p));
  }
  if (comms[0]) comms[0]->cancel();
  e.mailbox->set_receiver(nullptr);
}

double WorldImpl::CostFlops(int ep, const Packet& p, const Effects& effects) const {
  if (ep == kStoreEp) {
    if (std::holds_alternative<StoreAppend>(p.msg)) return sc_.store_write_flops;
    if (const auto* b = std::get_if<StoreAppendBatch>(&p.msg)) {
      return sc_.store_batch_flops + sc_.store_write_flops * static_cast<double>(b->messages.size());
    }
    return sc_.store_read_flops;
  }
  if (ep >= kFirstServerEp) {
    return sc_.server_message_flops + sc_.fanout_flops * static_cast<double>(effects.size());
  }
  return sc_.service_message_flops;
}

void WorldImpl::HandleAtNode(int ep, std::unique_ptr<Packet> p) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const double now = s4u::Engine::get_clock();
  e.messages_in++;
  events_++;
  Node* node = NodeAt(ep);
  if (node == nullptr) {
    faults_["dropped_at_crashed_server"]++;
    if (p->kind == Packet::Kind::kOpen) {
      // The host is up but nothing listens: the connection is refused.
      auto reply = std::make_unique<Packet>();
      reply->kind = Packet::Kind::kOpenResult;
      reply->session = p->session;
      reply->user = p->user;
      reply->ok = false;
      Transmit(ep, p->from_ep, std::move(reply));
    }
    return;
  }
  const TimeUs local = LocalNow(e, now);
  Effects effects;
  if (p->kind == Packet::Kind::kNode) {
    Digest(now, ep, 1 + p->msg.index(), static_cast<uint64_t>(p->from_ep), 0);
    if (options_.trace) {
      Trace(now, absl::StrCat(e.name, " <- ", endpoints_[static_cast<size_t>(p->from_ep)].name,
                              " ", DebugString(p->msg)));
    }
    node->OnMessage(local, endpoints_[static_cast<size_t>(p->from_ep)].node, p->msg, effects);
  } else {
    ProcessAtServer(ep, *p, effects, local);
  }
  const double cpu_s = CostFlops(ep, *p, effects) / (sc_.host_speed_gflops * 1e9);
  e.busy_s += cpu_s;
  e.busy_until_s = std::max(now, e.busy_until_s) + cpu_s;
  if (now < sc_.duration_s) {  // Little's law window: the workload period
    e.window_arrivals++;
    e.sojourn_s += e.busy_until_s - now;
  }
  // Track what the store committed, for the read-after-write metric.
  for (const Effect& ef : effects) {
    const auto* send = std::get_if<SendToNode>(&ef);
    if (send == nullptr || ep != kStoreEp) continue;
    if (const auto* r = std::get_if<StoreAppendResult>(&send->msg)) {
      const auto& m = r->outcome.message;
      committed_.insert({m.sender.value, m.client_msg_id});
    } else if (const auto* b = std::get_if<StoreAppendBatchResult>(&send->msg)) {
      for (const auto& o : b->outcomes) {
        committed_.insert({o.message.sender.value, o.message.client_msg_id});
      }
    }
  }
  // Effects leave when the CPU is done and, after a Persist, when the disk has it: an answer
  // never reveals state a crash could still lose. FIFO: never before the previous output.
  double ready = WriteToDisk(ep, effects, e.busy_until_s);
  if (sc_.unsafe_ack_before_sync) ready = e.busy_until_s;  // broken on purpose
  if (!e.outputs.empty()) ready = std::max(ready, e.outputs.back().at);
  if (ready <= now && e.outputs.empty()) {
    ApplyNodeEffects(ep, effects);
  } else {
    e.outputs.push_back(
        Endpoint::Output{ready, incarnation_[static_cast<size_t>(ep)], std::move(effects)});
  }
}

double WorldImpl::WriteToDisk(int ep, Effects& effects, double at_s) {
  SimDisk* disk = endpoints_[static_cast<size_t>(ep)].disk.get();
  if (disk == nullptr) return at_s;
  std::vector<PersistRecord> records;
  std::erase_if(effects, [&records](Effect& ef) {
    auto* p = std::get_if<Persist>(&ef);
    if (p == nullptr) return false;
    records.push_back(std::move(p->record));
    return true;
  });
  return disk->Write(at_s, std::move(records));
}

void WorldImpl::ProcessAtServer(int ep, Packet& p, Effects& effects, TimeUs local) {
  ChatServer* server = ServerAt(ep);
  assert(server != nullptr);
  const double now = s4u::Engine::get_clock();
  auto it = sessions_.find(p.session.value);
  if (p.kind == Packet::Kind::kOpen) {
    absl::Status st = server->OnSessionOpen(local, p.session, p.user, effects);
    Digest(now, ep, 200, p.user.value, st.ok());
    if (options_.trace) {
      Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", p.user.value,
                              " open session s", p.session.value, st.ok() ? "" : " REFUSED"));
    }
    auto reply = std::make_unique<Packet>();
    reply->kind = Packet::Kind::kOpenResult;
    reply->session = p.session;
    reply->user = p.user;
    reply->ok = st.ok();
    if (st.ok()) {
      SessionInfo& s = sessions_[p.session.value];
      s.hub = p.from_ep - hub_ep0_;
      s.server_ep = ep;
      s.user = p.user;
      server_sessions_[static_cast<size_t>(ep - kFirstServerEp)].insert(p.session.value);
      reply->seq = s.to_client_seq++;
    }
    Transmit(ep, p.from_ep, std::move(reply));
    return;
  }
  if (it == sessions_.end() || !it->second.open || it->second.server_ep != ep) return;
  SessionInfo& s = it->second;
  if (p.kind == Packet::Kind::kClose) {
    // The client closed first, so both ends are done with the session.
    const UserId user = s.user;
    server_sessions_[static_cast<size_t>(ep - kFirstServerEp)].erase(p.session.value);
    sessions_.erase(it);
    Digest(now, ep, 201, p.session.value, 0);
    if (options_.trace) {
      Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", user.value,
                              " close session s", p.session.value));
    }
    server->OnSessionClose(local, p.session, effects);
    return;
  }
  // kToServer: restore the session's order (a WebSocket is one ordered stream).
  if (p.seq != s.to_server_expected) {
    s.to_server_held[p.seq] = std::make_unique<Packet>(std::move(p));
    return;
  }
  Digest(now, ep, 300 + p.msg.index(), p.session.value, p.seq);
  if (options_.trace) {
    Trace(now, absl::StrCat(endpoints_[static_cast<size_t>(ep)].name, " <- u", s.user.value, " ",
                            DebugString(p.msg)));
  }
  server->OnClientMessage(local, p.session, p.msg, effects);
  s.to_server_expected++;
  while (!s.to_server_held.empty() && s.to_server_held.begin()->first == s.to_server_expected) {
    std::unique_ptr<Packet> next = std::move(s.to_server_held.begin()->second);
    s.to_server_held.erase(s.to_server_held.begin());
    server->OnClientMessage(local, next->session, next->msg, effects);
    s.to_server_expected++;
  }
}

void WorldImpl::ApplyNodeEffects(int ep, Effects& effects) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const double now = s4u::Engine::get_clock();
  // Persist effects of a message were taken out in HandleAtNode; any left here come from a
  // timer or Start, which persist nothing today. Written now, so a disk never misses a record.
  WriteToDisk(ep, effects, now);
  for (Effect& ef : effects) {
    if (auto* send = std::get_if<SendToNode>(&ef)) {
      const int to = EndpointOfNode(send->to);
      if (to < 0) continue;
      SendNodeMessage(ep, to, std::move(send->msg));
    } else if (auto* sc = std::get_if<SendToClient>(&ef)) {
      auto it = sessions_.find(sc->session.value);
      if (it == sessions_.end() || !it->second.open) continue;
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kToClient;
      p->session = sc->session;
      p->seq = it->second.to_client_seq++;
      p->msg = std::move(sc->msg);
      Transmit(ep, HubEndpoint(it->second.hub), std::move(p));
    } else if (auto* cs = std::get_if<CloseSession>(&ef)) {
      auto it = sessions_.find(cs->session.value);
      if (it == sessions_.end() || !it->second.open) continue;
      it->second.open = false;
      server_sessions_[static_cast<size_t>(ep - kFirstServerEp)].erase(cs->session.value);
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kClosed;
      p->session = cs->session;
      p->seq = it->second.to_client_seq++;
      Transmit(ep, HubEndpoint(it->second.hub), std::move(p));
    } else if (auto* at = std::get_if<ArmTimer>(&ef)) {
      e.timers.push(TimerEntry{SimTimeOf(e, at->at_us, now), e.timer_seq++, kNodeTimer, 0,
                               at->timer_id, incarnation_[static_cast<size_t>(ep)], at->at_us});
    } else if (auto* push = std::get_if<PushToDevice>(&ef)) {
      if (!healed_ && sc_.push_loss > 0 && rng_.Bernoulli(sc_.push_loss)) {
        faults_["push_loss"]++;
        continue;
      }
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kPush;
      p->push = *push;
      p->user = push->user;
      Transmit(ep, HubEndpoint(users_[push->user.value - 1].hub), std::move(p));
    }
  }
}

bool WorldImpl::Partitioned(int from, int to, double now) const {
  for (const PartitionSpec& p : sc_.partitions) {
    if (now < p.start_s || now >= p.end_s) continue;
    if (Selects(p.a, from) && Selects(p.b, to)) return true;
    if (!p.one_way && Selects(p.b, from) && Selects(p.a, to)) return true;
  }
  return false;
}

void WorldImpl::SendNodeMessage(int from, int to, Message msg) {
  const double now = s4u::Engine::get_clock();
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kNode;
  p->from_ep = from;
  p->msg = std::move(msg);
  // Faults on the trace too, so a message's story (chatlab shrink) shows where it went.
  auto trace_fault = [&](const std::string& what) {
    if (!options_.trace) return;
    Trace(now, absl::StrCat(what, " ", endpoints_[static_cast<size_t>(from)].name, " -> ",
                            endpoints_[static_cast<size_t>(to)].name, " ", DebugString(p->msg)));
  };
  if (!healed_) {
    if (Partitioned(from, to, now)) {
      faults_["partition_drop"]++;
      trace_fault("LOST partition");
      return;
    }
    if (sc_.loss > 0 && rng_.Bernoulli(sc_.loss)) {
      faults_["loss"]++;
      trace_fault("LOST loss");
      return;
    }
    if (sc_.duplicate > 0 && rng_.Bernoulli(sc_.duplicate)) {
      faults_["duplicate"]++;
      trace_fault("DUPLICATED");
      auto copy = std::make_unique<Packet>(*p);
      Transmit(from, to, std::move(copy));
    }
    if (sc_.delay_probability > 0 && rng_.Bernoulli(sc_.delay_probability)) {
      faults_["delay"]++;
      const double delay = rng_.UniformDouble() * sc_.delay_ms_max / 1000;
      trace_fault(absl::StrFormat("DELAYED %.1f ms", delay * 1000));
      Endpoint& e = endpoints_[static_cast<size_t>(from)];
      const uint64_t id = deferred_next_++;
      deferred_[id] = std::move(p);
      e.timers.push(TimerEntry{now + delay, e.timer_seq++, kDeferredSend,
                               static_cast<uint32_t>(to), id, 0, 0});
      return;
    }
  }
  Transmit(from, to, std::move(p));
}

void WorldImpl::Transmit(int from, int to, std::unique_ptr<Packet> p) {
  p->from_ep = from;
  uint64_t bytes = kFramingBytes;
  if (p->kind == Packet::Kind::kNode || p->kind == Packet::Kind::kToServer ||
      p->kind == Packet::Kind::kToClient) {
    bytes += EncodedSize(p->msg);
  }
  if (p->kind == Packet::Kind::kToClient || p->kind == Packet::Kind::kToServer) {
    client_messages_++;
  }
  if (p->kind == Packet::Kind::kNode) {
    node_messages_++;
    node_bytes_ += bytes;
    endpoints_[static_cast<size_t>(from)].messages_out++;
    const auto second = static_cast<size_t>(s4u::Engine::get_clock());
    if (node_msgs_per_s_.size() <= second) node_msgs_per_s_.resize(second + 1, 0);
    node_msgs_per_s_[second]++;
  }
  Outbox& out = Out();
  const auto [slot, added] = out.slot.try_emplace(to, out.pending.size());
  if (added) out.pending.emplace_back(to, std::make_unique<Bundle>());
  Bundle& bundle = *out.pending[slot->second].second;
  bundle.packets.push_back(std::move(p));
  bundle.bytes += bytes;
}

void WorldImpl::FlushSends() {
  Outbox& out = Out();
  for (auto& [to, bundle] : out.pending) {
    s4u::Mailbox* mb = endpoints_[static_cast<size_t>(to)].mailbox;
    const uint64_t bytes = bundle->bytes;
    Bundle* raw = bundle.release();
    in_flight_.insert(raw);
    // Not detached: SimGrid 3.32 keeps every detached comm in one global std::list that each
    // finished comm walks (O(messages in flight) per message). A comm kept by its sending actor
    // sits only on that actor's list; the actor reaps it once it is done (ReapSends).
    out.sends.push_back(mb->put_async(raw, bytes));
  }
  out.pending.clear();
  out.slot.clear();
}

void WorldImpl::ReapSends() {
  std::deque<s4u::CommPtr>& sends = Out().sends;
  // A started comm's remaining bytes reach 0 when its transfer completes.
  while (!sends.empty() && sends.front()->get_remaining() <= 0) {
    try {
      sends.front()->wait();
    } catch (const simgrid::Exception&) {
      // The receiver's loop ended at the end of the run: its packet stays in in_flight_.
    }
    sends.pop_front();
  }
}

std::unique_ptr<Bundle> WorldImpl::Receive(Bundle* b) {
  in_flight_.erase(b);
  return std::unique_ptr<Bundle>(b);
}

void WorldImpl::CrashServer(int s) {
  const int ep = kFirstServerEp + s;
  if (nodes_[static_cast<size_t>(ep)] == nullptr) return;
  AccumulateRecovery(ep);
  nodes_[static_cast<size_t>(ep)].reset();
  incarnation_[static_cast<size_t>(ep)]++;
  faults_["crash"]++;
  faults_["crash_server"]++;
  if (failover_crash_s_ < 0) failover_crash_s_ = s4u::Engine::get_clock();
  Digest(s4u::Engine::get_clock(), ep, 400, 0, 0);
  // The clients' connections break: each hub learns it after the packets already in flight.
  // Take the set out first: the server's sessions all end here.
  const absl::btree_set<uint64_t> broken = std::move(server_sessions_[static_cast<size_t>(s)]);
  server_sessions_[static_cast<size_t>(s)].clear();
  for (uint64_t sid : broken) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) continue;
    it->second.open = false;
    if (failover_waiting_.insert(it->second.user.value).second) failover_affected_++;
    auto p = std::make_unique<Packet>();
    p->kind = Packet::Kind::kClosed;
    p->session = SessionId(sid);
    p->seq = it->second.to_client_seq++;
    const int hub_ep = HubEndpoint(it->second.hub);
    Transmit(ep, hub_ep, std::move(p));
  }
}

void WorldImpl::RestartServer(int s) {
  const int ep = kFirstServerEp + s;
  if (nodes_[static_cast<size_t>(ep)] != nullptr) return;
  incarnation_[static_cast<size_t>(ep)]++;
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  NodeOptions no{e.node, sc_.protocol, topology_,
                 MixSeed(seed_, e.node.value * 1000003 + incarnation_[static_cast<size_t>(ep)])};
  nodes_[static_cast<size_t>(ep)] = std::make_unique<ChatServer>(no);
  const double now = s4u::Engine::get_clock();
  if (now > 0) faults_["restart"]++;
  Effects effects;
  nodes_[static_cast<size_t>(ep)]->Start(LocalNow(e, now), effects);
  ApplyNodeEffects(ep, effects);
}

std::unique_ptr<Node> WorldImpl::MakeService(int ep) {
  assert(ep >= 0 && ep < kFirstServerEp);
  const auto i = static_cast<size_t>(ep);
  // The first incarnation keeps the seed it always had, so runs without crashes are unchanged.
  uint64_t seed = MixSeed(seed_, endpoints_[i].node.value * 1000003);
  if (incarnation_[i] > 0) seed = MixSeed(seed, incarnation_[i]);
  const NodeOptions no{endpoints_[i].node, sc_.protocol, topology_, seed};
  switch (ep) {
    case kStoreEp: return std::make_unique<MessageStore>(no);
    case kWriterEp: return std::make_unique<BatchWriter>(no);
    case kMappingEp: return std::make_unique<UserMappingService>(no);
    case kPresenceEp: return std::make_unique<PresenceService>(no);
    case kNotificationEp: return std::make_unique<NotificationService>(no);
    default: return std::make_unique<QueueBroker>(no);
  }
}

void WorldImpl::CrashService(int ep, bool torn_write) {
  const auto i = static_cast<size_t>(ep);
  if (nodes_[i] == nullptr) return;
  const double now = s4u::Engine::get_clock();
  AccumulateRecovery(ep);
  nodes_[i].reset();
  incarnation_[i]++;
  Endpoint& e = endpoints_[i];
  e.outputs.clear();  // effects not yet out die with the process
  e.busy_until_s = now;
  faults_["crash"]++;
  faults_[absl::StrCat("crash_", kServiceNames[ep])]++;
  if (e.disk != nullptr) {
    const SimDisk::CrashLoss loss = e.disk->Crash(now, torn_write);
    if (loss.lost > 0) faults_["unsynced_records_lost"] += loss.lost;
    if (loss.torn) {
      faults_["torn_write"]++;
      torn_pending_[i] = true;
    }
  }
  Digest(now, ep, 400, 0, 0);
  if (options_.trace) Trace(now, absl::StrCat(e.name, " CRASH"));
}

void WorldImpl::RestartService(int ep) {
  const auto i = static_cast<size_t>(ep);
  if (nodes_[i] != nullptr) return;
  const double now = s4u::Engine::get_clock();
  incarnation_[i]++;
  Endpoint& e = endpoints_[i];
  std::unique_ptr<Node> node = MakeService(ep);
  if (e.disk != nullptr) {
    uint64_t replayed = 0;
    for (const PersistRecord& record : e.disk->Durable(now)) {
      absl::Status st = ep == kStoreEp ? static_cast<MessageStore*>(node.get())->Restore(record)
                                       : static_cast<BatchWriter*>(node.get())->Restore(record);
      if (!st.ok()) {
        // The disk holds exactly what the node persisted: a refusal is a simulator or core bug.
        std::fprintf(stderr, "chatlab: %s: restore failed: %s\n", e.name.c_str(),
                     std::string(st.message()).c_str());
        std::abort();
      }
      replayed++;
    }
    recovery_["restore_after_crash"]++;
    recovery_["records_replayed"] += replayed;
    if (torn_pending_[i]) recovery_["torn_tail_discarded"]++;
    torn_pending_[i] = false;
  }
  nodes_[i] = std::move(node);
  faults_["restart"]++;
  Digest(now, ep, 401, 0, 0);
  if (options_.trace) Trace(now, absl::StrCat(e.name, " RESTART"));
  Effects effects;
  nodes_[i]->Start(LocalNow(e, now), effects);
  ApplyNodeEffects(ep, effects);
}

void WorldImpl::AccumulateRecovery(int ep) {
  Node* node = NodeAt(ep);
  if (node == nullptr) return;
  if (ep == kStoreEp) {
    recovery_["retry_deduplicated"] += static_cast<MessageStore*>(node)->stats().duplicates;
  } else if (ep == kWriterEp) {
    recovery_["writer_batch_resent"] += static_cast<BatchWriter*>(node)->stats().retries;
  } else if (ep == kBrokerEp) {
    const QueueBroker::Stats& b = static_cast<QueueBroker*>(node)->stats();
    recovery_["broker_dead_consumer_purged"] += b.consumers_dead;
    recovery_["broker_stale_dropped"] += b.dropped_stale;
    recovery_["broker_redelivered"] += b.redelivered;
  } else if (ep == kMappingEp) {
    recovery_["displacement"] += static_cast<UserMappingService*>(node)->stats().displacements;
  } else if (ep >= kFirstServerEp && ep < hub_ep0_) {
    const ChatServer::Stats& c = static_cast<ChatServer*>(node)->stats();
    recovery_["contradicting_ack_withheld"] += c.acks_withheld;
    recovery_["retry_after_ack_absorbed"] += c.retries_after_ack;
    recovery_["forward_failed_to_notification"] += c.forward_failures;
    recovery_["batched_group_send_checked"] += c.member_checks;
  }
}

// ---- Client hubs -------------------------------------------------------------------------------

void WorldImpl::ScheduleHub(int hub, double at, uint32_t kind, uint32_t index, uint64_t id,
                            TimeUs local_at) {
  Endpoint& e = endpoints_[static_cast<size_t>(HubEndpoint(hub))];
  e.timers.push(TimerEntry{at, e.timer_seq++, kind, index, id, 0, local_at});
}

double WorldImpl::NextSendGap(Rng& rng) const {
  const double mean = 1.0 / sc_.send_rate_per_user_hz();
  const double u = std::max(rng.UniformDouble(), 1e-12);
  if (sc_.inter_send == "exponential") return -mean * std::log(u);
  const double xm = mean * (sc_.pareto_alpha - 1) / sc_.pareto_alpha;
  return xm / std::pow(u, 1.0 / sc_.pareto_alpha);
}

void WorldImpl::HubLoop(int hub) {
  const int ep = HubEndpoint(hub);
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  e.mailbox->set_receiver(s4u::Actor::self());
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  for (UserId u : hub_users_[static_cast<size_t>(hub)]) {
    const uint32_t idx = static_cast<uint32_t>(u.value);
    if (rng.Bernoulli(sc_.online_fraction)) {
      ScheduleHub(hub, rng.UniformDouble() * sc_.connect_ramp_s, kGoOnline, idx, 0);
    } else {
      ScheduleHub(hub, -sc_.offline_mean_s * std::log(std::max(rng.UniformDouble(), 1e-12)),
                  kGoOnline, idx, 0);
    }
    if (sc_.send_rate_per_user_hz() > 0) {
      ScheduleHub(hub, sc_.send_start_s + NextSendGap(rng), kWorkloadSend, idx, 0);
    }
  }
  ScheduleHub(hub, sc_.duration_s, kHeal, 0, 0);
  Bundle* incoming = nullptr;
  std::vector<s4u::CommPtr> comms(1);
  while (true) {
    ReapSends();
    const double now = s4u::Engine::get_clock();
    while (!e.timers.empty() && e.timers.top().at <= now) {
      TimerEntry t = e.timers.top();
      e.timers.pop();
      FireHubEvent(hub, t);
    }
    FlushSends();
    if (now >= end_s_) break;
    if (!comms[0]) comms[0] = e.mailbox->get_async<Bundle>(&incoming);
    const double next = std::min(e.timers.empty() ? end_s_ : e.timers.top().at, end_s_);
    const ssize_t got = s4u::Comm::wait_any_for(comms, std::max(0.0, next - now));
    if (got < 0) continue;
    comms[0] = nullptr;
    const std::unique_ptr<Bundle> bundle = Receive(incoming);
    for (auto& p : bundle->packets) HandleAtHub(hub, std::move(p));
  }
  if (comms[0]) comms[0]->cancel();
  e.mailbox->set_receiver(nullptr);
}

void WorldImpl::FireHubEvent(int hub, const TimerEntry& t) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const UserId user(t.index);
  Effects effects;
  events_++;
  switch (t.kind) {
    case kClientTimer:
      Client(user).OnTimer(std::max(local, t.local_at), t.id, effects);
      break;
    case kWorkloadSend:
      if (healed_ || now >= sc_.duration_s) return;
      if (sc_.send_end_s > 0 && now >= sc_.send_end_s) return;  // sending is over
      WorkloadSend(hub, user, now);
      ScheduleHub(hub, now + NextSendGap(rng), kWorkloadSend, t.index, 0);
      return;
    case kTypedSend: {
      const ConversationId conv{static_cast<ChannelType>(t.id >> 62),
                                (t.id >> 31) & 0x7fffffff, t.id & 0x7fffffff};
      (void)Client(user).Send(local, conv, std::string(static_cast<size_t>(sc_.body_bytes), 'x'),
                              effects);
      Client(user).SetTyping(local, conv, false, effects);
      break;
    }
    case kReadConv: {
      const ConversationId conv{static_cast<ChannelType>(t.id >> 62),
                                (t.id >> 31) & 0x7fffffff, t.id & 0x7fffffff};
      Client(user).MarkRead(local, conv, effects);
      break;
    }
    case kGoOnline: {
      UserState& us = users_[user.value - 1];
      if (us.background) {  // the user opens the app while it syncs in the background
        us.background = false;
        us.wake_generation++;
      }
      int server = us.home_server;
      if (Client(user).stats().connects > 0 && rng.Bernoulli(sc_.reconnect_other_server)) {
        server = us.region * sc_.servers_per_region +
                 static_cast<int>(rng.Uniform(static_cast<uint64_t>(sc_.servers_per_region)));
      }
      Client(user).Connect(local, endpoints_[static_cast<size_t>(kFirstServerEp + server)].node,
                           effects);
      if (!healed_ && sc_.session_mean_s > 0) {
        ScheduleHub(hub, now - sc_.session_mean_s * std::log(std::max(rng.UniformDouble(), 1e-12)),
                    kGoOffline, t.index, 0);
      }
      break;
    }
    case kGoOffline: {
      if (healed_) return;
      Client(user).Disconnect(local, effects);
      SetOnline(user, false);
      ScheduleHub(hub, now - sc_.offline_mean_s * std::log(std::max(rng.UniformDouble(), 1e-12)),
                  kGoOnline, t.index, 0);
      UserState& us = users_[user.value - 1];
      us.wake_generation++;
      if (sc_.background_sync_s > 0) {  // periodic background sync, at a random phase
        ScheduleHub(hub, now + sc_.background_sync_s * rng.UniformDouble(), kBackgroundWake,
                    t.index, (us.wake_generation << 1) | 1);
      }
      break;
    }
    case kBackgroundWake: {
      UserState& us = users_[user.value - 1];
      if (healed_ || (t.id >> 1) != us.wake_generation) return;
      if ((t.id & 1) != 0) {
        ScheduleHub(hub, now + sc_.background_sync_s, kBackgroundWake, t.index, t.id);
      }
      if (Client(user).wants_online()) return;
      us.background = true;
      background_wakes_++;
      Client(user).Connect(local, endpoints_[static_cast<size_t>(kFirstServerEp + us.home_server)].node,
                           effects);
      ScheduleHub(hub, now + sc_.background_session_s, kBackgroundSleep, t.index,
                  us.wake_generation);
      break;
    }
    case kBackgroundSleep: {
      UserState& us = users_[user.value - 1];
      // After the heal everyone stays online: a background wake that began before it is now the
      // quiet period's session (disconnecting here left the user offline for good).
      if (healed_ || !us.background || t.id != us.wake_generation) return;
      us.background = false;
      Client(user).Disconnect(local, effects);
      SetOnline(user, false);
      break;
    }
    case kHeal:
      // Everyone comes online for the quiet period; nobody sends any more.
      for (UserId u : hub_users_[static_cast<size_t>(hub)]) {
        Effects eff;
        Client(u).Connect(local, NodeId(), eff);
        ApplyClientEffects(hub, u, eff);
      }
      return;
  }
  ApplyClientEffects(hub, user, effects);
}

void WorldImpl::WorkloadSend(int hub, UserId user, double now) {
  ClientSession& c = Client(user);
  if (!c.wants_online() || users_[user.value - 1].background) return;
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const UserState& us = users_[user.value - 1];
  ConversationId conv;
  if (!us.groups.empty() && rng.Bernoulli(sc_.group_share)) {
    conv = ConversationId::Group(us.groups[rng.Uniform(us.groups.size())]);
  } else {
    conv = ConversationId::Direct(user, us.contacts[rng.Uniform(us.contacts.size())]);
  }
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  Effects effects;
  if (sc_.typing_probability > 0 && rng.Bernoulli(sc_.typing_probability)) {
    c.SetTyping(local, conv, true, effects);
    const uint64_t code = (static_cast<uint64_t>(conv.type) << 62) | (conv.low << 31) | conv.high;
    ScheduleHub(hub, now + sc_.typing_lead_ms / 1000, kTypedSend,
                static_cast<uint32_t>(user.value), code);
  } else {
    (void)c.Send(local, conv, std::string(static_cast<size_t>(sc_.body_bytes), 'x'), effects);
  }
  ApplyClientEffects(hub, user, effects);
}

void WorldImpl::ScheduleRead(int hub, UserId viewer, const ConversationId& conv) {
  if (sc_.read_delay_mean_s <= 0) return;
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const double now = s4u::Engine::get_clock();
  const uint64_t code = (static_cast<uint64_t>(conv.type) << 62) | (conv.low << 31) | conv.high;
  ScheduleHub(hub, now - sc_.read_delay_mean_s * std::log(std::max(rng.UniformDouble(), 1e-12)),
              kReadConv, static_cast<uint32_t>(viewer.value), code);
}

void WorldImpl::CheckReadAfterWrite(UserId sender, const SendAck& ack) {
  raw_checks_++;
  if (!committed_.contains({sender.value, ack.client_msg_id})) raw_misses_++;
  committed_.erase({sender.value, ack.client_msg_id});
}

void WorldImpl::SetOnline(UserId user, bool online) {
  UserState& us = users_[user.value - 1];
  const double now = s4u::Engine::get_clock();
  if (online) {
    us.last_connect_s = now;
    if (failover_waiting_.erase(user.value) > 0) failover_last_back_s_ = now;
  } else if (us.online_truth) {
    us.last_disconnect_s = now;
  }
  if (us.online_truth == online) return;
  us.online_truth = online;
  us.online_changed_s = now;
}

void WorldImpl::ObservePresence(UserId viewer, const PresenceStatus& s) {
  auto [it, inserted] = presence_shown_.try_emplace({viewer.value, s.user.value}, s.online);
  if (inserted || it->second == s.online) return;
  it->second = s.online;
  presence_view_changes_++;
  const UserState& us = users_[s.user.value - 1];
  // Staleness is what a connected viewer puts up with: only changes made while the viewer was
  // connected, seen in that same session. A change made while the viewer was away is read
  // afresh at its connect, and its age then measures the absence, not the presence design.
  // And only changes made at least one poll interval before the heal: a later one's poll may
  // fall after the heal, and counting only those seen in time would bias the figure low.
  const double horizon_s = static_cast<double>(sc_.protocol.presence_poll_interval_us) / 1e6;
  const UserState& vs = users_[viewer.value - 1];
  if (s.online == us.online_truth && s4u::Engine::get_clock() < sc_.duration_s &&
      us.online_changed_s < sc_.duration_s - horizon_s && vs.online_truth &&
      vs.last_connect_s <= us.online_changed_s) {
    presence_staleness_us_.push_back(
        std::llround((s4u::Engine::get_clock() - us.online_changed_s) * 1e6));
  }
}

void WorldImpl::ObserveDisplay(UserId viewer, const ChatMessage& m) {
  if (m.sender == viewer) return;
  displays_++;
  const UserState& us = users_[viewer.value - 1];
  const double now = s4u::Engine::get_clock();
  const double sent_s = static_cast<double>(m.sent_at_us - kStartUs) / 1e6;
  // Sent while the viewer was offline (its latest offline period), shown before the heal.
  if (now < sc_.duration_s && us.last_disconnect_s >= 0 && sent_s >= us.last_disconnect_s &&
      sent_s < us.last_connect_s) {
    offline_delivery_us_.push_back(std::llround((now - sent_s) * 1e6));
  }
}

void WorldImpl::SampleQueues() {
  const double now = s4u::Engine::get_clock();
  samples_++;
  for (int ep = 0; ep < hub_ep0_; ep++) {
    Endpoint& e = endpoints_[static_cast<size_t>(ep)];
    size_t n = 0;
    for (auto it = e.outputs.rbegin(); it != e.outputs.rend() && it->at > now; ++it) n++;
    e.sampled_in_system += static_cast<double>(n);
  }
  if (const auto* writer = static_cast<BatchWriter*>(NodeAt(kWriterEp))) {
    endpoints_[static_cast<size_t>(kWriterEp)].sampled_writer_waiting +=
        static_cast<double>(writer->waiting());
  }
}

void WorldImpl::HandleAtHub(int hub, std::unique_ptr<Packet> p) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  events_++;
  if (p->kind == Packet::Kind::kPush) {
    Effects effects;
    Client(p->user).OnPushNotification(local, p->push, effects);
    ApplyClientEffects(hub, p->user, effects);
    if (sc_.wake_on_push && !Client(p->user).wants_online() && !healed_) {
      ScheduleHub(hub, now, kBackgroundWake, static_cast<uint32_t>(p->user.value),
                  users_[p->user.value - 1].wake_generation << 1);
    }
    return;
  }
  auto it = sessions_.find(p->session.value);
  if (it == sessions_.end()) {
    if (p->kind == Packet::Kind::kOpenResult) {  // refused
      Effects effects;
      Client(p->user).OnConnectFailed(local, effects);
      ApplyClientEffects(hub, p->user, effects);
    }
    return;
  }
  SessionInfo& s = it->second;
  if (p->seq != s.to_client_expected) {
    s.to_client_held[p->seq] = std::move(p);
    return;
  }
  const SessionId session = p->session;
  s.to_client_expected++;
  if (!DeliverToClient(hub, s, *p)) return;
  while (true) {
    // Delivery may have opened or closed sessions: look ours up again each time.
    auto sit = sessions_.find(session.value);
    if (sit == sessions_.end()) return;
    SessionInfo& si = sit->second;
    if (si.to_client_held.empty() || si.to_client_held.begin()->first != si.to_client_expected) {
      return;
    }
    std::unique_ptr<Packet> next = std::move(si.to_client_held.begin()->second);
    si.to_client_held.erase(si.to_client_held.begin());
    si.to_client_expected++;
    if (!DeliverToClient(hub, si, *next)) return;
  }
}

bool WorldImpl::DeliverToClient(int hub, SessionInfo& s, Packet& p) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  ClientSession& c = Client(s.user);
  Effects effects;
  switch (p.kind) {
    case Packet::Kind::kOpenResult: {
      Digest(now, HubEndpoint(hub), 500, s.user.value, p.session.value);
      const NodeId server = endpoints_[static_cast<size_t>(s.server_ep)].node;
      c.OnConnected(local, p.session, server, effects);
      if (c.connected()) SetOnline(s.user, true);
      UserState& us = users_[s.user.value - 1];
      if (!us.joined_groups && c.connected()) {
        us.joined_groups = true;
        for (GroupId g : us.groups) c.JoinGroup(local, g, effects);
      }
      break;
    }
    case Packet::Kind::kToClient:
      if (c.session() != p.session) return true;
      Digest(now, HubEndpoint(hub), 600 + p.msg.index(), s.user.value, p.seq);
      if (options_.trace) {
        Trace(now, absl::StrCat("u", s.user.value, " <- ",
                                endpoints_[static_cast<size_t>(s.server_ep)].name, " ",
                                DebugString(p.msg)));
      }
      c.OnServerMessage(local, p.msg, effects);
      break;
    case Packet::Kind::kClosed: {
      // The server closed first (or crashed): both ends are done with the session.
      const UserId user = s.user;
      const SessionId session = p.session;
      sessions_.erase(session.value);
      if (c.session() != session) return false;
      Digest(now, HubEndpoint(hub), 700, user.value, session.value);
      c.OnDisconnected(local, effects);
      SetOnline(user, false);
      ApplyClientEffects(hub, user, effects);
      return false;
    }
    default:
      return true;
  }
  ApplyClientEffects(hub, s.user, effects);
  return true;
}

void WorldImpl::ApplyClientEffects(int hub, UserId user, Effects& effects) {
  const double now = s4u::Engine::get_clock();
  ClientSession& c = Client(user);
  const int hub_ep = HubEndpoint(hub);
  for (Effect& ef : effects) {
    if (auto* send = std::get_if<SendToServer>(&ef)) {
      auto it = sessions_.find(c.session().value);
      if (it == sessions_.end()) continue;
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kToServer;
      p->session = c.session();
      p->seq = it->second.to_server_seq++;
      p->msg = std::move(send->msg);
      Transmit(hub_ep, it->second.server_ep, std::move(p));
    } else if (auto* open = std::get_if<OpenSession>(&ef)) {
      int server = users_[user.value - 1].home_server;
      if (open->server.valid()) {
        server = EndpointOfNode(open->server) - kFirstServerEp;
      } else {
        const UserState& us = users_[user.value - 1];
        server = us.region * sc_.servers_per_region +
                 static_cast<int>(hub_rngs_[static_cast<size_t>(hub)].Uniform(
                     static_cast<uint64_t>(sc_.servers_per_region)));
      }
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kOpen;
      p->session = SessionId(session_next_++);
      p->user = user;
      Transmit(hub_ep, kFirstServerEp + server, std::move(p));
    } else if (auto* close = std::get_if<CloseSession>(&ef)) {
      auto it = sessions_.find(close->session.value);
      if (it == sessions_.end()) continue;
      auto p = std::make_unique<Packet>();
      p->kind = Packet::Kind::kClose;
      p->session = close->session;
      Transmit(hub_ep, it->second.server_ep, std::move(p));
    } else if (auto* at = std::get_if<ArmTimer>(&ef)) {
      const double t = std::max(now, static_cast<double>(at->at_us - kStartUs) / 1e6);
      ScheduleHub(hub, t, kClientTimer, static_cast<uint32_t>(user.value), at->timer_id,
                  at->at_us);
    }
  }
}

// ---- Controller, trace, results ----------------------------------------------------------------

void WorldImpl::ControllerLoop() {
  std::vector<std::pair<double, std::function<void()>>> plan;
  for (const CrashSpec& c : sc_.crashes) {
    const int server = CrashServerIndex(c);
    if (server >= 0) {
      plan.emplace_back(c.at_s, [this, server] { CrashServer(server); });
      if (c.restart_s >= 0) {
        plan.emplace_back(c.restart_s, [this, server] { RestartServer(server); });
      }
      continue;
    }
    const std::string node = CrashNode(c);
    int ep = 0;
    while (ep < kFirstServerEp && node != kServiceNames[ep]) ep++;
    assert(ep < kFirstServerEp);  // Validate accepted only these names
    const bool torn = c.torn_write;
    plan.emplace_back(c.at_s, [this, ep, torn] { CrashService(ep, torn); });
    if (c.restart_s >= 0) plan.emplace_back(c.restart_s, [this, ep] { RestartService(ep); });
  }
  plan.emplace_back(sc_.duration_s, [this] {
    healed_ = true;
    for (int ep = 0; ep < kFirstServerEp; ep++) RestartService(ep);
    for (int s = 0; s < servers_; s++) RestartServer(s);
  });
  std::stable_sort(plan.begin(), plan.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  const double tick = std::max(end_s_ / 100, 0.5);
  double next_progress = tick;
  const double sample_every = sc_.sample_interval_ms / 1000;
  double next_sample = sample_every > 0 ? sample_every : end_s_;
  Rng sample_rng(MixSeed(seed_, 0x5a3b1e));
  size_t i = 0;
  while (true) {
    ReapSends();
    const double now = s4u::Engine::get_clock();
    while (i < plan.size() && plan[i].first <= now) plan[i++].second();
    if (sample_every > 0 && now >= next_sample) {
      SampleQueues();
      // Jittered sampling instants, so samples do not lock onto periodic timers.
      next_sample += sample_every * (0.5 + sample_rng.UniformDouble());
      if (next_sample >= sc_.duration_s) next_sample = end_s_;
    }
    if (now >= next_progress) {
      next_progress += tick;
      if (!options_.progress) continue;
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                        wall_start_).count();
      if (wall > 2) {
        const int done = static_cast<int>(40 * now / end_s_);
        std::fprintf(stderr, "\r[%s%s] %5.1f%%  sim %.1f/%.1f s  wall %.1f s",
                     std::string(static_cast<size_t>(done), '#').c_str(),
                     std::string(static_cast<size_t>(40 - done), '.').c_str(),
                     100 * now / end_s_, now, end_s_, wall);
      }
    }
    FlushSends();
    if (now >= end_s_) break;
    double next = std::min({end_s_, next_progress, next_sample});
    if (i < plan.size()) next = std::min(next, plan[i].first);
    s4u::this_actor::sleep_until(next);
  }
  if (options_.progress) std::fprintf(stderr, "\n");
}

void WorldImpl::Digest(double t, int ep, uint64_t kind, uint64_t a, uint64_t b) {
  digest_ = Fnv(digest_, static_cast<uint64_t>(std::llround(t * 1e9)));
  digest_ = Fnv(digest_, static_cast<uint64_t>(ep));
  digest_ = Fnv(digest_, kind);
  digest_ = Fnv(digest_, a);
  digest_ = Fnv(digest_, b);
}

void WorldImpl::Trace(double t, const std::string& line) {
  options_.trace(absl::StrFormat("%.6f %s", t, line));
}

Quantiles Summarize(std::vector<TimeUs> v) {
  Quantiles q;
  q.count = v.size();
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double f) {
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(f * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1000.0;
  };
  q.p50_ms = at(0.50);
  q.p95_ms = at(0.95);
  q.p99_ms = at(0.99);
  double sum = 0;
  for (TimeUs x : v) sum += static_cast<double>(x);
  q.mean_ms = sum / static_cast<double>(v.size()) / 1000.0;
  return q;
}

uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

RunResult WorldImpl::Collect(double wall_s) {
  // The final check against the store's history, with each conversation's participants.
  auto* store = static_cast<MessageStore*>(NodeAt(kStoreEp));
  std::vector<ConversationTruth> truth;
  for (const ConversationId& conv : store->Conversations()) {
    ConversationTruth t;
    t.conv = conv;
    t.messages = store->Messages(conv);
    if (conv.is_group()) {
      t.participants = store->Members(conv.group());
    } else {
      t.participants.push_back(UserId(conv.low));
      if (conv.high != conv.low) t.participants.push_back(UserId(conv.high));
    }
    truth.push_back(std::move(t));
  }
  oracle_.CheckFinal(truth);
  RunResult r;
  r.scenario = sc_.name;
  r.seed = seed_;
  r.trace_digest = digest_;
  r.events = events_;
  r.sim_time_s = end_s_;
  r.wall_time_s = wall_s;
  r.invariants = oracle_.counts();
  r.first_violations = oracle_.first_violations();
  RunMetrics& m = r.metrics;
  m.messages_sent = oracle_.sent();
  m.messages_acked = oracle_.acked();
  m.end_to_end = Summarize(oracle_.latencies().end_to_end_us);
  m.ack = Summarize(oracle_.latencies().ack_us);
  m.messages_delivered = m.end_to_end.count;
  for (const auto& c : clients_) {
    m.catchups += c->stats().catchups;
    m.gaps_detected += c->stats().gaps_detected;
    m.retries += c->stats().retries;
  }
  for (int s = 0; s < servers_; s++) {
    if (ChatServer* cs = ServerAt(kFirstServerEp + s)) {
      m.inter_server_requests += cs->stats().forwards_sent;
      m.forward_entries += cs->stats().forward_entries_sent;
    }
  }
  m.inter_server_requests_per_s = static_cast<double>(m.inter_server_requests) / end_s_;
  m.node_messages = node_messages_;
  m.client_messages = client_messages_;
  m.displays = displays_;
  m.node_bytes = node_bytes_;
  m.store_requests = store->stats().requests;
  m.store_writes = store->stats().messages_stored;
  m.store_reads = store->stats().reads;
  m.store_messages_read = store->stats().messages_read;
  m.store_requests_per_s = static_cast<double>(m.store_requests) / end_s_;
  m.id_collisions = store->stats().id_collisions;
  m.out_of_order_ids = store->stats().out_of_order_ids;
  m.read_after_write_checks = raw_checks_;
  m.read_after_write_misses = raw_misses_;
  const auto* notification = static_cast<NotificationService*>(NodeAt(kNotificationEp));
  m.notifications = notification->stats().pushed;
  const auto* presence = static_cast<PresenceService*>(NodeAt(kPresenceEp));
  m.presence_pushes = presence->stats().pushes_sent;
  m.presence_push_recipients = presence->stats().push_recipients;
  m.presence_polled = presence->stats().users_polled;
  const auto* writer = static_cast<BatchWriter*>(NodeAt(kWriterEp));
  m.writer_batches = writer->stats().batches_sent;
  m.writer_mean_wait_ms = writer->stats().items_flushed == 0
                              ? 0
                              : static_cast<double>(writer->stats().wait_us_total) /
                                    static_cast<double>(writer->stats().items_flushed) / 1000;
  const auto* broker = static_cast<QueueBroker*>(NodeAt(kBrokerEp));
  m.broker_dropped = broker->stats().dropped_overflow + broker->stats().dropped_stale +
                     broker->stats().dropped_dead_consumer;
  for (int ep = 0; ep < hub_ep0_; ep++) {
    const Endpoint& e = endpoints_[static_cast<size_t>(ep)];
    NodeLoad l{e.name, e.messages_in, e.busy_s, e.busy_s / end_s_};
    l.messages_out = e.messages_out;
    // Little's law over the workload period: L (sampled) against lambda * W (measured).
    l.arrival_rate_per_s = static_cast<double>(e.window_arrivals) / sc_.duration_s;
    l.mean_sojourn_ms = e.window_arrivals == 0
                            ? 0 : e.sojourn_s / static_cast<double>(e.window_arrivals) * 1000;
    l.mean_in_system_sampled =
        samples_ == 0 ? 0 : e.sampled_in_system / static_cast<double>(samples_);
    l.mean_in_system_little = e.sojourn_s / sc_.duration_s;
    m.node_load.push_back(l);
  }
  m.writer_items = writer->stats().items_flushed;
  m.writer_mean_batch = m.writer_batches == 0 ? 0
                        : static_cast<double>(m.writer_items) / static_cast<double>(m.writer_batches);
  m.writer_arrival_rate_per_s = static_cast<double>(writer->stats().enqueued) /
                                std::max(1e-9, sc_.duration_s);
  m.writer_mean_waiting_sampled =
      samples_ == 0 ? 0
                    : endpoints_[static_cast<size_t>(kWriterEp)].sampled_writer_waiting /
                          static_cast<double>(samples_);
  m.queue_samples = samples_;
  m.presence_staleness = Summarize(presence_staleness_us_);
  m.presence_view_changes = presence_view_changes_;
  {
    const Endpoint& pe = endpoints_[static_cast<size_t>(kPresenceEp)];
    m.presence_messages = pe.messages_in + pe.messages_out;
    m.presence_messages_per_s = static_cast<double>(m.presence_messages) / end_s_;
  }
  m.offline_delivery = Summarize(offline_delivery_us_);
  m.background_wakes = background_wakes_;
  m.failover_affected_users = failover_affected_;
  m.failover_unrecovered_users = failover_waiting_.size();
  m.failover_reconnect_s = failover_crash_s_ < 0 || failover_last_back_s_ < 0
                               ? 0 : failover_last_back_s_ - failover_crash_s_;
  if (failover_crash_s_ >= 0) {
    const auto t0 = static_cast<size_t>(failover_crash_s_);
    const size_t end = node_msgs_per_s_.size();
    double before = 0, after = 0;
    for (size_t t = t0 >= kFailoverWindowS ? t0 - kFailoverWindowS : 0; t < t0 && t < end; t++) {
      before += node_msgs_per_s_[t];
    }
    for (size_t t = t0; t < t0 + kFailoverWindowS && t < end; t++) after += node_msgs_per_s_[t];
    m.failover_load_ratio = before > 0 ? after / before : 0;
  }
  // Faults: what fired (kinds with a count), and what was configured but never fired.
  size_t steps = 0;
  for (const ClockSpec& c : sc_.clocks) steps += c.step_at_s >= 0 && c.step_at_s < end_s_;
  if (steps > 0) faults_["clock_step"] = steps;
  for (const auto& [kind, n] : faults_) {
    if (n > 0) r.faults_fired[kind] = n;
  }
  auto never = [&](const char* kind, bool configured) {
    if (configured && !r.faults_fired.contains(kind)) r.faults_never_fired.push_back(kind);
  };
  never("loss", sc_.loss > 0);
  never("duplicate", sc_.duplicate > 0);
  never("delay", sc_.delay_probability > 0);
  never("push_loss", sc_.push_loss > 0);
  never("partition_drop", !sc_.partitions.empty());
  never("crash", !sc_.crashes.empty());
  bool torn_configured = false;
  for (const CrashSpec& c : sc_.crashes) {
    const std::string node = CrashNode(c);
    torn_configured = torn_configured || (c.torn_write && (node == "store" || node == "writer"));
  }
  never("torn_write", torn_configured);
  for (int ep = 0; ep < hub_ep0_; ep++) AccumulateRecovery(ep);
  uint64_t gaps = 0, mode_changes = 0;
  for (const auto& c : clients_) {
    gaps += c->stats().gaps_detected;
    mode_changes += c->stats().group_mode_changes;
  }
  recovery_["gap_catch_up"] += gaps;
  recovery_["hybrid_mode_change"] += mode_changes;
  // Every path is listed, reached or not: a path never reached is a finding (docs/results.md).
  for (const char* path : kRecoveryPaths) r.recovery_paths[path] = 0;
  for (const auto& [path, n] : recovery_) r.recovery_paths[path] += n;
  r.peak_rss_bytes = PeakRss();
  return r;
}

RunResult WorldImpl::Run() {
  wall_start_ = std::chrono::steady_clock::now();
  std::vector<std::string> args{"chatlab", "--log=root.thres:critical"};
  std::string model = sc_.network_model == "textbook" ? "CM02" : sc_.network_model;
  args.push_back("--cfg=network/model:" + model);
  double lat = sc_.latency_factor, bw = sc_.bandwidth_factor;
  if (sc_.network_model == "textbook") {
    lat = lat < 0 ? 1 : lat;
    bw = bw < 0 ? 1 : bw;
  }
  if (lat >= 0) args.push_back(absl::StrCat("--cfg=network/latency-factor:", lat));
  if (bw >= 0) args.push_back(absl::StrCat("--cfg=network/bandwidth-factor:", bw));
  for (const std::string& c : options_.simgrid_config) args.push_back("--cfg=" + c);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  s4u::Engine engine(&argc, argv.data());
  BuildPlatform();
  BuildPopulation();
  const double eff_lat = simgrid::config::get_value<double>("network/latency-factor");
  const double eff_bw = simgrid::config::get_value<double>("network/bandwidth-factor");
  network_model_ = absl::StrFormat("%s (network/model %s, latency factor %g, bandwidth factor %g)",
                                   sc_.network_model, model, eff_lat, eff_bw);
  // Services first, then chat servers.
  for (int ep = 0; ep < kFirstServerEp; ep++) nodes_[ep] = MakeService(ep);
  for (int ep = 0; ep < hub_ep0_; ep++) {
    s4u::Actor::create(endpoints_[ep].name, endpoints_[ep].host, [this, ep] {
      BindOutbox(static_cast<size_t>(ep));
      if (ep < kFirstServerEp) {
        Effects effects;
        nodes_[ep]->Start(LocalNow(endpoints_[ep], 0), effects);
        ApplyNodeEffects(ep, effects);
      } else {
        RestartServer(ep - kFirstServerEp);
      }
      NodeLoop(ep);
    });
  }
  for (int h = 0; h < hubs_; h++) {
    s4u::Actor::create(endpoints_[HubEndpoint(h)].name, endpoints_[HubEndpoint(h)].host,
                       [this, h] {
                         BindOutbox(static_cast<size_t>(HubEndpoint(h)));
                         HubLoop(h);
                       });
  }
  s4u::Actor::create("controller", endpoints_[kStoreEp].host, [this] {
    BindOutbox(sends_.size() - 1);
    ControllerLoop();
  });
  engine.run();
  // Comms still in flight when the run ended: drop them while the engine lives, and free the
  // packets nobody received.
  sends_.clear();
  for (Bundle* b : in_flight_) delete b;
  in_flight_.clear();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  RunResult r = Collect(wall);
  r.network_model = network_model_;
  return r;
}

}  // namespace

RunResult RunSimulation(const RunOptions& options) {
  WorldImpl world(options);
  return world.Run();
}

}  // namespace chatlab::sim
