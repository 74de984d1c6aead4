#include "real-transport/chatd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "core/chat_server.h"
#include "core/codec.h"
#include "core/notification.h"
#include "core/presence.h"
#include "core/queue_broker.h"
#include "core/store.h"
#include "core/user_mapping.h"
#include "nlohmann/json.hpp"
#include "real-transport/asio.h"
#include "real-transport/auth.h"
#include "real-transport/http_route.h"
#include "real-transport/json_codec.h"
#include "real-transport/storage/sqlite_storage.h"
#include "real-transport/util.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

constexpr NodeId kStoreNode{1};
constexpr NodeId kWriterNode{2};
constexpr NodeId kMappingNode{3};
constexpr NodeId kPresenceNode{4};
constexpr NodeId kNotificationNode{5};
constexpr NodeId kBrokerNode{6};
constexpr uint64_t kFirstServer = 100;
// Bytes read from a WebSocket per read call: an oversized frame is discarded in pieces of this.
constexpr size_t kWsReadChunkBytes = 64 * 1024;
// Keep-alive HTTP connections idle longer than this are closed.
constexpr auto kHttpIdleTimeout = std::chrono::seconds(120);
// Pending SendMessage timestamps kept per connection for the ack-latency metric.
constexpr size_t kLatencyProbesMax = 4096;

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

// Where the core's messages for one client session go: a WebSocket, or a waiting HTTP request.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  virtual void Push(const Message& m) = 0;
  // The server closes the session (after what is queued). going_away: shutdown.
  virtual void CloseFromServer(bool going_away) = 0;
  virtual size_t queue_depth() const { return 0; }
};

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
  uint64_t logins = 0;
  uint64_t logins_failed = 0;
  uint64_t node_messages_local = 0;
  uint64_t node_messages_sent = 0;
  uint64_t node_messages_received = 0;
  uint64_t node_messages_dropped = 0;
  uint64_t node_messages_rejected = 0;
  uint64_t storage_commits = 0;
  uint64_t storage_records = 0;
  uint64_t pushes = 0;
  Histogram ack_latency;
  Histogram commit_latency;
};

// ---- The storage thread: commits batches of Persist records, one at a time ----------------------

class CommitThread {
 public:
  using Done = std::function<void(uint64_t batch, absl::Status status, double seconds)>;
  CommitThread(Storage* storage, Done done) : storage_(storage), done_(std::move(done)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~CommitThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Submit(uint64_t batch, std::vector<PersistRecord> records) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back({batch, std::move(records)});
    }
    cv_.notify_one();
  }

 private:
  struct Job {
    uint64_t batch;
    std::vector<PersistRecord> records;
  };
  void Loop() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      const auto start = std::chrono::steady_clock::now();
      absl::Status status = storage_->Commit(job.records);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      done_(job.batch, std::move(status), seconds);
    }
  }

  Storage* storage_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

// ---- The environment
// -----------------------------------------------------------------------------

class Chatd::Impl {
 public:
  explicit Impl(ChatdOptions options) : options_(std::move(options)) {}
  ~Impl();

  absl::Status Init();
  int Run();

  // ---- Used by the sessions ----
  void Log(LogLevel level, std::string_view event, Json fields = Json::object());
  Metrics& metrics() { return metrics_; }
  const ChatdOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  bool draining() const { return draining_; }
  // A WebSocket authenticated as user was accepted. Returns its session id, or an error (then
  // the socket is closed).
  absl::StatusOr<SessionId> OpenWsSession(UserId user, std::shared_ptr<ClientSink> sink);
  // Decodes one complete inbound text frame (the adapter's only look at client bytes).
  absl::StatusOr<Message> DecodeFrame(std::string_view payload) const {
    return FromJson(payload, JsonLimits{options_.frame_bytes_max, options_.json_depth_max});
  }
  // One complete inbound frame of session: decoded (text frames within frame_bytes_max), or why
  // not (oversized: discarded bytes; binary).
  void OnFrame(SessionId session, UserId user, bool text, const absl::StatusOr<Message>* decoded,
               size_t frame_bytes, bool oversized);
  // The client side of a session is gone (socket closed or failed).
  void OnClientGone(SessionId session);
  // An HTTP API call: a web session answers it, then closes.
  void WebCall(UserId user, const Message& request, std::shared_ptr<ClientSink> waiter);
  void WebCallFrameError(UserId user, const absl::Status& error,
                         std::shared_ptr<ClientSink> waiter);
  // A POST /node body, already authenticated.
  absl::Status OnNodeFrame(NodeId from, NodeId to, std::string_view bytes);
  absl::StatusOr<UserId> VerifyToken(std::string_view token) const {
    return key_->Verify(token, NowUs());
  }
  const TokenKey& key() const { return *key_; }
  asio::thread_pool& auth_pool() { return auth_pool_; }
  Users& users() { return *users_; }
  std::string RenderMetrics() const;
  size_t ws_sessions() const { return ws_count_; }
  void ConnectionOpened() { open_connections_++; }
  void ConnectionClosed() { open_connections_--; }
  size_t open_connections() const { return open_connections_; }

  // ---- Peers ----
  class PeerLink;
  class PeerConn;

