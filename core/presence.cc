#include "core/presence.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <iterator>
#include <utility>
#include <variant>

namespace chatlab {

static_assert(PresenceService::kContactHalfLifeUs > 0);

PresenceService::PresenceService(const NodeOptions& options, size_t users_max)
    : options_(options), users_max_(users_max) {
  assert(options_.self.valid());
  assert(users_max_ > 0 && users_max_ <= kUsersMaxLimit);
}

void PresenceService::Start(TimeUs /*now*/, Effects& /*out*/) {}

void PresenceService::OnTimer(TimeUs /*now*/, uint64_t /*timer_id*/, Effects& /*out*/) {}

void PresenceService::OnMessage(TimeUs now, NodeId from, const Message& msg, Effects& out) {
  if (const auto* m = std::get_if<PresenceSet>(&msg)) {
    OnPresenceSet(now, from, *m, out);
  } else if (const auto* m = std::get_if<PresenceTouch>(&msg)) {
    OnPresenceTouch(now, *m, out);
  } else if (const auto* m = std::get_if<PresenceLookup>(&msg)) {
    OnPresenceLookup(now, from, *m, out);
  } else if (const auto* m = std::get_if<PresenceRefresh>(&msg)) {
    OnPresenceRefresh(now, from, *m, out);
  } else {
    stats_.unexpected_messages++;
  }
  assert(states_.size() == index_.size() && states_.size() <= users_max_);
}

bool PresenceService::Live(const UserState& state, TimeUs now) const {
  const TimeUs ttl = options_.config.mapping_ttl_us;
  return state.online() && (ttl <= 0 || now - state.renewed_us < ttl);
}

PresenceStatus PresenceService::Status(UserId user, TimeUs now) const {
  const UserState* found = Find(user);
  if (found == nullptr) {
    return PresenceStatus{user, false, 0, false};
  }
  const UserState& state = *found;
  if (state.online() && !Live(state, now)) {
    return PresenceStatus{user, false, state.renewed_us, false};  // expired: last known online
  }
  return PresenceStatus{user, state.online(), state.last_seen_us, false};
}

double PresenceService::Decayed(const Contact& contact, TimeUs now) {
  // A clock that went back (skew, a restarted node) never inflates a score.
  const TimeUs elapsed_us = std::max<TimeUs>(0, now - contact.touched_at_us);
  const double half_lives =
      static_cast<double>(elapsed_us) / static_cast<double>(kContactHalfLifeUs);
  return contact.score * std::exp2(-half_lives);
}

bool PresenceService::RanksAbove(double score_a, UserId a, double score_b, UserId b) {
  if (score_a != score_b) {
    return score_a > score_b;
  }
  return a < b;
}

std::vector<UserId> PresenceService::Audience(UserId user, TimeUs now) const {
  std::vector<UserId> audience;
  const UserState* state = Find(user);
  if (state == nullptr) {
    return audience;
  }
  const auto& contacts = state->contacts;
  const size_t short_list_size = options_.config.presence_short_list_size;
  if (options_.config.presence_fanout == PresenceFanout::kAll ||
      contacts.size() <= short_list_size) {
    audience.reserve(contacts.size());
    for (const auto& [contact, unused] : contacts) {
      audience.push_back(contact);  // btree order: ascending
    }
    return audience;
  }
  std::vector<std::pair<double, UserId>> ranked;
  ranked.reserve(contacts.size());
  for (const auto& [contact, state] : contacts) {
    ranked.emplace_back(Decayed(state, now), contact);
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return RanksAbove(a.first, a.second, b.first, b.second);
  });
  ranked.resize(short_list_size);
  for (const auto& [unused, contact] : ranked) {
    audience.push_back(contact);
  }
  std::sort(audience.begin(), audience.end());
  assert(audience.size() == short_list_size);
  return audience;
}

double PresenceService::ContactScore(UserId user, UserId contact, TimeUs now) const {
  const UserState* state = Find(user);
  if (state == nullptr) {
    return 0;
  }
  auto c = state->contacts.find(contact);
  return c == state->contacts.end() ? 0 : Decayed(c->second, now);
}

