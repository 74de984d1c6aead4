// Peer links: node messages to another chatd process, as POST /node requests.
//
// One PeerLink per other process of the cluster holds a FIFO of encoded node messages and up to
// peer_connections_max keep-alive HTTP connections (PeerConn) that take items from it, one
// request at a time each. Node traffic is best effort (core/effects.h SendToNode), so:
//   * beyond node_queue_max queued items a new one is dropped (counted);
//   * a failed connect drops the item (the peer is down); a request that fails on a kept-alive
//     connection the peer has closed is retried once on a fresh connection;
//   * a process may have several places (--cluster "a:1|b:2": where it runs, then where its
//     standbys run; a standby listens only once it holds its store shard's lease). The link
//     dials one place at a time; a failed connect, or a failed first request on a fresh
//     connection (a paused process accepts but does not answer: kPeerRequestTimeout, 10 s),
//     moves it to the next place and the item is tried there, at most once per place;
//   * with several connections, messages to one peer may arrive reordered.
// With chatd's TLS on (ChatdContext::peer_tls), each connection is TLS, verified against
// --tls_ca and the peer's address (its certificate must carry it as an IP address SAN).
// Each request carries X-Chatlab-From, X-Chatlab-To and X-Chatlab-Mac, the HMAC of
// "from|to|body" under the cluster key (docs/chatd.md, "Authentication"), and an item sent again
// (on a fresh connection, or at the next place) carries X-Chatlab-Redelivered: 1.
//
// Threading: the io_context thread only. Links live as long as the environment; a connection
// lives while an operation holds it (shared_from_this).
#ifndef CHATLAB_REAL_TRANSPORT_CHATD_PEER_LINK_H_
#define CHATLAB_REAL_TRANSPORT_CHATD_PEER_LINK_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"
#include "real-transport/asio.h"
#include "real-transport/chatd/session_host.h"
#include "real-transport/tls.h"

namespace chatlab::real {

class PeerLink;

// One keep-alive connection to a peer process.
class PeerConn : public std::enable_shared_from_this<PeerConn> {
 public:
  struct Item {
    NodeId from;
    NodeId to;
    std::string bytes;  // the core codec frame
    int attempts = 0;   // 1 once retried on a fresh connection
    int places_tried = 0;  // places whose connect failed for this item
  };
  PeerConn(ChatdContext& context, std::shared_ptr<PeerLink> link,
           boost::asio::ip::tcp::endpoint endpoint);
  // Takes the next item of the link and sends it (connecting first if needed), or goes idle.
  void Next();

 private:
  void Connect();
  void Send();
  void ReadResponse();
  void Fail(boost::beast::error_code ec);
  // The TCP layer of the current connection.
  PlainStream& Lowest() { return tls_ ? boost::beast::get_lowest_layer(*tls_) : *plain_; }
  // Calls f with the current connection's stream, whichever it is.
  template <class F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  ChatdContext& context_;
  std::shared_ptr<PeerLink> link_;
  boost::asio::ip::tcp::endpoint endpoint_;
  // One of the two, made afresh for each connection (a TLS stream cannot be reused).
  std::optional<PlainStream> plain_;
  std::optional<TlsStream> tls_;
  bool connected_ = false;
  bool connecting_ = false;  // between Connect and its TCP connect's success
  bool fresh_ = false;       // connected, and no response read on this connection yet
  // True while item_'s bytes are in request_ (written or being written).
  bool in_request_ = false;
  std::optional<Item> item_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
};

// The queue of node messages to one peer process and its connections.
class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  // endpoints: the process's places, in order (at least one).
  PeerLink(ChatdContext& context, int process,
           std::vector<boost::asio::ip::tcp::endpoint> endpoints)
      : context_(context), process_(process), endpoints_(std::move(endpoints)) {}
  // Queues one message (or drops it at node_queue_max) and wakes or opens a connection.
  void Enqueue(PeerConn::Item item);

  // ---- For its connections ----
  std::optional<PeerConn::Item> Pop();
  void Idle(std::shared_ptr<PeerConn> conn) { idle_.push_back(std::move(conn)); }
  void Gone() { conns_--; }
  // An item whose kept-alive connection failed: first in line again, on a fresh connection.
  void Retry(PeerConn::Item item);
  // A connect to `endpoint` failed: the link moves on to its next place (if endpoint is still
  // the current one). Returns whether the item may be tried at another place.
  bool Unreachable(const boost::asio::ip::tcp::endpoint& endpoint, PeerConn::Item& item);

  size_t depth() const { return queue_.size(); }
  // Items queued, or a connection in the middle of a request (drain waits for neither).
  bool busy() const { return !queue_.empty() || idle_.size() < conns_; }
  // At shutdown, after the loop has stopped: drops the queue and the idle connections (each
  // holds the link, and the link holds it).
  void Close() {
    queue_.clear();
    idle_.clear();
  }
  int process() const { return process_; }
  const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoints_[place_]; }

 private:
  void Connect();

  ChatdContext& context_;
  int process_;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
  size_t place_ = 0;  // the place dialled now
  std::deque<PeerConn::Item> queue_;
  std::vector<std::shared_ptr<PeerConn>> idle_;
  uint32_t conns_ = 0;  // open or opening. Invariant: <= options().peer_connections_max
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_CHATD_PEER_LINK_H_