 private:
  void Accept();
  void DeliverNode(NodeId from, NodeId to, const Message& msg);
  void Apply(NodeId from, Effects& effects);
  void Carry(NodeId from, Effect& effect);
  void MaybeCommit();
  void OnCommitted(uint64_t batch, const absl::Status& status, double seconds);
  void ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us);
  void SendRemote(NodeId from, NodeId to, const Message& msg);
  int ProcessOf(NodeId node) const;
  Node* LocalNode(NodeId node);
  bool RateAllows(UserId user, TimeUs now);
  void StartDrain();
  void DrainPoll(std::chrono::steady_clock::time_point deadline);
  bool DrainDone() const;

  // io_ is declared first so that it is destroyed last.
  asio::io_context io_{1};
  ChatdOptions options_;
  Metrics metrics_;
  std::optional<tcp::acceptor> acceptor_;
  asio::signal_set signals_{io_, SIGTERM, SIGINT};
  asio::thread_pool auth_pool_{1};
  std::optional<TokenKey> key_;
  std::unique_ptr<Users> users_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<CommitThread> commit_thread_;
  ProtocolConfig config_;
  Topology topology_;
  NodeId self_;
  std::unique_ptr<ChatServer> chat_;
  std::unique_ptr<MessageStore> store_;
  std::unique_ptr<UserMappingService> mapping_;
  std::unique_ptr<PresenceService> presence_;
  std::unique_ptr<NotificationService> notification_;
  std::unique_ptr<QueueBroker> broker_;
  absl::btree_map<NodeId, Node*> local_;
  std::vector<HostPort> processes_;  // index i-1 -> address of process i
  absl::btree_map<int, std::shared_ptr<PeerLink>> peers_;
  // Client sessions of chat_: WebSockets and waiting web calls.
  absl::btree_map<SessionId, std::shared_ptr<ClientSink>> sessions_;
  absl::btree_map<SessionId, bool> ws_sessions_;  // the WebSocket subset (value unused)
  size_t ws_count_ = 0;
  size_t open_connections_ = 0;
  uint64_t session_next_ = 1;
  struct Bucket {
    double tokens = 0;
    TimeUs refilled_us = 0;
  };
  absl::btree_map<UserId, Bucket> buckets_;
  // ---- The durable pipeline of the store (docs/chatd.md, "Durability") ----
  std::vector<PersistRecord> open_records_;  // the open batch, id open_batch_
  uint64_t open_batch_ = 1;
  bool committing_ = false;
  struct Deferred {
    uint64_t batch;
    NodeId from;
    Effect effect;
  };
  // Store effects waiting for their batch's commit. Invariant: batches ascending.
  std::deque<Deferred> deferred_;
  bool draining_ = false;
  int exit_code_ = 0;
};

// ---- Peer links: POST /node to another process
// ----------------------------------------------------

class Chatd::Impl::PeerConn : public std::enable_shared_from_this<PeerConn> {
 public:
  struct Item {
    NodeId from;
    NodeId to;
    std::string bytes;
    int attempts = 0;
  };
  PeerConn(Impl* impl, std::shared_ptr<PeerLink> link, tcp::endpoint endpoint)
      : impl_(impl), link_(std::move(link)), endpoint_(endpoint), stream_(impl->io()) {}
  void Next();

 private:
  void Send();
  void Fail(beast::error_code ec);

  Impl* impl_;
  std::shared_ptr<PeerLink> link_;
  tcp::endpoint endpoint_;
  beast::tcp_stream stream_;
  bool connected_ = false;
  // True while item_'s bytes are in request_ (written or being written).
  bool in_request_ = false;
  std::optional<Item> item_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

class Chatd::Impl::PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(Impl* impl, int process, tcp::endpoint endpoint)
      : impl_(impl), process_(process), endpoint_(endpoint) {}
  void Enqueue(PeerConn::Item item) {
    if (queue_.size() >= impl_->options().node_queue_max) {
      impl_->metrics().node_messages_dropped++;
      return;
    }
    queue_.push_back(std::move(item));
    if (!idle_.empty()) {
      auto conn = idle_.back();
      idle_.pop_back();
      conn->Next();
    } else if (conns_ < impl_->options().peer_connections_max) {
      conns_++;
      std::make_shared<PeerConn>(impl_, shared_from_this(), endpoint_)->Next();
    }
  }
  std::optional<PeerConn::Item> Pop() {
    if (queue_.empty()) return std::nullopt;
    PeerConn::Item item = std::move(queue_.front());
    queue_.pop_front();
    return item;
  }
  void Idle(std::shared_ptr<PeerConn> conn) { idle_.push_back(std::move(conn)); }
  void Gone() { conns_--; }
  void Retry(PeerConn::Item item) {
    queue_.push_front(std::move(item));
    if (conns_ < impl_->options().peer_connections_max) {
      conns_++;
      std::make_shared<PeerConn>(impl_, shared_from_this(), endpoint_)->Next();
    }
  }
  size_t depth() const { return queue_.size(); }
  bool busy() const { return !queue_.empty() || idle_.size() < conns_; }
  int process() const { return process_; }

 private:
  Impl* impl_;
  int process_;
  tcp::endpoint endpoint_;
  std::deque<PeerConn::Item> queue_;
  std::vector<std::shared_ptr<PeerConn>> idle_;
  uint32_t conns_ = 0;
};

void Chatd::Impl::PeerConn::Next() {
  item_ = link_->Pop();
  if (!item_) {
    link_->Idle(shared_from_this());
    return;
  }
  if (connected_) {
    Send();
    return;
  }
  stream_.expires_after(std::chrono::seconds(5));
  stream_.async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->Fail(ec);
    self->connected_ = true;
    beast::error_code nodelay_ec;
    self->stream_.socket().set_option(tcp::no_delay(true), nodelay_ec);
    self->Send();
  });
}

void Chatd::Impl::PeerConn::Send() {
  request_ = {};
  request_.method(http::verb::post);
  request_.target("/node");
  request_.version(11);
  request_.set(http::field::host, endpoint_.address().to_string());
  request_.set(http::field::content_type, "application/octet-stream");
  const std::string from = std::to_string(item_->from.value);
  const std::string to = std::to_string(item_->to.value);
  request_.set("X-Chatlab-From", from);
  request_.set("X-Chatlab-To", to);
  request_.set("X-Chatlab-Mac", impl_->key().Mac(absl::StrCat(from, "|", to, "|", item_->bytes)));
  request_.keep_alive(true);
  request_.body() = std::move(item_->bytes);
  in_request_ = true;
  request_.prepare_payload();
  stream_.expires_after(std::chrono::seconds(10));
  http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Fail(ec);
    self->response_ = {};
    http::async_read(self->stream_, self->buffer_, self->response_,
                     [self](beast::error_code ec2, size_t) {
                       if (ec2) return self->Fail(ec2);
                       self->in_request_ = false;
                       self->impl_->metrics().node_messages_sent++;
                       if (self->response_.result() != http::status::no_content) {
                         self->impl_->metrics().node_messages_rejected++;
                       }
                       self->item_.reset();
                       if (!self->response_.keep_alive()) {
                         beast::error_code ignored;
                         self->stream_.socket().close(ignored);
                         self->connected_ = false;
                       }
                       self->Next();
                     });
  });
}

