#include "real-transport/chatd/http_session.h"

#include <chrono>
#include <fstream>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "real-transport/chatd/web_assets.h"
#include "real-transport/chatd/ws_session.h"
#include "real-transport/json_codec.h"
#include "real-transport/util.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::chrono::milliseconds Ms(uint32_t ms) { return std::chrono::milliseconds(ms); }

// {"error": message}
std::string ErrorJson(std::string message) { return Json{{"error", std::move(message)}}.dump(); }

}  // namespace

// ---- HttpSession -------------------------------------------------------------------------------

template <class Stream>
void HttpSession<Stream>::Respond(http::status status, std::string body, std::string_view type) {
  using Response = http::response<http::string_body>;
  auto res = std::make_shared<Response>(status, version_);
  res->set(http::field::server, "chatd");
  res->set(http::field::content_type, type);
  res->keep_alive(keep_alive_);
  res->body() = std::move(body);
  res->prepare_payload();
  Send(std::move(res));
}

template <class Stream>
void HttpSession<Stream>::Send(std::shared_ptr<http::response<http::string_body>> res) {
  beast::get_lowest_layer(stream_).expires_after(kHttpWriteTimeout);
  auto self = this->shared_from_this();
  http::async_write(stream_, *res, [self, res](beast::error_code ec, size_t) {
    if (ec) return;
    if (!res->keep_alive()) return self->LingeringClose();
    self->DoRead();
  });
}

template <class Stream>
void HttpSession<Stream>::LingeringClose() {
  beast::get_lowest_layer(stream_).expires_after(kHttpLingerTimeout);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // close_notify; the shutdown completes when the client answers with its own, or at the
    // deadline. Either way the socket closes with the session.
    stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
  } else {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    DiscardUntilEof();
  }
}

template <class Stream>
void HttpSession<Stream>::DiscardUntilEof() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kHttpLingerChunkBytes),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (!ec) self->DiscardUntilEof();
                          });
}

template <class Stream>
void HttpSession<Stream>::DoRead() {
  parser_.emplace();
  parser_->header_limit(kHttpHeaderBytesMax);
  // No body limit while the header is read: Beast would otherwise refuse a Content-Length over
  // its default (1 MiB) as the header completes, before OnHeader can answer 413. (Not
  // boost::none: Boost 1.74 compares the length with the optional, and every length exceeds it.)
  parser_->body_limit(std::numeric_limits<uint64_t>::max());
  if (std::exchange(first_request_, false) || buffer_.size() > 0) return ReadHeader();
  beast::get_lowest_layer(stream_).expires_after(Ms(host_.options().http_idle_timeout_ms));
  stream_.async_read_some(buffer_.prepare(kHttpHeaderBytesMax),
                          [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                            if (ec) return;
                            self->buffer_.commit(n);
                            self->ReadHeader();
                          });
}

template <class Stream>
void HttpSession<Stream>::ReadHeader() {
  beast::get_lowest_layer(stream_).expires_after(Ms(host_.options().http_header_timeout_ms));
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return;
                            self->OnHeader();
                          });
}

template <class Stream>
void HttpSession<Stream>::OnHeader() {
  const auto& header = parser_->get();
  version_ = header.version();
  const auto target = header.target();
  const uint64_t limit = RequestBodyBytesMax(std::string_view(target.data(), target.size()),
                                             host_.options().http_body_bytes_max);
  // A declared length over the limit is refused before a byte of the body is read; a chunked
  // body is refused by the parser once it grows past the limit.
  if (parser_->content_length().value_or(0) > limit) return BodyTooLarge(limit);
  parser_->body_limit(limit);
  beast::get_lowest_layer(stream_).expires_after(Ms(host_.options().http_body_timeout_ms));
  http::async_read(stream_, buffer_, *parser_,
                   [self = this->shared_from_this(), limit](beast::error_code ec, size_t) {
                     if (ec == http::error::body_limit) return self->BodyTooLarge(limit);
                     if (ec) return;
                     self->OnRequest(self->parser_->release());
                   });
}

template <class Stream>
void HttpSession<Stream>::BodyTooLarge(uint64_t limit) {
  // The rest of the body is still in the socket: answer, then close (LingeringClose reads and
  // discards it for a while so the client gets the answer rather than a reset).
  keep_alive_ = false;
  Respond(http::status::payload_too_large,
          ErrorJson(absl::StrCat("request body over ", limit, " bytes (http_body_bytes_max)")));
}

