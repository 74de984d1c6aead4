// Chatd::Impl, the environment: it hosts this process's nodes of the deployment, turns socket
// activity into core inputs and carries out the effects that come back (host::NodeEnv), keeps
// the client sessions of its chat server, the node timers and the drain on shutdown. The
// connections (chatd/) see it as a SessionHost; the durability gate is the CommitPipeline.
#include "real-transport/chatd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "core/chat_server.h"
#include "core/codec.h"
#include "core/store.h"
#include "core/user_mapping.h"
#include "host/deployment.h"
#include "host/dispatch.h"
#include "real-transport/asio.h"
#include "real-transport/auth.h"
#include "real-transport/chatd/cluster_places.h"
#include "real-transport/chatd/commit_pipeline.h"
#include "real-transport/chatd/engine_routes.h"
#include "real-transport/chatd/http_session.h"
#include "real-transport/chatd/listener.h"
#include "real-transport/chatd/metrics.h"
#include "real-transport/chatd/node_timers.h"
#include "real-transport/chatd/peer_link.h"
#include "real-transport/chatd/placement.h"
#include "real-transport/chatd/session_host.h"
#include "real-transport/chatd/store_open.h"
#include "real-transport/http_route.h"
#include "real-transport/util.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// After a failed accept (out of descriptors, ...) the listener tries again this much later.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);
// While draining: how often the drain looks at its queues, and at a last commit.
constexpr auto kDrainPollInterval = std::chrono::milliseconds(10);
constexpr auto kDrainCommitPollInterval = std::chrono::milliseconds(5);

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

class Chatd::Impl final : public SessionHost, private host::NodeEnv {
 public:
  explicit Impl(ChatdOptions options) : options_(std::move(options)) {}
  ~Impl() override;

  absl::Status Init();
  int Run();

  // ---- SessionHost ----
  void Log(LogLevel level, std::string_view event, Json fields) override;
  Metrics& metrics() override { return metrics_; }
  const ChatdOptions& options() const override { return options_; }
  asio::io_context& io() override { return io_; }
  const TokenKey& key() const override { return *key_; }
  asio::ssl::context* peer_tls() override { return peer_tls_.get(); }
  bool draining() const override { return draining_; }
  void ConnectionOpened() override { open_connections_++; }
  void ConnectionClosed() override { open_connections_--; }
  size_t open_connections() const override { return open_connections_; }
  absl::StatusOr<SessionId> OpenWsSession(UserId user, std::shared_ptr<ClientSink> sink) override;
  void OnFrame(SessionId session, UserId user, bool text, const absl::StatusOr<Message>* decoded,
               size_t frame_bytes, bool oversized) override;
  void OnClientGone(SessionId session) override;
  void OnTokenExpired(SessionId session) override;
  void WebCall(UserId user, const Message& request, std::shared_ptr<ClientSink> waiter) override;
  void WebCallFrameError(UserId user, const absl::Status& error,
                         std::shared_ptr<ClientSink> waiter) override;
  absl::Status OnNodeFrame(NodeId from, NodeId to, std::string_view bytes,
                           bool redelivered) override;
  asio::thread_pool& auth_pool() override { return auth_pool_; }
  Users& users() override { return *users_; }
  std::string RenderMetrics() const override;

 private:
  struct Bucket {
    double tokens = 0;
    TimeUs refilled_us = 0;
  };

