#include "real-transport/engines/redis_notification.h"

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

// ARGV: [1] key prefix, [2] the push's key, [3] notification_dedup_max. Returns 1: push it;
// 0: a duplicate. The order list holds the remembered keys, newest first.
constexpr const char* kNotifyScript = R"lua(
local key = ARGV[1] .. 'n:' .. ARGV[2]
if redis.call('EXISTS', key) == 1 then return 0 end
local order, max = ARGV[1] .. 'n-order', tonumber(ARGV[3])
while redis.call('LLEN', order) >= max do
  redis.call('DEL', ARGV[1] .. 'n:' .. redis.call('RPOP', order))
end
redis.call('SET', key, '1')
redis.call('LPUSH', order, ARGV[2])
return 1
)lua";

}  // namespace

std::vector<std::string> RedisNotification::Scripts() { return {kNotifyScript}; }

RedisNotification::RedisNotification(RedisLink& link, std::string prefix,
                                     const ProtocolConfig& config)
    : link_(link),
      prefix_(std::move(prefix)),
      config_(config),
      sha_(RedisLink::ScriptSha(kNotifyScript)) {}

void RedisNotification::Submit(TimeUs /*now*/, NodeId /*from*/, Message msg, Done done) {
  stats_.messages++;
  const auto* m = std::get_if<Notify>(&msg);
  if (m == nullptr || !m->user.valid() || !m->conv.Valid()) {
    stats_.unexpected++;
    return link_.Call({}, [done = std::move(done)](RedisReply) { done({}); });
  }
  const PushToDevice push{m->user, m->conv, m->message_id, m->sender};
  if (config_.notification_dedup_max == 0) {  // de-duplication off: every Notify is pushed
    stats_.pushed++;
    return link_.Call({}, [push, done = std::move(done)](RedisReply) { done({push}); });
  }
  const std::string key = absl::StrCat(m->user.value, ":", ToString(m->conv), ":", m->message_id);
  link_.Call({"EVALSHA", sha_, "0", prefix_, key, absl::StrCat(config_.notification_dedup_max)},
             [this, push, done = std::move(done)](RedisReply r) {
               if (!r.ok() || r->kind != RedisValue::Kind::kInteger) {
                 stats_.failed++;
                 return;
               }
               if (r->integer == 0) {
                 stats_.deduplicated++;
                 return done({});
               }
               stats_.pushed++;
               done({push});
             });
}

}  // namespace chatlab::real
