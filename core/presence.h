// The presence service: who is online, when each user was last seen, and who hears about it.
//
// The seed design's "Presence Service". Chat servers report sessions coming and going
// (PresenceSet) and conversations happening (PresenceTouch); the service keeps, per user, the
// online bit, the server of the session and last_seen, plus a bounded list of contacts ranked by
// recent activity. When a user's online bit changes the service pushes the new status to the
// user's audience, grouped into one PresencePush per chat server. Informing everyone who ever
// chatted with a user is "prohibitively expensive", so with PresenceFanout::kShortList only the
// most active contacts are pushed and the rest poll (PresenceLookup).
//
// Who polls whom. A viewer polls exactly the contacts that do not push to it, so it must learn
// which do: every status the service sends says whether the user's changes are pushed to the
// viewer it is for (PresenceStatus::pushed). A lookup names its viewer (PresenceLookup::viewer)
// and is answered per viewer (InAudience). Audiences change only when a touch reorders a
// user's contacts (all scores decay at the same rate, so time alone never reorders them); then
// the viewers who entered or left the audience and are online get a PresencePush of the user's
// status with pushed = true or false, so they stop or start polling at once. A lost notice or
// a restart of this service (which forgets every audience) leaves a viewer wrong about one
// contact until its next full query (on connect, and every presence_refresh_interval_us).
//
// Activity ranking: each contact carries a score, an exponentially decayed count of touches with
// half-life kContactHalfLifeUs. A touch sets score = score * 2^(-(now - touched_at) / half_life)
// + 1. Contacts rank by decayed score at `now`, highest first, ties by ascending user id.
//
// The network may reorder or duplicate any message, so:
//  - PresenceSet{online=false} from server S applies only while the user is online on S: a stale
//    offline from an old server, arriving after the user reconnected elsewhere, is ignored.
//  - PresenceSet carries no session version: a stale online from an old server arriving after
//    the new server's online moves the user back to the old server, until the old server reports
//    the displaced session offline. Polling and the next change repair the status.
// The state is soft: a crash loses it, and statuses and rankings rebuild as servers report:
// sessions as they open, or at the servers' next PresenceRefresh (config.map_refresh_interval_us),
// which sets each listed user that presence has offline online on the sender, renews a user
// online on the sender, and leaves a user online elsewhere where it is.
//
// Expiry: with config.mapping_ttl_us > 0 (the mapping's TTL, kept by the same refreshes), a user
// online on a server that has neither set nor refreshed it for that long reads offline, with
// last_seen the last report: a chat server that died without reporting its users offline does
// not leave them online forever. Expiry is evaluated when a status is read, by every decision
// (lookups, pushes, "was online"); nothing is pushed when it happens, so viewers pushed that
// user's changes learn it at their next full query (presence_refresh_interval_us).
#ifndef CHATLAB_CORE_PRESENCE_H_
#define CHATLAB_CORE_PRESENCE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "core/effects.h"
#include "core/messages.h"
#include "core/node.h"
#include "core/types.h"

namespace chatlab {

class PresenceService : public Node {
 public:
  // Half-life of a contact's activity score: a conversation from a day ago counts half as much as
  // one today, so the short list follows who a user talks to now.
  static constexpr TimeUs kContactHalfLifeUs = 24 * 3600 * kUsPerSecond;
  // Default for users_max: one entry per user ever reported or touched.
  static constexpr size_t kUsersMaxDefault = size_t{1} << 24;
  // The largest users_max: a user's state is found by a 32-bit index.
  static constexpr size_t kUsersMaxLimit = uint32_t{0xffffffff};

  struct Stats {
    uint64_t sets = 0;               // PresenceSet applied
    uint64_t sets_ignored = 0;       // offline for a user not online on the sending server
    uint64_t touches = 0;            // PresenceTouch handled
    uint64_t pushes_sent = 0;        // PresencePush messages sent
    uint64_t push_recipients = 0;    // sum of recipients over pushes_sent
    uint64_t lookups = 0;            // PresenceLookup answered
    uint64_t users_polled = 0;       // sum of statuses answered
    uint64_t oversized_lookups = 0;  // PresenceLookup with more than lookup_users_max users
    uint64_t contacts_evicted = 0;   // least active contact dropped at presence_contacts_max
    uint64_t audience_changes = 0;   // viewers who entered or left an audience on a touch
    uint64_t polled_but_pushed = 0;  // statuses answered to a viewer the user pushes to
    uint64_t users_refused = 0;      // a new user not tracked because the table is at users_max
    uint64_t refreshes = 0;          // PresenceRefresh handled
    uint64_t refreshed_online = 0;   // users a refresh found offline and set online
    // Message types this node does not handle, and messages it cannot act on: UserId() in a set
    // or touch, or a set or lookup from an unknown sender.
    uint64_t unexpected_messages = 0;
  };

  // users_max bounds the user table. At the limit a user not yet tracked is not added: a set for
  // it is refused and a touch skips its side (both counted in users_refused), so it looks offline
  // with last_seen 0. Tracked users keep working. REQUIRES: 0 < users_max <= kUsersMaxLimit.
  explicit PresenceService(const NodeOptions& options, size_t users_max = kUsersMaxDefault);