template <class Stream>
absl::StatusOr<TokenKey::Verified> HttpSession<Stream>::Authenticate(const HttpRequest& req,
                                                              std::string_view query) {
  const std::string_view token = RequestToken(req, query);
  if (token.empty()) return absl::UnauthenticatedError("no token: log in at POST /login");
  return host_.VerifyToken(token);
}

template <class Stream>
void HttpSession<Stream>::Unauthorized(const absl::Status& why) {
  host_.metrics().http_unauthorized++;
  Respond(http::status::unauthorized, ErrorJson(std::string(why.message())));
}

template <class Stream>
void HttpSession<Stream>::OnRequest(HttpRequest req) {
  host_.metrics().http_requests++;
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  const Route route = RouteRequest(req);
  switch (route.endpoint) {
    case Endpoint::kWebSocket:
      return Upgrade(std::move(req), route.query);
    case Endpoint::kHealth:
      return host_.draining()
                 ? Respond(http::status::service_unavailable, "draining\n", "text/plain")
                 : Respond(http::status::ok, "ok\n", "text/plain");
    case Endpoint::kMetrics:
      return Respond(http::status::ok, host_.RenderMetrics(), "text/plain; version=0.0.4");
    case Endpoint::kNode:
      return Node(req);
    case Endpoint::kLogin:
      return Login(req.body());
    case Endpoint::kApiUser:
    case Endpoint::kApiUserName:
    case Endpoint::kApiCall:
    case Endpoint::kApiUnknown:
      return Api(route, req);
    case Endpoint::kWebAsset:
      return Asset(route.path, req.method() == http::verb::head);
    case Endpoint::kNotFound:
      break;
  }
  Respond(http::status::not_found, R"({"error":"no such endpoint"})");
}

template <class Stream>
void HttpSession<Stream>::Asset(std::string_view path, bool head_only) {
  const WebAsset* asset = FindWebAsset(path);
  if (asset == nullptr) {
    return Respond(http::status::not_found, "no such file\n", "text/plain; charset=utf-8");
  }
  host_.metrics().web_assets_served++;
  using Response = http::response<http::string_body>;
  auto res = std::make_shared<Response>(http::status::ok, version_);
  res->set(http::field::server, "chatd");
  res->set(http::field::content_type, asset->content_type);
  res->set("Content-Security-Policy", kWebContentSecurityPolicy);
  res->set("X-Content-Type-Options", "nosniff");
  res->set("Referrer-Policy", "no-referrer");
  res->set("X-Frame-Options", "DENY");
  // The files change with the binary: revalidate rather than run an old page on a new server.
  res->set(http::field::cache_control, "no-cache");
  res->keep_alive(keep_alive_);
  const std::string& dir = host_.options().web_dir;
  if (dir.empty()) {
    res->body().assign(asset->body.data(), asset->body.size());
  } else {
    // A checkout's web/ (development): the path is one of the embedded ones, never the client's.
    const std::string_view file = asset->path == "/" ? "/index.html" : asset->path;
    std::ifstream in(dir + std::string(file), std::ios::binary);
    if (!in) return Respond(http::status::not_found, "not in --web_dir\n", "text/plain");
    res->body().assign(std::istreambuf_iterator<char>(in), {});
  }
  res->prepare_payload();
  if (head_only) res->body().clear();  // Content-Length stays the file's
  Send(std::move(res));
}

template <class Stream>
void HttpSession<Stream>::Upgrade(HttpRequest req, std::string_view query) {
  auto token = Authenticate(req, query);
  if (!token.ok()) return Unauthorized(token.status());
  if (host_.draining() || host_.open_connections() >= host_.options().connections_max) {
    host_.metrics().connections_refused++;
    keep_alive_ = false;
    return Respond(http::status::service_unavailable,
                   ErrorJson(absl::StrCat("at connections_max=", host_.options().connections_max)));
  }
  host_.metrics().connections_total++;
  std::make_shared<WsSession<Stream>>(host_, std::move(stream_), token->user,
                                      token->expires_at_us)
      ->Start(std::move(req));
}