void Chatd::Impl::PeerConn::Fail(beast::error_code ec) {
  beast::error_code ignored;
  stream_.socket().close(ignored);
  connected_ = false;
  link_->Gone();
  if (item_ && item_->attempts == 0 && in_request_) {
    // A kept-alive connection the peer closed: try once more on a fresh one. (A failed connect
    // is not retried: the peer is down, and node messages are best effort.)
    item_->attempts = 1;
    item_->bytes = std::move(request_.body());
    in_request_ = false;
    link_->Retry(std::move(*item_));
    return;
  }
  impl_->metrics().node_messages_dropped++;
  impl_->Log(LogLevel::kDebug, "node_send_failed",
             {{"process", link_->process()}, {"error", ec.message()}});
}

// ---- WebSocket sessions ------------------------------------------------------------------------

class WsSession : public ClientSink, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(Chatd::Impl* impl, beast::tcp_stream stream, UserId user)
      : impl_(impl), ws_(std::move(stream)), user_(user) {
    impl_->ConnectionOpened();
  }
  ~WsSession() override { impl_->ConnectionClosed(); }

  void Start(http::request<http::string_body> request) {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(0);  // frames are bounded by the pieces read below, not by Beast
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      auto session = self->impl_->OpenWsSession(self->user_, self);
      if (!session.ok()) {
        self->dead_ = true;
        self->ws_.async_close(websocket::close_code::try_again_later, [self](beast::error_code) {});
        return;
      }
      self->session_ = *session;
      self->DoRead();
    });
  }

  void Push(const Message& m) override {
    if (dead_ || closing_) return;
    auto frame = std::make_shared<const std::string>(ToJson(m));
    if (queue_.size() >= impl_->options().send_queue_max ||
        queued_bytes_ + frame->size() > impl_->options().send_queue_bytes_max) {
      // A slow reader: drop the connection rather than grow memory or break ordering.
      impl_->metrics().connections_dropped_slow++;
      impl_->Log(LogLevel::kWarn, "connection_dropped_slow",
                 {{"session", session_.value},
                  {"user", user_.value},
                  {"queued_frames", queue_.size()},
                  {"queued_bytes", queued_bytes_}});
      Kill();
      return;
    }
    if (const auto* ack = std::get_if<SendAck>(&m)) {
      auto it = probes_.find(ack->client_msg_id);
      if (it != probes_.end()) {
        impl_->metrics().ack_latency.Observe(static_cast<double>(NowUs() - it->second) / 1e6);
        probes_.erase(it);
      }
    }
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    if (!writing_) DoWrite();
  }

  void CloseFromServer(bool going_away) override {
    if (dead_) return;
    closing_ = true;
    close_code_ = going_away ? websocket::close_code::going_away : websocket::close_code::normal;
    if (!writing_) DoClose();
  }
  size_t queue_depth() const override { return queue_.size(); }

  // The ack-latency probe: when a SendMessage came in (metrics only, never a decision).
  void Probe(const Message& m) {
    if (const auto* send = std::get_if<SendMessage>(&m);
        send && probes_.size() < kLatencyProbesMax) {
      probes_[send->client_msg_id] = NowUs();
    }
  }

 private:
  void DoRead() {
    ws_.async_read_some(
        buffer_, kWsReadChunkBytes,
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  }
  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return Gone();
    frame_bytes_ += n;
    if (frame_bytes_ > impl_->options().frame_bytes_max) {
      oversized_ = true;
      buffer_.consume(buffer_.size());
    }
    if (ws_.is_message_done()) {
      const std::string_view payload(static_cast<const char*>(buffer_.data().data()),
                                     buffer_.size());
      const bool text = ws_.got_text();
      std::optional<absl::StatusOr<Message>> decoded;
      if (!oversized_ && text) {
        decoded = impl_->DecodeFrame(payload);
        if (decoded->ok()) Probe(**decoded);
      }
      impl_->OnFrame(session_, user_, text, decoded ? &*decoded : nullptr, frame_bytes_,
                     oversized_);
      buffer_.consume(buffer_.size());
      frame_bytes_ = 0;
      oversized_ = false;
    }
    if (!dead_) DoRead();
  }
  void DoWrite() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) return self->Gone();
                      self->impl_->metrics().frames_out++;
                      self->queued_bytes_ -= self->queue_.front()->size();
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) return self->DoWrite();
                      self->writing_ = false;
                      if (self->closing_) self->DoClose();
                    });
  }
  void DoClose() {
    if (close_sent_) return;
    close_sent_ = true;
    ws_.async_close(close_code_, [self = shared_from_this()](beast::error_code) { self->Gone(); });
  }
  void Kill() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    Gone();
  }
  void Gone() {
    if (dead_) return;
    dead_ = true;
    if (!writing_) {
      queue_.clear();
      queued_bytes_ = 0;
    }
    // Posted, never called from inside the effect loop that may have dropped this connection:
    // the chat server hears of the close as a fresh input.
    asio::post(impl_->io(), [impl = impl_, session = session_] { impl->OnClientGone(session); });
  }

  Chatd::Impl* impl_;
  websocket::stream<beast::tcp_stream> ws_;
  UserId user_;
  SessionId session_;
  beast::flat_buffer buffer_;
  size_t frame_bytes_ = 0;
  bool oversized_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;
  // Bytes of the frames in queue_. Invariant: <= options.send_queue_bytes_max.
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool dead_ = false;
  websocket::close_code close_code_ = websocket::close_code::normal;
  absl::btree_map<ClientMsgId, TimeUs> probes_;
};

