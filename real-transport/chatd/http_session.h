// One accepted TCP connection: HTTP/1.1 requests, one at a time (keep-alive), until it closes
// or upgrades to a WebSocket.
//
// Which endpoint a request is for, and the token, node headers or login it carries, are read by
// the pure functions of http_route.h (fuzzed without a socket); HttpSession acts on the route:
//   /ws          checks the token and connections_max, then hands the stream to a WsSession;
//   /login       verifies the password on the auth thread and mints a token;
//   /api/...     a web call: the host runs it on a web session, and the WebWaiter below
//                answers the HTTP request with the core's first message to that session;
//   /node        checks the MAC and hands the frame to the host (204, or 400 naming why);
//   /healthz, /metrics;
//   any other GET the web client's files (web_assets.h), with its CSP and nosniff.
// Limits: headers up to kHttpHeaderBytesMax, bodies up to the limit of their target (413
// naming it, then the connection closes; a declared Content-Length over it is refused before
// the body is read). Deadlines (ChatdOptions): the header must be complete within
// http_header_timeout_ms of the connection's start (first request) or of its first byte (later
// requests), the body within http_body_timeout_ms of the header, and a keep-alive connection
// waits http_idle_timeout_ms for its next request; a missed deadline closes the connection
// without an answer (a slowloris client trickling bytes gains nothing: the deadline does not
// move with progress).
//
// Stream: PlainStream, or TlsStream when chatd has --tls_cert (the handshake is done by the
// acceptor before the session starts); both are instantiated in http_session.cc. An upgrade
// hands the same stream to a WsSession<Stream>.
//
// Threading: the io_context thread; password hashing and user lookups are posted to the auth
// pool and their answers posted back.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_HTTP_SESSION_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_HTTP_SESSION_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/messages.h"
#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/chatd/session_host.h"
#include "real-transport/http_route.h"
#include "real-transport/tls.h"

namespace chatlab::real {

// Longest time an answer may take to write (a client that stops reading is closed).
inline constexpr auto kHttpWriteTimeout = std::chrono::seconds(30);
// After an answer that closes the connection (e.g. 413 with the body unread), what the client
// still sends is read and discarded for up to this long, in chunks of kHttpLingerChunkBytes:
// closing a socket with unread input resets it, and the client could lose the answer.
inline constexpr auto kHttpLingerTimeout = std::chrono::seconds(2);
inline constexpr size_t kHttpLingerChunkBytes = 64 * 1024;

// What a web call's answer is written to (WebWaiter), whatever the stream.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  // Answers the current request; then reads the next one, or shuts the connection down when it
  // is not kept alive.
  virtual void Respond(boost::beast::http::status status, std::string body,
                       std::string_view type = "application/json") = 0;
};

template <class Stream>
class HttpSession : public HttpResponder,
                    public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(SessionHost& host, Stream stream) : host_(host), stream_(std::move(stream)) {}
  void Start() { DoRead(); }

  void Respond(boost::beast::http::status status, std::string body,
               std::string_view type = "application/json") override;

 private:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  // Writes res (kHttpWriteTimeout), then reads the next request or closes.
  void Send(std::shared_ptr<Response> res);
  // A file of the web client, with its security headers; 404 if path is none. head_only: the
  // headers alone (HEAD).
  void Asset(std::string_view path, bool head_only);

  // Waits for the next request: on a kept-alive connection with nothing buffered, for its first
  // byte (http_idle_timeout_ms), then ReadHeader.
  void DoRead();
  void ReadHeader();
  void OnHeader();
  // 413 naming the limit, then close.
  void BodyTooLarge(uint64_t limit);
  // Shuts the sending side down (TCP: a FIN; TLS: close_notify), then reads and discards until
  // the client closes, at most kHttpLingerTimeout.
  void LingeringClose();
  void DiscardUntilEof();
  void OnRequest(HttpRequest req);
  void Upgrade(HttpRequest req, std::string_view query);
  void Api(const Route& route, HttpRequest& req);
  void Login(const std::string& body);
  void Node(HttpRequest& req);
  absl::StatusOr<TokenKey::Verified> Authenticate(const HttpRequest& req, std::string_view query);
  // 401 with the reason of a refused token.
  void Unauthorized(const absl::Status& why);

  SessionHost& host_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool first_request_ = true;  // the connection's first request is timed from the accept
};

// A web session's answer goes back as the HTTP response: the first message pushed, or 503 if
// the session closes first.
class WebWaiter : public ClientSink {
 public:
  explicit WebWaiter(std::shared_ptr<HttpResponder> http) : http_(std::move(http)) {}
  void Push(const Message& m) override;
  void CloseFromServer(bool going_away) override;

 private:
  std::shared_ptr<HttpResponder> http_;  // null once answered
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_HTTP_SESSION_H_
