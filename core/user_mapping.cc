#include "core/user_mapping.h"

#include <algorithm>
#include <cassert>
#include <utility>
#include <variant>
#include <vector>

namespace chatlab {

UserMappingService::UserMappingService(const NodeOptions& options, size_t users_max)
    : options_(options), users_max_(users_max) {
  assert(options_.self.valid());
  assert(users_max_ > 0);
}

void UserMappingService::Start(TimeUs /*now*/, Effects& /*out*/) {}

void UserMappingService::OnTimer(TimeUs /*now*/, uint64_t /*timer_id*/, Effects& /*out*/) {}

void UserMappingService::OnMessage(TimeUs /*now*/, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<MapRegister>(&msg)) {
    OnMapRegister(from, *m, out);
  } else if (const auto* m = std::get_if<MapUnregister>(&msg)) {
    OnMapUnregister(from, *m);
  } else if (const auto* m = std::get_if<MapLookup>(&msg)) {
    OnMapLookup(from, *m, out);
  } else {
    stats_.unexpected_messages++;
  }
  assert(servers_.size() <= users_max_);
}

NodeId UserMappingService::Lookup(UserId user) const {
  auto it = servers_.find(user);
  return it == servers_.end() ? NodeId() : it->second;
}

void UserMappingService::OnMapRegister(NodeId from, const MapRegister& m, Effects& out) {
  if (!from.valid() || !m.user.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  auto it = servers_.find(m.user);
  if (it == servers_.end()) {
    if (servers_.size() >= users_max_) {
      stats_.registers_refused++;
      return;
    }
    servers_.emplace(m.user, from);
    stats_.registers++;
    return;
  }
  const NodeId old_server = it->second;
  assert(old_server.valid());
  it->second = from;
  stats_.registers++;
  if (old_server != from) {
    // The user reconnected elsewhere: the old server must close its stale session, or it would
    // keep receiving (and acking) traffic for a user it no longer serves.
    out.push_back(SendToNode{old_server, MapDisplaced{m.user, from}});
    stats_.displacements++;
  }
  assert(Lookup(m.user) == from);
}

void UserMappingService::OnMapUnregister(NodeId from, const MapUnregister& m) {
  if (!from.valid() || !m.user.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  auto it = servers_.find(m.user);
  if (it == servers_.end() || it->second != from) {
    // Late unregister from a server the user has left (or a duplicate): the current mapping,
    // if any, belongs to another session and stays.
    stats_.unregisters_ignored++;
    return;
  }
  servers_.erase(it);
  stats_.unregisters++;
  assert(!Lookup(m.user).valid());
}

void UserMappingService::OnMapLookup(NodeId from, const MapLookup& m, Effects& out) {
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
    result.locations.push_back(UserLocation{m.users[i], Lookup(m.users[i])});
  }
  assert(result.locations.size() == count);
  stats_.lookups++;
  stats_.users_looked_up += count;
  out.push_back(SendToNode{from, std::move(result)});
}

}  // namespace chatlab