  // ---- host::NodeEnv: what the nodes ask for ----
  void SendToNode(NodeId from, NodeId to, Message msg) override;
  void SendToClient(NodeId from, SessionId session, Message msg) override;
  void CloseSession(NodeId from, SessionId session) override;
  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) override;
  void PushToDevice(NodeId from, const chatlab::PushToDevice& push) override;
  // Reached only without storage: on process 1 the commit pipeline takes every Persist.
  void Persist(NodeId node, PersistRecord record) override;
  // The store's reads (below its tail cache; a resend's dedup key): on the storage thread,
  // answered on this one to the store that asked, unless it restarted meanwhile.
  void LoadHistory(NodeId node, const chatlab::LoadHistory& load) override;
  void LoadDedup(NodeId node, const chatlab::LoadDedup& load) override;
  using StoreCall = std::function<void(MessageStore&, Effects&)>;
  std::function<void(const StoreCall&)> StoreAnswer(NodeId node, const char* effect);
  void Unexpected(NodeId from, const Effect& effect) override;

  // ---- Init ----
  absl::Status InitProcesses();
  absl::Status InitServices();

  // ---- Nodes ----
  // One core call's effects: through the commit pipeline where there is storage.
  void Apply(NodeId from, Effects& effects);
  Node* LocalNode(NodeId node) const;
  ChatServer& chat() const { return *nodes_->server(self_slot_); }
  const MessageStore* store() const;
  // The process hosting node (1-based), or 0 when the deployment has no such node.
  int ProcessOf(NodeId node) const;
  void DeliverNode(NodeId from, NodeId to, const Message& msg);
  void SendRemote(NodeId from, NodeId to, const Message& msg);
  void FireTimer(const NodeTimers::Timer& timer);

  // ---- Sessions ----
  // Opens a web session for one /api call; false (and the waiter closed) if the core refuses.
  bool OpenWebSession(UserId user, TimeUs now, SessionId session,
                      std::shared_ptr<ClientSink> waiter, Effects& out);
  bool RateAllows(UserId user, TimeUs now);

  // ---- Serving and shutdown ----
  void Accept();
  // TLS: the server handshake of an accepted connection, then its HttpSession<TlsStream>.
  void Handshake(tcp::socket s);
  // The core closes a WebSocket session for a reason of the environment's (shutdown, token
  // expiry): SessionClosed{code, detail} goes out, then the socket closes. Unknown: ignored.
  void CloseForReason(SessionId session, Code code, std::string detail);
  void StartDrain();
  void DrainPoll(std::chrono::steady_clock::time_point deadline);
  bool DrainDone() const;

  // io_ is declared first so that it is destroyed last.
  asio::io_context io_{1};
  ChatdOptions options_;
  Metrics metrics_;
  std::optional<tcp::acceptor> acceptor_;
  // TLS (--tls_cert): the server side of every accepted connection, the client side of the
  // peer links. Both null: plain TCP.
  std::shared_ptr<asio::ssl::context> server_tls_;
  std::shared_ptr<asio::ssl::context> peer_tls_;
  asio::signal_set signals_{io_, SIGTERM, SIGINT};
  asio::thread_pool auth_pool_{1};
  std::optional<TokenKey> key_;
  std::unique_ptr<Users> users_;
  int data_dir_lock_ = -1;  // LockDataDir's descriptor
  // The deployment and its live nodes; this process creates only its own.
  std::optional<host::Deployment> deployment_;
  std::optional<host::NodeTable> nodes_;  // after deployment_, which it refers to
  NodeId self_;                           // this process's chat server
  size_t self_slot_ = 0;
  // A process that hosts a store shard (index <= store_shards): its disk, its slot, and the
  // commit pipeline (after storage_, which it uses).
  std::unique_ptr<Storage> storage_;
  size_t store_slot_ = 0;
  std::unique_ptr<CommitPipeline> pipeline_;
  // index i-1 -> the addresses of process i: its place, then its standbys'
  std::vector<std::vector<HostPort>> processes_;
  absl::btree_map<int, std::shared_ptr<PeerLink>> peers_;
  // The services an engine carries out (--redis), instead of a node on process 1.
  std::unique_ptr<EngineRoutes> engines_;
  NodeTimers timers_{io_, [this](const NodeTimers::Timer& t) { FireTimer(t); }};
  // Client sessions of the chat server: WebSockets and waiting web calls.
  absl::btree_map<SessionId, std::shared_ptr<ClientSink>> sessions_;
  absl::btree_map<SessionId, bool> ws_sessions_;  // the WebSocket subset (value unused)
  size_t ws_count_ = 0;
  size_t open_connections_ = 0;
  uint64_t session_next_ = 1;
  absl::btree_map<UserId, Bucket> buckets_;
  bool draining_ = false;
  // This process created a service node (process 1, unless engines carry every service).
  bool hosts_services_ = false;
  int exit_code_ = 0;
};

Chatd::Impl::~Impl() {
  auth_pool_.join();
  pipeline_.reset();
  if (data_dir_lock_ >= 0) close(data_dir_lock_);  // after the stores are done
}

