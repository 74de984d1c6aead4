#include "real-transport/engines/redis_user_mapping.h"

#include <algorithm>
#include <charconv>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace chatlab::real {
namespace {

// Each script is the whole operation, atomic in Redis. ARGV[1]: the sender's node id; ARGV[2]:
// the TTL in milliseconds ("0": none).

// Returns the previous server (nil if none or expired).
constexpr const char* kRegister = R"lua(
local old = redis.call('GET', KEYS[1])
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return old
)lua";

// Erases the mapping only while it names the sender. Returns 1 if erased.
constexpr const char* kUnregister = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

// Per key: absent -> set to the sender; the sender -> expiry restarted; another server -> left,
// and reported. Returns {position (1-based), current server, ...} of those mapped elsewhere.
constexpr const char* kRefresh = R"lua(
local out = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if not cur then
    if ARGV[2] ~= '0' then
      redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    else
      redis.call('SET', key, ARGV[1])
    end
  elseif cur == ARGV[1] then
    if ARGV[2] ~= '0' then redis.call('PEXPIRE', key, ARGV[2]) end
  else
    out[#out + 1] = i
    out[#out + 1] = cur
  end
end
return out
)lua";

// A node id stored by one of the scripts; NodeId() for anything else.
NodeId ParseNode(const RedisValue& v) {
  if (v.kind != RedisValue::Kind::kString) return NodeId();
  uint64_t id = 0;
  const char* end = v.str.data() + v.str.size();
  auto [ptr, ec] = std::from_chars(v.str.data(), end, id);
  return ec == std::errc() && ptr == end ? NodeId(id) : NodeId();
}

}  // namespace

RedisUserMapping::RedisUserMapping(RedisLink& link, std::string prefix,
                                   const ProtocolConfig& config)
    : link_(link),
      prefix_(std::move(prefix)),
      config_(config),
      register_sha_(RedisLink::ScriptSha(kRegister)),
      unregister_sha_(RedisLink::ScriptSha(kUnregister)),
      refresh_sha_(RedisLink::ScriptSha(kRefresh)) {}

std::vector<std::string> RedisUserMapping::Scripts() { return {kRegister, kUnregister, kRefresh}; }

std::string RedisUserMapping::Key(UserId user) const {
  return absl::StrCat(prefix_, "map:", user.value);
}

std::string RedisUserMapping::TtlMs() const {
  if (config_.mapping_ttl_us <= 0) return "0";
  // Rounded up: a mapping must never expire on Redis before it would in the core.
  return absl::StrCat((config_.mapping_ttl_us + kUsPerMs - 1) / kUsPerMs);
}

void RedisUserMapping::Submit(TimeUs /*now*/, NodeId from, Message msg, Done done) {
  stats_.messages++;
  if (!from.valid()) {
    stats_.unexpected++;  // the model ignores a sender it cannot answer
    return Nothing(std::move(done));
  }
  if (const auto* m = std::get_if<MapRegister>(&msg)) {
    if (!m->user.valid()) {
      stats_.unexpected++;
      return Nothing(std::move(done));
    }
    return Register(from, m->user, std::move(done));
  }
  if (const auto* m = std::get_if<MapUnregister>(&msg)) {
    if (!m->user.valid()) {
      stats_.unexpected++;
      return Nothing(std::move(done));
    }
    return Unregister(from, m->user, std::move(done));
  }
  if (const auto* m = std::get_if<MapRefresh>(&msg)) return Refresh(from, m->users, std::move(done));
  if (const auto* m = std::get_if<MapLookup>(&msg)) return Lookup(from, *m, std::move(done));
  stats_.unexpected++;
  Nothing(std::move(done));
}

void RedisUserMapping::Nothing(Done done) {
  link_.Call({}, [done = std::move(done)](RedisReply) { done({}); });
}

void RedisUserMapping::Register(NodeId from, UserId user, Done done) {
  link_.Call({"EVALSHA", register_sha_, "1", Key(user), absl::StrCat(from.value), TtlMs()},
             [this, from, user, done = std::move(done)](RedisReply r) {
               if (!r.ok()) {
                 stats_.failed++;
                 return;
               }
               const NodeId old = ParseNode(*r);
               Effects out;
               if (old.valid() && old != from) {
                 stats_.displacements++;
                 out.push_back(SendToNode{old, MapDisplaced{user, from}});
               }
               done(std::move(out));
             });
}

void RedisUserMapping::Unregister(NodeId from, UserId user, Done done) {
  link_.Call({"EVALSHA", unregister_sha_, "1", Key(user), absl::StrCat(from.value)},
             [this, done = std::move(done)](RedisReply r) {
               if (!r.ok()) {
                 stats_.failed++;
                 return;
               }
               done({});
             });
}

void RedisUserMapping::Refresh(NodeId from, const std::vector<UserId>& users, Done done) {
  // Like the model: the first lookup_users_max users, invalid ones skipped.
  const size_t count = std::min<size_t>(users.size(), config_.lookup_users_max);
  std::vector<UserId> valid;
  std::vector<std::string> argv = {"EVALSHA", refresh_sha_, ""};
  for (size_t i = 0; i < count; ++i) {
    if (!users[i].valid()) {
      stats_.unexpected++;
      continue;
    }
    valid.push_back(users[i]);
    argv.push_back(Key(users[i]));
  }
  if (valid.empty()) return Nothing(std::move(done));
  argv[2] = absl::StrCat(valid.size());
  argv.push_back(absl::StrCat(from.value));
  argv.push_back(TtlMs());
  link_.Call(std::move(argv), [this, from, valid = std::move(valid),
                               done = std::move(done)](RedisReply r) {
    if (!r.ok() || r->kind != RedisValue::Kind::kArray) {
      stats_.failed++;
      return;
    }
    Effects out;
    const auto& e = r->elements;
    for (size_t i = 0; i + 1 < e.size(); i += 2) {
      const int64_t pos = e[i].integer;  // 1-based
      const NodeId current = ParseNode(e[i + 1]);
      if (pos < 1 || static_cast<size_t>(pos) > valid.size() || !current.valid()) continue;
      stats_.displacements++;
      out.push_back(SendToNode{from, MapDisplaced{valid[static_cast<size_t>(pos - 1)], current}});
    }
    done(std::move(out));
  });
}

void RedisUserMapping::Lookup(NodeId from, const MapLookup& m, Done done) {
  const size_t count = std::min<size_t>(m.users.size(), config_.lookup_users_max);
  std::vector<UserId> users(m.users.begin(), m.users.begin() + static_cast<ptrdiff_t>(count));
  const uint64_t request_id = m.request_id;
  if (users.empty()) {
    return link_.Call({}, [from, request_id, done = std::move(done)](RedisReply) {
      done({SendToNode{from, MapLookupResult{request_id, {}}}});
    });
  }
  std::vector<std::string> argv = {"MGET"};
  for (UserId u : users) argv.push_back(Key(u));
  link_.Call(std::move(argv), [this, from, request_id, users = std::move(users),
                               done = std::move(done)](RedisReply r) {
    if (!r.ok() || r->kind != RedisValue::Kind::kArray || r->elements.size() != users.size()) {
      stats_.failed++;
      return;
    }
    MapLookupResult result{request_id, {}};
    result.locations.reserve(users.size());
    for (size_t i = 0; i < users.size(); ++i) {
      result.locations.push_back(UserLocation{users[i], ParseNode(r->elements[i])});
    }
    done({SendToNode{from, std::move(result)}});
  });
}

}  // namespace chatlab::real
