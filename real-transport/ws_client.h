// Client-side plumbing shared by chatcli, chatload and the real-socket tests: an asynchronous
// WebSocket connection with a write queue, and small blocking HTTP calls (login, the Web
// Service API). No protocol logic: frames in, frames out. Each takes an optional client TLS
// context (real-transport/tls.h ClientTlsContext): given, it dials wss:// and https://, verifying
// the server's certificate against that context's CAs and the host it dials; null, plain TCP.
#ifndef CHATLAB_REAL_TRANSPORT_WS_CLIENT_H_
#define CHATLAB_REAL_TRANSPORT_WS_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/tls.h"
#include "real-transport/util.h"

namespace chatlab::real {

// One WebSocket connection. All calls on the io_context's thread. Callbacks run there too.
class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  using Handler = std::function<void(const boost::system::error_code&)>;
  // tls: the client TLS context to dial with (outlives the client); null for plain TCP.
  explicit WsClient(boost::asio::io_context& io, boost::asio::ssl::context* tls = nullptr) {
    if (tls != nullptr) {
      tls_.emplace(io, *tls);
    } else {
      plain_.emplace(io);
    }
  }

  // Connects to address and upgrades at target (e.g. "/ws?token=T"); done(ec) once.
  void Connect(const HostPort& address, std::string target, Handler done);
  // Queues one text (or binary) frame. Frames go out in order.
  void Send(std::string frame, bool binary = false);
  // Closes after the queued frames.
  void Close();
  // Called for every received frame, and once when the connection ends.
  std::function<void(std::string_view frame)> on_frame;
  std::function<void(const boost::system::error_code&)> on_closed;
  bool open() const { return open_; }
  size_t queued() const { return queue_.size(); }

 private:
  void DoRead();
  void DoWrite();
  void Closed(const boost::system::error_code& ec);

  // The TCP layer, whichever stream this client has.
  PlainStream& Lowest() {
    return tls_ ? boost::beast::get_lowest_layer(*tls_) : boost::beast::get_lowest_layer(*plain_);
  }
  template <class F>
  void WithWs(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  void Upgrade(std::string host, std::string target, Handler done);

  // Exactly one of the two.
  std::optional<boost::beast::websocket::stream<PlainStream>> plain_;
  std::optional<boost::beast::websocket::stream<TlsStream>> tls_;
  boost::beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

struct HttpResult {
  int status = 0;
  std::string body;
};

// One blocking HTTP request (its own connection). Error only when no response arrived.
absl::StatusOr<HttpResult> HttpCall(const HostPort& address, const std::string& method,
                                    const std::string& target, const std::string& body,
                                    const std::string& token = "",
                                    boost::asio::ssl::context* tls = nullptr);

struct LoginResult {
  std::string token;
  UserId user;
};
// POST /login. Unauthenticated with the server's message on a 401.
absl::StatusOr<LoginResult> Login(const HostPort& address, const std::string& name,
                                  const std::string& password,
                                  boost::asio::ssl::context* tls = nullptr);
// GET /api/users/NAME.
absl::StatusOr<UserId> LookupUser(const HostPort& address, const std::string& token,
                                  const std::string& name,
                                  boost::asio::ssl::context* tls = nullptr);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_WS_CLIENT_H_