size_t PresenceService::contact_count(UserId user) const {
  const UserState* state = Find(user);
  return state == nullptr ? 0 : state->contacts.size();
}

PresenceService::UserState* PresenceService::FindOrTrack(UserId user) {
  assert(user.valid());
  const auto [it, added] = index_.try_emplace(user, static_cast<uint32_t>(states_.size()));
  if (!added) {
    return &states_[it->second];
  }
  if (states_.size() >= users_max_) {
    index_.erase(it);
    stats_.users_refused++;
    return nullptr;
  }
  return &states_.emplace_back();
}

void PresenceService::OnPresenceSet(TimeUs now, NodeId from, const PresenceSet& m, Effects& out) {
  if (!from.valid() || !m.user.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  if (m.online) {
    UserState* state = FindOrTrack(m.user);
    if (state == nullptr) {
      return;
    }
    const bool was_online = Live(*state, now);
    state->server = from;  // a reconnect elsewhere moves the user without an offline blip
    state->last_seen_us = now;
    state->renewed_us = now;
    stats_.sets++;
    if (!was_online) {
      PushStatus(m.user, now, out);
    }
    return;
  }
  UserState* state = Find(m.user);
  if (state == nullptr || !state->online() || state->server != from) {
    // Stale: the user is offline already, or its session now lives on another server.
    stats_.sets_ignored++;
    return;
  }
  // An expired user (already offline to everyone) is recorded offline without a push.
  const bool was_online = Live(*state, now);
  state->server = NodeId();
  state->last_seen_us = now;
  stats_.sets++;
  if (was_online) {
    PushStatus(m.user, now, out);
  }
}

void PresenceService::OnPresenceRefresh(TimeUs now, NodeId from, const PresenceRefresh& m,
                                        Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  stats_.refreshes++;
  const size_t count = std::min<size_t>(m.users.size(), options_.config.lookup_users_max);
  for (size_t i = 0; i < count; ++i) {
    const UserId user = m.users[i];
    if (!user.valid()) {
      stats_.unexpected_messages++;
      continue;
    }
    UserState* state = FindOrTrack(user);
    if (state == nullptr) continue;
    if (Live(*state, now)) {  // online here already (renewed), or elsewhere (left there)
      if (state->server == from) state->renewed_us = now;
      continue;
    }
    state->server = from;
    state->last_seen_us = now;
    state->renewed_us = now;
    stats_.refreshed_online++;
    PushStatus(user, now, out);
  }
}

void PresenceService::OnPresenceTouch(TimeUs now, const PresenceTouch& m, Effects& out) {
  if (!m.user.valid() || !m.peer.valid()) {
    stats_.unexpected_messages++;
    return;
  }
  stats_.touches++;
  if (m.user == m.peer) {
    return;  // a note-to-self conversation ranks no contact
  }
  // A touch is the only thing that reorders a user's contacts (every score decays at the same
  // rate), so it is the only time an audience changes; those who enter or leave it are told.
  const std::vector<UserId> user_before = Audience(m.user, now);
  const std::vector<UserId> peer_before = Audience(m.peer, now);
  // One direction at a time: each finds (or tracks) its owner.
  TouchContact(m.user, m.peer, now);
  TouchContact(m.peer, m.user, now);
  NotifyAudienceChange(m.user, user_before, now, out);
  NotifyAudienceChange(m.peer, peer_before, now, out);
}

bool PresenceService::InAudience(UserId user, UserId viewer, TimeUs now) const {
  const UserState* state = Find(user);
  if (state == nullptr || !viewer.valid()) return false;
  const auto& contacts = state->contacts;
  const auto contact = contacts.find(viewer);
  if (contact == contacts.end()) return false;
  const size_t short_list_size = options_.config.presence_short_list_size;
  if (options_.config.presence_fanout == PresenceFanout::kAll ||
      contacts.size() <= short_list_size) {
    return true;
  }
  // In the short list iff fewer than short_list_size contacts rank above the viewer.
  const double score = Decayed(contact->second, now);
  size_t above = 0;
  for (const auto& [other, state] : contacts) {
    if (other != viewer && RanksAbove(Decayed(state, now), other, score, viewer)) above++;
  }
  return above < short_list_size;
}

void PresenceService::NotifyAudienceChange(UserId user, const std::vector<UserId>& before,
                                           TimeUs now, Effects& out) {
  const std::vector<UserId> after = Audience(user, now);
  if (after == before) return;
  std::vector<UserId> entered;
  std::vector<UserId> left;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(entered));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                      std::back_inserter(left));
  PushTo(user, entered, /*pushed=*/true, now, out);
  PushTo(user, left, /*pushed=*/false, now, out);
  stats_.audience_changes += entered.size() + left.size();
}

