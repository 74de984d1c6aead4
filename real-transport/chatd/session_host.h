// What chatd's connections see of the process: two narrow interfaces instead of the whole
// environment, so a session or a peer link can only do what its job needs.
//
//   ChatdContext   what every connection uses: options, the io_context, metrics, the log and
//                  the cluster key. Peer links (peer_link.h) see only this.
//   SessionHost    a ChatdContext plus the calls client sessions make into the environment:
//                  open a WebSocket session, hand it a frame, report it gone, run a web call,
//                  deliver a POST /node, and what HTTP needs (tokens, users, the auth thread,
//                  /metrics, /healthz, connections_max). WebSocket (ws_session.h) and HTTP
//                  (http_session.h) sessions see only this.
//   ClientSink     the other direction: where the environment pushes the core's messages for
//                  one client session (a WebSocket, or the HTTP request of a web call).
//
// chatd's environment (Chatd::Impl, chatd.cc) implements both; every call runs on the
// io_context thread. A session never calls into a node: it hands bytes or a decoded message to
// the host, which calls the core and carries out its effects.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_SESSION_HOST_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_SESSION_HOST_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/messages.h"
#include "core/types.h"
#include "nlohmann/json.hpp"
#include "real-transport/asio.h"
#include "real-transport/auth.h"
#include "real-transport/chatd.h"
#include "real-transport/chatd/metrics.h"
#include "real-transport/json_codec.h"
#include "real-transport/tls.h"
#include "real-transport/util.h"

namespace chatlab::real {

using Json = nlohmann::json;

// Where the core's messages for one client session go: a WebSocket, or a waiting HTTP request.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  virtual void Push(const Message& m) = 0;
  // The server closes the session (after what is queued). going_away: shutdown.
  virtual void CloseFromServer(bool going_away) = 0;
  virtual size_t queue_depth() const { return 0; }
};

class ChatdContext {
 public:
  virtual ~ChatdContext() = default;
  // One JSON line on stderr when level >= options().log_level: ts_us, level, event, node, and
  // fields.
  virtual void Log(LogLevel level, std::string_view event, Json fields) = 0;
  virtual Metrics& metrics() = 0;
  virtual const ChatdOptions& options() const = 0;
  virtual boost::asio::io_context& io() = 0;
  // The cluster key: tokens and the MAC of node requests.
  virtual const TokenKey& key() const = 0;
  // The client side of TLS for peer links; null when chatd serves plain TCP.
  virtual boost::asio::ssl::context* peer_tls() = 0;
};

class SessionHost : public ChatdContext {
 public:
  // ---- Connections ----
  // SIGTERM was received: /healthz answers 503 and upgrades are refused.
  virtual bool draining() const = 0;
  // Open WebSocket connections, counted against connections_max.
  virtual void ConnectionOpened() = 0;
  virtual void ConnectionClosed() = 0;
  virtual size_t open_connections() const = 0;

  // ---- WebSocket sessions ----
  // A WebSocket authenticated as user was accepted. Returns its session id, or an error (then
  // the socket is closed).
  virtual absl::StatusOr<SessionId> OpenWsSession(UserId user,
                                                  std::shared_ptr<ClientSink> sink) = 0;
  // One complete inbound frame of session: decoded (text frames within frame_bytes_max), or why
  // not (oversized: discarded bytes; binary).
  virtual void OnFrame(SessionId session, UserId user, bool text,
                       const absl::StatusOr<Message>* decoded, size_t frame_bytes,
                       bool oversized) = 0;
  // The client side of a session is gone (socket closed or failed). Post it, never call it
  // from inside a Push: the chat server must hear of the close as a fresh input.
  virtual void OnClientGone(SessionId session) = 0;
  // The token the session was opened with expired: the core closes it (SessionClosed
  // {UNAUTHENTICATED}, then CloseFromServer). Called from a timer, never from inside a Push.
  virtual void OnTokenExpired(SessionId session) = 0;

  // ---- HTTP ----
  // An /api call of user: a web session answers it through waiter, then closes.
  virtual void WebCall(UserId user, const Message& request, std::shared_ptr<ClientSink> waiter) = 0;
  // An /api call whose body did not decode: the core answers the error through waiter.
  virtual void WebCallFrameError(UserId user, const absl::Status& error,
                                 std::shared_ptr<ClientSink> waiter) = 0;
  // A POST /node body, already authenticated; redelivered: the sender sent it before and could
  // not confirm the delivery (X-Chatlab-Redelivered). An error is answered 400.
  virtual absl::Status OnNodeFrame(NodeId from, NodeId to, std::string_view bytes,
                                   bool redelivered) = 0;
  // Password hashing runs here, off the io_context thread.
  virtual boost::asio::thread_pool& auth_pool() = 0;
  // The users table. Only from the auth pool (its calls hash passwords and block).
  virtual Users& users() = 0;
  // GET /metrics.
  virtual std::string RenderMetrics() const = 0;

  // ---- Helpers over the above ----
  JsonLimits json_limits() const {
    return JsonLimits{options().frame_bytes_max, options().json_depth_max};
  }
  // Decodes one complete inbound text frame (the adapter's only look at client bytes).
  absl::StatusOr<Message> DecodeFrame(std::string_view payload) const {
    return FromJson(payload, json_limits());
  }
  absl::StatusOr<TokenKey::Verified> VerifyToken(std::string_view token) const {
    return key().Verify(token, NowUs());
  }
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_SESSION_HOST_H_
