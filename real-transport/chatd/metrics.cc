#include "real-transport/chatd/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chatlab::real {

std::string RenderMetrics(const MetricsView& view) {
  std::string out;
  auto gauge = [&](std::string_view name, std::string_view help, double value,
                   std::string_view type = "gauge") {
    const absl::string_view n(name.data(), name.size());
    absl::StrAppend(&out, "# HELP ", n, " ", absl::string_view(help.data(), help.size()), "\n",
                    "# TYPE ", n, " ", absl::string_view(type.data(), type.size()), "\n", n, " ",
                    value, "\n");
  };
  auto counter = [&](std::string_view name, std::string_view help, uint64_t value) {
    gauge(name, help, static_cast<double>(value), "counter");
  };
  // The process's own, under the names every Prometheus client library uses: CPU (user and
  // system, every thread) and resident memory.
  {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    gauge("process_cpu_seconds_total", "User and system CPU time of chatd, every thread.",
          seconds(ru.ru_utime) + seconds(ru.ru_stime), "counter");
    uint64_t pages = 0, resident = 0;
    std::ifstream("/proc/self/statm") >> pages >> resident;
    gauge("process_resident_memory_bytes", "Resident memory of chatd.",
          static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
  const Metrics& m = view.metrics;
  const CommitPipeline::Stats no_storage;
  const CommitPipeline::Stats& storage = view.storage != nullptr ? *view.storage : no_storage;
  gauge("chatd_connections", "Open client connections (WebSocket).",
        static_cast<double>(view.ws_connections));
  counter("chatd_connections_total", "WebSocket connections accepted.", m.connections_total);
  counter("chatd_connections_refused_total", "Upgrades refused at connections_max or draining.",
          m.connections_refused);
  counter("chatd_connections_dropped_slow_total", "Connections dropped at send_queue_max.",
          m.connections_dropped_slow);
  gauge("chatd_send_queue_depth_sum", "Frames queued to clients, all connections.",
        static_cast<double>(view.send_queue_sum));
  gauge("chatd_send_queue_depth_max", "Frames queued to the most backed-up connection.",
        static_cast<double>(view.send_queue_max));
  counter("chatd_frames_in_total", "Client frames received.", m.frames_in);
  counter("chatd_frames_out_total",
          "Frames sent to clients (into their connections' write buffers).", m.frames_out);
  counter("chatd_frame_errors_total", "Client frames answered with ErrorReply by the adapter.",
          m.frame_errors);
  counter("chatd_rate_limited_total", "Frames refused by user_rate_per_s.", m.rate_limited);
  counter("chatd_http_requests_total", "HTTP requests.", m.http_requests);
  counter("chatd_http_unauthorized_total", "HTTP requests refused 401.", m.http_unauthorized);
  counter("chatd_tls_handshakes_failed_total",
          "Accepted connections closed because their TLS handshake failed (plain HTTP, a bad "
          "certificate, a timeout).",
          m.tls_handshakes_failed);
  counter("chatd_web_assets_served_total", "Files of the web client served.", m.web_assets_served);
  counter("chatd_logins_total", "Successful logins.", m.logins);
  counter("chatd_logins_failed_total", "Failed logins.", m.logins_failed);
  counter("chatd_node_messages_local_total", "Node messages within this process.",
          m.node_messages_local);
  counter("chatd_node_messages_sent_total", "Node messages POSTed to other processes.",
          m.node_messages_sent);
  counter("chatd_node_messages_received_total", "Node messages received by POST /node.",
          m.node_messages_received);
  counter("chatd_node_messages_dropped_total", "Node messages dropped (queue full, peer down).",
          m.node_messages_dropped);
  gauge("chatd_node_queue_depth", "Node messages waiting for a peer connection.",
        static_cast<double>(view.node_queue_depth));
  counter("chatd_storage_commits_total", "SQLite transactions committed.", storage.commits);
  counter("chatd_storage_records_total", "Persist records written.", storage.records);
  gauge("chatd_storage_deferred_effects", "Store effects waiting for a commit.",
        static_cast<double>(view.storage_held));
  counter("chatd_pushes_total", "PushToDevice effects (logged; no vendor configured).", m.pushes);
  m.ack_latency.Render("chatd_send_ack_latency_seconds", "SendMessage received to SendAck queued.",
                       out);
  storage.commit_latency.Render("chatd_storage_commit_latency_seconds",
                                "One SQLite commit (fsync included).", out);
  // A core node's Stats: one counter per field, named prefix + field + "_total".
  using Fields = std::initializer_list<std::pair<const char*, uint64_t>>;
  auto node_stats = [&](const char* prefix, std::string_view help, Fields fields) {
    for (const auto& [name, value] : fields) {
      counter(absl::StrCat(prefix, name, "_total"), help, value);
    }
  };
  const ChatServer::Stats& c = view.chat.stats();
  node_stats("chatlab_chat_server_", "ChatServer::Stats.",
             {{"sessions_opened", c.sessions_opened},
              {"sessions_closed", c.sessions_closed},
              {"sessions_displaced", c.sessions_displaced},
              {"client_requests", c.client_requests},
              {"sends", c.sends},
              {"sends_rejected", c.sends_rejected},
              {"acks", c.acks},
              {"duplicate_sends", c.duplicate_sends},
              {"local_deliveries", c.local_deliveries},
              {"forwards_sent", c.forwards_sent},
              {"forwards_received", c.forwards_received},
              {"forward_failures", c.forward_failures},
              {"notifications", c.notifications},
              {"mode_updates", c.mode_updates},
              {"timeouts", c.timeouts},
              {"client_errors", c.client_errors},
              {"unexpected_messages", c.unexpected_messages}});
  gauge("chatlab_chat_server_pending", "ChatServer operations waiting for a service.",
        static_cast<double>(view.chat.pending_count()));
  if (view.store != nullptr) {
    const MessageStore::Stats& s = view.store->stats();
    node_stats("chatlab_store_", "MessageStore::Stats.",
               {{"requests", s.requests},
                {"appends", s.appends},
                {"messages_stored", s.messages_stored},
                {"reads", s.reads},
                {"messages_read", s.messages_read},
                {"syncs", s.syncs},
                {"membership_ops", s.membership_ops},
                {"receipt_ops", s.receipt_ops},
                {"duplicates", s.duplicates},
                {"dedup_evictions", s.dedup_evictions},
                {"client_msg_id_reuses", s.client_msg_id_reuses},
                {"records_restored", s.records_restored},
                {"history_loads", s.history_loads},
                {"history_messages_loaded", s.history_messages_loaded},
                {"dedup_loads", s.dedup_loads},
                {"dedup_found_on_disk", s.dedup_found_on_disk},
                {"appends_behind_lookup", s.appends_behind_lookup}});
    gauge("chatlab_store_cached_messages",
          "Messages the store holds in memory (its tail cache; store_tail_cache).",
          static_cast<double>(view.store->cached_messages()));
    gauge("chatlab_store_pending_loads", "Reads waiting for the disk (LoadHistory).",
          static_cast<double>(view.store->pending_loads()));
    gauge("chatlab_store_dedup_window", "Dedup keys held in memory (store_dedup_window_max).",
          static_cast<double>(view.store->dedup_size()));
    gauge("chatlab_store_pending_dedup_loads",
          "Resends waiting for a dedup look-up on disk (LoadDedup).",
          static_cast<double>(view.store->pending_dedup_loads()));
  }
  return out;
}

}  // namespace chatlab::real
