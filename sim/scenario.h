// Scenario: everything one simulation run depends on, besides its seed.
//
// A scenario file (TOML, scenarios/*.toml) sets any subset of the keys below; the rest keep
// their defaults. `--set section.key=value` overrides a key after the file is read, through the
// same key table, so a file and the command line accept exactly the same names and types.
// Errors name the file, the line and the key ("scenarios/x.toml:12: workload.users: expected an
// integer"). docs/simulator.md lists every key.
#ifndef CHATLAB_SIM_SCENARIO_H_
#define CHATLAB_SIM_SCENARIO_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"

namespace chatlab::sim {

// Which endpoints a partition separates. A selector is "store", "writer", "mapping",
// "presence", "notification", "broker", "services" (every service), "server:N", "region:N" (its
// chat servers and client hosts) or "clients" (every client host). With protocol.store_shards > 1
// "store" is shard 0 and "store1", "store2", ... the others (ServiceNodeNames).
struct PartitionSpec {
  double start_s = 0;
  double end_s = 0;
  std::string a;
  std::string b;
  bool one_way = false;  // only a -> b is cut
};

// A node crash: the process dies, losing its memory and whatever its disk had not synced.
// node is "server:N" (0-based chat server), or a service: "store", "writer", "mapping",
// "presence", "notification", "broker", and with protocol.store_shards > 1 the other store
// shards "store1", "store2", ... (ServiceNodeNames). The legacy key `server = N` means
// "server:N".
struct CrashSpec {
  std::string node;
  int server = -1;        // legacy form of node = "server:N"; < 0: not given
  double at_s = 0;
  double restart_s = -1;  // < 0: stays down until the heal (restarted then)
  // The crash also tears the last record the node wrote but had not synced: it is half on disk,
  // and the restart must detect and discard it (a checksum does) rather than replay garbage.
  bool torn_write = false;
};

// A node pause (a stop-the-world GC, a VM descheduled, SIGSTOP): from at_s the node takes no
// input, fires no timer and sends nothing, and keeps its memory; what is sent to it waits (as in
// its sockets' buffers) and is taken in order at resume_s. Its clients' connections stay open.
// node as for a crash. resume_s < 0: paused until the heal. A pause must not overlap a crash of
// the same node (Validate refuses it: a restarted process is not paused).
struct PauseSpec {
  std::string node;
  double at_s = 0;
  double resume_s = -1;
};

struct ClockSpec {
  std::string node;       // "store", "writer", "server:N", ...
  double skew_ms = 0;     // constant offset
  double drift_ppm = 0;   // rate error, parts per million
  double step_at_s = -1;  // when >= 0: at this time the clock jumps by step_ms (NTP step)
  double step_ms = 0;
};

struct Scenario {
  // [scenario]
  std::string name = "unnamed";
  std::string description;
  std::string path;  // the file it came from ("" for embedded defaults)
  uint64_t seed = 1;
  double duration_s = 20;   // the workload sends during [0, duration)
  double quiet_s = 30;      // then faults heal, users come online, nobody sends
  double delivery_bound_s = 30;  // liveness: every message delivered this long after the heal
  double sample_interval_ms = 10;  // queue-length sampling for Little's law (0 = off)
  // The warm-up excluded from every rate, latency distribution and per-message ratio: the
  // measurement window is [window_start_s(), window_end_s()) (docs/results.md). < 0: the
  // connect ramp (workload.connect_ramp_s), which is setup, not steady state.
  double warmup_s = -1;

  // [network]
  // textbook (CM02, factors 1) | CM02 | LV08 | uncontended (latency + size / bandwidth along
  // the route, factors 1, no bandwidth sharing and no SimGrid communications: the fast model)
  std::string network_model = "textbook";
  double latency_factor = -1;          // < 0: the model's default
  double bandwidth_factor = -1;
  double access_latency_ms = 0.05;     // node <-> its region's switch
  double access_bandwidth_mbps = 10000;
  double inter_region_latency_ms = 40;
  double inter_region_bandwidth_mbps = 10000;
  double client_latency_ms = 20;       // a client hub's last mile
  double client_bandwidth_mbps = 100000;

  // [topology]
  int regions = 1;
  int servers_per_region = 2;
  int client_hosts_per_region = 1;
  // When > 0: add client hosts to each region until none drives more than this many users. One
  // actor per host drives all its users, and SimGrid's per-actor bookkeeping grows with the
  // communications that actor has in flight. 0 keeps exactly client_hosts_per_region.
  int users_per_client_host = 5000;
  // When > 0: chat servers scale with the users, servers_per_region = ceil(users / regions /
  // users_per_server) (at least 1), set by ScaleServers after every override. 0 keeps
  // servers_per_region as given.
  int users_per_server = 0;
  int services_region = 0;

