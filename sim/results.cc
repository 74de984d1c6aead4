#include "sim/results.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chatlab_version.h"  // generated at build time (cmake/version.cmake)
#include "core/oracle.h"
#include "host/deployment.h"

namespace chatlab::sim {
namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json QuantilesJson(const Quantiles& q, bool percentiles = false) {
  ordered_json j{{"count", q.count}, {"mean_ms", q.mean_ms}, {"p50_ms", q.p50_ms},
                 {"p95_ms", q.p95_ms}, {"p99_ms", q.p99_ms}};
  if (percentiles) j["percentiles_ms"] = q.percentiles_ms;
  return j;
}

std::string Quote(const std::string& s) {
  if (s.find_first_of(" \t'\"$") == std::string::npos) return s;
  return absl::StrCat("'", s, "'");
}

}  // namespace

std::string ReproCommand(const Scenario& s, uint64_t seed, const std::vector<std::string>& sets) {
  std::string cmd = absl::StrCat("chatlab run ", s.path.empty() ? "" : Quote(s.path) + " ",
                                 "--seed ", seed);
  for (const std::string& a : sets) absl::StrAppend(&cmd, " --set ", Quote(a));
  return cmd;
}

std::string ChatlabVersion() { return CHATLAB_VERSION; }

std::string ResultsJson(const Scenario& s, const RunResult& r, const std::string& repro) {
  ordered_json j;
  j["scenario"] = r.scenario;
  j["scenario_file"] = s.path;
  j["chatlab_version"] = ChatlabVersion();
  j["seed"] = r.seed;
  j["repro"] = repro;
  j["trace_digest"] = absl::StrFormat("%016x", r.trace_digest);
  j["events"] = r.events;
  j["sim_time_s"] = r.sim_time_s;
  j["wall_time_s"] = r.wall_time_s;
  j["wall_time_load_s"] = r.wall_time_load_s;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  j["network_model"] = r.network_model;
  j["design"] = {{"id_scheme", std::string(IdSchemeName(s.protocol.id_scheme))},
                 {"id_generator", std::string(IdGeneratorName(s.protocol.id_generator))},
                 {"forwarding", std::string(ForwardingStrategyName(s.protocol.forwarding))},
                 {"group_delivery", std::string(GroupDeliveryName(s.protocol.group_delivery))},
                 {"write_path", std::string(WritePathName(s.protocol.write_path))},
                 {"presence_fanout", std::string(PresenceFanoutName(s.protocol.presence_fanout))},
                 {"dedup_enabled", s.protocol.dedup_enabled},
                 {"gap_detection_enabled", s.protocol.gap_detection_enabled},
                 {"store_memory", s.protocol.store_tail_cache == 0 ? "all" : "tail"},
                 {"store_dedup", s.protocol.store_dedup_lookup ? "lookup" : "window"},
                 {"store_shards", absl::StrCat(s.protocol.store_shards)}};
  ordered_json invariants = ordered_json::object();
  ForEachInvariant(r.invariants, [&](const char* name, uint64_t n) { invariants[name] = n; });
  invariants["ok"] = r.invariants.total() == 0;
  invariants["first_violations"] = r.first_violations;
  j["invariants"] = invariants;
  ordered_json fired = ordered_json::object();
  for (const auto& [kind, n] : r.faults_fired) fired[kind] = n;
  ordered_json recovery = ordered_json::object();
  for (const auto& [path, n] : r.recovery_paths) recovery[path] = n;
  j["faults_fired"] = fired;
  j["faults_never_fired"] = r.faults_never_fired;
  j["recovery_paths"] = recovery;
  const RunMetrics& m = r.metrics;
  // Undefined (null) rather than 0 when nothing was sent or shown: a report averaging it across
  // seeds must skip that run, not count it as free.
  auto ratio = [](uint64_t a, uint64_t b) {
    return b == 0 ? ordered_json() : ordered_json(static_cast<double>(a) / static_cast<double>(b));
  };
  auto window_rate = [&](uint64_t count) {
    return m.window_s > 0 ? static_cast<double>(count) / m.window_s : 0.0;
  };
  ordered_json ids_minted = ordered_json::object();
  for (size_t s = 0; s < m.ids_minted.size(); s++) {
    ids_minted[absl::StrCat("server", s)] = m.ids_minted[s];
  }
  // By slot name, as node_load names the shards ("store", "store1", ...).
  ordered_json store_writes_by_shard = ordered_json::object();
  for (size_t k = 0; k < m.store_writes_by_shard.size(); k++) {
    store_writes_by_shard[host::StoreShardName(static_cast<int>(k))] = m.store_writes_by_shard[k];
  }
  ordered_json load = ordered_json::array();
  for (const NodeLoad& n : m.node_load) {
    load.push_back({{"node", n.node},
                    {"messages_in", n.messages_in},
                    {"messages_out", n.messages_out},
                    {"busy_s", n.busy_s},
                    {"utilization", n.utilization},
                    {"arrival_rate_per_s", n.arrival_rate_per_s},
                    {"mean_sojourn_ms", n.mean_sojourn_ms},
                    {"mean_in_system_sampled", n.mean_in_system_sampled},
                    {"mean_in_system_little", n.mean_in_system_little},
                    {"busy_s_window", n.busy_s_window},
                    {"utilization_window", n.utilization_window}});
  }
  j["metrics"] = {
      {"window_start_s", m.window_start_s},
      {"window_end_s", m.window_end_s},
      {"window_s", m.window_s},
      {"messages_sent", m.messages_sent},
      {"messages_sent_window", m.messages_sent_window},
      {"messages_acked", m.messages_acked},
      {"messages_delivered", m.messages_delivered},
      {"displays", m.displays},
      {"displays_window", m.displays_window},
      {"end_to_end_latency", QuantilesJson(m.end_to_end, /*percentiles=*/true)},
      {"ack_latency", QuantilesJson(m.ack, /*percentiles=*/true)},
      {"delivery_latency_online", QuantilesJson(m.delivery_online)},
      {"delivery_latency_offline", QuantilesJson(m.delivery_offline)},
      {"delivery_after_heal", m.delivery_after_heal},
      {"catchups", m.catchups},
      {"gaps_detected", m.gaps_detected},
      {"retries", m.retries},
      {"inter_server_requests", m.inter_server_requests},
      {"inter_server_requests_window", m.inter_server_requests_window},
      {"inter_server_requests_per_s", m.inter_server_requests_per_s},
      {"forward_batches", m.forward_batches},
      {"forward_results", m.forward_results},
      {"broker_publishes", m.broker_publishes},
      {"broker_deliveries", m.broker_deliveries},
      {"broker_acks", m.broker_acks},
      {"broker_publishes_window", m.broker_publishes_window},
      {"broker_deliveries_window", m.broker_deliveries_window},
      {"broker_acks_window", m.broker_acks_window},
      {"broker_subscribes_window", m.broker_subscribes_window},
      {"broker_redeliveries_window", m.broker_redeliveries_window},
      {"forward_entries", m.forward_entries},
      {"forward_entries_window", m.forward_entries_window},
      {"forward_requests_window", m.forward_requests_window},
      {"forward_buffers_window", m.forward_buffers_window},
      {"forward_entries_per_buffer", ratio(m.forward_entries_window, m.forward_buffers_window)},
      {"forward_requests_per_buffer", ratio(m.forward_requests_window, m.forward_buffers_window)},
      {"buffer_flushes_window", m.buffer_flushes_window},
      {"buffer_flushed_entries_window", m.buffer_flushed_entries_window},
      {"buffer_mean_wait_ms", m.buffer_mean_wait_ms},
      {"chat_servers_up_mean", m.chat_servers_up_mean},
      {"chat_servers_up_at_window_end", m.chat_servers_up_at_window_end},
      {"node_messages", m.node_messages},
      {"node_bytes", m.node_bytes},
      {"client_messages", m.client_messages},
      {"setup_backend_messages", m.setup_backend_messages},
      {"setup_backend_messages_window", m.setup_backend_messages_window},
      {"setup_backend_messages_per_s", window_rate(m.setup_backend_messages_window)},
      {"backend_traffic_window", m.backend_traffic_window},
      {"node_traffic_window", m.node_traffic_window},
      {"backend_messages_per_sent", ratio(m.backend_traffic_window, m.messages_sent_window)},
      {"store_requests", m.store_requests},
      {"store_requests_per_s", m.store_requests_per_s},
      {"store_writes", m.store_writes},
      {"store_writes_by_shard", store_writes_by_shard},
      {"store_reads", m.store_reads},
      {"store_messages_read", m.store_messages_read},
      {"store_reads_window", m.store_reads_window},
      {"store_messages_read_window", m.store_messages_read_window},
      {"read_after_write_checks", m.read_after_write_checks},
      {"read_after_write_misses", m.read_after_write_misses},
      {"read_after_write_checks_window", m.read_after_write_checks_window},
      {"read_after_write_misses_window", m.read_after_write_misses_window},
      {"notifications", m.notifications},
      {"presence_pushes", m.presence_pushes},
      {"presence_push_recipients", m.presence_push_recipients},
      {"presence_polled", m.presence_polled},
      {"id_collisions", m.id_collisions},
      {"out_of_order_ids", m.out_of_order_ids},
      {"ids_lifted", m.ids_lifted},
      {"id_lift_max", m.id_lift_max},
      {"writer_batches", m.writer_batches},
      {"writer_mean_wait_ms", m.writer_mean_wait_ms},
      {"broker_dropped", m.broker_dropped},
      {"writer_items", m.writer_items},
      {"writer_mean_batch", m.writer_mean_batch},
      {"writer_arrival_rate_per_s", m.writer_arrival_rate_per_s},
      {"writer_mean_waiting_sampled", m.writer_mean_waiting_sampled},
      {"queue_samples", m.queue_samples},
      {"write_amplification", ratio(m.node_traffic_window, m.messages_sent_window)},
      {"read_amplification", ratio(m.store_messages_read_window, m.displays_window)},
      {"store_reads_per_delivered", ratio(m.store_reads_window, m.displays_window)},
      {"presence_staleness", QuantilesJson(m.presence_staleness)},
      {"presence_view_changes", m.presence_view_changes},
      {"presence_messages", m.presence_messages},
      {"presence_messages_per_s", m.presence_messages_per_s},
      {"presence_statuses_pushed_window", m.presence_statuses_pushed_window},
      {"presence_statuses_polled_window", m.presence_statuses_polled_window},
      {"presence_statuses_per_s", m.presence_statuses_per_s},
      {"offline_delivery", QuantilesJson(m.offline_delivery)},
      {"offline_fetch", QuantilesJson(m.offline_fetch)},
      {"background_wakes", m.background_wakes},
      {"ids_minted", ids_minted},
      {"failover_affected_users", m.failover_affected_users},
      {"failover_unrecovered_users", m.failover_unrecovered_users},
      {"failover_reconnect_s", m.failover_reconnect_s},
      {"failover_load_ratio", m.failover_load_ratio},
      {"failover_reconnect", QuantilesJson(m.failover_reconnect)},
      {"node_load", load}};
  return j.dump(2) + "\n";
}