void Chatd::Impl::Log(LogLevel level, std::string_view event, Json fields) {
  if (level < options_.log_level) return;
  Json line = {
      {"ts_us", NowUs()}, {"level", LevelName(level)}, {"event", event}, {"node", self_.value}};
  for (auto& [k, v] : fields.items()) line[k] = v;
  std::fprintf(stderr, "%s\n", line.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
}

// ---- Init --------------------------------------------------------------------------------------

absl::Status Chatd::Impl::Init() {
  if (options_.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  if (options_.config.write_path == WritePath::kBatched) {
    return absl::InvalidArgumentError(
        "write_path=batched is not supported by chatd: its storage does not keep the batch "
        "writer's log (PersistQueued/PersistDequeued), so the writer's ack would not mean "
        "durable");
  }
  if (absl::Status s = ValidateStoreConfig(options_.config); !s.ok()) return s;
  if (absl::Status s = ValidateMappingConfig(options_.config); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mapping_ttl_ms, --map_refresh_ms (in microseconds here): ", s.message()));
  }
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    auto server = ServerTlsContext(options_.tls_cert, options_.tls_key);
    if (!server.ok()) return server.status();
    auto peer = ClientTlsContext(options_.tls_ca);
    if (!peer.ok()) return peer.status();
    server_tls_ = *std::move(server);
    peer_tls_ = *std::move(peer);
  } else if (!options_.tls_ca.empty()) {
    return absl::InvalidArgumentError("--tls_ca needs --tls_cert and --tls_key (TLS is off)");
  }
  if (absl::Status s = UsableDataDir(options_.data_dir); !s.ok()) return s;
  auto lock = LockDataDir(options_.data_dir);
  if (!lock.ok()) return lock.status();
  data_dir_lock_ = *lock;
  if (options_.users_db.empty()) options_.users_db = options_.data_dir + "/users.db";
  if (options_.key_file.empty()) options_.key_file = options_.data_dir + "/token.key";
  auto key = TokenKey::LoadOrCreate(options_.key_file);
  if (!key.ok()) return key.status();
  key_ = *key;
  auto users = Users::Open(options_.users_db);
  if (!users.ok()) return users.status();
  users_ = std::move(*users);

  if (absl::Status s = InitProcesses(); !s.ok()) return s;
  auto engines = EngineRoutes::Open(
      options_, io_, deployment_->topology(), self_,
      [this](std::string why) { Log(LogLevel::kWarn, "engine_unreachable", {{"error", why}}); },
      [this](NodeId from, Effects out) { Apply(from, out); });
  if (!engines.ok()) return engines.status();
  engines_ = *std::move(engines);
  if (absl::Status s = InitServices(); !s.ok()) return s;
  self_slot_ = static_cast<size_t>(deployment_->IndexOf(self_));
  nodes_->Create(self_slot_);
  for (size_t i = 0; i < processes_.size(); ++i) {
    const int process = static_cast<int>(i) + 1;
    if (process == options_.index) continue;
    std::vector<tcp::endpoint> endpoints;
    for (const HostPort& place : processes_[i]) {
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(place.host, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("cluster address ", place.host, " is not an IP address"));
      }
      endpoints.emplace_back(address, place.port);
    }
    peers_[process] = std::make_shared<PeerLink>(*this, process, std::move(endpoints));
  }
  acceptor_.emplace(io_);
  auto listening = OpenListener(*acceptor_, options_.listen, options_.port_file);
  if (!listening.ok()) return listening.status();

  // Start the nodes in slot order: services first, as the in-process cluster does.
  const TimeUs now = NowUs();
  for (size_t slot = 0; slot < deployment_->size(); slot++) {
    if (!nodes_->up(slot)) continue;
    Effects out;
    nodes_->node(slot)->Start(now, out);
    Apply(deployment_->slot(slot).id, out);
  }
  Log(LogLevel::kInfo, "listening",
      {{"address", listening->address.host},
       {"port", listening->port},
       {"index", options_.index},
       {"processes", processes_.size()},
       {"services", hosts_services_},
       {"mapping", options_.redis.empty() ? "process 1" : "redis " + options_.redis},
       {"broker", options_.rabbitmq.empty() ? "process 1" : "rabbitmq"},
       {"store_shard", storage_ ? options_.index - 1 : -1},
       {"forwarding", std::string(ForwardingStrategyName(options_.config.forwarding))}});
  return absl::OkStatus();
}

