// WriteCombiner<Next>: a stream layer that turns many small writes into one system call.
//
// Why: chatd's loop thread spent a quarter of its time in the kernel's sendmsg, one call for
// every frame (each ack, each delivery). Under load a connection is owed several frames per
// turn of the loop; written together they cost one call.
//
// What: it sits between a Beast WebSocket stream and its transport (TCP, or TLS over TCP). Every
// write, the owner's Append and the WebSocket stream's own async_write_some (its pongs and its
// close frame), is copied whole into one pending buffer, in call order; one flush at a time
// hands the pending bytes to the transport as a single write. So writes from two writers never
// interleave inside one another (each is appended whole), and their order is the call order.
//
// Flushing: Append never flushes by itself; the owner calls Flush once it has appended what a
// turn owes (chatd posts it, so that a whole turn of the effect loop goes out together). An
// async_write_some schedules a flush itself and completes at once while fewer than
// kHighWaterBytes are buffered, else when the buffer drains below that: the bound on what the
// WebSocket stream can pile up. The owner bounds its own appends (buffered_bytes,
// buffered_writes; chatd drops a slow reader rather than grow).
//
// Lifetime: a flush in flight holds the owner (SetOwner's weak pointer, locked for the flush),
// so that the layer outlives the transport's completion.
//
// Errors: the first write error is kept; later writes complete with it at once, Append drops
// its bytes, and the owner learns of it from its reads (the transport is broken both ways).
//
// Threading: one strand (chatd: the io_context thread).
#ifndef CHATLAB_REAL_TRANSPORT_WRITE_COMBINER_H_
#define CHATLAB_REAL_TRANSPORT_WRITE_COMBINER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "real-transport/asio.h"

namespace chatlab::real {

template <class Next>
class WriteCombiner {
 public:
  // Beyond this many buffered bytes, async_write_some waits for the flush.
  static constexpr size_t kHighWaterBytes = 256 * 1024;

  using executor_type = typename Next::executor_type;
  using next_layer_type = Next;

  template <class... Args>
  explicit WriteCombiner(Args&&... args) : next_(std::forward<Args>(args)...) {}

  WriteCombiner(WriteCombiner&&) = default;
  WriteCombiner& operator=(WriteCombiner&&) = default;

  executor_type get_executor() noexcept { return next_.get_executor(); }
  Next& next_layer() noexcept { return next_; }
  const Next& next_layer() const noexcept { return next_; }

  // The owner whose life a flush in flight extends.
  void SetOwner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  // Appends one write (the pieces back to back); it goes out with the next Flush.
  void Append(std::string_view a, std::string_view b = {}) {
    if (error_) return;
    pending_.append(a);
    pending_.append(b);
    pending_writes_++;
  }

  // Writes what is pending, now if no flush is in flight, else when it completes.
  void Flush() {
    if (flushing_ || pending_.empty() || error_) return;
    auto owner = owner_.lock();
    if (!owner) return;  // the owner is gone: nobody is left to write for
    flushing_ = true;
    inflight_.swap(pending_);
    pending_.clear();
    inflight_writes_ = pending_writes_;
    pending_writes_ = 0;
    boost::asio::async_write(
        next_, boost::asio::buffer(inflight_),
        [this, owner = std::move(owner)](boost::beast::error_code ec, size_t) { OnFlushed(ec); });
  }

  // Bytes and writes appended and not yet written by the transport.
  size_t buffered_bytes() const { return pending_.size() + inflight_.size(); }
  size_t buffered_writes() const { return pending_writes_ + inflight_writes_; }
  // Writes the transport completed (the chatd_frames_out_total metric).
  uint64_t writes_done() const { return writes_done_; }