std::string Summary(const Scenario& s, const RunResult& r, const std::string& repro) {
  const RunMetrics& m = r.metrics;
  std::string out;
  absl::StrAppend(&out, "scenario  ", r.scenario, "  seed ", r.seed, "  digest ",
                  absl::StrFormat("%016x", r.trace_digest), "\n");
  absl::StrAppend(
      &out, "design    forwarding=", std::string(ForwardingStrategyName(s.protocol.forwarding)),
      " groups=", std::string(GroupDeliveryName(s.protocol.group_delivery)),
      " writes=", std::string(WritePathName(s.protocol.write_path)),
      " presence=", std::string(PresenceFanoutName(s.protocol.presence_fanout)),
      " ids=", std::string(IdSchemeName(s.protocol.id_scheme)),
      s.protocol.id_generator == IdGenerator::kChatServer ? " minted_by=chat_server" : "",
      s.protocol.store_shards > 1 ? absl::StrCat(" store_shards=", s.protocol.store_shards) : "",
      s.protocol.dedup_enabled ? "" : " DEDUP-OFF",
      s.protocol.gap_detection_enabled ? "" : " GAP-DETECTION-OFF", "\n");
  absl::StrAppend(&out, "network   ", r.network_model, "\n");
  absl::StrAppend(&out, absl::StrFormat("time      %.1f s simulated in %.2f s wall, %d events, "
                                        "peak RSS %.1f MB\n",
                                        r.sim_time_s, r.wall_time_s, r.events,
                                        static_cast<double>(r.peak_rss_bytes) / 1e6));
  absl::StrAppend(&out, "\ninvariants\n");
  auto row = [&](const char* name, uint64_t v) {
    absl::StrAppend(&out, absl::StrFormat("  %-24s %10d  %s\n", name, v, v == 0 ? "ok" : "VIOLATED"));
  };
  ForEachInvariant(r.invariants, row);
  for (const std::string& v : r.first_violations) absl::StrAppend(&out, "  first: ", v, "\n");
  absl::StrAppend(&out, "\nfaults fired\n");
  if (r.faults_fired.empty()) absl::StrAppend(&out, "  (none)\n");
  for (const auto& [kind, n] : r.faults_fired) {
    absl::StrAppend(&out, absl::StrFormat("  %-24s %10d\n", kind, n));
  }
  for (const std::string& f : r.faults_never_fired) {
    absl::StrAppend(&out, "  configured but never fired: ", f, "\n");
  }
  absl::StrAppend(&out, "\nrecovery paths reached\n");
  bool any_path = false;
  for (const auto& [path, n] : r.recovery_paths) {
    if (n == 0) continue;
    any_path = true;
    absl::StrAppend(&out, absl::StrFormat("  %-30s %10d\n", path, n));
  }
  if (!any_path) absl::StrAppend(&out, "  (none)\n");
  absl::StrAppend(&out, "\nmetrics\n");
  absl::StrAppend(&out, absl::StrFormat("  messages sent/acked/delivered  %d / %d / %d\n",
                                        m.messages_sent, m.messages_acked, m.messages_delivered));
  absl::StrAppend(&out, absl::StrFormat("  end-to-end ms p50/p95/p99      %.1f / %.1f / %.1f\n",
                                        m.end_to_end.p50_ms, m.end_to_end.p95_ms,
                                        m.end_to_end.p99_ms));
  absl::StrAppend(&out, absl::StrFormat("  ack ms p50/p95/p99             %.1f / %.1f / %.1f\n",
                                        m.ack.p50_ms, m.ack.p95_ms, m.ack.p99_ms));
  absl::StrAppend(&out, absl::StrFormat("  gaps / catch-ups / retries     %d / %d / %d\n",
                                        m.gaps_detected, m.catchups, m.retries));
  absl::StrAppend(&out, absl::StrFormat("  inter-server requests          %d (%.1f/s)\n",
                                        m.inter_server_requests, m.inter_server_requests_per_s));
  absl::StrAppend(&out, absl::StrFormat("  store requests / writes / reads %d (%.1f/s) / %d / %d\n",
                                        m.store_requests, m.store_requests_per_s, m.store_writes,
                                        m.store_reads));
  absl::StrAppend(&out, absl::StrFormat("  read-after-write misses        %d of %d acks\n",
                                        m.read_after_write_misses, m.read_after_write_checks));
  absl::StrAppend(&out, absl::StrFormat("  notifications / presence pushes %d / %d\n",
                                        m.notifications, m.presence_pushes));
  double busiest = 0;
  std::string busiest_name;
  for (const NodeLoad& n : m.node_load) {
    if (n.utilization > busiest) {
      busiest = n.utilization;
      busiest_name = n.node;
    }
  }
  absl::StrAppend(&out, absl::StrFormat("  busiest node                   %s (%.1f%% CPU)\n",
                                        busiest_name, 100 * busiest));
  absl::StrAppend(&out, "\nrepro: ", repro, "\n");
  return out;
}

}  // namespace chatlab::sim
