#include "real-transport/engines/redis_link.h"

#include <hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <utility>

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

absl::Status RedisLink::Probe(const HostPort& address, uint32_t timeout_ms) {
  timeval tv{static_cast<time_t>(timeout_ms / 1000),
             static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout(address.host.c_str(), address.port, tv);
  std::string why;
  if (c == nullptr || c->err != 0) {
    why = c == nullptr ? "cannot allocate a context" : c->errstr;
  } else {
    redisSetTimeout(c, tv);
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    if (r == nullptr || r->type != REDIS_REPLY_STATUS) why = r == nullptr ? c->errstr : "no PONG";
    if (r != nullptr) freeReplyObject(r);
  }
  if (c != nullptr) redisFree(c);
  if (why.empty()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("redis ", address.host, ":", address.port, ": ", why));
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < options_.queue_max) {
      queue_.push_back(Pending{std::move(argv), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  stats_.errors++;
  asio::post(io_, [done = std::move(done), max = options_.queue_max] {
    done(absl::ResourceExhaustedError(absl::StrCat("redis: ", max, " commands queued")));
  });
}

bool RedisLink::Connect() {
  if (ctx_ != nullptr) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return false;
  next_connect_ = now + std::chrono::milliseconds(options_.retry_ms);
  timeval tv{static_cast<time_t>(options_.timeout_ms / 1000),
             static_cast<suseconds_t>((options_.timeout_ms % 1000) * 1000)};
  redisContext* c =
      redisConnectWithTimeout(options_.address.host.c_str(), options_.address.port, tv);
  if (c == nullptr || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
    if (c != nullptr) redisFree(c);
    return false;
  }
  for (const std::string& script : options_.scripts) {
    auto* r = static_cast<redisReply*>(
        redisCommand(c, "SCRIPT LOAD %b", script.data(), script.size()));
    const bool loaded = r != nullptr && r->type == REDIS_REPLY_STRING;
    if (r != nullptr) freeReplyObject(r);
    if (!loaded) {
      redisFree(c);
      return false;
    }
  }
  ctx_ = c;
  stats_.connects++;
  return true;
}

void RedisLink::Disconnect() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

void RedisLink::Exchange(std::vector<Pending>& batch, std::vector<RedisReply>& replies) {
  replies.clear();
  const auto unavailable = [&](std::string why) {
    while (replies.size() < batch.size()) {
      replies.push_back(absl::UnavailableError(absl::StrCat(
          "redis ", options_.address.host, ":", options_.address.port, ": ", why)));
    }
  };
  if (!Connect()) return unavailable("not connected");
  size_t sent = 0;
  for (const Pending& p : batch) {
    if (p.argv.empty()) continue;  // a barrier
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
      return unavailable(why);
    }
    sent++;
  }
  stats_.pipelines++;
  stats_.calls += sent;
  for (const Pending& p : batch) {
    if (p.argv.empty()) {
      replies.push_back(RedisValue{});
      continue;
    }
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      std::string why = ctx_->errstr;
      Disconnect();
      return unavailable(why);
    }
    auto* r = static_cast<redisReply*>(raw);
    if (r->type == REDIS_REPLY_ERROR) {
      replies.push_back(absl::FailedPreconditionError(
          absl::StrCat("redis: ", absl::string_view(r->str, r->len))));
    } else {
      replies.push_back(Copy(*r));
    }
    freeReplyObject(r);
  }
}

void RedisLink::Run() {
  Connect();  // at once, so that /metrics shows an unreachable server before the first command
  std::vector<Pending> batch;
  std::vector<RedisReply> replies;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      batch.clear();
      while (!queue_.empty() && batch.size() < 4096) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Exchange(batch, replies);
    for (const RedisReply& r : replies) {
      if (!r.ok()) stats_.errors++;
    }
    asio::post(io_, [batch = std::move(batch), replies = std::move(replies)]() mutable {
      for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(replies[i]));
    });
    batch = {};
    replies = {};
  }
}

}  // namespace chatlab::real