  // [cost] simulated CPU per input, in microseconds on the reference core (one core of the
  // machine the benchmarks ran on). A node's CPU for one input is its role's request cost, plus
  // its item cost times the entries the input carries (the store: the rows it writes, by table,
  // and reads), plus send_us per message it sends (sim/world/cost.h). docs/cost-model.md gives
  // every default's source: a benchmark of ours with the command that prints it, a published
  // figure, or a stated assumption.
  double cpu_speed_factor = 1.0;      // hosts' CPU speed relative to the reference core
  double send_us = 5.5;               // per message a node sends: encode, frame, write
  double server_request_us = 5.8;     // chat server, per inbound message or request
  double server_item_us = 0.2;        // ... per entry it carries (a forwarded buffer holds many)
  double store_request_us = 13.9;     // store, per request (receive, statement, index descent)
  double store_commit_us = 10.7;      // ... per request that writes (one transaction)
  double store_item_write_us = 25.1;  // per message row written
  double store_item_membership_us = 12.2;  // per membership change (two rows)
  double store_item_receipt_us = 10.3;     // per receipt watermark or group aggregate upserted
  double store_item_read_us = 0.32;        // per row a read returns (messages, heads, members)
  // A read below the store's tail cache (protocol.store_tail_cache > 0): the time its disk
  // takes to answer the LoadHistory (latency, not CPU).
  double store_history_read_us = 100;
  double writer_request_us = 5.5;          // batch writer, per request
  double writer_item_us = 2;               // ... per message queued or committed (its log)
  double mapping_request_us = 5.5;         // user mapping, per request
  double mapping_item_us = 0.2;            // ... per user registered or looked up
  double presence_request_us = 5.5;
  double presence_item_us = 0.2;  // per user set, looked up or pushed to
  double notification_request_us = 5.5;
  double notification_item_us = 0.2;
  double broker_request_us = 5.5;  // queue broker, per request
  double broker_item_us = 1;       // ... per entry published or delivered
  // The simulated disk under nodes that persist (store, writer): a record written at t is
  // durable at t + fsync_ms (records written while an fsync runs share the next one: group
  // commit), and the node's answers wait for it. A crash loses every record not yet durable.
  // 0 (the default, which every report so far assumes): durable at once.
  double fsync_ms = 0;

  // [workload]
  int users = 100;
  double online_fraction = 0.8;
  double connect_ramp_s = 1;         // users online at the start connect uniformly in [0, ramp)
  double send_start_s = 0;           // no workload sends before this (e.g. after the ramp)
  double send_end_s = 0;             // ... nor from this on (0: duration_s); churn goes on
  double session_mean_s = 300;
  double offline_mean_s = 60;
  double reconnect_other_server = 0.5;
  double send_rate_hz = 0.2;         // mean sends per online user per second
  double send_rate_total_hz = 0;     // > 0: overrides send_rate_hz with this total / users
  std::string inter_send = "pareto";  // pareto | exponential
  double pareto_alpha = 1.5;
  double group_share = 0.3;
  int groups = 10;
  int group_size_min = 3;
  int group_size_max = 10;
  int contacts_per_user = 5;
  // A long-lived account: before the measurement window each user sends one message to each of
  // its contacts, spread evenly over the first 80% of the warm-up (window_start_s()), so that its
  // client and the presence service know as many conversations as it has contacts (the client
  // polls and the presence service ranks only the people a user has chatted with). Setup
  // traffic: outside every window metric. Needs a warm-up.
  bool introduce_contacts = false;
  double typing_probability = 0.3;
  double typing_lead_ms = 1500;
  double read_delay_mean_s = 5;
  int body_bytes = 100;
  bool wake_on_push = false;        // a push notification wakes an offline app to sync
  double background_sync_s = 0;     // an offline device syncs in the background this often
  double background_session_s = 2;  // how long a background wake stays connected

  // [protocol]
  ProtocolConfig protocol;

  // [faults]
  double loss = 0;
  double duplicate = 0;
  double delay_probability = 0;
  double delay_ms_max = 0;
  double push_loss = 0;
  // Broken on purpose: the store's and the writer's answers leave before the disk has their
  // records, so a crash can lose what was acknowledged. Shows that the oracle and the disk model
  // catch it; never in a must-hold run.
  bool unsafe_ack_before_sync = false;
  std::vector<PartitionSpec> partitions;
  std::vector<CrashSpec> crashes;
  std::vector<PauseSpec> pauses;
  std::vector<ClockSpec> clocks;