// ---- HTTP sessions
// -------------------------------------------------------------------------------

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Chatd::Impl* impl, tcp::socket socket) : impl_(impl), stream_(std::move(socket)) {}
  void Start() { DoRead(); }

  using Response = http::response<http::string_body>;
  void Respond(http::status status, std::string body, std::string_view type = "application/json") {
    auto res = std::make_shared<Response>(status, version_);
    res->set(http::field::server, "chatd");
    res->set(http::field::content_type, type);
    res->keep_alive(keep_alive_);
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->DoRead();
                      });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(kHttpHeaderBytesMax);
    stream_.expires_after(kHttpIdleTimeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return;
                              self->OnHeader();
                            });
  }
  void OnHeader() {
    const auto target = parser_->get().target();
    parser_->body_limit(RequestBodyBytesMax(std::string_view(target.data(), target.size()),
                                            impl_->options().http_body_bytes_max));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec == http::error::body_limit) {
                         self->keep_alive_ = false;
                         return self->Respond(http::status::payload_too_large,
                                              R"({"error":"body over http_body_bytes_max"})");
                       }
                       if (ec) return;
                       self->OnRequest(self->parser_->release());
                     });
  }
  void OnRequest(HttpRequest req);
  void Upgrade(HttpRequest req, std::string_view query);
  void Api(const Route& route, HttpRequest& req);
  void Login(const std::string& body);
  void Node(HttpRequest& req);
  absl::StatusOr<UserId> Authenticate(const HttpRequest& req, std::string_view query);

  Chatd::Impl* impl_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

// A web session's answer goes back as the HTTP response.
class WebWaiter : public ClientSink {
 public:
  explicit WebWaiter(std::shared_ptr<HttpSession> http) : http_(std::move(http)) {}
  void Push(const Message& m) override {
    if (!http_) return;
    http_->Respond(http::status::ok, ToJson(m));
    http_.reset();
  }
  void CloseFromServer(bool) override {
    if (http_) http_->Respond(http::status::service_unavailable, R"({"error":"closed"})");
    http_.reset();
  }

 private:
  std::shared_ptr<HttpSession> http_;
};

absl::StatusOr<UserId> HttpSession::Authenticate(const HttpRequest& req, std::string_view query) {
  const std::string_view token = RequestToken(req, query);
  if (token.empty()) return absl::UnauthenticatedError("no token: log in at POST /login");
  return impl_->VerifyToken(token);
}

void HttpSession::OnRequest(HttpRequest req) {
  impl_->metrics().http_requests++;
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  const Route route = RouteRequest(req);
  switch (route.endpoint) {
    case Endpoint::kWebSocket:
      return Upgrade(std::move(req), route.query);
    case Endpoint::kHealth:
      return impl_->draining()
                 ? Respond(http::status::service_unavailable, "draining\n", "text/plain")
                 : Respond(http::status::ok, "ok\n", "text/plain");
    case Endpoint::kMetrics:
      return Respond(http::status::ok, impl_->RenderMetrics(), "text/plain; version=0.0.4");
    case Endpoint::kNode:
      return Node(req);
    case Endpoint::kLogin:
      return Login(req.body());
    case Endpoint::kApiUser:
    case Endpoint::kApiCall:
    case Endpoint::kApiUnknown:
      return Api(route, req);
    case Endpoint::kNotFound:
      break;
  }
  Respond(http::status::not_found, R"({"error":"no such endpoint"})");
}

void HttpSession::Upgrade(HttpRequest req, std::string_view query) {
  auto user = Authenticate(req, query);
  if (!user.ok()) {
    impl_->metrics().http_unauthorized++;
    return Respond(http::status::unauthorized,
                   Json{{"error", std::string(user.status().message())}}.dump());
  }
  if (impl_->draining() || impl_->open_connections() >= impl_->options().connections_max) {
    impl_->metrics().connections_refused++;
    keep_alive_ = false;
    return Respond(
        http::status::service_unavailable,
        Json{{"error", absl::StrCat("at connections_max=", impl_->options().connections_max)}}
            .dump());
  }
  impl_->metrics().connections_total++;
  std::make_shared<WsSession>(impl_, std::move(stream_), *user)->Start(std::move(req));
}

void HttpSession::Login(const std::string& body) {
  absl::StatusOr<LoginRequest> login = ParseLogin(body);
  if (!login.ok()) {
    return Respond(http::status::bad_request,
                   R"({"error":"expected {\"user\": \"name\", \"password\": \"...\"}"})");
  }
  std::string name = std::move(login->user);
  std::string password = std::move(login->password);
  asio::post(impl_->auth_pool(), [self = shared_from_this(), name, password] {
    absl::StatusOr<UserId> user = self->impl_->users().Verify(name, password);
    asio::post(self->impl_->io(), [self, name, user] {
      if (!user.ok()) {
        self->impl_->metrics().logins_failed++;
        self->impl_->Log(LogLevel::kInfo, "login_failed", {{"user", name}});
        return self->Respond(http::status::unauthorized,
                             Json{{"error", std::string(user.status().message())}}.dump());
      }
      self->impl_->metrics().logins++;
      const TimeUs expires = NowUs() + TimeUs{self->impl_->options().token_ttl_s} * kUsPerSecond;
      self->Respond(http::status::ok, Json{{"token", self->impl_->key().Mint(*user, expires)},
                                           {"user_id", std::to_string(user->value)},
                                           {"expires_at_us", std::to_string(expires)}}
                                          .dump());
    });
  });
}

