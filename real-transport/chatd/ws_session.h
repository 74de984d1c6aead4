// A client's WebSocket: one chat server session (GET /ws, after the token was checked).
//
// Reads: frames are read in pieces of kWsReadChunkBytes, so an oversized frame is read to its
// end and discarded without holding it (memory stays bounded); each complete frame goes to
// SessionHost::OnFrame, decoded when it is a text frame within frame_bytes_max.
// Writes: the core's messages are encoded as JSON text frames straight into the connection's
// WriteCombiner (real-transport/write_combiner.h), in order; a flush posted once per turn of the
// loop writes everything the turn owed this connection in one system call. Beast's own frames
// (pongs, the close frame) go through the same combiner, whole and in order. More than
// send_queue_max frames or send_queue_bytes_max bytes not yet written is a slow reader: the
// connection is dropped, never a frame (a session delivers in order or closes; docs/chatd.md,
// "Limits").
// Close: from the server (CloseFromServer) after what is queued; from the client or a failure,
// the host hears of it through a posted OnClientGone. When the token the client authenticated
// with expires, the host is told (OnTokenExpired) and the core closes the session: a token is
// checked at the upgrade, and a session lives no longer than its token.
//
// Stream: PlainStream or TlsStream (real-transport/tls.h; the two are instantiated in
// ws_session.cc): the same session over TCP or over TLS, whichever the connection was accepted as.
//
// Threading: the io_context thread only; a session lives while an operation holds it.
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_WS_SESSION_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_WS_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/btree_map.h"
#include "core/messages.h"
#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/chatd/session_host.h"
#include "real-transport/tls.h"
#include "real-transport/write_combiner.h"

namespace chatlab::real {

// Bytes read from a WebSocket per read call: an oversized frame is discarded in pieces of this.
inline constexpr size_t kWsReadChunkBytes = 64 * 1024;
// Pending SendMessage timestamps kept per connection for the ack-latency metric.
inline constexpr size_t kLatencyProbesMax = 4096;

template <class Stream>
class WsSession : public ClientSink, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  // token_expires_at_us: when the token the client authenticated with expires; the session is
  // closed then (SessionHost::OnTokenExpired).
  WsSession(SessionHost& host, Stream stream, UserId user,
            TimeUs token_expires_at_us);
  ~WsSession() override;

  // Completes the upgrade of request, then opens the session with the host and reads.
  void Start(boost::beast::http::request<boost::beast::http::string_body> request);

  void Push(const Message& m) override;
  void CloseFromServer(bool going_away) override;
  size_t queue_depth() const override { return ws_.next_layer().buffered_writes(); }

 private:
  // The ack-latency probe: when a SendMessage came in (metrics only, never a decision).
  void Probe(const Message& m);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t n);
  // Posts one flush of the combiner for this turn of the loop (once, however many frames).
  void ScheduleFlush();
  void DoClose();
  void Kill();  // closes the socket now (a slow reader)
  // Arms token_expiry_ for token_expires_at_us_ (holding the session weakly).
  void ArmTokenExpiry();
  void Gone();

  SessionHost& host_;
  boost::beast::websocket::stream<WriteCombiner<Stream>> ws_;
  UserId user_;
  SessionId session_;
  TimeUs token_expires_at_us_;
  boost::asio::steady_timer token_expiry_;
  boost::beast::flat_buffer buffer_;
  size_t frame_bytes_ = 0;  // of the frame being read, discarded pieces included
  bool oversized_ = false;
  std::string frame_;         // reused: the JSON of the frame being appended
  std::string frame_header_;  // reused: its WebSocket header
  // Invariant: the combiner's buffered bytes and frames stay within options.send_queue_bytes_max
  // and send_queue_max (plus Beast's own few control frames).
  bool flush_posted_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool dead_ = false;
  boost::beast::websocket::close_code close_code_ = boost::beast::websocket::close_code::normal;
  absl::btree_map<ClientMsgId, TimeUs> probes_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_WS_SESSION_H_
