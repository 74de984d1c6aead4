// chatd's metrics: the counters its connections and its environment keep, and their rendering
// in the Prometheus text format (GET /metrics; docs/chatd.md, "Operations", lists them).
//
// Counters only observe: no decision anywhere reads them. The commit pipeline keeps its own
// (CommitPipeline::Stats) and the core its own (ChatServer::Stats, MessageStore::Stats); a
// scrape renders them all from one MetricsView.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_METRICS_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/chat_server.h"
#include "core/store.h"
#include "real-transport/chatd/commit_pipeline.h"
#include "real-transport/util.h"

namespace chatlab::real {

struct Metrics {
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;
  uint64_t connections_dropped_slow = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t frame_errors = 0;
  uint64_t rate_limited = 0;
  uint64_t http_requests = 0;
  uint64_t http_unauthorized = 0;
  uint64_t tls_handshakes_failed = 0;  // accepted connections that failed the TLS handshake
  uint64_t web_assets_served = 0;  // files of the web client answered 200
  uint64_t logins = 0;
  uint64_t logins_failed = 0;
  uint64_t node_messages_local = 0;
  uint64_t node_messages_sent = 0;
  uint64_t node_messages_received = 0;
  uint64_t node_messages_dropped = 0;
  uint64_t node_messages_rejected = 0;
  uint64_t pushes = 0;
  Histogram ack_latency;
};

// Everything one scrape shows, gathered by the environment.
struct MetricsView {
  const Metrics& metrics;
  size_t ws_connections = 0;    // open WebSocket sessions
  size_t send_queue_sum = 0;    // frames queued to clients, all sessions
  size_t send_queue_max = 0;    // frames queued to the most backed-up session
  size_t node_queue_depth = 0;  // node messages waiting for a peer connection, all peers
  // The commit pipeline's (null on a process without storage: rendered as zeros).
  const CommitPipeline::Stats* storage = nullptr;
  size_t storage_held = 0;  // store effects waiting for a commit
  const ChatServer& chat;
  const MessageStore* store = nullptr;  // process 1 only
};

std::string RenderMetrics(const MetricsView& view);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_METRICS_H_