void PresenceService::TouchContact(UserId owner, UserId contact, TimeUs now) {
  assert(owner != contact);
  UserState* state = FindOrTrack(owner);
  if (state == nullptr) {
    return;
  }
  auto it = state->contacts.find(contact);
  if (it != state->contacts.end()) {
    it->second.score = Decayed(it->second, now) + 1;
    it->second.touched_at_us = now;
    return;
  }
  const size_t contacts_max = options_.config.presence_contacts_max;
  if (contacts_max == 0) {
    return;  // contact tracking disabled by configuration
  }
  if (state->contacts.size() >= contacts_max) {
    // The newcomer is always admitted: a fresh touch is the best evidence of activity, and
    // refusing it would freeze a full list until every old score decayed.
    EvictLeastActive(*state, now);
  }
  state->contacts.emplace(contact, Contact{1.0, now});
  assert(state->contacts.size() <= contacts_max);
}

void PresenceService::EvictLeastActive(UserState& state, TimeUs now) {
  assert(!state.contacts.empty());
  auto victim = state.contacts.begin();
  double victim_score = Decayed(victim->second, now);
  for (auto it = std::next(victim); it != state.contacts.end(); ++it) {
    const double score = Decayed(it->second, now);
    if (RanksAbove(victim_score, victim->first, score, it->first)) {
      victim = it;
      victim_score = score;
    }
  }
  state.contacts.erase(victim);
  stats_.contacts_evicted++;
}

void PresenceService::PushStatus(UserId user, TimeUs now, Effects& out) {
  PushTo(user, Audience(user, now), /*pushed=*/true, now, out);
}

void PresenceService::PushTo(UserId user, const std::vector<UserId>& viewers, bool pushed,
                             TimeUs now, Effects& out) {
  assert(std::is_sorted(viewers.begin(), viewers.end()));
  PresenceStatus status = Status(user, now);
  status.pushed = pushed;
  // Ordered by server so that pushes leave in ascending server order; each recipient list is
  // ascending because `viewers` is.
  absl::btree_map<NodeId, std::vector<UserId>> by_server;
  for (UserId contact : viewers) {
    const UserState* state = Find(contact);
    if (state != nullptr && Live(*state, now)) {
      assert(state->server.valid());
      by_server[state->server].push_back(contact);
    }
  }
  for (auto& [server, recipients] : by_server) {
    assert(!recipients.empty());
    stats_.pushes_sent++;
    stats_.push_recipients += recipients.size();
    out.push_back(SendToNode{server, PresencePush{std::move(recipients), status}});
  }
}

void PresenceService::OnPresenceLookup(TimeUs now, NodeId from, const PresenceLookup& m,
                                       Effects& out) {
  if (!from.valid()) {
    stats_.unexpected_messages++;  // nowhere to send the answer
    return;
  }
  const size_t users_max = options_.config.lookup_users_max;
  if (m.users.size() > users_max) {
    stats_.oversized_lookups++;  // answered for its first users_max users only
  }
  const size_t count = std::min(m.users.size(), users_max);
  PresenceLookupResult result;
  result.request_id = m.request_id;
  result.statuses.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    PresenceStatus status = Status(m.users[i], now);
    status.pushed = InAudience(m.users[i], m.viewer, now);
    if (status.pushed) stats_.polled_but_pushed++;
    result.statuses.push_back(status);
  }
  stats_.lookups++;
  stats_.users_polled += count;
  out.push_back(SendToNode{from, std::move(result)});
}

}  // namespace chatlab