template <class Stream>
void HttpSession<Stream>::Login(const std::string& body) {
  absl::StatusOr<LoginRequest> login = ParseLogin(body);
  if (!login.ok()) {
    return Respond(http::status::bad_request,
                   R"({"error":"expected {\"user\": \"name\", \"password\": \"...\"}"})");
  }
  std::string name = std::move(login->user);
  std::string password = std::move(login->password);
  asio::post(host_.auth_pool(), [self = this->shared_from_this(), name, password] {
    absl::StatusOr<UserId> user = self->host_.users().Verify(name, password);
    asio::post(self->host_.io(), [self, name, user] {
      SessionHost& host = self->host_;
      if (!user.ok()) {
        host.metrics().logins_failed++;
        host.Log(LogLevel::kInfo, "login_failed", {{"user", name}});
        return self->Respond(http::status::unauthorized,
                             ErrorJson(std::string(user.status().message())));
      }
      host.metrics().logins++;
      const TimeUs expires = NowUs() + TimeUs{host.options().token_ttl_s} * kUsPerSecond;
      self->Respond(http::status::ok, Json{{"token", host.key().Mint(*user, expires)},
                                           {"user_id", std::to_string(user->value)},
                                           {"expires_at_us", std::to_string(expires)}}
                                          .dump());
    });
  });
}

template <class Stream>
void HttpSession<Stream>::Api(const Route& route, HttpRequest& req) {
  auto token = Authenticate(req, "");
  if (!token.ok()) return Unauthorized(token.status());
  const UserId user = token->user;
  if (route.endpoint == Endpoint::kApiUser) {
    std::string name(route.user_name);
    asio::post(host_.auth_pool(), [self = this->shared_from_this(), name] {
      absl::StatusOr<UserId> found = self->host_.users().Find(name);
      asio::post(self->host_.io(), [self, name, found] {
        if (!found.ok())
          return self->Respond(http::status::not_found, R"({"error":"no such user"})");
        self->Respond(http::status::ok,
                      Json{{"user", name}, {"user_id", std::to_string(found->value)}}.dump());
      });
    });
    return;
  }
  if (route.endpoint == Endpoint::kApiUserName) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(absl::string_view(route.user_name.data(), route.user_name.size()), &id) ||
        id == 0) {
      return Respond(http::status::not_found, R"({"error":"no such user"})");
    }
    asio::post(host_.auth_pool(), [self = this->shared_from_this(), id] {
      absl::StatusOr<std::string> name = self->host_.users().Name(UserId(id));
      asio::post(self->host_.io(), [self, id, name] {
        if (!name.ok()) {
          return self->Respond(http::status::not_found, R"({"error":"no such user"})");
        }
        self->Respond(http::status::ok,
                      Json{{"user", *name}, {"user_id", std::to_string(id)}}.dump());
      });
    });
    return;
  }
  if (route.endpoint != Endpoint::kApiCall) {
    return Respond(http::status::not_found, R"({"error":"no such call"})");
  }
  auto waiter = std::make_shared<WebWaiter>(this->shared_from_this());
  absl::StatusOr<Message> m = FromJsonAs(route.message_type, req.body(), host_.json_limits());
  if (!m.ok()) return host_.WebCallFrameError(user, m.status(), waiter);
  host_.WebCall(user, *m, waiter);
}

template <class Stream>
void HttpSession<Stream>::Node(HttpRequest& req) {
  absl::StatusOr<NodeHeaders> h = ParseNodeHeaders(req);
  const bool authentic =
      h.ok() && TokenKey::MacEqual(
                    h->mac, host_.key().Mac(absl::StrCat(h->from, "|", h->to, "|", req.body())));
  if (!authentic) {
    host_.metrics().http_unauthorized++;
    host_.Log(LogLevel::kWarn, "node_request_unauthenticated",
              {{"from", std::string(req["X-Chatlab-From"])}});
    return Respond(http::status::unauthorized, R"({"error":"bad node authentication"})");
  }
  absl::Status s = host_.OnNodeFrame(NodeId(h->from_id), NodeId(h->to_id), req.body(),
                                     req["X-Chatlab-Redelivered"] == "1");
  if (!s.ok()) return Respond(http::status::bad_request, ErrorJson(std::string(s.message())));
  Respond(http::status::no_content, "");
}

template class HttpSession<PlainStream>;
template class HttpSession<TlsStream>;

// ---- WebWaiter ---------------------------------------------------------------------------------

void WebWaiter::Push(const Message& m) {
  if (!http_) return;
  http_->Respond(http::status::ok, ToJson(m));
  http_.reset();
}

void WebWaiter::CloseFromServer(bool /*going_away*/) {
  if (http_) http_->Respond(http::status::service_unavailable, R"({"error":"closed"})");
  http_.reset();
}

}  // namespace chatlab::real
