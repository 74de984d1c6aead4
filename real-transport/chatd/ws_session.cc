#include "real-transport/chatd/ws_session.h"

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>

#include "real-transport/json_codec.h"
#include "real-transport/util.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

}  // namespace

template <class Stream>
WsSession<Stream>::WsSession(SessionHost& host, Stream stream, UserId user,
                     TimeUs token_expires_at_us)
    : host_(host),
      ws_(std::move(stream)),
      user_(user),
      token_expires_at_us_(token_expires_at_us),
      token_expiry_(host.io()) {
  host_.ConnectionOpened();
}

template <class Stream>
WsSession<Stream>::~WsSession() { host_.ConnectionClosed(); }

template <class Stream>
void WsSession<Stream>::Start(http::request<http::string_body> request) {
  beast::get_lowest_layer(ws_).expires_never();
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(0);  // frames are bounded by the pieces read below, not by Beast
  ws_.next_layer().SetOwner(this->weak_from_this());
  ws_.async_accept(request, [self = this->shared_from_this()](beast::error_code ec) {
    if (ec) return;
    auto session = self->host_.OpenWsSession(self->user_, self);
    if (!session.ok()) {
      self->dead_ = true;
      self->ws_.async_close(websocket::close_code::try_again_later, [self](beast::error_code) {});
      return;
    }
    self->session_ = *session;
    self->ArmTokenExpiry();
    self->DoRead();
  });
}

template <class Stream>
void WsSession<Stream>::Push(const Message& m) {
  if (dead_ || closing_) return;
  frame_.clear();
  AppendJson(frame_, m);
  WriteCombiner<Stream>& out = ws_.next_layer();
  if (out.buffered_writes() >= host_.options().send_queue_max ||
      out.buffered_bytes() + frame_.size() > host_.options().send_queue_bytes_max) {
    // A slow reader: drop the connection rather than grow memory or break ordering.
    host_.metrics().connections_dropped_slow++;
    host_.Log(LogLevel::kWarn, "connection_dropped_slow",
              {{"session", session_.value},
               {"user", user_.value},
               {"queued_frames", out.buffered_writes()},
               {"queued_bytes", out.buffered_bytes()}});
    Kill();
    return;
  }
  if (const auto* ack = std::get_if<SendAck>(&m)) {
    auto it = probes_.find(ack->client_msg_id);
    if (it != probes_.end()) {
      host_.metrics().ack_latency.Observe(static_cast<double>(NowUs() - it->second) / 1e6);
      probes_.erase(it);
    }
  }
  frame_header_.clear();
  AppendWsFrameHeader(frame_header_, /*opcode=*/1, frame_.size());
  out.Append(frame_header_, frame_);
  host_.metrics().frames_out++;
  ScheduleFlush();
}

template <class Stream>
void WsSession<Stream>::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(host_.io(), [self = this->shared_from_this()] {
    self->flush_posted_ = false;
    self->ws_.next_layer().Flush();
  });
}

template <class Stream>
void WsSession<Stream>::CloseFromServer(bool going_away) {
  if (dead_) return;
  closing_ = true;
  close_code_ = going_away ? websocket::close_code::going_away : websocket::close_code::normal;
  DoClose();  // the close frame goes out after the frames already appended
}

template <class Stream>
void WsSession<Stream>::ArmTokenExpiry() {
  token_expiry_.expires_after(std::chrono::microseconds(token_expires_at_us_ - NowUs()));
  token_expiry_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->dead_ || self->closing_) return;
    self->host_.OnTokenExpired(self->session_);
  });
}

template <class Stream>
void WsSession<Stream>::Probe(const Message& m) {
  if (const auto* send = std::get_if<SendMessage>(&m); send && probes_.size() < kLatencyProbesMax) {
    probes_[send->client_msg_id] = NowUs();
  }
}

template <class Stream>
void WsSession<Stream>::DoRead() {
  ws_.async_read_some(
      buffer_, kWsReadChunkBytes,
      [self = this->shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
}

template <class Stream>
void WsSession<Stream>::OnRead(beast::error_code ec, size_t n) {
  if (ec) return Gone();
  frame_bytes_ += n;
  if (frame_bytes_ > host_.options().frame_bytes_max) {
    oversized_ = true;
    buffer_.consume(buffer_.size());
  }
  if (ws_.is_message_done()) {
    const std::string_view payload(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const bool text = ws_.got_text();
    std::optional<absl::StatusOr<Message>> decoded;
    if (!oversized_ && text) {
      decoded = host_.DecodeFrame(payload);
      if (decoded->ok()) Probe(**decoded);
    }
    host_.OnFrame(session_, user_, text, decoded ? &*decoded : nullptr, frame_bytes_, oversized_);
    buffer_.consume(buffer_.size());
    frame_bytes_ = 0;
    oversized_ = false;
  }
  if (!dead_) DoRead();
}

template <class Stream>
void WsSession<Stream>::DoClose() {
  if (close_sent_) return;
  close_sent_ = true;
  ws_.async_close(close_code_,
                  [self = this->shared_from_this()](beast::error_code) { self->Gone(); });
}

template <class Stream>
void WsSession<Stream>::Kill() {
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  Gone();
}

template <class Stream>
void WsSession<Stream>::Gone() {
  if (dead_) return;
  dead_ = true;
  token_expiry_.cancel();
  // Posted, never called from inside the effect loop that may have dropped this connection:
  // the chat server hears of the close as a fresh input.
  asio::post(host_.io(), [host = &host_, session = session_] { host->OnClientGone(session); });
}

template class WsSession<PlainStream>;
template class WsSession<TlsStream>;

}  // namespace chatlab::real
