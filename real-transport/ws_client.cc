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
    asio::post(ws_.get_executor(), [done, ec] { done(ec); });
    return;
  }
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(ws_).async_connect(
      tcp::endpoint(ip, address.port),
      [self = shared_from_this(), host = address.host, target = std::move(target),
       done](const boost::system::error_code& ec2) {
        if (ec2) return done(ec2);
        boost::system::error_code nodelay_ec;
        beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), nodelay_ec);
        beast::get_lowest_layer(self->ws_).expires_never();
        self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        self->ws_.read_message_max(64ull << 20);
        self->ws_.async_handshake(host, target, [self, done](const boost::system::error_code& ec3) {
          if (!ec3) {
            self->open_ = true;
            self->DoRead();
          }
          done(ec3);
        });
      });
}

void WsClient::DoRead() {
  ws_.async_read(buffer_, [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
    if (ec) return self->Closed(ec);
    const std::string frame = beast::buffers_to_string(self->buffer_.data());
    self->buffer_.consume(self->buffer_.size());
    if (self->on_frame) self->on_frame(frame);
    self->DoRead();
  });
}

void WsClient::Send(std::string frame, bool binary) {
  if (!open_ || closing_) return;
  queue_.emplace_back(std::move(frame), binary);
  if (!writing_) DoWrite();
}

void WsClient::DoWrite() {
  writing_ = true;
  ws_.binary(queue_.front().second);
  ws_.async_write(asio::buffer(queue_.front().first),
                  [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                    if (ec) return self->Closed(ec);
                    self->queue_.pop_front();
                    if (!self->queue_.empty()) return self->DoWrite();
                    self->writing_ = false;
                    if (self->closing_) self->Close();
                  });
}

void WsClient::Close() {
  if (!open_) return;
  closing_ = true;
  if (writing_) return;
  open_ = false;
  ws_.async_close(websocket::close_code::normal,
                  [self = shared_from_this()](const boost::system::error_code&) {});
}

void WsClient::Closed(const boost::system::error_code& ec) {
  open_ = false;
  if (closed_) return;
  closed_ = true;
  if (on_closed) on_closed(ec);
}

absl::StatusOr<HttpResult> HttpCall(const HostPort& address, const std::string& method,
                                    const std::string& target, const std::string& body,
                                    const std::string& token) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) return absl::InvalidArgumentError(ec.message());
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(tcp::endpoint(ip, address.port), ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
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
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return HttpResult{static_cast<int>(res.result_int()), res.body()};
}

absl::StatusOr<LoginResult> Login(const HostPort& address, const std::string& name,
                                  const std::string& password) {
  const nlohmann::json request = {{"user", name}, {"password", password}};
  auto res = HttpCall(address, "POST", "/login", request.dump());
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
                                  const std::string& name) {
  auto res = HttpCall(address, "GET", "/api/users/" + name, "", token);
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