void HttpSession::Api(const Route& route, HttpRequest& req) {
  auto user = Authenticate(req, "");
  if (!user.ok()) {
    impl_->metrics().http_unauthorized++;
    return Respond(http::status::unauthorized,
                   Json{{"error", std::string(user.status().message())}}.dump());
  }
  if (route.endpoint == Endpoint::kApiUser) {
    std::string name(route.user_name);
    asio::post(impl_->auth_pool(), [self = shared_from_this(), name] {
      absl::StatusOr<UserId> found = self->impl_->users().Find(name);
      asio::post(self->impl_->io(), [self, name, found] {
        if (!found.ok())
          return self->Respond(http::status::not_found, R"({"error":"no such user"})");
        self->Respond(http::status::ok,
                      Json{{"user", name}, {"user_id", std::to_string(found->value)}}.dump());
      });
    });
    return;
  }
  if (route.endpoint != Endpoint::kApiCall) {
    return Respond(http::status::not_found, R"({"error":"no such call"})");
  }
  auto waiter = std::make_shared<WebWaiter>(shared_from_this());
  absl::StatusOr<Message> m =
      FromJsonAs(route.message_type, req.body(),
                 JsonLimits{impl_->options().frame_bytes_max, impl_->options().json_depth_max});
  if (!m.ok()) return impl_->WebCallFrameError(*user, m.status(), waiter);
  impl_->WebCall(*user, *m, waiter);
}

void HttpSession::Node(HttpRequest& req) {
  absl::StatusOr<NodeHeaders> h = ParseNodeHeaders(req);
  const bool authentic =
      h.ok() && TokenKey::MacEqual(
                    h->mac, impl_->key().Mac(absl::StrCat(h->from, "|", h->to, "|", req.body())));
  if (!authentic) {
    impl_->metrics().http_unauthorized++;
    impl_->Log(LogLevel::kWarn, "node_request_unauthenticated",
               {{"from", std::string(req["X-Chatlab-From"])}});
    return Respond(http::status::unauthorized, R"({"error":"bad node authentication"})");
  }
  absl::Status s = impl_->OnNodeFrame(NodeId(h->from_id), NodeId(h->to_id), req.body());
  if (!s.ok()) {
    return Respond(http::status::bad_request, Json{{"error", std::string(s.message())}}.dump());
  }
  Respond(http::status::no_content, "");
}

// ---- Chatd::Impl -------------------------------------------------------------------------------

Chatd::Impl::~Impl() {
  auth_pool_.join();
  commit_thread_.reset();
}