  // AsyncReadStream: straight through.
  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return next_.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  // AsyncWriteStream: the whole buffer sequence is taken as one write.
  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::beast::error_code, size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (error_) return Complete(std::move(handler), error_, 0);
          const size_t n = boost::asio::buffer_size(b);
          const size_t at = pending_.size();
          pending_.resize(at + n);
          boost::asio::buffer_copy(boost::asio::buffer(pending_.data() + at, n), b);
          pending_writes_++;
          if (buffered_bytes() <= kHighWaterBytes) {
            Complete(std::move(handler), {}, n);
          } else {
            waiters_.push_back(
                std::make_unique<WaiterOf<decltype(handler)>>(std::move(handler), n));
          }
          Flush();
        },
        token, buffers);
  }

  // Calls handler(ec) once everything appended so far is written (or writing failed).
  template <class Handler>
  void AsyncDrain(Handler&& handler) {
    if (error_ || buffered_bytes() == 0) {
      boost::asio::post(get_executor(),
                        [h = std::forward<Handler>(handler), ec = error_]() mutable { h(ec); });
      return;
    }
    drainers_.push_back(
        std::make_unique<DrainerOf<std::decay_t<Handler>>>(std::forward<Handler>(handler)));
    Flush();
  }

 private:
  struct Waiter {
    virtual ~Waiter() = default;
    virtual void Done(WriteCombiner& s, boost::beast::error_code ec) = 0;
  };
  template <class H>
  struct WaiterOf : Waiter {
    WaiterOf(H h, size_t n) : handler(std::move(h)), bytes(n) {}
    void Done(WriteCombiner& s, boost::beast::error_code ec) override {
      s.Complete(std::move(handler), ec, ec ? 0 : bytes);
    }
    H handler;
    size_t bytes;
  };
  template <class H>
  struct DrainerOf : Waiter {
    explicit DrainerOf(H h) : handler(std::move(h)) {}
    void Done(WriteCombiner& s, boost::beast::error_code ec) override {
      boost::asio::post(s.get_executor(), [h = std::move(handler), ec]() mutable { h(ec); });
    }
    H handler;
  };

  template <class Handler>
  void Complete(Handler handler, boost::beast::error_code ec, size_t n) {
    // Posted, never called inside the initiating function (Asio's rule for completions).
    boost::asio::post(get_executor(), boost::beast::bind_front_handler(std::move(handler), ec, n));
  }

  void OnFlushed(boost::beast::error_code ec) {
    flushing_ = false;
    writes_done_ += ec ? 0 : inflight_writes_;
    inflight_.clear();
    inflight_writes_ = 0;
    if (ec && !error_) error_ = ec;
    if (error_) {
      pending_.clear();
      pending_writes_ = 0;
    }
    if (error_ || buffered_bytes() <= kHighWaterBytes) Release(waiters_, error_);
    if (error_ || buffered_bytes() == 0) Release(drainers_, error_);
    Flush();
  }

  void Release(std::vector<std::unique_ptr<Waiter>>& list, boost::beast::error_code ec) {
    auto ready = std::move(list);
    list.clear();
    for (auto& w : ready) w->Done(*this, ec);
  }

  Next next_;
  std::weak_ptr<void> owner_;
  std::string pending_;
  std::string inflight_;
  size_t pending_writes_ = 0;
  size_t inflight_writes_ = 0;
  uint64_t writes_done_ = 0;
  bool flushing_ = false;
  boost::beast::error_code error_;
  std::vector<std::unique_ptr<Waiter>> waiters_;   // async_write_some beyond the high water
  std::vector<std::unique_ptr<Waiter>> drainers_;  // AsyncDrain
};

// The WebSocket close handshake's last step: what is buffered goes out, then the transport's
// own teardown (TCP shutdown, or TLS close_notify then TCP).
template <class Next, class TeardownHandler>
void async_teardown(boost::beast::role_type role, WriteCombiner<Next>& stream,
                    TeardownHandler&& handler) {
  stream.AsyncDrain([&stream, role,
                     h = std::forward<TeardownHandler>(handler)](boost::beast::error_code) mutable {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::move(h));
  });
}

template <class Next>
void teardown(boost::beast::role_type role, WriteCombiner<Next>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

// Appends to out the header of one unmasked (server to client) WebSocket frame, FIN set, of
// opcode (1 text, 2 binary) and payload_bytes (RFC 6455, section 5.2).
inline void AppendWsFrameHeader(std::string& out, uint8_t opcode, uint64_t payload_bytes) {
  out.push_back(static_cast<char>(0x80 | (opcode & 0x0f)));
  if (payload_bytes < 126) {
    out.push_back(static_cast<char>(payload_bytes));
  } else if (payload_bytes <= 0xffff) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(payload_bytes >> 8));
    out.push_back(static_cast<char>(payload_bytes & 0xff));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((payload_bytes >> shift) & 0xff));
    }
  }
}

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_WRITE_COMBINER_H_