  // Node. The service arms no timers; OnTimer ignores every id.
  void Start(TimeUs now, Effects& out) override;
  void OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) override;
  void OnTimer(TimeUs now, uint64_t timer_id, Effects& out) override;

  const Stats& stats() const { return stats_; }
  // The user's status at `now` (expiry above); an unknown user is offline with last_seen_us 0.
  PresenceStatus Status(UserId user, TimeUs now) const;
  // Who is pushed `user`'s status changes at `now`, ascending by user id, whether online or not:
  // with kAll every tracked contact of the user; with kShortList the top
  // config.presence_short_list_size contacts by decayed score (ties by ascending user id).
  // The audience is drawn from the user's own contact list: touches are symmetric, so it
  // approximates who has the user as a contact (eviction can make it asymmetric; polling covers
  // that). Pure: changes nothing.
  std::vector<UserId> Audience(UserId user, TimeUs now) const;
  // Whether `viewer` is in Audience(user, now), without building the audience: O(contacts).
  // False for an unknown user or an invalid viewer. Pure.
  bool InAudience(UserId user, UserId viewer, TimeUs now) const;
  // The decayed activity score of `contact` in `user`'s list at `now`; 0 if not a contact.
  double ContactScore(UserId user, UserId contact, TimeUs now) const;
  // How many contacts `user` has (0 for an unknown user).
  size_t contact_count(UserId user) const;
  size_t tracked_users() const { return states_.size(); }

 private:
  struct Contact {
    // The score as of touched_at_us. Invariant: score >= 1 right after a touch, > 0 always.
    double score = 0;
    TimeUs touched_at_us = 0;
  };
  struct UserState {
    NodeId server;  // valid iff online (reported so, perhaps expired: Live)
    bool online() const { return server.valid(); }
    TimeUs last_seen_us = 0;
    // When `server` last set the user online or refreshed it (expiry: config.mapping_ttl_us).
    TimeUs renewed_us = 0;
    // Ordered so that every scan (kAll audience, ranking, eviction) is deterministic.
    // Invariant: size() <= config.presence_contacts_max, and the owner is never its own contact.
    absl::btree_map<UserId, Contact> contacts;
  };

  static double Decayed(const Contact& contact, TimeUs now);
  // Online and not expired at `now`: what every decision reads as "online".
  bool Live(const UserState& state, TimeUs now) const;
  // True when (score_a, a) ranks strictly above (score_b, b).
  static bool RanksAbove(double score_a, UserId a, double score_b, UserId b);

  void OnPresenceSet(TimeUs now, NodeId from, const PresenceSet& m, Effects& out);
  void OnPresenceTouch(TimeUs now, const PresenceTouch& m, Effects& out);
  void OnPresenceRefresh(TimeUs now, NodeId from, const PresenceRefresh& m, Effects& out);
  void OnPresenceLookup(TimeUs now, NodeId from, const PresenceLookup& m, Effects& out);
  // Records one direction of a touch: `contact` becomes more active in `owner`'s list.
  void TouchContact(UserId owner, UserId contact, TimeUs now);
  // Drops the lowest-ranked contact of `state` at `now`. REQUIRES: contacts not empty.
  void EvictLeastActive(UserState& state, TimeUs now);
  // Pushes `user`'s current status to its online audience, one PresencePush per server.
  void PushStatus(UserId user, TimeUs now, Effects& out);
  // Pushes `user`'s status at `now`, with `pushed`, to the online users among `viewers`
  // (REQUIRES: ascending), one PresencePush per server.
  void PushTo(UserId user, const std::vector<UserId>& viewers, bool pushed, TimeUs now,
              Effects& out);
  // Tells the online viewers who entered (pushed) or left (not pushed) user's audience since
  // `before` (its audience before a touch).
  void NotifyAudienceChange(UserId user, const std::vector<UserId>& before, TimeUs now,
                            Effects& out);
  // The state of `user`, added if absent; nullptr when absent and the table is at users_max_.
  // Earlier pointers into states_ stay valid (a deque's push_back moves nothing).
  UserState* FindOrTrack(UserId user);
  // The state of `user`, or nullptr if it is not tracked.
  const UserState* Find(UserId user) const {
    const auto it = index_.find(user);
    return it == index_.end() ? nullptr : &states_[it->second];
  }
  UserState* Find(UserId user) {
    const auto it = index_.find(user);
    return it == index_.end() ? nullptr : &states_[it->second];
  }

  const NodeOptions options_;
  // Invariant: 0 < users_max_ <= kUsersMaxLimit and states_.size() <= users_max_.
  const size_t users_max_;
  Stats stats_;
  // Every user ever reported or touched (never removed), by its index in states_: a hash table
  // of 16-byte slots beside a deque of the states (which grows by blocks, moving nothing)
  // rather than one table of 56-byte slots, as a hash table is up to half empty after it grows
  // (at a million users 87 bytes per user rather than 120; 77 rather than 88 averaged over
  // sizes). Only point lookups: its order never decides anything. Invariant: index_ maps onto
  // [0, states_.size()) one to one.
  absl::flat_hash_map<UserId, uint32_t> index_;
  std::deque<UserState> states_;
};

}  // namespace chatlab

#endif  // CHATLAB_CORE_PRESENCE_H_
