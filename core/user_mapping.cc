#include "core/user_mapping.h"

#include <algorithm>
#include <cassert>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"

namespace chatlab {

absl::Status ValidateMappingConfig(const ProtocolConfig& config) {
  if (config.map_refresh_interval_us < 0 || config.mapping_ttl_us < 0) {
    return absl::InvalidArgumentError(
        "map_refresh_interval_us and mapping_ttl_us must not be negative");
  }
  if (config.mapping_ttl_us > 0 && config.map_refresh_interval_us == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mapping_ttl_us=", config.mapping_ttl_us,
        " needs map_refresh_interval_us > 0: without refreshes every mapping would expire"));
  }
  // A server's refreshes go out up to interval + tick apart (each is due interval after the
  // last went out, at a tick); a live user's mapping must outlast one lost refresh, so the
  // second one after it may come 2 * (interval + tick) later, and must land before the TTL.
  const TimeUs needed = 2 * (config.map_refresh_interval_us + config.server_tick_us);
  if (config.mapping_ttl_us > 0 && config.mapping_ttl_us <= needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mapping_ttl_us=", config.mapping_ttl_us,
        " is too short: it must exceed 2 * (map_refresh_interval_us + server_tick_us) = 2 * (",
        config.map_refresh_interval_us, " + ", config.server_tick_us, ") = ", needed,
        ", or a live user's mapping would expire after one lost refresh"));
  }
  return absl::OkStatus();
}

UserMappingService::UserMappingService(const NodeOptions& options, size_t users_max)
    : options_(options), users_max_(users_max) {
  assert(options_.self.valid());
  assert(users_max_ > 0);
}

void UserMappingService::Start(TimeUs /*now*/, Effects& /*out*/) {}

void UserMappingService::OnTimer(TimeUs /*now*/, uint64_t /*timer_id*/, Effects& /*out*/) {}

void UserMappingService::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<MapRegister>(&msg)) {
    OnMapRegister(now, from, *m, out);
  } else if (const auto* m = std::get_if<MapUnregister>(&msg)) {
    OnMapUnregister(now, from, *m);
  } else if (const auto* m = std::get_if<MapRefresh>(&msg)) {
    OnMapRefresh(now, from, *m, out);
  } else if (const auto* m = std::get_if<MapLookup>(&msg)) {
    OnMapLookup(now, from, *m, out);
  } else {
    stats_.unexpected_messages++;
  }
  assert(servers_.size() <= users_max_);
}

NodeId UserMappingService::Lookup(UserId user, TimeUs now) const {
  auto it = servers_.find(user);
  if (it == servers_.end() || it->second.expires_us <= now) return NodeId();
  return it->second.server;
}

TimeUs UserMappingService::ExpiryFrom(TimeUs now) const {
  const TimeUs ttl = options_.config.mapping_ttl_us;
  return ttl > 0 && now < kNever - ttl ? now + ttl : kNever;
}

UserMappingService::Entry* UserMappingService::Live(UserId user, TimeUs now) {
  auto it = servers_.find(user);
  if (it == servers_.end()) return nullptr;
  if (it->second.expires_us <= now) {
    servers_.erase(it);
    stats_.expired++;
    return nullptr;
  }
  return &it->second;
}

void UserMappingService::OnMapRegister(TimeUs now, NodeId from, const MapRegister& m,
                                       Effects& out) {
  if (!from.valid() || !m.user.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  Entry* entry = Live(m.user, now);
  if (entry == nullptr) {
    if (servers_.size() >= users_max_) {
      stats_.registers_refused++;
      return;
    }
    servers_.emplace(m.user, Entry{from, ExpiryFrom(now)});
    stats_.registers++;
    return;
  }
  const NodeId old_server = entry->server;
  assert(old_server.valid());
  *entry = Entry{from, ExpiryFrom(now)};
  stats_.registers++;
  if (old_server != from) {
    // The user reconnected elsewhere: the old server must close its stale session, or it would
    // keep receiving (and acking) traffic for a user it no longer serves.
    out.push_back(SendToNode{old_server, MapDisplaced{m.user, from}});
    stats_.displacements++;
  }
  assert(Lookup(m.user, now) == from || ExpiryFrom(now) <= now);
}

void UserMappingService::OnMapUnregister(TimeUs now, NodeId from, const MapUnregister& m) {
  if (!from.valid() || !m.user.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  Entry* entry = Live(m.user, now);
  if (entry == nullptr || entry->server != from) {
    // Late unregister from a server the user has left (or a duplicate): the current mapping,
    // if any, belongs to another session and stays.
    stats_.unregisters_ignored++;
    return;
  }
  servers_.erase(m.user);
  stats_.unregisters++;
  assert(!Lookup(m.user, now).valid());
}

void UserMappingService::OnMapRefresh(TimeUs now, NodeId from, const MapRefresh& m,
                                      Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  stats_.refreshes++;
  // Like a lookup, a refresh over the limit is handled for its first users only.
  const size_t count = std::min<size_t>(m.users.size(), options_.config.lookup_users_max);
  for (size_t i = 0; i < count; ++i) {
    const UserId user = m.users[i];
    if (!user.valid()) {
      stats_.unexpected_messages++;
      continue;
    }
    Entry* entry = Live(user, now);
    if (entry == nullptr) {
      if (servers_.size() >= users_max_) {
        stats_.registers_refused++;
        continue;
      }
      servers_.emplace(user, Entry{from, ExpiryFrom(now)});
      stats_.refreshed_users++;
    } else if (entry->server == from) {
      entry->expires_us = ExpiryFrom(now);
      stats_.refreshed_users++;
    } else {
      // A newer session registered elsewhere; the sender missed its MapDisplaced.
      out.push_back(SendToNode{from, MapDisplaced{user, entry->server}});
      stats_.displacements++;
    }
  }
}

void UserMappingService::OnMapLookup(TimeUs now, NodeId from, const MapLookup& m, Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;  // nowhere to send the answer
    return;
  }
  const size_t users_max = options_.config.lookup_users_max;
  if (m.users.size() > users_max) {
    // Chat servers chunk their lookups; an oversized one is answered for its first users only.
    stats_.oversized_lookups++;
  }
  const size_t count = std::min(m.users.size(), users_max);
  MapLookupResult result;
  result.request_id = m.request_id;
  result.locations.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const Entry* entry = Live(m.users[i], now);
    result.locations.push_back(UserLocation{m.users[i], entry ? entry->server : NodeId()});
  }
  assert(result.locations.size() == count);
  stats_.lookups++;
  stats_.users_looked_up += count;
  out.push_back(SendToNode{from, std::move(result)});
}

}  // namespace chatlab
