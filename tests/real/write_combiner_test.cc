// WriteCombiner (real-transport/write_combiner.h) over real loopback sockets: frames appended
// by the owner and Beast's own frames (pongs, close) reach a stock Beast WebSocket client whole
// and in order; a writer beyond the high water waits for the reader; a broken transport fails
// the writes after it.
#include "real-transport/write_combiner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "real-transport/asio.h"

namespace chatlab::real {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// The frames the server sends: sizes across every header length (7-bit, 16-bit, 64-bit).
std::string FrameBody(int i) {
  static const size_t kSizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000, 20};
  std::string body = "frame-" + std::to_string(i) + ";";
  body.resize(std::max(body.size(), kSizes[i % 9]), 'x');
  return body;
}

struct Server : std::enable_shared_from_this<Server> {
  explicit Server(tcp::socket s) : ws(beast::tcp_stream(std::move(s))) {}
  websocket::stream<WriteCombiner<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  beast::error_code read_ec;
  bool read_done = false;
  std::string header;

  void Read() {
    ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec && beast::buffers_to_string(self->buffer.data()) == "done") {
        // The client has read every frame: close, after what is buffered.
        self->ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
      }
      self->buffer.consume(self->buffer.size());
      if (!ec) return self->Read();
      self->read_ec = ec;
      self->read_done = true;
    });
  }
  void AppendText(const std::string& body) {
    header.clear();
    AppendWsFrameHeader(header, 1, body.size());
    ws.next_layer().Append(header, body);
  }
};

TEST(WriteCombinerTest, AppendedFramesAndBeastsPongsReachAStockClientWholeAndInOrder) {
  constexpr int kFrames = 900;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = acceptor.local_endpoint().port();

  // The client: a stock Beast WebSocket on its own thread, pinging every 50 messages.
  std::atomic<int> pings{0}, pongs{0}, received{0};
  std::string client_error;
  beast::error_code close_ec;
  std::thread client([&] {
    try {
      asio::io_context cio;
      websocket::stream<beast::tcp_stream> ws(cio);
      beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      ws.control_callback([&](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::pong) pongs++;
      });
      ws.handshake("127.0.0.1", "/");
      beast::flat_buffer b;
      for (int i = 0; i < kFrames; ++i) {
        if (i % 50 == 0) {
          ws.ping({});
          pings++;
        }
        ws.read(b);
        const std::string got = beast::buffers_to_string(b.data());
        b.consume(b.size());
        if (got != FrameBody(i)) {
          client_error =
              "frame " + std::to_string(i) + " differs (" + std::to_string(got.size()) + " bytes)";
          return;
        }
        received++;
      }
      ws.write(asio::buffer(std::string_view("done")));
      ws.read(b, close_ec);  // the server's close, once it read "done"
    } catch (const std::exception& e) {
      client_error = e.what();
    }
  });

  tcp::socket s(io);
  acceptor.accept(s);
  auto server = std::make_shared<Server>(std::move(s));
  server->ws.next_layer().SetOwner(server);
  // Batches of 30 frames appended in one handler each, one flush per batch, while pings arrive.
  int next = 0;
  std::function<void()> batch = [&] {
    for (int k = 0; k < 30 && next < kFrames; ++k) server->AppendText(FrameBody(next++));
    server->ws.next_layer().Flush();
    if (next < kFrames) asio::post(io, batch);
  };
  server->ws.async_accept([&](beast::error_code ec) {
    ASSERT_FALSE(ec) << ec.message();
    server->Read();
    asio::post(io, batch);
  });
  io.run_for(std::chrono::seconds(30));
  client.join();

  EXPECT_EQ(client_error, "");
  EXPECT_EQ(received.load(), kFrames);
  EXPECT_EQ(close_ec, websocket::error::closed);
  EXPECT_GT(pings.load(), 0);
  EXPECT_EQ(pongs.load(), pings.load());
  EXPECT_EQ(server->ws.next_layer().buffered_bytes(), 0u);
  EXPECT_TRUE(server->read_done);
  // The server's reads took the pings and "done"; the close handshake ended the last one (Beast
  // aborts a read pending while its close reads the peer's close frame).
  EXPECT_TRUE(server->read_ec == websocket::error::closed ||
              server->read_ec == asio::error::operation_aborted)
      << server->read_ec.message();
}

// An owner held by shared_ptr, as WsSession is.
struct Raw {
  explicit Raw(tcp::socket s) : out(beast::tcp_stream(std::move(s))) {}
  WriteCombiner<beast::tcp_stream> out;
};

// A loopback connection: peer is one end, the returned combiner writes on the other.
std::shared_ptr<Raw> Connect(asio::io_context& io, tcp::socket& peer) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  peer.connect(acceptor.local_endpoint());
  tcp::socket s(io);
  acceptor.accept(s);
  auto raw = std::make_shared<Raw>(std::move(s));
  raw->out.SetOwner(raw);
  return raw;
}

TEST(WriteCombinerTest, AWriterBeyondTheHighWaterWaitsUntilTheReaderDrainsIt) {
  asio::io_context io;
  tcp::socket reader(io);
  auto raw = Connect(io, reader);

  // 64 MiB nobody reads: more than the kernel's socket buffers hold.
  const std::string big(64u << 20, 'a');
  raw->out.Append(big);
  raw->out.Flush();
  bool completed = false;
  size_t written = 0;
  const std::string tail = "tail";
  raw->out.async_write_some(asio::buffer(tail), [&](beast::error_code ec, size_t n) {
    EXPECT_FALSE(ec);
    completed = true;
    written = n;
  });
  io.run_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(completed) << "buffered: " << raw->out.buffered_bytes();
  EXPECT_GT(raw->out.buffered_bytes(), WriteCombiner<beast::tcp_stream>::kHighWaterBytes);

  // The reader drains everything: the waiting write completes, and its bytes come last.
  std::string got;
  std::vector<char> chunk(1 << 20);
  reader.non_blocking(true);
  while (got.size() < big.size() + tail.size()) {
    io.restart();
    io.run_for(std::chrono::milliseconds(1));
    beast::error_code ec;
    const size_t n = reader.read_some(asio::buffer(chunk), ec);
    if (ec == asio::error::would_block) continue;
    ASSERT_FALSE(ec) << ec.message();
    got.append(chunk.data(), n);
  }
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(completed);
  EXPECT_EQ(written, tail.size());
  EXPECT_EQ(got.size(), big.size() + tail.size());
  EXPECT_EQ(got.substr(big.size()), tail);
  EXPECT_EQ(raw->out.buffered_bytes(), 0u);
  EXPECT_EQ(raw->out.writes_done(), 2u);
}

TEST(WriteCombinerTest, ABrokenTransportFailsEveryWriteAfterIt) {
  asio::io_context io;
  tcp::socket peer(io);
  auto raw = Connect(io, peer);
  // The peer goes away with a reset: the writes after it fail.
  peer.set_option(asio::socket_base::linger(true, 0));
  peer.close();
  for (int i = 0; i < 20; ++i) {
    raw->out.Append("hello");
    raw->out.Flush();
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  beast::error_code got;
  bool completed = false;
  raw->out.async_write_some(asio::buffer(std::string_view("more")),
                            [&](beast::error_code ec, size_t) {
                              got = ec;
                              completed = true;
                            });
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(completed);
  EXPECT_TRUE(got) << "a write after a reset succeeded";
  EXPECT_EQ(raw->out.buffered_bytes(), 0u);  // nothing kept for a transport that cannot take it
}

}  // namespace
}  // namespace chatlab::real