// Every process knows every process's address; the deployment has one chat server per process.
absl::Status Chatd::Impl::InitProcesses() {
  auto places = ClusterPlaces(options_);  // chatd/cluster_places.h
  if (!places.ok()) return places.status();
  processes_ = *std::move(places);
  uint64_t seed = options_.seed;
  if (seed == 0) seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  deployment_.emplace(host::Deployment::Options{static_cast<int>(processes_.size()),
                                                options_.config, /*only_needed=*/true});
  nodes_.emplace(*deployment_, seed);
  self_ = host::ChatServerId(options_.index - 1);
  return absl::OkStatus();
}

// This process creates the services chatd/placement.h puts on it (process 1: every service but
// the store, unless an engine stands in for it) and, as process k <= store_shards, store shard
// k-1, restored from its disk (chatd/store_open.h).
absl::Status Chatd::Impl::InitServices() {
  const int shard = options_.index - 1;
  const auto& store_slots = deployment_->store_slots();
  const bool hosts_store =
      shard < static_cast<int>(store_slots.size()) &&
      real::ProcessOf(*deployment_,
                      static_cast<size_t>(store_slots[static_cast<size_t>(shard)])) ==
          options_.index;
  for (int i = 0; i < deployment_->first_server(); i++) {
    const host::NodeSlot& slot = deployment_->slot(static_cast<size_t>(i));
    if (slot.role != host::Role::kStore &&
        real::ProcessOf(*deployment_, static_cast<size_t>(i)) == options_.index &&
        !engines_->For(slot.id)) {
      nodes_->Create(static_cast<size_t>(i));
      hosts_services_ = true;
    }
  }
  if (!hosts_store) return absl::OkStatus();
  auto disk = OpenStoreDisk(options_, shard, [this](const std::string& why) {
    Log(LogLevel::kWarn, "store_lease_wait", {{"why", why}});
  });
  if (!disk.ok()) return disk.status();
  storage_ = std::move(disk->storage);
  store_slot_ = static_cast<size_t>(deployment_->store_slots()[static_cast<size_t>(shard)]);
  const host::NodeSlot& slot = deployment_->slot(store_slot_);
  Node& node = nodes_->Create(store_slot_);
  // The store is the one durable service deployed (write_path=batched is refused above), and
  // chat.db (or the PostgreSQL database) is its disk.
  // A bounded tail cache needs only each conversation's head and the dedup window.
  LoadScope scope;
  scope.hot = options_.config.store_tail_cache > 0;
  scope.recent = options_.config.dedup_enabled ? options_.config.store_dedup_window_max : 0;
  absl::Status loaded = storage_->Load(
      [&](const PersistRecord& r) { return slot.service->restore(node, r); }, scope);
  if (!loaded.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot restore ", disk->name, ": ", loaded.message()));
  }
  pipeline_ = std::make_unique<CommitPipeline>(
      *storage_, static_cast<host::NodeEnv&>(*this),
      [this](std::function<void()> fn) { asio::post(io_, std::move(fn)); },
      [this](const absl::Status& status) {
        Log(LogLevel::kError, "storage_commit_failed",
            {{"error", std::string(status.message())},
             {"action", "exiting: memory must not run ahead of disk; restart restores"}});
        std::fflush(stderr);
        std::_Exit(1);
      });
  Log(LogLevel::kInfo, "store_restored",
      {{"shard", shard},
       {"shards", options_.config.store_shards},
       {"messages", storage_->messages_loaded()},
       {"records", store()->stats().records_restored}});
  return absl::OkStatus();
}

// ---- Serving and shutdown ----------------------------------------------------------------------

void Chatd::Impl::Accept() {
  // One thread runs everything: sockets use the io_context executor directly (no strands).
  acceptor_->async_accept(io_, [this](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
      Log(LogLevel::kWarn, "accept_failed", {{"error", ec.message()}});
      // Out of descriptors or similar: keep serving the connections we have, try again soon.
      auto t = std::make_shared<asio::steady_timer>(io_, kAcceptRetryDelay);
      t->async_wait([this, t](beast::error_code) {
        if (!draining_) Accept();
      });
      return;
    }
    // Small frames (acks, receipts) must not wait for Nagle's algorithm.
    beast::error_code nodelay_ec;
    s.set_option(tcp::no_delay(true), nodelay_ec);
    if (server_tls_ == nullptr) {
      std::make_shared<HttpSession<PlainStream>>(*this, PlainStream(std::move(s)))->Start();
    } else {
      Handshake(std::move(s));
    }
    Accept();
  });
}