  int servers() const { return regions * servers_per_region; }
  // Client hosts per region: client_hosts_per_region, or more per users_per_client_host.
  int hosts_per_region() const {
    if (users_per_client_host <= 0) return client_hosts_per_region;
    const int64_t per_region = (static_cast<int64_t>(users) + regions - 1) / regions;
    const int64_t needed = (per_region + users_per_client_host - 1) / users_per_client_host;
    return static_cast<int>(std::max<int64_t>(client_hosts_per_region, needed));
  }
  int client_hosts() const { return regions * hosts_per_region(); }
  // The measurement window: messages sent in [window_start_s(), window_end_s()) and events that
  // happen in it. It starts at the warm-up's end (warmup_s, or connect_ramp_s when warmup_s < 0)
  // but never before sending starts, and ends when sending ends (send_end_s, or duration_s).
  double window_end_s() const { return send_end_s > 0 ? send_end_s : duration_s; }
  double window_start_s() const {
    const double warmup = warmup_s < 0 ? connect_ramp_s : warmup_s;
    return std::min(std::max(warmup, send_start_s), window_end_s());
  }
  double window_s() const { return window_end_s() - window_start_s(); }
  // Mean sends per user per second: send_rate_total_hz spread over the users when it is set.
  double send_rate_per_user_hz() const {
    return send_rate_total_hz > 0 ? send_rate_total_hz / users : send_rate_hz;
  }
};

// The scenario with every default (what `chatlab run` uses without a file's overrides).
Scenario DefaultScenario();

// Reads a TOML scenario file. InvalidArgument / NotFound name the file, line and key.
absl::StatusOr<Scenario> LoadScenario(const std::string& path);
// Parses TOML text (path is only used in messages).
absl::StatusOr<Scenario> ParseScenario(const std::string& text, const std::string& path);
// Applies one "section.key=value" override. A field of a fault entry is a key too:
// "faults.crash.N.node=writer", "faults.pause.N.at_s=3", "faults.clock.N.skew_ms=5" (N: the
// entry's 0-based index among the file's [[faults.crash]] / [[faults.pause]] / [[faults.clock]]
// entries; the list grows with default entries up to N), so a sweep can vary which node crashes
// or how far a clock is off.
absl::Status ApplyOverride(Scenario& s, const std::string& assignment);
// Derives servers_per_region from topology.users_per_server when that is set (a no-op otherwise).
// Every environment calls it after the file and the overrides, before Validate.
void ScaleServers(Scenario& s);
// Checks ranges and cross-key consistency (e.g. group_size_min <= group_size_max).
absl::Status Validate(const Scenario& s);
// The services a [[faults.crash]] or a selector may name besides "server:N" are the deployment's
// (host::Services(), host/deployment.h).
// Their names as s deploys them, in start order: the registry's, with a sharded store's shards
// in the store's place ("store", "store1", ..., host::StoreShardName). protocol.store_shards out
// of range counts as the nearest valid value (Validate refuses it).
std::vector<std::string> ServiceNodeNames(const Scenario& s);
// The crash's node as a selector ("server:N" for the legacy `server = N` form).
std::string CrashNode(const CrashSpec& c);
// The chat server index of a "server:N" crash, or -1 for a service crash.
int CrashServerIndex(const CrashSpec& c);
// Checks one crash entry against the scenario's topology.
absl::Status ValidateCrash(const Scenario& s, const CrashSpec& c);
// When a pause ends: its resume_s, or the heal (duration_s) when it has none or a later one.
double PauseEnd(const Scenario& s, const PauseSpec& p);
// When a crash's node is back: its restart_s, or the heal when it has none.
double CrashEnd(const Scenario& s, const CrashSpec& c);
// Checks one pause entry against the scenario's topology and its crashes.
absl::Status ValidatePause(const Scenario& s, const PauseSpec& p);
// Every key, "section.key", with its type and default, for --help and docs.
std::vector<std::string> DescribeKeys();

// One settable key's value, typed as TOML holds it: integers (any width) as int64_t, design
// switches as their names.
struct KeyValue {
  std::string key;  // "section.key"
  std::variant<int64_t, double, bool, std::string> value;
};
// Every settable key of s with its value, in key order (not the [[faults.*]] lists).
std::vector<KeyValue> KeyValues(const Scenario& s);
// TOML text that ParseScenario reads back to the same scenario: the keys whose values differ
// from DefaultScenario(), then every [[faults.partition]], [[faults.crash]], [[faults.pause]] and
// [[faults.clock]] entry with all its fields (a crash always as node = "..."). Deterministic: the same scenario
// gives the same bytes. (sim/scenario_toml.cc)
std::string ScenarioToToml(const Scenario& s);

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_SCENARIO_H_