void Chatd::Impl::Log(LogLevel level, std::string_view event, Json fields) {
  if (level < options_.log_level) return;
  Json line = {
      {"ts_us", NowUs()}, {"level", LevelName(level)}, {"event", event}, {"node", self_.value}};
  for (auto& [k, v] : fields.items()) line[k] = v;
  std::fprintf(stderr, "%s\n", line.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
}

int Chatd::Impl::ProcessOf(NodeId node) const {
  if (node.value > kFirstServer) return static_cast<int>(node.value - kFirstServer);
  return 1;
}

Node* Chatd::Impl::LocalNode(NodeId node) {
  auto it = local_.find(node);
  return it == local_.end() ? nullptr : it->second;
}

absl::Status Chatd::Impl::Init() {
  if (options_.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  if (options_.config.write_path == WritePath::kBatched) {
    return absl::InvalidArgumentError(
        "write_path=batched is not supported by chatd: the batch writer's queue is not durable, "
        "so its ack would not mean durable");
  }
  if (mkdir(options_.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", options_.data_dir, " is unusable: ", std::strerror(errno)));
  }
  if (access(options_.data_dir.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", options_.data_dir, " is unusable: ", std::strerror(errno)));
  }
  if (options_.users_db.empty()) options_.users_db = options_.data_dir + "/users.db";
  if (options_.key_file.empty()) options_.key_file = options_.data_dir + "/token.key";
  auto key = TokenKey::LoadOrCreate(options_.key_file);
  if (!key.ok()) return key.status();
  key_ = *key;
  auto users = Users::Open(options_.users_db);
  if (!users.ok()) return users.status();
  users_ = std::move(*users);

  // Topology: every process knows every process's address.
  if (options_.cluster.empty()) options_.cluster.push_back(options_.listen);
  for (const std::string& a : options_.cluster) {
    auto hp = ParseHostPort(a);
    if (!hp.ok()) return hp.status();
    processes_.push_back(*hp);
  }
  if (options_.index < 1 || options_.index > static_cast<int>(processes_.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--index ", options_.index, " is not in 1..", processes_.size()));
  }
  config_ = options_.config;
  const bool queue = config_.forwarding == ForwardingStrategy::kQueue;
  topology_ = Topology{kStoreNode,    NodeId(),          kMappingNode,
                       kPresenceNode, kNotificationNode, queue ? kBrokerNode : NodeId()};
  (void)kWriterNode;
  self_ = NodeId(kFirstServer + static_cast<uint64_t>(options_.index));
  uint64_t seed = options_.seed;
  if (seed == 0) seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  auto node_options = [&](NodeId id) {
    return NodeOptions{id, config_, topology_, MixSeed(seed, id.value)};
  };
  if (options_.index == 1) {
    auto storage = SqliteStorage::Open(options_.data_dir + "/chat.db");
    if (!storage.ok()) return storage.status();
    storage_ = std::move(*storage);
    store_ = std::make_unique<MessageStore>(node_options(kStoreNode));
    absl::Status loaded =
        storage_->Load([this](const PersistRecord& r) { return store_->Restore(r); });
    if (!loaded.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot restore ", options_.data_dir, "/chat.db: ", loaded.message()));
    }
    mapping_ = std::make_unique<UserMappingService>(node_options(kMappingNode));
    presence_ = std::make_unique<PresenceService>(node_options(kPresenceNode));
    notification_ = std::make_unique<NotificationService>(node_options(kNotificationNode));
    local_[kStoreNode] = store_.get();
    local_[kMappingNode] = mapping_.get();
    local_[kPresenceNode] = presence_.get();
    local_[kNotificationNode] = notification_.get();
    if (queue) {
      broker_ = std::make_unique<QueueBroker>(node_options(kBrokerNode));
      local_[kBrokerNode] = broker_.get();
    }
    commit_thread_ = std::make_unique<CommitThread>(
        storage_.get(), [this](uint64_t batch, absl::Status status, double seconds) {
          asio::post(io_, [this, batch, status, seconds] { OnCommitted(batch, status, seconds); });
        });
    Log(LogLevel::kInfo, "store_restored",
        {{"messages", storage_->messages_loaded()}, {"records", store_->stats().records_restored}});
  }
  chat_ = std::make_unique<ChatServer>(node_options(self_));
  local_[self_] = chat_.get();
  for (size_t i = 0; i < processes_.size(); ++i) {
    const int process = static_cast<int>(i) + 1;
    if (process == options_.index) continue;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(processes_[i].host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster address ", processes_[i].host, " is not an IP address"));
    }
    peers_[process] =
        std::make_shared<PeerLink>(this, process, tcp::endpoint(address, processes_[i].port));
  }

  // Listen.
  auto listen = ParseHostPort(options_.listen);
  if (!listen.ok()) return listen.status();
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(listen->host, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("--listen ", options_.listen, ": ", ec.message()));
  acceptor_.emplace(io_);
  const tcp::endpoint endpoint(address, listen->port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", options_.listen, ": ", ec.message()));
  }
  const uint16_t port = acceptor_->local_endpoint().port();
  if (!options_.port_file.empty()) {
    const std::string tmp = options_.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), options_.port_file.c_str());
  }

  // Start the nodes (services first, as the in-process cluster does).
  const TimeUs now = NowUs();
  for (auto& [id, node] : local_) {
    Effects out;
    node->Start(now, out);
    Apply(id, out);
  }
  Log(LogLevel::kInfo, "listening",
      {{"address", listen->host},
       {"port", port},
       {"index", options_.index},
       {"processes", processes_.size()},
       {"services", options_.index == 1},
       {"forwarding", std::string(ForwardingStrategyName(config_.forwarding))}});
  return absl::OkStatus();
}

void Chatd::Impl::Accept() {
  // One thread runs everything: sockets use the io_context executor directly (no strands).
  acceptor_->async_accept(io_, [this](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
      Log(LogLevel::kWarn, "accept_failed", {{"error", ec.message()}});
      // Out of descriptors or similar: keep serving the connections we have, try again soon.
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      t->async_wait([this, t](beast::error_code) {
        if (!draining_) Accept();
      });
      return;
    }
    // Small frames (acks, receipts) must not wait for Nagle's algorithm.
    beast::error_code nodelay_ec;
    s.set_option(tcp::no_delay(true), nodelay_ec);
    std::make_shared<HttpSession>(this, std::move(s))->Start();
    Accept();
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
  if (storage_) {
    commit_thread_.reset();  // joins; every submitted batch is committed
    if (absl::Status s = storage_->Checkpoint(); !s.ok()) {
      Log(LogLevel::kWarn, "checkpoint_failed", {{"error", std::string(s.message())}});
    }
    storage_.reset();
  }
  Log(LogLevel::kInfo, "stopped", {{"exit_code", exit_code_}});
  return exit_code_;
}

// ---- Sessions ----------------------------------------------------------------------------------

absl::StatusOr<SessionId> Chatd::Impl::OpenWsSession(UserId user,
                                                     std::shared_ptr<ClientSink> sink) {
  if (draining_) return absl::UnavailableError("draining");
  const SessionId session(session_next_++);
  Effects out;
  absl::Status s = chat_->OnSessionOpen(NowUs(), session, user, out);
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
    chat_->OnClientMessage(now, session, **decoded, out);
    Apply(self_, out);
    return;
  } else {
    error = decoded->status();
  }
  metrics_.frame_errors++;
  Log(LogLevel::kDebug, "frame_error",
      {{"session", session.value}, {"error", std::string(error.message())}});
  chat_->OnClientFrameError(now, session, error, out);
  Apply(self_, out);
}

void Chatd::Impl::OnClientGone(SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;  // the server closed it (CloseSession): no OnSessionClose
  sessions_.erase(it);
  if (ws_sessions_.erase(session) > 0) ws_count_--;
  Effects out;
  chat_->OnSessionClose(NowUs(), session, out);
  Log(LogLevel::kDebug, "session_closed", {{"session", session.value}});
  Apply(self_, out);
}

void Chatd::Impl::WebCall(UserId user, const Message& request, std::shared_ptr<ClientSink> waiter) {
  const SessionId session(session_next_++);
  const TimeUs now = NowUs();
  Effects out;
  absl::Status s = chat_->OnWebSessionOpen(now, session, user, out);
  if (!s.ok()) {
    waiter->CloseFromServer(false);
    return;
  }
  sessions_[session] = waiter;
  chat_->OnClientMessage(now, session, request, out);
  // The core answers every request exactly once (a timeout answers UNAVAILABLE); Carry closes
  // the web session when it has.
  Apply(self_, out);
}

void Chatd::Impl::WebCallFrameError(UserId user, const absl::Status& error,
                                    std::shared_ptr<ClientSink> waiter) {
  const SessionId session(session_next_++);
  const TimeUs now = NowUs();
  Effects out;
  if (!chat_->OnWebSessionOpen(now, session, user, out).ok()) {
    waiter->CloseFromServer(false);
    return;
  }
  sessions_[session] = waiter;
  chat_->OnClientFrameError(now, session, error, out);
  Apply(self_, out);
}

absl::Status Chatd::Impl::OnNodeFrame(NodeId from, NodeId to, std::string_view bytes) {
  if (LocalNode(to) == nullptr) {
    return absl::NotFoundError(absl::StrCat("node ", ToString(to), " is not in this process"));
  }
  absl::StatusOr<Message> m = Decode(bytes, NodeFrameLimits());
  if (!m.ok()) {
    Log(LogLevel::kWarn, "node_frame_error",
        {{"from", from.value}, {"error", std::string(m.status().message())}});
    return m.status();
  }
  metrics_.node_messages_received++;
  asio::post(io_, [this, from, to, msg = std::move(*m)] { DeliverNode(from, to, msg); });
  return absl::OkStatus();
}

// ---- Carrying out effects
// ------------------------------------------------------------------------

void Chatd::Impl::DeliverNode(NodeId from, NodeId to, const Message& msg) {
  Node* node = LocalNode(to);
  if (node == nullptr) return;
  Effects out;
  node->OnMessage(NowUs(), from, msg, out);
  Apply(to, out);
}

void Chatd::Impl::Apply(NodeId from, Effects& effects) {
  bool persisted = false;
  for (Effect& e : effects) {
    if (auto* p = std::get_if<Persist>(&e)) {
      open_records_.push_back(std::move(p->record));
      persisted = true;
      continue;
    }
    if (from == kStoreNode && (persisted || !deferred_.empty())) {
      // After a Persist (of this call or an earlier one still committing) nothing of the store
      // goes out before the record is durable.
      const uint64_t batch = persisted ? open_batch_ : deferred_.back().batch;
      deferred_.push_back(Deferred{batch, from, std::move(e)});
      continue;
    }
    Carry(from, e);
  }
  if (persisted) MaybeCommit();
}

void Chatd::Impl::MaybeCommit() {
  if (committing_ || open_records_.empty() || !commit_thread_) return;
  committing_ = true;
  metrics_.storage_records += open_records_.size();
  commit_thread_->Submit(open_batch_++, std::move(open_records_));
  open_records_.clear();
}

void Chatd::Impl::OnCommitted(uint64_t batch, const absl::Status& status, double seconds) {
  if (!status.ok()) {
    Log(LogLevel::kError, "storage_commit_failed",
        {{"error", std::string(status.message())},
         {"action", "exiting: memory must not run ahead of disk; restart restores"}});
    std::fflush(stderr);
    std::_Exit(1);
  }
  metrics_.storage_commits++;
  metrics_.commit_latency.Observe(seconds);
  committing_ = false;
  while (!deferred_.empty() && deferred_.front().batch <= batch) {
    Deferred d = std::move(deferred_.front());
    deferred_.pop_front();
    Carry(d.from, d.effect);
  }
  MaybeCommit();
}

void Chatd::Impl::Carry(NodeId from, Effect& effect) {
  if (auto* send = std::get_if<SendToNode>(&effect)) {
    if (LocalNode(send->to) != nullptr) {
      metrics_.node_messages_local++;
      asio::post(io_, [this, from, to = send->to, msg = std::move(send->msg)] {
        DeliverNode(from, to, msg);
      });
    } else {
      SendRemote(from, send->to, send->msg);
    }
  } else if (auto* to_client = std::get_if<SendToClient>(&effect)) {
    auto it = sessions_.find(to_client->session);
    if (it == sessions_.end()) return;  // the client left: drop, as the effect's contract says
    auto sink = it->second;             // Push may drop the connection and erase the entry
    const bool web = !ws_sessions_.contains(to_client->session);
    sink->Push(to_client->msg);
    if (web) {
      // A web session is answered once; then it closes.
      const SessionId session = to_client->session;
      asio::post(io_, [this, session] { OnClientGone(session); });
    }
  } else if (auto* close = std::get_if<CloseSession>(&effect)) {
    auto it = sessions_.find(close->session);
    if (it == sessions_.end()) return;
    auto sink = std::move(it->second);
    sessions_.erase(it);
    if (ws_sessions_.erase(close->session) > 0) ws_count_--;
    sink->CloseFromServer(false);
  } else if (auto* timer = std::get_if<chatlab::ArmTimer>(&effect)) {
    ArmTimer(from, timer->timer_id, timer->at_us);
  } else if (auto* push = std::get_if<PushToDevice>(&effect)) {
    metrics_.pushes++;
    // No phone vendor is configured: the push is counted and logged (debug) only.
    Log(LogLevel::kDebug, "push_to_device",
        {{"user", push->user.value},
         {"conv", ToString(push->conv)},
         {"message_id", std::to_string(push->message_id)},
         {"sender", push->sender.value}});
  } else {
    Log(LogLevel::kWarn, "unexpected_effect", {{"from", from.value}});
  }
}

void Chatd::Impl::SendRemote(NodeId from, NodeId to, const Message& msg) {
  const int process = ProcessOf(to);
  auto it = peers_.find(process);
  if (it == peers_.end()) {
    metrics_.node_messages_dropped++;
    Log(LogLevel::kWarn, "no_route", {{"to", to.value}});
    return;
  }
  it->second->Enqueue(PeerConn::Item{from, to, Encode(msg), 0});
}

void Chatd::Impl::ArmTimer(NodeId node, uint64_t timer_id, TimeUs at_us) {
  const TimeUs delay_us = std::max<TimeUs>(0, at_us - NowUs());
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::microseconds(delay_us));
  timer->async_wait([this, timer, node, timer_id](beast::error_code ec) {
    if (ec) return;
    Node* n = LocalNode(node);
    if (n == nullptr) return;
    Effects out;
    n->OnTimer(NowUs(), timer_id, out);
    Apply(node, out);
  });
}

// ---- Shutdown ----------------------------------------------------------------------------------

void Chatd::Impl::StartDrain() {
  if (draining_) return;
  draining_ = true;
  beast::error_code ignored;
  acceptor_->close(ignored);
  // Every WebSocket closes through the core (it unregisters the user and reports them offline).
  std::vector<SessionId> open;
  for (const auto& [session, unused] : ws_sessions_) open.push_back(session);
  for (SessionId session : open) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) continue;
    auto sink = it->second;
    OnClientGone(session);
    sink->CloseFromServer(/*going_away=*/true);
  }
  DrainPoll(std::chrono::steady_clock::now() +
            std::chrono::milliseconds(options_.drain_timeout_ms));
}