void Chatd::Impl::Handshake(tcp::socket s) {
  // The handshake is part of the first request: it has the header's deadline, so a client that
  // opens a connection and says nothing is closed as a slow one is.
  auto stream = std::make_shared<TlsStream>(std::move(s), *server_tls_);
  beast::get_lowest_layer(*stream).expires_after(
      std::chrono::milliseconds(options_.http_header_timeout_ms));
  stream->async_handshake(asio::ssl::stream_base::server, [this, stream](beast::error_code ec) {
    if (ec) {
      metrics_.tls_handshakes_failed++;
      Log(LogLevel::kDebug, "tls_handshake_failed", {{"error", ec.message()}});
      return;
    }
    std::make_shared<HttpSession<TlsStream>>(*this, std::move(*stream))->Start();
  });
}

int Chatd::Impl::Run() {
  signals_.async_wait([this](beast::error_code ec, int signal) {
    if (ec) return;
    Log(LogLevel::kInfo, "shutdown_requested", {{"signal", signal}});
    StartDrain();
  });
  Accept();
  io_.run();
  // An idle connection and its link hold each other: break that before the loop goes.
  for (auto& [process, link] : peers_) link->Close();
  if (storage_) {
    pipeline_.reset();  // joins the storage thread; every submitted batch is committed
    if (absl::Status s = storage_->Checkpoint(); !s.ok()) {
      Log(LogLevel::kWarn, "checkpoint_failed", {{"error", std::string(s.message())}});
    }
    storage_.reset();
  }
  Log(LogLevel::kInfo, "stopped", {{"exit_code", exit_code_}});
  return exit_code_;
}

void Chatd::Impl::StartDrain() {
  if (draining_) return;
  draining_ = true;
  beast::error_code ignored;
  acceptor_->close(ignored);
  // Every WebSocket is closed by the core, which tells the client why (SessionClosed
  // {UNAVAILABLE}), unregisters the user and reports them offline; CloseSession then closes the
  // socket with 1001 (going away) while draining_.
  std::vector<SessionId> open;
  for (const auto& [session, unused] : ws_sessions_) open.push_back(session);
  for (SessionId session : open) CloseForReason(session, Code::kUnavailable, "server shutting down");
  DrainPoll(std::chrono::steady_clock::now() +
            std::chrono::milliseconds(options_.drain_timeout_ms));
}

bool Chatd::Impl::DrainDone() const {
  if (pipeline_ && !pipeline_->idle()) return false;
  if (open_connections_ > 0) return false;
  if (!engines_->idle()) return false;
  for (const auto& [process, link] : peers_) {
    if (link->busy()) return false;
  }
  return true;
}

void Chatd::Impl::DrainPoll(std::chrono::steady_clock::time_point deadline) {
  if (DrainDone() || std::chrono::steady_clock::now() >= deadline) {
    if (!DrainDone()) Log(LogLevel::kWarn, "drain_timeout", {});
    // Let a last commit finish: Run() joins the storage thread after io_ stops.
    if (pipeline_ && pipeline_->committing()) {
      auto t = std::make_shared<asio::steady_timer>(io_, kDrainCommitPollInterval);
      t->async_wait([this, t, deadline](beast::error_code) {
        if (pipeline_->committing()) return DrainPoll(deadline);
        io_.stop();
      });
      return;
    }
    io_.stop();
    return;
  }
  auto t = std::make_shared<asio::steady_timer>(io_, kDrainPollInterval);
  t->async_wait([this, t, deadline](beast::error_code) { DrainPoll(deadline); });
}

// ---- Sessions ----------------------------------------------------------------------------------

