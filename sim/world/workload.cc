// The client hubs: each client host runs a population of ClientSessions and the workload
// (users going online and offline, background wakes, typing, sending, reading), and carries out
// the clients' effects (host::ClientEnv below).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/codec.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {

void WorldImpl::ScheduleHub(int hub, double at, uint32_t kind, uint32_t index, uint64_t id,
                            TimeUs local_at) {
  Endpoint& e = endpoints_[static_cast<size_t>(HubEndpoint(hub))];
  e.timers.Arm(at, TimerEntry{kind, index, id, local_at});
}

void WorldImpl::FireHubEvent(int hub, const TimerEntry& t) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const UserId user(t.index);
  Effects effects;
  events_++;
  switch (t.kind) {
    case kClientTimer:
      Client(user).OnTimer(std::max(local, t.local_at), t.id, effects);
      break;
    case kWorkloadSend:
      if (healed_ || now >= sc_.duration_s) return;
      if (sc_.send_end_s > 0 && now >= sc_.send_end_s) return;  // sending is over
      WorkloadSend(hub, user, now);
      ScheduleHub(hub, now + NextSendGap(sc_, rng), kWorkloadSend, t.index, 0);
      return;
    case kIntroduce: {
      // Sent online or not: an offline user's client holds it until it connects.
      if (healed_) return;
      const std::vector<UserId>& contacts = users_[user.value - 1].contacts;
      (void)Client(user).Send(local, ConversationId::Direct(user, contacts[t.id]),
                              WorkloadBody(sc_), effects);
      if (t.id + 1 < contacts.size()) {
        ScheduleHub(hub, IntroductionAt(sc_, t.id + 1, rng), kIntroduce, t.index, t.id + 1);
      }
      break;
    }
    case kTypedSend: {
      const ConversationId conv{static_cast<ChannelType>(t.id >> 62),
                                (t.id >> 31) & 0x7fffffff, t.id & 0x7fffffff};
      (void)Client(user).Send(local, conv, WorkloadBody(sc_), effects);
      Client(user).SetTyping(local, conv, false, effects);
      break;
    }
    case kReadConv: {
      const ConversationId conv{static_cast<ChannelType>(t.id >> 62),
                                (t.id >> 31) & 0x7fffffff, t.id & 0x7fffffff};
      Client(user).MarkRead(local, conv, effects);
      break;
    }
    case kGoOnline: {
      UserState& us = users_[user.value - 1];
      if (us.background) {  // the user opens the app while it syncs in the background
        us.background = false;
        us.wake_generation++;
      }
      const int server = ConnectServer(sc_, us, Client(user).ever_connected(), rng);
      Client(user).Connect(local, endpoints_[static_cast<size_t>(ServerEndpoint(server))].node,
                           effects);
      if (!healed_ && sc_.session_mean_s > 0) {
        ScheduleHub(hub, now + ExponentialDraw(sc_.session_mean_s, rng), kGoOffline, t.index, 0);
      }
      break;
    }
    case kGoOffline: {
      if (healed_) return;
      Client(user).Disconnect(local, effects);
      SetOnline(user, false);
      ScheduleHub(hub, now + ExponentialDraw(sc_.offline_mean_s, rng), kGoOnline, t.index, 0);
      UserState& us = users_[user.value - 1];
      us.wake_generation++;
      if (sc_.background_sync_s > 0) {  // periodic background sync, at a random phase
        ScheduleHub(hub, now + sc_.background_sync_s * rng.UniformDouble(), kBackgroundWake,
                    t.index, (uint64_t{us.wake_generation} << 1) | 1);
      }
      break;
    }
    case kBackgroundWake: {
      UserState& us = users_[user.value - 1];
      if (healed_ || (t.id >> 1) != us.wake_generation) return;
      if ((t.id & 1) != 0) {
        ScheduleHub(hub, now + sc_.background_sync_s, kBackgroundWake, t.index, t.id);
      }
      if (Client(user).wants_online()) return;
      us.background = true;
      measures_.background_wakes++;
      Client(user).Connect(local, endpoints_[static_cast<size_t>(ServerEndpoint(us.home_server))].node,
                           effects);
      ScheduleHub(hub, now + sc_.background_session_s, kBackgroundSleep, t.index,
                  us.wake_generation);
      break;
    }
    case kBackgroundSleep: {
      UserState& us = users_[user.value - 1];
      // After the heal everyone stays online: a background wake that began before it is now the
      // quiet period's session (disconnecting here left the user offline for good).
      if (healed_ || !us.background || t.id != us.wake_generation) return;
      us.background = false;
      Client(user).Disconnect(local, effects);
      SetOnline(user, false);
      break;
    }
    case kHeal:
      // Everyone comes online for the quiet period; nobody sends any more.
      for (UserId u : hub_users_[static_cast<size_t>(hub)]) {
        Effects eff;
        Client(u).Connect(local, NodeId(), eff);
        ApplyClientEffects(u, eff);
      }
      return;
  }
  ApplyClientEffects(user, effects);
}

