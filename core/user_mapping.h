// The user mapping service: which chat server holds each user's session.
//
// The seed design's "User Mapping Service". A chat server registers a user when the user's
// session authenticates there and unregisters it when that session closes; any chat server looks
// recipients up before forwarding to them. A user has at most one mapped server: a register from
// a new server displaces the old one, which is told with MapDisplaced so that it closes its stale
// session (the user reconnected elsewhere).
//
// The network may reorder, duplicate or lose any message, so the service settles these races:
//  - A late MapUnregister from an old server must not erase the newer mapping: an unregister only
//    erases a mapping that still names its sender.
//  - A duplicate MapRegister from the server already mapped changes nothing and displaces no one.
//  - MapRegister carries no session version, so two registers from different servers that arrive
//    in the opposite order map the user to the older session and displace the newer one. The
//    client is told (SessionClosed) and reconnects, which registers again: a liveness cost, never
//    a lost message, since every client catches up from the store on connect. The same holds for
//    a MapDisplaced answering a delayed MapRefresh: it reaches a server that may hold a newer
//    session of the user by then, which it closes (the client reconnects). A per-user register
//    sequence echoed in MapDisplaced would spare that reconnect; not built.
//
// The state is soft: a crash loses it, and users reappear as their servers register them again:
// on their next connect, or on the servers' next MapRefresh (config.map_refresh_interval_us).
// Until then they look offline, so their messages go to the notification service and they catch
// up from the store. A refresh restores and re-arms mappings but never moves one: a user mapped
// to another server is answered MapDisplaced (the refreshing server's session is stale).
//
// With config.mapping_ttl_us > 0 a mapping neither registered nor refreshed for that long reads
// as absent (a dead server's users look offline). The entry stays in the table until it is
// registered, refreshed, unregistered or looked up again, and counts toward users_max until then.
//
// The same contract runs on Redis in chatd (real-transport/engines/redis_user_mapping.h);
// tests/real/engine_conformance_test.cc holds the two to the same cases (docs/engines.md).
#ifndef CHATLAB_CORE_USER_MAPPING_H_
#define CHATLAB_CORE_USER_MAPPING_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab {

// Refuses a mapping TTL that one lost refresh could outrun: it needs map_refresh_interval_us > 0
// and mapping_ttl_us > 2 * (map_refresh_interval_us + server_tick_us). Errors name the numbers.
absl::Status ValidateMappingConfig(const ProtocolConfig& config);

class UserMappingService : public Node {
 public:
  // Default for users_max: the table holds one entry per connected user of the deployment, and
  // a crashed server's users stay mapped to it until they register elsewhere.
  static constexpr size_t kUsersMaxDefault = size_t{1} << 24;

  struct Stats {
    uint64_t registers = 0;            // MapRegister applied (mapping set or confirmed)
    uint64_t registers_refused = 0;    // MapRegister of a new user with the table at users_max
    uint64_t unregisters = 0;          // MapUnregister that erased a mapping
    uint64_t unregisters_ignored = 0;  // MapUnregister for a user not mapped to its sender
    uint64_t refreshes = 0;            // MapRefresh handled
    uint64_t refreshed_users = 0;      // users in them mapped (again) or re-armed on the sender
    uint64_t expired = 0;              // mappings found past mapping_ttl_us (read as absent)
    uint64_t lookups = 0;              // MapLookup answered
    uint64_t users_looked_up = 0;      // sum of locations answered
    uint64_t displacements = 0;        // MapDisplaced sent
    uint64_t oversized_lookups = 0;    // MapLookup with more than lookup_users_max users
    // Message types this node does not handle, and messages it cannot act on: a register or
    // unregister of UserId(), or a register/unregister/lookup from an unknown sender.
    uint64_t unexpected_messages = 0;
  };

  // users_max bounds the mapping table. At the limit, a MapRegister for a user not yet mapped is
  // refused (counted in registers_refused): that user looks offline, so messages for it go to the
  // notification service and it catches up from the store. Registers of mapped users still work.
  // REQUIRES: users_max > 0.
  explicit UserMappingService(const NodeOptions& options, size_t users_max = kUsersMaxDefault);

  // Node. The service arms no timers; OnTimer ignores every id.
  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  // How many entries the table holds (expired ones not yet dropped included).
  size_t online_users() const { return servers_.size(); }
  // The server holding `user`'s session at `now`, or NodeId() if the user is not mapped (or its
  // mapping expired). Pure.
  NodeId Lookup(UserId user, TimeUs now) const;

 private:
  struct Entry {
    NodeId server;      // valid
    TimeUs expires_us;  // kNever without a TTL
  };
  static constexpr TimeUs kNever = INT64_MAX;

  void OnMapRegister(TimeUs now, NodeId from, const MapRegister& m, Effects& out);
  void OnMapUnregister(TimeUs now, NodeId from, const MapUnregister& m);
  void OnMapRefresh(TimeUs now, NodeId from, const MapRefresh& m, Effects& out);
  void OnMapLookup(TimeUs now, NodeId from, const MapLookup& m, Effects& out);
  // The live entry of `user` at `now`; an expired one is erased (and counted) first.
  Entry* Live(UserId user, TimeUs now);
  TimeUs ExpiryFrom(TimeUs now) const;

  const NodeOptions options_;
  // Invariant: users_max_ > 0 and servers_.size() <= users_max_.
  const size_t users_max_;
  Stats stats_;
  // user -> the server of its session. Invariant: every key and every server is valid.
  // Only point lookups: its iteration order never decides anything.
  absl::flat_hash_map<UserId, Entry> servers_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_USER_MAPPING_H_