bool Chatd::Impl::DrainDone() const {
  if (committing_ || !open_records_.empty() || !deferred_.empty()) return false;
  if (open_connections_ > 0) return false;
  for (const auto& [process, link] : peers_) {
    if (link->busy()) return false;
  }
  return true;
}

void Chatd::Impl::DrainPoll(std::chrono::steady_clock::time_point deadline) {
  if (DrainDone() || std::chrono::steady_clock::now() >= deadline) {
    if (!DrainDone()) Log(LogLevel::kWarn, "drain_timeout", {});
    // Let a last commit finish: Run() joins the storage thread after io_ stops.
    if (committing_) {
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(5));
      t->async_wait([this, t, deadline](beast::error_code) {
        if (committing_) return DrainPoll(deadline);
        io_.stop();
      });
      return;
    }
    io_.stop();
    return;
  }
  auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(10));
  t->async_wait([this, t, deadline](beast::error_code) { DrainPoll(deadline); });
}

// ---- Metrics -----------------------------------------------------------------------------------

std::string Chatd::Impl::RenderMetrics() const {
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
  size_t queue_sum = 0;
  size_t queue_max = 0;
  for (const auto& [session, sink] : sessions_) {
    queue_sum += sink->queue_depth();
    queue_max = std::max(queue_max, sink->queue_depth());
  }
  gauge("chatd_connections", "Open client connections (WebSocket).",
        static_cast<double>(ws_count_));
  counter("chatd_connections_total", "WebSocket connections accepted.", metrics_.connections_total);
  counter("chatd_connections_refused_total", "Upgrades refused at connections_max or draining.",
          metrics_.connections_refused);
  counter("chatd_connections_dropped_slow_total", "Connections dropped at send_queue_max.",
          metrics_.connections_dropped_slow);
  gauge("chatd_send_queue_depth_sum", "Frames queued to clients, all connections.",
        static_cast<double>(queue_sum));
  gauge("chatd_send_queue_depth_max", "Frames queued to the most backed-up connection.",
        static_cast<double>(queue_max));
  counter("chatd_frames_in_total", "Client frames received.", metrics_.frames_in);
  counter("chatd_frames_out_total", "Frames written to clients.", metrics_.frames_out);
  counter("chatd_frame_errors_total", "Client frames answered with ErrorReply by the adapter.",
          metrics_.frame_errors);
  counter("chatd_rate_limited_total", "Frames refused by user_rate_per_s.", metrics_.rate_limited);
  counter("chatd_http_requests_total", "HTTP requests.", metrics_.http_requests);
  counter("chatd_http_unauthorized_total", "HTTP requests refused 401.",
          metrics_.http_unauthorized);
  counter("chatd_logins_total", "Successful logins.", metrics_.logins);
  counter("chatd_logins_failed_total", "Failed logins.", metrics_.logins_failed);
  counter("chatd_node_messages_local_total", "Node messages within this process.",
          metrics_.node_messages_local);
  counter("chatd_node_messages_sent_total", "Node messages POSTed to other processes.",
          metrics_.node_messages_sent);
  counter("chatd_node_messages_received_total", "Node messages received by POST /node.",
          metrics_.node_messages_received);
  counter("chatd_node_messages_dropped_total", "Node messages dropped (queue full, peer down).",
          metrics_.node_messages_dropped);
  size_t peer_depth = 0;
  for (const auto& [process, link] : peers_) peer_depth += link->depth();
  gauge("chatd_node_queue_depth", "Node messages waiting for a peer connection.",
        static_cast<double>(peer_depth));
  counter("chatd_storage_commits_total", "SQLite transactions committed.",
          metrics_.storage_commits);
  counter("chatd_storage_records_total", "Persist records written.", metrics_.storage_records);
  gauge("chatd_storage_deferred_effects", "Store effects waiting for a commit.",
        static_cast<double>(deferred_.size()));
  counter("chatd_pushes_total", "PushToDevice effects (logged; no vendor configured).",
          metrics_.pushes);
  metrics_.ack_latency.Render("chatd_send_ack_latency_seconds",
                              "SendMessage received to SendAck queued.", out);
  metrics_.commit_latency.Render("chatd_storage_commit_latency_seconds",
                                 "One SQLite commit (fsync included).", out);
  const ChatServer::Stats& c = chat_->stats();
  const std::pair<const char*, uint64_t> chat_stats[] = {
      {"sessions_opened", c.sessions_opened},
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
      {"timeouts", c.timeouts},
      {"client_errors", c.client_errors},
      {"unexpected_messages", c.unexpected_messages}};
  for (const auto& [name, value] : chat_stats) {
    counter(absl::StrCat("chatlab_chat_server_", name, "_total"), "ChatServer::Stats.", value);
  }
  gauge("chatlab_chat_server_pending", "ChatServer operations waiting for a service.",
        static_cast<double>(chat_->pending_count()));
  if (store_) {
    const MessageStore::Stats& s = store_->stats();
    const std::pair<const char*, uint64_t> store_stats[] = {
        {"requests", s.requests},
        {"appends", s.appends},
        {"messages_stored", s.messages_stored},
        {"reads", s.reads},
        {"messages_read", s.messages_read},
        {"syncs", s.syncs},
        {"membership_ops", s.membership_ops},
        {"receipt_ops", s.receipt_ops},
        {"duplicates", s.duplicates},
        {"dedup_evictions", s.dedup_evictions},
        {"records_restored", s.records_restored}};
    for (const auto& [name, value] : store_stats) {
      counter(absl::StrCat("chatlab_store_", name, "_total"), "MessageStore::Stats.", value);
    }
  }
  return out;
}

// ---- Chatd
// ---------------------------------------------------------------------------------------

Chatd::Chatd(ChatdOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Chatd::~Chatd() = default;
absl::Status Chatd::Init() { return impl_->Init(); }
int Chatd::Run() { return impl_->Run(); }

}  // namespace chatlab::real
