// One AMQP 0-9-1 connection to RabbitMQ for one chatd process (docs/engines.md, "The queue broker
// on RabbitMQ"): it publishes to any queue and consumes one queue, its own.
//
// librabbitmq's calls block, so the connection lives on a thread of its own; the io thread only
// hands it commands (Publish, Consume, Ack) and receives deliveries, posted to the io_context.
// The io thread never waits on RabbitMQ. After any error the link drops the connection, waits
// retry_ms and connects again; a consumer is re-established by itself (queue declared, prefetch
// 1, exclusive consume). Commands not yet written wait for the next connection (up to
// commands_max; publishes beyond are lost, as the core's broker may lose an entry, and clients
// catch up); a lost connection loses the one write that failed, and the delivery in flight,
// which RabbitMQ requeues and delivers again on the next connection. Limit: publishing and
// consuming share the connection, so a RabbitMQ that blocks publishers (a memory or disk alarm)
// stalls this process's own queue too until the alarm clears.
//
// Each connection is a new `generation`: a delivery carries the generation it came on, and an ack
// for an older generation is dropped, because its delivery tag means nothing on the new channel
// (RabbitMQ would close the channel for an unknown tag).
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_LINK_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_LINK_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "real-transport/asio.h"

namespace chatlab::real {

// Where and how to log in: amqp://user:password@host:port/vhost (librabbitmq's amqp_parse_url).
struct RabbitAddress {
  std::string host, user, password, vhost;
  int port = 5672;
};
absl::StatusOr<RabbitAddress> ParseRabbitUrl(const std::string& url);

class RabbitLink {
 public:
  // The consumed queue's arguments (x-expires, x-message-ttl, x-max-length; 0: not set).
  struct QueueArgs {
    int64_t expires_ms = 0;
    int64_t message_ttl_ms = 0;
    int64_t max_length = 0;
  };
  struct Options {
    RabbitAddress address;
    std::string queue;  // the queue Consume declares and consumes
    QueueArgs args;
    int retry_ms = 200;           // after a failed connect or a lost connection
    int heartbeat_s = 5;          // AMQP heartbeat (0: none); a silent peer is dropped after two
    int timeout_ms = 2000;        // connect, login and each declaration
    size_t commands_max = 65536;  // commands waiting for the thread; a publish past it is lost
    // On the io thread: why the connection failed or was lost, once per change of reason.
    std::function<void(std::string)> on_error;
  };
  struct Delivery {
    uint64_t generation = 0;
    uint64_t tag = 0;  // the channel's delivery tag
    bool redelivered = false;
    std::string body;
  };
  struct Stats {
    std::atomic<uint64_t> published{0};       // publishes written to the connection
    std::atomic<uint64_t> publishes_lost{0};  // not written: no connection, an error, or full
    std::atomic<uint64_t> delivered{0};       // deliveries received
    std::atomic<uint64_t> acked{0};           // acks written
    std::atomic<uint64_t> acks_dropped{0};    // acks for an older generation
    std::atomic<uint64_t> connects{0};        // connections established
    std::atomic<uint64_t> errors{0};          // connects failed and connections lost
  };

  // `on_delivery` runs on the io thread, never after the link is destroyed.
  RabbitLink(boost::asio::io_context& io, Options options,
             std::function<void(Delivery)> on_delivery);
  // Writes what is queued if it can within timeout_ms (then cuts the connection), and closes it.
  ~RabbitLink();
  RabbitLink(const RabbitLink&) = delete;
  RabbitLink& operator=(const RabbitLink&) = delete;

  // Publishes body to the queue named `queue` (the default exchange; a queue that does not exist
  // drops it, as RabbitMQ does).
  void Publish(std::string queue, std::string body);
  // Starts consuming options.queue, now and after every reconnect (idempotent).
  void Consume();
  // Acknowledges a delivery (dropped if its generation is not the current connection's).
  void Ack(uint64_t generation, uint64_t tag);
  // No command is waiting to be written.
  bool idle() const { return pending_.load() == 0; }
  // Whether options.queue is consumed on the current connection.
  bool consuming() const { return consuming_now_.load(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Command {
    enum class Kind { kPublish, kAck } kind;
    std::string queue, body;
    uint64_t generation = 0, tag = 0;
  };
  struct Connection;  // librabbitmq's state, on the thread only
  // What a posted delivery or error needs; reset by the destructor so late posts do nothing.
  struct Sink {
    std::function<void(Delivery)> on_delivery;
    std::function<void(std::string)> on_error;
  };

  void Push(Command c);
  void Run();
  // One connect attempt; true when connected (and consuming, if asked to).
  bool Connect();
  bool StartConsuming(std::string* why);
  bool Write(const Command& c, std::string* why);
  // Reads what has arrived (up to a few frames); false when the connection is lost.
  bool ReadSome(std::string* why);
  void Drop(const std::string& why);
  void ReportError(std::string why);
  void ForgetFd();
  void Wake();

  boost::asio::io_context& io_;
  const Options options_;
  std::shared_ptr<Sink> sink_;
  Stats stats_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Command> commands_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  bool stopped_ = false;          // guarded by mu_: Run has returned (or is about to)
  bool consume_ = false;          // guarded by mu_: Consume was called
  std::atomic<size_t> pending_{0};
  std::atomic<bool> consuming_now_{false};  // consuming_, for other threads
  int wake_fd_ = -1;  // an eventfd: wakes the thread's poll when a command arrives
  // The connected socket, for the destructor to cut a write blocked on it; set and cleared by
  // the thread, which closes the socket only after clearing it.
  std::mutex fd_mu_;
  int live_fd_ = -1;  // guarded by fd_mu_

  // The thread's own.
  std::unique_ptr<Connection> conn_;
  uint64_t generation_ = 0;
  bool consuming_ = false;
  std::string last_error_;
  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_RABBIT_LINK_H_
