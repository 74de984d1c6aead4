#include "real-transport/engines/redis_link.h"

#include <hiredis.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace asio = boost::asio;
namespace {

RedisValue Copy(const redisReply& r) {
  RedisValue v;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      v.kind = RedisValue::Kind::kInteger;
      v.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      v.kind = RedisValue::Kind::kString;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      v.kind = RedisValue::Kind::kArray;
      v.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) v.elements.push_back(Copy(*r.element[i]));
      break;
    default:  // REDIS_REPLY_NIL (errors are handled by the caller)
      break;
  }
  return v;
}

}  // namespace

std::string RedisLink::ScriptSha(const std::string& script) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

std::string RedisLink::Where() const {
  return absl::StrCat("redis ", options_.address.host, ":", options_.address.port, ": ");
}

RedisLink::RedisLink(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), thread_([this] { Run(); }) {}

RedisLink::~RedisLink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Disconnect();
}

void RedisLink::Call(std::vector<std::string> argv, Done done) {
  (*outstanding_)++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pending p{std::move(argv), std::move(done), absl::OkStatus()};
    if (commands_queued_ < options_.queue_max) {
      commands_queued_++;
    } else {
      // Answered by the link's thread when it reaches it, so after every earlier command.
      p.argv.clear();
      p.refused = absl::ResourceExhaustedError(
          absl::StrCat("redis: ", options_.queue_max, " commands queued"));
    }
    queue_.push_back(std::move(p));
  }
  cv_.notify_one();
}

void RedisLink::ReportError(std::string why) {
  if (why == last_error_) return;
  last_error_ = why;
  if (options_.on_error && !why.empty()) {
    asio::post(io_, [f = options_.on_error, why = std::move(why)] { f(why); });
  }
}

bool RedisLink::Connect() {
  if (ctx_ != nullptr) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return false;
  // Only a failed attempt waits retry_ms (from its end: an attempt may take timeout_ms) before
  // the next; a link that dropped a good connection (NOSCRIPT) reconnects at once.
  const auto failed = [&] {
    next_connect_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_ms);
    return false;
  };
  timeval tv{static_cast<time_t>(options_.timeout_ms / 1000),
             static_cast<suseconds_t>((options_.timeout_ms % 1000) * 1000)};
  const std::string where = Where();
  redisContext* c =
      redisConnectWithTimeout(options_.address.host.c_str(), options_.address.port, tv);
  if (c == nullptr || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
    ReportError(absl::StrCat(
        where, "cannot connect: ", c == nullptr ? "cannot allocate a context" : c->errstr));
    if (c != nullptr) redisFree(c);
    return failed();
  }
  for (const std::string& script : options_.scripts) {
    auto* r =
        static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %b", script.data(), script.size()));
    std::string why;
    if (r == nullptr) {
      why = c->errstr;
    } else if (r->type == REDIS_REPLY_ERROR) {
      why.assign(r->str, r->len);
    } else if (r->type != REDIS_REPLY_STRING) {
      why = "unexpected reply";
    }
    if (r != nullptr) freeReplyObject(r);
    if (!why.empty()) {
      ReportError(absl::StrCat(where, "cannot load script ", ScriptSha(script), ": ", why));
      redisFree(c);
      return failed();
    }
  }
  ctx_ = c;
  stats_.connects++;
  next_connect_ = {};
  last_error_.clear();
  return true;
}

void RedisLink::Disconnect() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

void RedisLink::Exchange(std::vector<Pending>& batch, std::vector<RedisReply>& replies) {
  replies.clear();
  // Answers the rest of the batch when the connection fails: a refusal keeps its own answer, a
  // barrier its nil; every command is unavailable.
  const auto unavailable = [&](std::string why) {
    while (replies.size() < batch.size()) {
      const Pending& p = batch[replies.size()];
      if (!p.refused.ok()) {
        replies.push_back(p.refused);
      } else if (p.argv.empty()) {
        replies.push_back(RedisValue{});
      } else {
        replies.push_back(absl::UnavailableError(absl::StrCat(Where(), why)));
      }
    }
  };
  const bool commands =
      std::any_of(batch.begin(), batch.end(), [](const Pending& p) { return !p.argv.empty(); });
  if (!commands) return unavailable("");  // only barriers and refusals: nothing to send
  if (!Connect()) return unavailable("not connected");
  size_t sent = 0;
  for (const Pending& p : batch) {
    if (p.argv.empty()) continue;  // a barrier, or refused
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : p.argv) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      std::string why = ctx_->errstr;
      Disconnect();
      ReportError(absl::StrCat(Where(), "connection lost: ", why));
      return unavailable(why);
    }
    sent++;
  }
  stats_.pipelines++;
  stats_.calls += sent;
  bool scripts_lost = false;
  for (const Pending& p : batch) {
    if (!p.refused.ok()) {
      replies.push_back(p.refused);
      continue;
    }
    if (p.argv.empty()) {
      replies.push_back(RedisValue{});
      continue;
    }
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      std::string why = ctx_->errstr;
      Disconnect();
      ReportError(absl::StrCat(Where(), "connection lost: ", why));
      return unavailable(why);
    }
    auto* r = static_cast<redisReply*>(raw);
    const absl::string_view text =
        r->type == REDIS_REPLY_ERROR ? absl::string_view(r->str, r->len) : absl::string_view();
    if (absl::StartsWith(text, "NOSCRIPT")) {
      scripts_lost = true;
      replies.push_back(absl::UnavailableError(
          absl::StrCat("redis: ", text, " (Redis lost its scripts; reloading them)")));
    } else if (r->type == REDIS_REPLY_ERROR) {
      replies.push_back(absl::FailedPreconditionError(absl::StrCat("redis: ", text)));
    } else {
      replies.push_back(Copy(*r));
    }
    freeReplyObject(r);
  }
  if (scripts_lost) {
    // Reconnecting loads every script again (Connect) before the next pipeline.
    Disconnect();
    ReportError(
        absl::StrCat(Where(), "NOSCRIPT on a live connection; reconnecting to reload scripts"));
  }
}

void RedisLink::Run() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  Connect();  // at once, so that /metrics shows an unreachable server before the first command
  std::vector<Pending> batch;
  std::vector<RedisReply> replies;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued was sent
      batch.clear();
      while (!queue_.empty() && batch.size() < kPipelineMax) {
        if (queue_.front().refused.ok()) commands_queued_--;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Exchange(batch, replies);
    for (const RedisReply& r : replies) {
      if (!r.ok()) stats_.errors++;
    }
    asio::post(io_, [outstanding = outstanding_, batch = std::move(batch),
                     replies = std::move(replies)]() mutable {
      for (size_t i = 0; i < batch.size(); ++i) {
        (*outstanding)--;
        batch[i].done(std::move(replies[i]));
      }
    });
    batch = {};
    replies = {};
  }
}

}  // namespace chatlab::real
