// chatd: the Asio/Beast environment that runs the unchanged ChatLab core over real sockets.
//
// A cluster of N chatd processes is one host::Deployment (host/deployment.h) with N chat
// servers and the services its configuration needs: process i (1-based) hosts chat server i-1
// (node 100 + i) and process 1 also hosts every service (message store n1, user mapping n3,
// presence n4, notification n5, queue broker n6 with forwarding = queue). It carries out the
// nodes' effects with host::Dispatch, as sim/inproc/cluster.cc does, with sockets instead of an
// event queue: SendToNode to a node of this process is posted to the io_context; to another
// process it is a POST /node of the codec frame. SendToClient/CloseSession go to the session's
// WebSocket (or the waiting HTTP request of a web session). ArmTimer enters one timer queue
// served by one steady_timer (NodeTimers). Persist records are group-committed to the store's disk on the
// storage thread, and every later effect of the store waits for its commit. docs/chatd.md is
// the design; its parts:
//   chatd/cluster_places.h    the processes' places from --cluster, standbys checked
//   chatd/store_open.h        a store shard's disk: engine, lease, shard claim
//   chatd/commit_pipeline.h   the durability gate and the storage thread
//   chatd/session_host.h      what the connections see of the process
//   chatd/ws_session.h        client WebSockets
//   chatd/http_session.h      HTTP requests, web calls, /node
//   chatd/peer_link.h         node messages to other processes
//   chatd/metrics.h           /metrics
//   chatd/node_timers.h       the node timers
//   storage/storage.h         the store's disk (SQLite; in memory for tests)
//
// Threading: every node and every socket runs on one io_context thread; commits run on the
// storage thread and password hashing on the auth thread, neither of which touches a node.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/config.h"

namespace chatlab::real {

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Everything chatd is configured with. Each field is a flag and a config key of the same name
// (chatd_main.cc); every limit has a designed behaviour, documented in docs/chatd.md.
struct ChatdOptions {
  // ---- Topology ----
  std::string listen = "127.0.0.1:7000";  // host:port (port 0: any free port)
  // host:port of every process of the cluster, in index order; empty: a single process.
  std::vector<std::string> cluster;
  int index = 1;  // this process, 1-based; process 1 hosts the services
  // ---- Files ----
  std::string data_dir;   // required; created if missing
  std::string users_db;   // default <data_dir>/users.db; shared by a cluster
  std::string key_file;   // default <data_dir>/token.key; shared by a cluster
  std::string port_file;  // when set, the bound port is written there once listening
  // Development: serve the web client's files from this directory (a checkout's web/), read on
  // every request, instead of the copy embedded at build time. Only paths the embedded client
  // has are served. Empty (the default): the embedded files.
  std::string web_dir;
  // ---- The store's disk (process 1) ----
  // sqlite: <data_dir>/chat.db, embedded (the default). postgres: the tables on a PostgreSQL
  // server, at the libpq connection string store_postgres (its database must exist).
  std::string store = "sqlite";
  std::string store_postgres;
  // postgres: how long a commit keeps reconnecting to a database that went away (nothing is
  // acknowledged meanwhile) before chatd gives up and exits.
  uint32_t store_retry_ms = 60000;
  // PostgreSQL: the store's lease (postgres_storage.h). A process that cannot renew it within
  // this long loses it to a standby, which then waits no longer than this to take over.
  uint32_t store_lease_ms = 10000;
  // ---- Engines (docs/engines.md) ----
  // host:port of a Redis server: the user mapping, presence and notification live there, and
  // every process answers its own chat server's messages to them against it (no process hosts
  // nodes n3, n4, n5). Empty: they are process 1's memory (the embedded default).
  std::string redis;
  // Prepended to every Redis key, so that deployments (or tests) can share one server.
  std::string redis_prefix = "chatlab:";
  // amqp://user:password@host:port/vhost of a RabbitMQ holding one queue per chat server, the
  // queue broker of forwarding=queue (docs/engines.md); empty: the broker in process 1's memory.
  std::string rabbitmq;
  // ---- TLS (real-transport/tls.h) ----
  // PEM certificate chain and private key. Both set: every connection chatd accepts is HTTPS or
  // wss:// (a plain one fails the handshake and is closed), and its peer links dial TLS too.
  // Neither: plain TCP, for loopback and tests. One without the other is refused.
  std::string tls_cert;
  std::string tls_key;
  // The CA file a peer link verifies the other processes' certificates against (default: the
  // system's trust store). Used only with tls_cert.
  std::string tls_ca;
  // ---- Protocol ----
  // The core's defaults (core/config.h) except the store's memory, which chatd bounds so that
  // it does not grow with history (docs/chatd.md, "Memory"): 64 messages per conversation, and
  // a dedup window of 4,096 messages in front of an exact look-up on disk for resends
  // (store_dedup_lookup): a client's resend is recognised however late it comes, and the window
  // only holds the copies nobody marked as resent (none over TCP; a peer link marks its own).
  // And the mapping's soft state repairs itself: every chat server re-sends its users every 5 s
  // (MapRefresh, PresenceRefresh), and a mapping not refreshed for 15 s (a dead process's users)
  // expires.
  ProtocolConfig config = [] {
    ProtocolConfig c;
    c.map_refresh_interval_us = 5 * kUsPerSecond;
    c.mapping_ttl_us = 15 * kUsPerSecond;
    c.store_tail_cache = 64;
    c.store_dedup_window_max = 4096;
    c.store_dedup_lookup = true;
    return c;
  }();
  uint64_t seed = 0;  // 0: random
  // ---- Limits ----
  uint32_t frame_bytes_max = 256 * 1024;
  uint32_t json_depth_max = 16;
  uint32_t send_queue_max = 16384;             // frames queued per connection
  uint64_t send_queue_bytes_max = 8ull << 20;  // bytes queued per connection
  double user_rate_per_s = 1000;
  double user_burst = 2000;
  uint32_t connections_max = 20000;
  uint32_t http_body_bytes_max = 1 << 20;
  // HTTP read deadlines (a connection that misses one is closed): a request's header must be
  // complete this long after the connection opened or its first byte arrived; its body this long
  // after the header; a keep-alive connection may wait this long for its next request.
  uint32_t http_header_timeout_ms = 10000;
  uint32_t http_body_timeout_ms = 30000;
  uint32_t http_idle_timeout_ms = 120000;
  uint32_t node_queue_max = 65536;
  uint32_t peer_connections_max = 4;
  uint32_t drain_timeout_ms = 5000;
  uint32_t token_ttl_s = 24 * 3600;
  // ---- Logs ----
  LogLevel log_level = LogLevel::kInfo;
};

class Chatd {
 public:
  explicit Chatd(ChatdOptions options);
  ~Chatd();
  Chatd(const Chatd&) = delete;
  Chatd& operator=(const Chatd&) = delete;

  // Opens storage and restores the store, loads the key and users, creates and starts the nodes,
  // binds the listener. A clear FailedPrecondition/InvalidArgument on anything unusable.
  absl::Status Init();
  // Serves until SIGTERM/SIGINT, then drains (docs/chatd.md). Returns the exit status.
  int Run();

 private:
  class Impl;  // the environment (chatd.cc); connections see it as a SessionHost
  std::unique_ptr<Impl> impl_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_H_
