#include "real-transport/ws_client.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "real-transport/asio.h"

namespace chatlab::real {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

void WsClient::Connect(const HostPort& address, std::string target, Handler done) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) {
    asio::post(Lowest().get_executor(), [done, ec] { done(ec); });
    return;
  }
  if (tls_) {
    if (absl::Status s = PrepareClientTls(tls_->next_layer(), address.host); !s.ok()) {
      asio::post(Lowest().get_executor(), [done] { done(asio::error::invalid_argument); });
      return;
    }
  }
  Lowest().expires_after(std::chrono::seconds(10));
  Lowest().async_connect(
      tcp::endpoint(ip, address.port),
      [self = shared_from_this(), host = address.host, target = std::move(target),
       done](const boost::system::error_code& ec2) {
        if (ec2) return done(ec2);
        boost::system::error_code nodelay_ec;
        self->Lowest().socket().set_option(tcp::no_delay(true), nodelay_ec);
        if (!self->tls_) return self->Upgrade(host, target, done);
        self->tls_->next_layer().async_handshake(
            asio::ssl::stream_base::client,
            [self, host, target, done](const boost::system::error_code& hs) {
              if (hs) return done(hs);
              self->Upgrade(host, target, done);
            });
      });
}

void WsClient::Upgrade(std::string host, std::string target, Handler done) {
  Lowest().expires_never();
  WithWs([&](auto& ws) {
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws.read_message_max(64ull << 20);
    ws.async_handshake(host, target,
                       [self = shared_from_this(), done](const boost::system::error_code& ec) {
                         if (!ec) {
                           self->open_ = true;
                           self->DoRead();
                         }
                         done(ec);
                       });
  });
}

void WsClient::DoRead() {
  WithWs([this](auto& ws) {
    ws.async_read(buffer_,
                  [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                    if (ec) return self->Closed(ec);
                    const std::string frame = beast::buffers_to_string(self->buffer_.data());
                    self->buffer_.consume(self->buffer_.size());
                    if (self->on_frame) self->on_frame(frame);
                    self->DoRead();
                  });
  });
}

void WsClient::Send(std::string frame, bool binary) {
  if (!open_ || closing_) return;
  queue_.emplace_back(std::move(frame), binary);
  if (!writing_) DoWrite();
}

void WsClient::DoWrite() {
  writing_ = true;
  WithWs([this](auto& ws) {
    ws.binary(queue_.front().second);
    ws.async_write(asio::buffer(queue_.front().first),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) return self->Closed(ec);
                     self->queue_.pop_front();
                     if (!self->queue_.empty()) return self->DoWrite();
                     self->writing_ = false;
                     if (self->closing_) self->Close();
                   });
  });
}

void WsClient::Close() {
  if (!open_) return;
  closing_ = true;
  if (writing_) return;
  open_ = false;
  WithWs([this](auto& ws) {
    ws.async_close(websocket::close_code::normal,
                   [self = shared_from_this()](const boost::system::error_code&) {});
  });
}

void WsClient::Closed(const boost::system::error_code& ec) {
  open_ = false;
  if (closed_) return;
  closed_ = true;
  if (on_closed) on_closed(ec);
}

namespace {

// One request and its response on stream (connected, and through its handshake for TLS).
template <class Stream>
absl::StatusOr<HttpResult> Exchange(Stream& stream, const HostPort& address,
                                    const std::string& method, const std::string& target,
                                    const std::string& body, const std::string& token) {
  boost::system::error_code ec;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, address.host);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("write: ", ec.message()));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("read: ", ec.message()));
  return HttpResult{static_cast<int>(res.result_int()), res.body()};
}

}  // namespace

absl::StatusOr<HttpResult> HttpCall(const HostPort& address, const std::string& method,
                                    const std::string& target, const std::string& body,
                                    const std::string& token, asio::ssl::context* tls) {
  asio::io_context io;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) return absl::InvalidArgumentError(ec.message());
  if (tls == nullptr) {
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(tcp::endpoint(ip, address.port), ec);
    if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
    auto result = Exchange(stream, address, method, target, body, token);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return result;
  }
  TlsStream stream(io, *tls);
  if (absl::Status s = PrepareClientTls(stream, address.host); !s.ok()) return s;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  beast::get_lowest_layer(stream).connect(tcp::endpoint(ip, address.port), ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("TLS handshake: ", ec.message()));
  auto result = Exchange(stream, address, method, target, body, token);
  // No close_notify exchange: the answer was read whole (its length framed it), and a blocking
  // TLS shutdown would wait on the server's side of it.
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
  return result;
}

absl::StatusOr<LoginResult> Login(const HostPort& address, const std::string& name,
                                  const std::string& password, asio::ssl::context* tls) {
  const nlohmann::json request = {{"user", name}, {"password", password}};
  auto res = HttpCall(address, "POST", "/login", request.dump(), "", tls);
  if (!res.ok()) return res.status();
  const nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200 || !j.is_object() || !j.contains("token")) {
    return absl::UnauthenticatedError(
        absl::StrCat("login failed (", res->status, "): ", res->body));
  }
  uint64_t user = 0;
  if (!absl::SimpleAtoi(j["user_id"].get<std::string>(), &user)) {
    return absl::InternalError("login answer without user_id");
  }
  return LoginResult{j["token"].get<std::string>(), UserId(user)};
}

absl::StatusOr<UserId> LookupUser(const HostPort& address, const std::string& token,
                                  const std::string& name, asio::ssl::context* tls) {
  auto res = HttpCall(address, "GET", "/api/users/" + name, "", token, tls);
  if (!res.ok()) return res.status();
  const nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  uint64_t user = 0;
  if (res->status != 200 || !j.is_object() || !j.contains("user_id") ||
      !absl::SimpleAtoi(j["user_id"].get<std::string>(), &user)) {
    return absl::NotFoundError(absl::StrCat("no user ", name));
  }
  return UserId(user);
}

}  // namespace chatlab::real
