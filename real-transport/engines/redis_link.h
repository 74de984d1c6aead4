// One connection to a Redis server, on a thread of its own (hiredis, blocking, pipelined).
//
// The io thread queues commands with Call; the link's thread sends everything queued as one
// pipeline, reads the replies in order and posts each `done` back to the io_context, in the
// order of the Call()s. Nothing blocks the io thread.
//
// Failures: a command that cannot be sent or whose reply cannot be read (Redis down, restarted,
// paused beyond timeout_ms) is answered with kUnavailable, and so is every command queued
// behind it in that pipeline; the link then reconnects (at most every retry_ms) for the next
// commands. A Redis error reply is answered with kFailedPrecondition and its text. Beyond
// queue_max queued commands a Call is answered kResourceExhausted at once (posted, in order).
// Whether a failed command took effect is unknown to the caller, as for a lost request.
//
// Scripts: Options::scripts are loaded (SCRIPT LOAD) on every connection before any command, so
// a caller may always run them with EVALSHA (ScriptSha), also right after Redis restarted empty.
//
// An empty argv is a barrier: nothing is sent, and it is answered (with a nil reply) after every
// command queued before it, so a caller can answer a request that needs no Redis command in
// order with the others.
#ifndef CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_LINK_H_
#define CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_LINK_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/asio.h"
#include "real-transport/util.h"

struct redisContext;  // hiredis

namespace chatlab::real {

// A reply, copied out of hiredis's reply tree.
struct RedisValue {
  enum class Kind : uint8_t { kNil, kInteger, kString, kArray };
  Kind kind = Kind::kNil;
  int64_t integer = 0;
  std::string str;  // kString (bulk strings and status replies)
  std::vector<RedisValue> elements;  // kArray
};
using RedisReply = absl::StatusOr<RedisValue>;

class RedisLink {
 public:
  struct Options {
    HostPort address;
    uint32_t timeout_ms = 2000;  // connect, and each pipeline's send and read
    uint32_t retry_ms = 200;     // least time between two connection attempts
    uint32_t queue_max = 65536;  // commands queued and not yet sent
    std::vector<std::string> scripts;  // Lua scripts loaded on every connection
  };
  // The SHA-1 (hex) EVALSHA names `script` by.
  static std::string ScriptSha(const std::string& script);
  // One blocking connect and PING (for start-up diagnostics): OK, or why not.
  static absl::Status Probe(const HostPort& address, uint32_t timeout_ms);
  struct Stats {
    std::atomic<uint64_t> calls{0};       // commands sent
    std::atomic<uint64_t> errors{0};      // answered with an error status (any cause)
    std::atomic<uint64_t> connects{0};    // connections made (the first included)
    std::atomic<uint64_t> pipelines{0};   // pipelines sent
  };
  using Done = std::function<void(RedisReply)>;

  RedisLink(boost::asio::io_context& io, Options options);
  // Stops the thread; commands still queued are never answered.
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void Call(std::vector<std::string> argv, Done done);
  const Stats& stats() const { return stats_; }
  const Options& options() const { return options_; }

 private:
  struct Pending {
    std::vector<std::string> argv;
    Done done;
  };
  void Run();
  // Sends `batch` as one pipeline and fills `replies`, one per command.
  void Exchange(std::vector<Pending>& batch, std::vector<RedisReply>& replies);
  bool Connect();
  void Disconnect();

  boost::asio::io_context& io_;
  const Options options_;
  Stats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stop_ = false;          // guarded by mu_
  // The link thread's own.
  ::redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point next_connect_{};
  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_LINK_H_
