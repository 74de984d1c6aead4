// The SimGrid environment: runs the unchanged core state machines on a simulated network.
//
// One SimGrid actor per node (chat servers, store, batch writer, user mapping, presence,
// notification, queue broker), each on its own host; one actor per client host drives a whole
// population of ClientSessions and the workload generator. Messages are SimGrid communications
// sized by their encoded bytes; timers come from the simulated clock; service nodes spend
// simulated CPU per operation, so load turns into queueing delay. A fault layer above SimGrid
// (SimGrid itself never loses, duplicates or reorders) drops, duplicates and delays node
// messages, cuts partitions, crashes and restarts chat servers, and skews node clocks. The
// oracle (core/oracle.h) watches every client.
//
// SimGrid allows one engine per process, so a process runs one World.
#ifndef CHATLAB_SIM_WORLD_H_
#define CHATLAB_SIM_WORLD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/oracle.h"
#include "sim/scenario.h"

namespace chatlab::sim {

// Figures of one run (docs/results.md describes each).
struct Quantiles {
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, mean_ms = 0;
  uint64_t count = 0;
  // p0, p1, ..., p100 by the same nearest rank (101 values; empty without samples): the CDF
  // `chatlab compare` overlays (results.json writes them for the ack and end-to-end latencies).
  std::vector<double> percentiles_ms;
};

struct NodeLoad {
  std::string node;
  uint64_t messages_in = 0;
  double busy_s = 0;        // simulated CPU time spent
  double utilization = 0;   // busy_s / simulated time
  uint64_t messages_out = 0;
  double arrival_rate_per_s = 0;      // lambda
  double mean_sojourn_ms = 0;         // W: arrival to effects leaving (queueing + service)
  double mean_in_system_sampled = 0;  // L, sampled every scenario.sample_interval_ms
  double mean_in_system_little = 0;   // lambda * W
  double busy_s_window = 0;           // CPU of the messages that arrived in the window
  double utilization_window = 0;      // busy_s_window / window length
};

struct RunMetrics {
  uint64_t messages_sent = 0;
  uint64_t messages_acked = 0;
  uint64_t messages_delivered = 0;  // first display to a participant other than the sender
  Quantiles end_to_end;
  Quantiles ack;
  uint64_t catchups = 0;
  uint64_t gaps_detected = 0;
  uint64_t retries = 0;
  uint64_t inter_server_requests = 0;
  double inter_server_requests_per_s = 0;
  uint64_t forward_entries = 0;  // messages, receipts and typing those requests carried
  uint64_t node_messages = 0;
  uint64_t node_bytes = 0;
  uint64_t client_messages = 0;  // client <-> server messages, both directions
  uint64_t displays = 0;         // a message shown to one recipient (each counted once)
  // The store's counters are summed over its shards (protocol.store_shards), each shard's last
  // incarnation.
  uint64_t store_requests = 0;
  uint64_t store_writes = 0;  // messages stored
  // Messages each store shard stored (by shard; one entry unsharded): how the conversations'
  // traffic split.
  std::vector<uint64_t> store_writes_by_shard;
  uint64_t store_reads = 0;   // StoreRead requests
  uint64_t store_messages_read = 0;
  double store_requests_per_s = 0;
  uint64_t read_after_write_checks = 0;
  uint64_t read_after_write_misses = 0;
  // The same, for acks in the measurement window only (the reports' figure).
  uint64_t read_after_write_checks_window = 0;
  uint64_t read_after_write_misses_window = 0;
  uint64_t notifications = 0;
  uint64_t presence_pushes = 0;
  uint64_t presence_push_recipients = 0;
  uint64_t presence_polled = 0;
  uint64_t id_collisions = 0;
  uint64_t out_of_order_ids = 0;
  // With id_generator = chat_server: the ids each chat server minted (by server index; its last
  // incarnation), so a reader can see which share of a conversation each clock stamped.
  std::vector<uint64_t> ids_minted;
  uint64_t ids_lifted = 0;   // chat_server ids at or below the head, stored as head + 1
  uint64_t id_lift_max = 0;  // the largest lift (timestamp ids: us of clock skew), of any shard
  uint64_t writer_batches = 0;
  double writer_mean_wait_ms = 0;
  uint64_t broker_dropped = 0;
  uint64_t writer_items = 0;
  double writer_mean_batch = 0;
  double writer_arrival_rate_per_s = 0;
  double writer_mean_waiting_sampled = 0;
  uint64_t queue_samples = 0;
  Quantiles presence_staleness;       // change of a contact's status -> a viewer sees it
  uint64_t presence_view_changes = 0;
  uint64_t presence_messages = 0;     // into and out of the presence service
  double presence_messages_per_s = 0;
  // Statuses the presence service sent to viewers in the window: one per recipient of a push,
  // one per status a poll answered (the per-recipient unit: a push to 5 viewers is 5).
  uint64_t presence_statuses_pushed_window = 0;
  uint64_t presence_statuses_polled_window = 0;
  double presence_statuses_per_s = 0;
  Quantiles offline_delivery;         // sent while the recipient was offline -> shown to it
  Quantiles offline_fetch;            // ... of those: the device began connecting -> shown
  uint64_t background_wakes = 0;
  uint64_t failover_affected_users = 0;
  uint64_t failover_unrecovered_users = 0;
  double failover_reconnect_s = 0;    // first crash -> last cut-off user connected again
  double failover_load_ratio = 0;     // node messages 10 s after the crash / 10 s before
                                      // (kFailoverWindowS in sim/world/world_impl.h)
  Quantiles failover_reconnect;       // per user cut off: its crash -> connected again
  // The measurement window (Scenario::window_start_s/end_s) and what was measured in it.
  double window_start_s = 0, window_end_s = 0, window_s = 0;
  uint64_t messages_sent_window = 0;
  Quantiles delivery_online;          // per (message, recipient): connected send -> display
  Quantiles delivery_offline;         // ... the recipient was not connected throughout
  uint64_t delivery_after_heal = 0;
  uint64_t displays_window = 0;
  uint64_t backend_traffic_window = 0;     // message traffic, node + client, in the window
  uint64_t node_traffic_window = 0;        // ... node messages only
  uint64_t setup_backend_messages = 0;     // whole run
  uint64_t setup_backend_messages_window = 0;
  uint64_t store_reads_window = 0, store_messages_read_window = 0;
  uint64_t forward_batches = 0, forward_results = 0;
  uint64_t broker_publishes = 0, broker_deliveries = 0, broker_acks = 0;
  // The same hops in the window, and what the broker handled in it: subscribes received and
  // redeliveries its housekeeping tick sent (first deliveries = deliveries - redeliveries).
  uint64_t broker_publishes_window = 0, broker_deliveries_window = 0, broker_acks_window = 0;
  uint64_t broker_subscribes_window = 0, broker_redeliveries_window = 0;
  uint64_t inter_server_requests_window = 0;
  uint64_t forward_entries_window = 0;
  uint64_t forward_requests_window = 0;    // ForwardBatch + QueuePublish sent by servers
  uint64_t forward_buffers_window = 0;     // (source, destination) server pairs that forwarded
  uint64_t buffer_flushes_window = 0, buffer_flushed_entries_window = 0;
  double buffer_mean_wait_ms = 0;
  double chat_servers_up_mean = 0;
  int chat_servers_up_at_window_end = 0;
  std::vector<NodeLoad> node_load;
};

struct RunResult {
  std::string scenario;
  uint64_t seed = 0;
  uint64_t trace_digest = 0;
  uint64_t events = 0;
  double sim_time_s = 0;
  double wall_time_s = 0;
  // Wall seconds the simulated clock took from workload.send_start_s to duration_s: the load
  // phase, without the connect ramp before it or the quiet time after it.
  double wall_time_load_s = 0;
  std::string network_model;  // e.g. "LV08 (latency factor 13.01, bandwidth factor 0.97)"
  InvariantCounts invariants;
  std::vector<std::string> first_violations;
  std::map<std::string, uint64_t> faults_fired;
  std::vector<std::string> faults_never_fired;
  // How often each recovery path ran (every path listed, 0 included; docs/results.md).
  std::map<std::string, uint64_t> recovery_paths;
  RunMetrics metrics;
  uint64_t peak_rss_bytes = 0;
};

struct RunOptions {
  Scenario scenario;
  uint64_t seed = 1;
  // Receives one line per event, in order, with the simulated timestamp (for --trace).
  std::function<void(const std::string&)> trace;
  bool progress = false;  // progress bar on stderr
  // Extra SimGrid --cfg options (e.g. "network/TCP-gamma:0"); for experiments.
  std::vector<std::string> simgrid_config;
};

// Runs one simulation. Call at most once per process (one SimGrid engine per process).
RunResult RunSimulation(const RunOptions& options);

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_WORLD_H_