void WorldImpl::WorkloadSend(int hub, UserId user, double now) {
  ClientSession& c = Client(user);
  if (!c.wants_online() || users_[user.value - 1].background) return;
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const SendChoice choice = ChooseSend(sc_, user, users_[user.value - 1], rng);
  const ConversationId& conv = choice.conv;
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  Effects effects;
  if (choice.typing_first) {
    c.SetTyping(local, conv, true, effects);
    const uint64_t code = (static_cast<uint64_t>(conv.type) << 62) | (conv.low << 31) | conv.high;
    ScheduleHub(hub, now + sc_.typing_lead_ms / 1000, kTypedSend,
                static_cast<uint32_t>(user.value), code);
  } else {
    (void)c.Send(local, conv, WorkloadBody(sc_), effects);
  }
  ApplyClientEffects(user, effects);
}

void WorldImpl::ScheduleRead(int hub, UserId viewer, const ConversationId& conv) {
  if (sc_.read_delay_mean_s <= 0) return;
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  const double now = s4u::Engine::get_clock();
  const uint64_t code = (static_cast<uint64_t>(conv.type) << 62) | (conv.low << 31) | conv.high;
  ScheduleHub(hub, now + ExponentialDraw(sc_.read_delay_mean_s, rng), kReadConv,
              static_cast<uint32_t>(viewer.value), code);
}

void WorldImpl::HandleAtHub(int hub, std::unique_ptr<Packet> p) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  events_++;
  if (p->kind == Packet::Kind::kPush) {
    Effects effects;
    Client(p->user).OnPushNotification(local, p->push, effects);
    ApplyClientEffects(p->user, effects);
    if (sc_.wake_on_push && !Client(p->user).wants_online() && !healed_) {
      ScheduleHub(hub, now, kBackgroundWake, static_cast<uint32_t>(p->user.value),
                  uint64_t{users_[p->user.value - 1].wake_generation} << 1);
    }
    return;
  }
  SessionInfo* found = sessions_.Find(p->session.value);
  if (found == nullptr) {
    if (p->kind == Packet::Kind::kOpenResult) {  // refused
      Effects effects;
      Client(p->user).OnConnectFailed(local, effects);
      ApplyClientEffects(p->user, effects);
    }
    return;
  }
  SessionInfo& s = *found;
  if (p->seq != s.to_client_expected) {
    s.held.Hold(HeldPackets::kToClient, std::move(p));
    return;
  }
  const SessionId session = p->session;
  s.to_client_expected++;
  if (!DeliverToClient(hub, s, *p)) return;
  while (true) {
    // Delivery may have opened or closed sessions: look ours up again each time.
    SessionInfo* again = sessions_.Find(session.value);
    if (again == nullptr) return;
    SessionInfo& si = *again;
    std::unique_ptr<Packet> next = si.held.Take(HeldPackets::kToClient, si.to_client_expected);
    if (!next) return;
    si.to_client_expected++;
    if (!DeliverToClient(hub, si, *next)) return;
  }
}