absl::StatusOr<SessionId> Chatd::Impl::OpenWsSession(UserId user,
                                                     std::shared_ptr<ClientSink> sink) {
  if (draining_) return absl::UnavailableError("draining");
  const SessionId session(session_next_++);
  Effects out;
  absl::Status s = chat().OnSessionOpen(NowUs(), session, user, out);
  if (!s.ok()) {
    Log(LogLevel::kWarn, "session_refused",
        {{"user", user.value}, {"error", std::string(s.message())}});
    return s;
  }
  sessions_[session] = std::move(sink);
  ws_sessions_[session] = true;
  ws_count_++;
  Log(LogLevel::kDebug, "session_open", {{"session", session.value}, {"user", user.value}});
  Apply(self_, out);
  return session;
}

bool Chatd::Impl::RateAllows(UserId user, TimeUs now) {
  Bucket& b = buckets_[user];
  if (b.refilled_us == 0) b.tokens = options_.user_burst;
  const double elapsed_s = static_cast<double>(now - b.refilled_us) / 1e6;
  if (b.refilled_us != 0 && elapsed_s > 0) {
    b.tokens = std::min(options_.user_burst, b.tokens + elapsed_s * options_.user_rate_per_s);
  }
  b.refilled_us = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void Chatd::Impl::OnFrame(SessionId session, UserId user, bool text,
                          const absl::StatusOr<Message>* decoded, size_t frame_bytes,
                          bool oversized) {
  if (!sessions_.contains(session)) return;
  metrics_.frames_in++;
  const TimeUs now = NowUs();
  Effects out;
  absl::Status error;
  if (!RateAllows(user, now)) {
    metrics_.rate_limited++;
    error = absl::ResourceExhaustedError(absl::StrCat(
        "frame refused: user ", user.value, " is over user_rate_per_s=", options_.user_rate_per_s,
        " (burst ", options_.user_burst, ")"));
  } else if (oversized) {
    error = absl::ResourceExhaustedError(absl::StrCat(
        "frame of ", frame_bytes, " bytes is over frame_bytes_max=", options_.frame_bytes_max));
  } else if (!text || decoded == nullptr) {
    error = absl::InvalidArgumentError("binary frame: send JSON text frames");
  } else if (decoded->ok()) {
    chat().OnClientMessage(now, session, **decoded, out);
    Apply(self_, out);
    return;
  } else {
    error = decoded->status();
  }
  metrics_.frame_errors++;
  Log(LogLevel::kDebug, "frame_error",
      {{"session", session.value}, {"error", std::string(error.message())}});
  chat().OnClientFrameError(now, session, error, out);
  Apply(self_, out);
}

void Chatd::Impl::OnClientGone(SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;  // the server closed it (CloseSession): no OnSessionClose
  sessions_.erase(it);
  if (ws_sessions_.erase(session) > 0) ws_count_--;
  Effects out;
  chat().OnSessionClose(NowUs(), session, out);
  Log(LogLevel::kDebug, "session_closed", {{"session", session.value}});
  Apply(self_, out);
}

void Chatd::Impl::OnTokenExpired(SessionId session) {
  Log(LogLevel::kInfo, "session_token_expired", {{"session", session.value}});
  CloseForReason(session, Code::kUnauthenticated, "token expired: log in again");
}

void Chatd::Impl::CloseForReason(SessionId session, Code code, std::string detail) {
  Effects out;
  chat().CloseSessionFor(NowUs(), session, code, std::move(detail), out);
  Apply(self_, out);
}

bool Chatd::Impl::OpenWebSession(UserId user, TimeUs now, SessionId session,
                                 std::shared_ptr<ClientSink> waiter, Effects& out) {
  if (!chat().OnWebSessionOpen(now, session, user, out).ok()) {
    waiter->CloseFromServer(false);
    return false;
  }
  sessions_[session] = std::move(waiter);
  return true;
}

void Chatd::Impl::WebCall(UserId user, const Message& request, std::shared_ptr<ClientSink> waiter) {
  const SessionId session(session_next_++);
  const TimeUs now = NowUs();
  Effects out;
  if (!OpenWebSession(user, now, session, std::move(waiter), out)) return;
  chat().OnClientMessage(now, session, request, out);
  // The core answers every request exactly once (a timeout answers UNAVAILABLE); SendToClient
  // closes the web session when it has.
  Apply(self_, out);
}

void Chatd::Impl::WebCallFrameError(UserId user, const absl::Status& error,
                                    std::shared_ptr<ClientSink> waiter) {
  const SessionId session(session_next_++);
  const TimeUs now = NowUs();
  Effects out;
  if (!OpenWebSession(user, now, session, std::move(waiter), out)) return;
  chat().OnClientFrameError(now, session, error, out);
  Apply(self_, out);
}

absl::Status Chatd::Impl::OnNodeFrame(NodeId from, NodeId to, std::string_view bytes,
                                      bool redelivered) {
  if (LocalNode(to) == nullptr) {
    // Never dropped without a word: the peer gets 400 with the reason, and the log says it.
    Log(LogLevel::kWarn, "node_frame_misrouted", {{"from", from.value}, {"to", to.value}});
    return absl::NotFoundError(absl::StrCat("node ", ToString(to), " is not in this process"));
  }
  absl::StatusOr<Message> m = Decode(bytes, NodeFrameLimits());
  if (!m.ok()) {
    Log(LogLevel::kWarn, "node_frame_error",
        {{"from", from.value}, {"error", std::string(m.status().message())}});
    return m.status();
  }
  metrics_.node_messages_received++;
  if (redelivered) MarkRedelivered(*m);
  asio::post(io_, [this, from, to, msg = std::move(*m)] { DeliverNode(from, to, msg); });
  return absl::OkStatus();
}

// ---- Nodes -------------------------------------------------------------------------------------

Node* Chatd::Impl::LocalNode(NodeId node) const {
  const int slot = deployment_->IndexOf(node);
  return slot < 0 ? nullptr : nodes_->node(static_cast<size_t>(slot));
}

const MessageStore* Chatd::Impl::store() const {
  return storage_ ? static_cast<const MessageStore*>(nodes_->node(store_slot_)) : nullptr;
}

int Chatd::Impl::ProcessOf(NodeId node) const {
  const int slot = deployment_->IndexOf(node);
  return slot < 0 ? 0 : real::ProcessOf(*deployment_, static_cast<size_t>(slot));
}

void Chatd::Impl::Apply(NodeId from, Effects& effects) {
  if (pipeline_) {
    pipeline_->Apply(from, effects);
  } else {
    host::Dispatch(from, effects, *this);
  }
}

void Chatd::Impl::DeliverNode(NodeId from, NodeId to, const Message& msg) {
  Node* node = LocalNode(to);
  if (node == nullptr) return;
  Effects out;
  node->OnMessage(NowUs(), from, msg, out);
  Apply(to, out);
}

void Chatd::Impl::SendToNode(NodeId from, NodeId to, Message msg) {
  if (ServiceEngine* engine = engines_->For(to)) {  // docs/engines.md
    return engine->Submit(NowUs(), from, std::move(msg), [this, to](Effects out) {
      Apply(to, out);
    });
  }
  if (LocalNode(to) == nullptr) return SendRemote(from, to, msg);
  metrics_.node_messages_local++;
  asio::post(io_, [this, from, to, msg = std::move(msg)] { DeliverNode(from, to, msg); });
}

void Chatd::Impl::SendRemote(NodeId from, NodeId to, const Message& msg) {
  auto it = peers_.find(ProcessOf(to));
  if (it == peers_.end()) {
    metrics_.node_messages_dropped++;
    Log(LogLevel::kWarn, "no_route", {{"to", to.value}});
    return;
  }
  it->second->Enqueue(PeerConn::Item{from, to, Encode(msg), 0});
}

void Chatd::Impl::SendToClient(NodeId /*from*/, SessionId session, Message msg) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;  // the client left: drop, as the effect's contract says
  auto sink = it->second;             // Push may drop the connection and erase the entry
  const bool web = !ws_sessions_.contains(session);
  sink->Push(msg);
  if (web) {
    // A web session is answered once; then it closes.
    asio::post(io_, [this, session] { OnClientGone(session); });
  }
}

