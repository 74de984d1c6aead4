#include "real-transport/chatd/peer_link.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// A connect to a peer taking longer than this fails (the item is dropped).
constexpr auto kPeerConnectTimeout = std::chrono::seconds(5);
// One request and its response taking longer than this fail.
constexpr auto kPeerRequestTimeout = std::chrono::seconds(10);

}  // namespace

// ---- PeerLink ----------------------------------------------------------------------------------

void PeerLink::Enqueue(PeerConn::Item item) {
  if (queue_.size() >= context_.options().node_queue_max) {
    context_.metrics().node_messages_dropped++;
    return;
  }
  queue_.push_back(std::move(item));
  if (!idle_.empty()) {
    auto conn = idle_.back();
    idle_.pop_back();
    conn->Next();
  } else {
    Connect();
  }
}

std::optional<PeerConn::Item> PeerLink::Pop() {
  if (queue_.empty()) return std::nullopt;
  PeerConn::Item item = std::move(queue_.front());
  queue_.pop_front();
  return item;
}

void PeerLink::Retry(PeerConn::Item item) {
  queue_.push_front(std::move(item));
  Connect();
}

void PeerLink::Connect() {
  if (conns_ >= context_.options().peer_connections_max) return;
  conns_++;
  std::make_shared<PeerConn>(context_, shared_from_this(), endpoints_[place_])->Next();
}

bool PeerLink::Unreachable(const tcp::endpoint& endpoint, PeerConn::Item& item) {
  if (endpoints_.size() < 2) return false;
  if (endpoints_[place_] == endpoint) {
    place_ = (place_ + 1) % endpoints_.size();
    context_.Log(LogLevel::kInfo, "peer_place",
                 {{"process", process_},
                  {"address", endpoints_[place_].address().to_string()},
                  {"port", endpoints_[place_].port()}});
  }
  return ++item.places_tried < static_cast<int>(endpoints_.size());
}

// ---- PeerConn ----------------------------------------------------------------------------------

PeerConn::PeerConn(ChatdContext& context, std::shared_ptr<PeerLink> link, tcp::endpoint endpoint)
    : context_(context), link_(std::move(link)), endpoint_(endpoint) {}

void PeerConn::Next() {
  item_ = link_->Pop();
  if (!item_) {
    link_->Idle(shared_from_this());
    return;
  }
  if (connected_) {
    Send();
    return;
  }
  Connect();
}

void PeerConn::Connect() {
  endpoint_ = link_->endpoint();  // the link's current place (it moves on failed connects)
  tls_.reset();
  plain_.reset();
  if (asio::ssl::context* tls = context_.peer_tls(); tls != nullptr) {
    tls_.emplace(context_.io(), *tls);
    if (absl::Status s = PrepareClientTls(*tls_, endpoint_.address().to_string()); !s.ok()) {
      return Fail(asio::error::invalid_argument);  // our own setup failed: not the place's fault
    }
  } else {
    plain_.emplace(context_.io());
  }
  connecting_ = true;
  Lowest().expires_after(kPeerConnectTimeout);
  Lowest().async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->Fail(ec);
    self->connecting_ = false;
    self->fresh_ = true;
    beast::error_code nodelay_ec;
    self->Lowest().socket().set_option(tcp::no_delay(true), nodelay_ec);
    if (!self->tls_) {
      self->connected_ = true;
      return self->Send();
    }
    self->tls_->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code hs) {
      if (hs) return self->Fail(hs);
      self->connected_ = true;
      self->Send();
    });
  });
}

void PeerConn::Send() {
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
  request_.set("X-Chatlab-Mac", context_.key().Mac(absl::StrCat(from, "|", to, "|", item_->bytes)));
  // A re-send after a delivery this side could not confirm: the first copy may have arrived.
  // The receiver marks it (MarkRedelivered), so a store looks it up beyond its dedup window.
  if (item_->attempts > 0 || item_->places_tried > 0) request_.set("X-Chatlab-Redelivered", "1");
  request_.keep_alive(true);
  request_.body() = std::move(item_->bytes);
  in_request_ = true;
  request_.prepare_payload();
  Lowest().expires_after(kPeerRequestTimeout);
  WithStream([this](auto& stream) {
    http::async_write(stream, request_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Fail(ec);
                        self->ReadResponse();
                      });
  });
}

void PeerConn::ReadResponse() {
  response_ = {};
  WithStream([this](auto& stream) {
    http::async_read(stream, buffer_, response_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Fail(ec);
                       self->in_request_ = false;
                       self->fresh_ = false;
                       self->context_.metrics().node_messages_sent++;
                       if (self->response_.result() != http::status::no_content) {
                         self->context_.metrics().node_messages_rejected++;
                       }
                       self->item_.reset();
                       if (!self->response_.keep_alive()) {
                         beast::error_code ignored;
                         self->Lowest().socket().close(ignored);
                         self->connected_ = false;
                       }
                       self->Next();
                     });
  });
}

void PeerConn::Fail(beast::error_code ec) {
  beast::error_code ignored;
  if (tls_ || plain_) Lowest().socket().close(ignored);
  connected_ = false;
  link_->Gone();
  // The place is unreachable: its connect failed, or the first request on a fresh connection
  // failed (a paused process still accepts connections but answers nothing until the request
  // timeout). With another place, the item is tried there.
  const bool unreachable = connecting_ || (in_request_ && fresh_);
  connecting_ = false;
  fresh_ = false;
  if (item_ && unreachable && link_->Unreachable(endpoint_, *item_)) {
    if (in_request_) item_->bytes = std::move(request_.body());
    in_request_ = false;
    link_->Retry(std::move(*item_));
    return;
  }
  if (item_ && item_->attempts == 0 && in_request_) {
    // A kept-alive connection the peer closed: try once more on a fresh one. (A failed connect
    // is not retried: the peer is down, and node messages are best effort.)
    item_->attempts = 1;
    item_->bytes = std::move(request_.body());
    in_request_ = false;
    link_->Retry(std::move(*item_));
    return;
  }
  context_.metrics().node_messages_dropped++;
  context_.Log(LogLevel::kDebug, "node_send_failed",
               {{"process", link_->process()}, {"error", ec.message()}});
}

}  // namespace chatlab::real