bool WorldImpl::DeliverToClient(int hub, SessionInfo& s, Packet& p) {
  const double now = s4u::Engine::get_clock();
  const TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(now * 1e6));
  ClientSession& c = Client(s.user);
  Effects effects;
  switch (p.kind) {
    case Packet::Kind::kOpenResult: {
      Digest(now, HubEndpoint(hub), 500, s.user.value, p.session.value);
      const NodeId server = endpoints_[static_cast<size_t>(s.server_ep)].node;
      c.OnConnected(local, p.session, server, effects);
      if (c.connected()) SetOnline(s.user, true);
      UserState& us = users_[s.user.value - 1];
      if (!us.joined_groups && c.connected()) {
        us.joined_groups = true;
        for (GroupId g : us.groups) c.JoinGroup(local, g, effects);
      }
      break;
    }
    case Packet::Kind::kToClient:
      if (c.session() != p.session) return true;
      Digest(now, HubEndpoint(hub), 600 + p.msg.index(), s.user.value, p.seq);
      if (options_.trace) {
        Trace(now, absl::StrCat("u", s.user.value, " <- ",
                                endpoints_[static_cast<size_t>(s.server_ep)].name, " ",
                                DebugString(p.msg)));
      }
      c.OnServerMessage(local, p.msg, effects);
      break;
    case Packet::Kind::kClosed: {
      // The server closed first (or crashed): both ends are done with the session.
      const UserId user = s.user;
      const SessionId session = p.session;
      sessions_.Erase(session.value);
      if (c.session() != session) return false;
      Digest(now, HubEndpoint(hub), 700, user.value, session.value);
      c.OnDisconnected(local, effects);
      SetOnline(user, false);
      ApplyClientEffects(user, effects);
      return false;
    }
    default:
      return true;
  }
  ApplyClientEffects(s.user, effects);
  return true;
}

// ---- host::ClientEnv ---------------------------------------------------------------------------

void WorldImpl::SendToServer(UserId user, Message msg) {
  ClientSession& c = Client(user);
  SessionInfo* info = sessions_.Find(c.session().value);
  if (info == nullptr) return;
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kToServer;
  p->session = c.session();
  p->seq = info->to_server_seq++;
  p->msg = std::move(msg);
  Transmit(HubEndpoint(users_[user.value - 1].hub), info->server_ep, std::move(p));
}

void WorldImpl::OpenSession(UserId user, NodeId target) {
  UserState& us = users_[user.value - 1];
  us.open_started_s = s4u::Engine::get_clock();  // observed only (offline_fetch)
  int server = us.home_server;
  if (target.valid()) {
    server = EndpointOfNode(target) - first_server_ep_;
  } else {
    server = us.region * sc_.servers_per_region +
             static_cast<int>(hub_rngs_[static_cast<size_t>(us.hub)].Uniform(
                 static_cast<uint64_t>(sc_.servers_per_region)));
  }
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kOpen;
  p->session = SessionId(session_next_++);
  p->user = user;
  Transmit(HubEndpoint(us.hub), ServerEndpoint(server), std::move(p));
}

void WorldImpl::CloseSession(UserId user, SessionId session) {
  SessionInfo* info = sessions_.Find(session.value);
  if (info == nullptr) return;
  auto p = std::make_unique<Packet>();
  p->kind = Packet::Kind::kClose;
  p->session = session;
  Transmit(HubEndpoint(users_[user.value - 1].hub), info->server_ep, std::move(p));
}

void WorldImpl::ArmTimer(UserId user, uint64_t timer_id, TimeUs at_us) {
  const double now = s4u::Engine::get_clock();
  const double t = std::max(now, static_cast<double>(at_us - kStartUs) / 1e6);
  ScheduleHub(users_[user.value - 1].hub, t, kClientTimer, static_cast<uint32_t>(user.value),
              timer_id, at_us);
}

}  // namespace chatlab::sim::world
