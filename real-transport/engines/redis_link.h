// One connection to a Redis server, on a thread of its own (hiredis, blocking, pipelined).
//
// The io thread queues commands with Call; the link's thread sends everything queued as one
// pipeline, reads the replies in order and posts each `done` back to the io_context, in the
// order of the Call()s. Nothing blocks the io thread.
//
// Failures: a command that cannot be sent or whose reply cannot be read (Redis down, restarted,
// paused beyond timeout_ms) is answered with kUnavailable, and so is every command queued
// behind it in that pipeline; the link then reconnects for the next commands (an attempt that
// fails waits retry_ms before the next). A Redis error reply is answered with kFailedPrecondition and its text. Beyond
// queue_max queued commands a Call is refused with kResourceExhausted, answered in order with
// the others (never before a command queued earlier). A refusal waits in the queue, holding its
// callback, until the link's thread reaches it: while Redis stalls, refusals grow with the
// callers' rate for at most timeout_ms (the stalled pipeline's wait) before they are answered.
// Whether a failed command took effect is unknown to the caller, as for a lost request.
//
// Scripts: Options::scripts are loaded (SCRIPT LOAD) on every connection before any command, so
// a caller may always run them with EVALSHA (ScriptSha), also right after Redis restarted empty.
// A connection whose scripts cannot all be loaded is dropped (and retried). If Redis forgets
// them on a live connection (SCRIPT FLUSH, a failover to a replica without them), the EVALSHA
// is answered NOSCRIPT: that command gets kUnavailable, and the link reconnects, reloading them,
// before the next pipeline.
//
// Errors of the connection itself (cannot connect, cannot load a script, a lost connection) go
// to Options::on_error, posted to the io_context, once per change of reason: the owner logs
// them.
//
// Shutdown: the destructor sends what is still queued (bounded by timeout_ms per pipeline, or
// at once when Redis is unreachable) before it stops the thread; the answers are posted but may
// never run. An owner that wants every answer waits for idle() first (chatd's drain does).
//
// Signals: the link's thread blocks SIGPIPE, so a write to a connection Redis closed fails with
// EPIPE instead of killing the process.
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
#include <memory>
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
  std::string str;                   // kString (bulk strings and status replies)
  std::vector<RedisValue> elements;  // kArray
};
using RedisReply = absl::StatusOr<RedisValue>;

class RedisLink {
 public:
  struct Options {
    HostPort address;
    uint32_t timeout_ms = 2000;        // connect, and each pipeline's send and read
    uint32_t retry_ms = 200;           // least time after a failed connection attempt
    uint32_t queue_max = 65536;        // commands queued and not yet sent
    std::vector<std::string> scripts;  // Lua scripts loaded on every connection
    // Why the connection failed, posted to the io_context when the reason changes (may be empty).
    std::function<void(std::string)> on_error;
  };
  // Most commands sent as one pipeline: bounds one read's wait and the replies held at once.
  static constexpr size_t kPipelineMax = 4096;
  // The SHA-1 (hex) EVALSHA names `script` by.
  static std::string ScriptSha(const std::string& script);
  struct Stats {
    std::atomic<uint64_t> calls{0};      // commands sent
    std::atomic<uint64_t> errors{0};     // answered with an error status (any cause)
    std::atomic<uint64_t> connects{0};   // connections made (the first included)
    std::atomic<uint64_t> pipelines{0};  // pipelines sent
  };
  using Done = std::function<void(RedisReply)>;

  RedisLink(boost::asio::io_context& io, Options options);
  // Sends what is queued, then stops the thread (above, "Shutdown").
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Queues one command; `done` runs on the io_context with its reply, in the order of the calls.
  // Call and idle() run on the io_context's thread only.
  void Call(std::vector<std::string> argv, Done done);
  // No command is waiting for its answer to run.
  bool idle() const { return *outstanding_ == 0; }
  const Stats& stats() const { return stats_; }
  const Options& options() const { return options_; }

 private:
  struct Pending {
    std::vector<std::string> argv;
    Done done;
    absl::Status refused;  // not OK: answered with this, never sent (beyond queue_max)
  };
  void Run();
  // Sends `batch` as one pipeline and fills `replies`, one per command.
  void Exchange(std::vector<Pending>& batch, std::vector<RedisReply>& replies);
  bool Connect();
  void Disconnect();
  // "redis HOST:PORT: ", the prefix of every error the link gives.
  std::string Where() const;
  // Reports `why` through on_error unless it was the last reason reported.
  void ReportError(std::string why);

  boost::asio::io_context& io_;
  const Options options_;
  Stats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;   // guarded by mu_
  size_t commands_queued_ = 0;  // guarded by mu_: entries of queue_ not refused
  bool stop_ = false;           // guarded by mu_
  // The io thread's own: calls whose done has not run (shared with answers still posted).
  std::shared_ptr<size_t> outstanding_ = std::make_shared<size_t>(0);
  // The link thread's own.
  ::redisContext* ctx_ = nullptr;
  std::string last_error_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_ENGINES_REDIS_LINK_H_