void Chatd::Impl::CloseSession(NodeId /*from*/, SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  auto sink = std::move(it->second);
  sessions_.erase(it);
  if (ws_sessions_.erase(session) > 0) ws_count_--;
  sink->CloseFromServer(/*going_away=*/draining_);
}

void Chatd::Impl::PushToDevice(NodeId /*from*/, const chatlab::PushToDevice& push) {
  metrics_.pushes++;
  // No phone vendor is configured: the push is counted and logged (debug) only.
  Log(LogLevel::kDebug, "push_to_device",
      {{"user", push.user.value},
       {"conv", ToString(push.conv)},
       {"message_id", std::to_string(push.message_id)},
       {"sender", push.sender.value}});
}

void Chatd::Impl::Persist(NodeId node, PersistRecord /*record*/) {
  Log(LogLevel::kWarn, "unexpected_effect",
      {{"from", node.value}, {"effect", "Persist"}, {"why", "this process has no storage"}});
}

std::function<void(const Chatd::Impl::StoreCall&)> Chatd::Impl::StoreAnswer(NodeId node,
                                                                            const char* effect) {
  if (!pipeline_) {
    Log(LogLevel::kWarn, "unexpected_effect",
        {{"from", node.value}, {"effect", effect}, {"why", "this process has no storage"}});
    return nullptr;
  }
  const auto s = static_cast<size_t>(deployment_->IndexOf(node));
  const uint64_t incarnation = nodes_->incarnation(s);
  return [this, node, s, incarnation](const StoreCall& call) {
    if (!nodes_->up(s) || nodes_->incarnation(s) != incarnation) return;
    Effects out;
    call(*static_cast<MessageStore*>(nodes_->node(s)), out);
    Apply(node, out);
  };
}

