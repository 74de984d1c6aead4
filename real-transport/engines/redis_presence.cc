#include "real-transport/engines/redis_presence.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/presence.h"

namespace chatlab::real {
namespace {

// The presence service's contract (core/presence.h), one operation per run, in Lua 5.1 as Redis
// runs it. ARGV: [1] key prefix, [2] op, [3] now (us), [4] "1" for fan-out to every contact,
// [5] short list size, [6] contacts kept per user, [7] score half-life (us), [8] the expiry
// (config.mapping_ttl_us, 0: none), [9...] the op's.
// Ids travel as decimal strings and are compared as numbers (exact below 2^53).
constexpr const char* kPresenceScript = R"lua(
local P, op, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local all, K, CMAX, HALF = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local TTL = tonumber(ARGV[8])

-- An id as its key text (tostring would write large ids as 1e+14).
local function id(n) return string.format('%.0f', n) end
local function decayed(score, at)
  local e = now - at
  if e < 0 then e = 0 end
  return score * 2 ^ (-(e / HALF))
end
local function above(sa, a, sb, b)
  if sa ~= sb then return sa > sb end
  return a < b
end
-- u's contacts, ascending by id: {id, score, at}.
local function contacts(u)
  local flat = redis.call('HGETALL', P .. 'c:' .. id(u))
  local list = {}
  for i = 1, #flat, 2 do
    local s, a = string.match(flat[i + 1], '^([^|]+)|(.+)$')
    list[#list + 1] = {id = tonumber(flat[i]), score = tonumber(s), at = tonumber(a)}
  end
  table.sort(list, function(x, y) return x.id < y.id end)
  return list
end
local function audience(u)
  local cs = contacts(u)
  local out = {}
  if all or #cs <= K then
    for i, c in ipairs(cs) do out[i] = c.id end
    return out
  end
  for _, c in ipairs(cs) do c.d = decayed(c.score, c.at) end
  table.sort(cs, function(x, y) return above(x.d, x.id, y.d, y.id) end)
  for i = 1, K do out[i] = cs[i].id end
  table.sort(out)
  return out
end
local function in_audience(u, viewer)
  if viewer == 0 then return false end
  local cs = contacts(u)
  local mine = nil
  for _, c in ipairs(cs) do if c.id == viewer then mine = c end end
  if not mine then return false end
  if all or #cs <= K then return true end
  local score, n = decayed(mine.score, mine.at), 0
  for _, c in ipairs(cs) do
    if c.id ~= viewer and above(decayed(c.score, c.at), c.id, score, viewer) then n = n + 1 end
  end
  return n < K
end
-- Online and not expired (the model's Live): `on`, and `rep` as stored (a hash written before
-- `rep` existed, by an older chatd, counts from `seen`, when it came online).
local function live(on, rep)
  return on == '1' and (TTL <= 0 or now - tonumber(rep or '0') < TTL)
end
local function status(u)
  local v = redis.call('HMGET', P .. 'p:' .. id(u), 'on', 'seen', 'rep')
  local rep = v[3] or v[2]
  if v[1] == '1' and not live(v[1], rep) then return 0, tonumber(rep or '0') end
  return (v[1] == '1') and 1 or 0, tonumber(v[2] or '0')
end
local pushes = {}
local function push_to(u, viewers, pushed)
  local on, seen = status(u)
  local by, servers = {}, {}
  for _, v in ipairs(viewers) do
    local st = redis.call('HMGET', P .. 'p:' .. id(v), 'on', 'srv', 'rep', 'seen')
    if live(st[1], st[3] or st[4]) then
      local s = tonumber(st[2])
      if not by[s] then
        by[s] = {}
        servers[#servers + 1] = s
      end
      table.insert(by[s], v)
    end
  end
  table.sort(servers)
  for _, s in ipairs(servers) do
    pushes[#pushes + 1] = {s, u, on, seen, pushed and 1 or 0, by[s]}
  end
end
local function go_online(u, server)
  redis.call('HSET', P .. 'p:' .. id(u), 'on', '1', 'srv', server, 'seen', ARGV[3], 'rep', ARGV[3])
  push_to(u, audience(u), true)
end
local function touch(owner, contact)
  local key = P .. 'c:' .. id(owner)
  local cur = redis.call('HGET', key, contact)
  if cur then
    local s, a = string.match(cur, '^([^|]+)|(.+)$')
    local score = decayed(tonumber(s), tonumber(a)) + 1
    redis.call('HSET', key, contact, string.format('%.17g|%s', score, ARGV[3]))
    return
  end
  if CMAX == 0 then return end
  local cs = contacts(owner)
  if #cs >= CMAX then
    local victim = cs[1]
    local vs = decayed(victim.score, victim.at)
    for i = 2, #cs do
      local d = decayed(cs[i].score, cs[i].at)
      if above(vs, victim.id, d, cs[i].id) then
        victim, vs = cs[i], d
      end
    end
    redis.call('HDEL', key, id(victim.id))
  end
  redis.call('HSET', key, contact, '1|' .. ARGV[3])
end
local function notify_change(u, before)
  local after = audience(u)
  local was, is = {}, {}
  for _, v in ipairs(before) do was[v] = true end
  for _, v in ipairs(after) do is[v] = true end
  local entered, left = {}, {}
  for _, v in ipairs(after) do if not was[v] then entered[#entered + 1] = v end end
  for _, v in ipairs(before) do if not is[v] then left[#left + 1] = v end end
  push_to(u, entered, true)
  push_to(u, left, false)
end

if op == 'set' then
  local u, server = tonumber(ARGV[9]), ARGV[10]
  local v = redis.call('HMGET', P .. 'p:' .. id(u), 'on', 'srv', 'rep', 'seen')
  local was = live(v[1], v[3] or v[4])
  if ARGV[11] == '1' then
    redis.call('HSET', P .. 'p:' .. id(u), 'on', '1', 'srv', server, 'seen', ARGV[3],
               'rep', ARGV[3])
    if not was then push_to(u, audience(u), true) end
  else
    if v[1] ~= '1' or v[2] ~= server then return {} end
    redis.call('HSET', P .. 'p:' .. id(u), 'on', '0', 'srv', '0', 'seen', ARGV[3])
    if was then push_to(u, audience(u), true) end
  end
elseif op == 'refresh' then
  local server = ARGV[9]
  for i = 10, #ARGV do
    local u = tonumber(ARGV[i])
    local v = redis.call('HMGET', P .. 'p:' .. id(u), 'on', 'srv', 'rep', 'seen')
    if live(v[1], v[3] or v[4]) then
      if v[2] == server then redis.call('HSET', P .. 'p:' .. id(u), 'rep', ARGV[3]) end
    else
      go_online(u, server)
    end
  end
elseif op == 'touch' then
  local u, peer = tonumber(ARGV[9]), tonumber(ARGV[10])
  if u == peer then return {} end
  local ub, pb = audience(u), audience(peer)
  touch(u, ARGV[10])
  touch(peer, ARGV[9])
  notify_change(u, ub)
  notify_change(peer, pb)
elseif op == 'lookup' then
  local viewer, out = tonumber(ARGV[9]), {}
  for i = 10, #ARGV do
    local u = tonumber(ARGV[i])
    local on, seen = status(u)
    out[#out + 1] = {u, on, seen, in_audience(u, viewer) and 1 or 0}
  end
  return out
end
return pushes
)lua";

constexpr uint64_t kLuaIdMax = uint64_t{1} << 53;

bool LuaSafe(UserId u) { return u.value < kLuaIdMax; }

int64_t Int(const RedisValue& v) { return v.kind == RedisValue::Kind::kInteger ? v.integer : 0; }

}  // namespace

std::vector<std::string> RedisPresence::Scripts() { return {kPresenceScript}; }

RedisPresence::RedisPresence(RedisLink& link, std::string prefix, const ProtocolConfig& config)
    : link_(link),
      prefix_(std::move(prefix)),
      config_(config),
      sha_(RedisLink::ScriptSha(kPresenceScript)) {}

void RedisPresence::Nothing(Done done) {
  link_.Call({}, [done = std::move(done)](RedisReply) { done({}); });
}

void RedisPresence::Submit(TimeUs now, NodeId from, Message msg, Done done) {
  stats_.messages++;
  const auto unexpected = [&] {
    stats_.unexpected++;
    Nothing(std::move(done));
  };
  if (const auto* m = std::get_if<PresenceTouch>(&msg)) {
    // The model counts a touch whatever its sender.
    if (!m->user.valid() || !m->peer.valid() || !LuaSafe(m->user) || !LuaSafe(m->peer)) {
      return unexpected();
    }
    return Run(now, "touch", {absl::StrCat(m->user.value), absl::StrCat(m->peer.value)}, from, 0,
               std::move(done));
  }
  if (!from.valid() || from.value >= kLuaIdMax) return unexpected();
  const std::string server = absl::StrCat(from.value);
  if (const auto* m = std::get_if<PresenceSet>(&msg)) {
    if (!m->user.valid() || !LuaSafe(m->user)) return unexpected();
    return Run(now, "set", {absl::StrCat(m->user.value), server, m->online ? "1" : "0"}, from, 0,
               std::move(done));
  }
  if (const auto* m = std::get_if<PresenceRefresh>(&msg)) {
    std::vector<std::string> args = {server};
    const size_t count = std::min<size_t>(m->users.size(), config_.lookup_users_max);
    for (size_t i = 0; i < count; ++i) {
      if (!m->users[i].valid() || !LuaSafe(m->users[i])) {
        stats_.unexpected++;
        continue;
      }
      args.push_back(absl::StrCat(m->users[i].value));
    }
    return Run(now, "refresh", std::move(args), from, 0, std::move(done));
  }
  if (const auto* m = std::get_if<PresenceLookup>(&msg)) {
    const size_t count = std::min<size_t>(m->users.size(), config_.lookup_users_max);
    std::vector<std::string> args = {absl::StrCat(LuaSafe(m->viewer) ? m->viewer.value : 0)};
    std::vector<UserId> asked(m->users.begin(), m->users.begin() + static_cast<ptrdiff_t>(count));
    for (size_t i = 0; i < count; ++i) {
      // An id Lua cannot hold is looked up as 0, an unknown user, and answered under its own id
      // (below), as the model answers an unknown user.
      args.push_back(absl::StrCat(LuaSafe(m->users[i]) ? m->users[i].value : 0));
    }
    return Run(now, "lookup", std::move(args), from, m->request_id, std::move(done),
               std::move(asked));
  }
  unexpected();
}

void RedisPresence::Run(TimeUs now, const char* op, std::vector<std::string> args, NodeId from,
                        uint64_t request_id, Done done, std::vector<UserId> asked) {
  std::vector<std::string> argv = {
      "EVALSHA",
      sha_,
      "0",
      prefix_,
      op,
      absl::StrCat(now),
      config_.presence_fanout == PresenceFanout::kAll ? "1" : "0",
      absl::StrCat(config_.presence_short_list_size),
      absl::StrCat(config_.presence_contacts_max),
      absl::StrCat(PresenceService::kContactHalfLifeUs),
      absl::StrCat(std::max<TimeUs>(0, config_.mapping_ttl_us))};
  for (std::string& a : args) argv.push_back(std::move(a));
  const bool lookup = std::string_view(op) == "lookup";
  link_.Call(std::move(argv), [this, lookup, from, request_id, done = std::move(done),
                               asked = std::move(asked)](RedisReply r) {
    if (!r.ok() || r->kind != RedisValue::Kind::kArray) {
      stats_.failed++;
      return;
    }
    Effects out;
    if (lookup) {
      PresenceLookupResult result{request_id, {}};
      // One status per asked user, in order, under the id asked (the script's may be 0).
      for (size_t i = 0; i < r->elements.size() && i < asked.size(); ++i) {
        const RedisValue& s = r->elements[i];
        if (s.elements.size() != 4) continue;
        result.statuses.push_back(PresenceStatus{asked[i], Int(s.elements[1]) == 1,
                                                 Int(s.elements[2]), Int(s.elements[3]) == 1});
      }
      out.push_back(SendToNode{from, std::move(result)});
      return done(std::move(out));
    }
    for (const RedisValue& p : r->elements) {
      if (p.elements.size() != 6) continue;
      PresencePush push;
      push.status = PresenceStatus{UserId(static_cast<uint64_t>(Int(p.elements[1]))),
                                   Int(p.elements[2]) == 1, Int(p.elements[3]),
                                   Int(p.elements[4]) == 1};
      for (const RedisValue& u : p.elements[5].elements) {
        push.recipients.push_back(UserId(static_cast<uint64_t>(Int(u))));
      }
      stats_.pushes++;
      out.push_back(SendToNode{NodeId(static_cast<uint64_t>(Int(p.elements[0]))),
                               std::move(push)});
    }
    done(std::move(out));
  });
}

}  // namespace chatlab::real