void Chatd::Impl::LoadHistory(NodeId node, const chatlab::LoadHistory& load) {
  auto answer = StoreAnswer(node, "LoadHistory");
  if (answer == nullptr) return;
  pipeline_->Read(load, [answer, token = load.token](std::vector<ChatMessage> rows) {
    answer([&](MessageStore& store, Effects& out) {
      store.OnHistoryLoaded(NowUs(), token, std::move(rows), out);
    });
  });
}

void Chatd::Impl::LoadDedup(NodeId node, const chatlab::LoadDedup& load) {
  auto answer = StoreAnswer(node, "LoadDedup");
  if (answer == nullptr) return;
  pipeline_->Find(load, [answer, token = load.token](std::optional<ChatMessage> found) {
    answer([&](MessageStore& store, Effects& out) {
      store.OnDedupLoaded(NowUs(), token, std::move(found), out);
    });
  });
}

void Chatd::Impl::Unexpected(NodeId from, const Effect& /*effect*/) {
  Log(LogLevel::kWarn, "unexpected_effect", {{"from", from.value}});
}

// ---- Timers ------------------------------------------------------------------------------------

void Chatd::Impl::ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) {
  const int slot = deployment_->IndexOf(node);
  if (slot < 0) return;
  const auto s = static_cast<size_t>(slot);
  timers_.Arm(at_us - NowUs(), NodeTimers::Timer{s, nodes_->incarnation(s), timer_id});
}

void Chatd::Impl::FireTimer(const NodeTimers::Timer& t) {
  // A timer of an earlier incarnation died with it.
  if (!nodes_->up(t.slot) || nodes_->incarnation(t.slot) != t.incarnation) return;
  Effects out;
  nodes_->node(t.slot)->OnTimer(NowUs(), t.timer_id, out);
  Apply(deployment_->slot(t.slot).id, out);
}

// ---- Metrics -----------------------------------------------------------------------------------

std::string Chatd::Impl::RenderMetrics() const {
  MetricsView view{.metrics = metrics_, .chat = chat()};
  view.ws_connections = ws_count_;
  for (const auto& [session, sink] : sessions_) {
    view.send_queue_sum += sink->queue_depth();
    view.send_queue_max = std::max(view.send_queue_max, sink->queue_depth());
  }
  for (const auto& [process, link] : peers_) view.node_queue_depth += link->depth();
  if (pipeline_) {
    view.storage = &pipeline_->stats();
    view.storage_held = pipeline_->held();
  }
  view.store = store();
  return real::RenderMetrics(view) + engines_->RenderMetrics();
}

// ---- Chatd -------------------------------------------------------------------------------------

Chatd::Chatd(ChatdOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Chatd::~Chatd() = default;
absl::Status Chatd::Init() { return impl_->Init(); }
int Chatd::Run() { return impl_->Run(); }

}  // namespace chatlab::real
