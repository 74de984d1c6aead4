// The actors' loops: one per node (timers, finished outputs, then the next packet), one per
// client hub, and the controller (the fault plan, the heal, queue samples, progress); Run builds
// the engine and the platform, starts the actors and collects the results.
#include <xbt/config.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "absl/strings/str_cat.h"
#include "core/store.h"
#include "absl/strings/str_format.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim {
namespace world {

void WorldImpl::ActorLoop(int ep) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  e.mailbox->set_receiver(s4u::Actor::self());
  Bundle* incoming = nullptr;
  std::vector<s4u::CommPtr> comms(1);
  while (true) {
    ReapSends();
    const double now = s4u::Engine::get_clock();
    // Paused ([[faults.pause]]): nothing runs until the resume; the mailbox keeps filling.
    if (const double resume = PausedUntil(ep, now); resume > now) {
      s4u::this_actor::sleep_until(resume);
      continue;
    }
    Turn(ep, now);
    FlushSends();  // may let other actors run (a crash may clear this node's outputs)
    if (now >= end_s_) break;
    if (!comms[0]) comms[0] = e.mailbox->get_async<Bundle>(&incoming);
    const double next = std::min(NextTurn(ep), end_s_);
    const ssize_t got = s4u::Comm::wait_any_for(comms, std::max(0.0, next - now));
    if (got < 0) continue;
    comms[0] = nullptr;
    const std::unique_ptr<Bundle> bundle = Receive(incoming);
    // A bundle that arrives during a pause waits in the node's socket until it resumes; then,
    // as when the pause began between turns, what fell due in the pause (timers, outputs) runs
    // first, and the bundle after it.
    const double arrived = s4u::Engine::get_clock();
    if (const double resume = PausedUntil(ep, arrived); resume > arrived) {
      s4u::this_actor::sleep_until(resume);
      ReapSends();
      Turn(ep, s4u::Engine::get_clock());
      FlushSends();
    }
    for (auto& p : bundle->packets) Handle(ep, std::move(p));
  }
  if (comms[0]) comms[0]->cancel();
  e.mailbox->set_receiver(nullptr);
}

void WorldImpl::Step(int ep) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  current_out_ = &sends_[static_cast<size_t>(ep)];
  while (true) {
    const double now = s4u::Engine::get_clock();
    // Paused: bundles that arrive meanwhile wait in the inbox (not blocked: they do not move
    // the alarm); at the resume, what fell due in the pause (timers, outputs) runs first and the
    // bundles after it, as in ActorLoop, and after the endpoints whose alarms ring then (as an
    // actor's sleep ended after SimGrid's timers).
    if (const double resume = PausedUntil(ep, now); resume > now) {
      e.blocked = false;
      WakeAt(ep, resume, /*last=*/true);
      break;
    }
    Turn(ep, now);
    FlushSends();
    if (now >= end_s_) break;  // done: no alarm again
    if (!e.inbox.empty() && e.inbox.front().at <= now) {
      const std::unique_ptr<Bundle> bundle = PopArrival(e);
      for (auto& p : bundle->packets) Handle(ep, std::move(p));
      continue;
    }
    double next = std::min(NextTurn(ep), end_s_);
    if (!e.inbox.empty()) next = std::min(next, e.inbox.front().at);
    e.blocked = true;
    WakeAt(ep, std::max(next, now));
    break;
  }
  current_out_ = nullptr;
}

void WorldImpl::SchedulerLoop() {
  sched_bell_ = s4u::Semaphore::create(0);
  // Each endpoint starts, then runs until it waits, in the order their actors would start.
  for (int ep = 0; ep < hub_ep0_; ep++) {
    current_out_ = &sends_[static_cast<size_t>(ep)];
    NodeStart(ep);
    Step(ep);
  }
  for (int h = 0; h < hubs_; h++) {
    current_out_ = &sends_[static_cast<size_t>(HubEndpoint(h))];
    HubStart(h);
    Step(HubEndpoint(h));
  }
  // Rounds, as SimGrid ran the endpoints' own actors: at an instant, the alarms set before the
  // round began run in the heap's order (a paused endpoint's resume after the others: it was a
  // sleep, which SimGrid ended after its timers); an alarm set during the round for this very
  // instant (deferred here) runs in the next round at the same instant, after the controller,
  // as a kernel timer set for now rang after the actors already running.
  while (true) {
    const double now = s4u::Engine::get_clock();
    if (!wake_heap_.empty() && wake_heap_.front().at <= now) {
      const Alarm top = wake_heap_.front();
      Endpoint& e = endpoints_[static_cast<size_t>(top.ep)];
      wake_heap_.front() = wake_heap_.back();
      wake_heap_.pop_back();
      if (!wake_heap_.empty()) WakeSiftDown(0);
      if ((top.seq & ~kLastAlarm) >= round_first_seq_) {
        e.wake_pos = kDeferredAlarm;
        deferred_alarms_.push_back(top);
        continue;
      }
      e.wake_pos = kNoAlarm;
      e.blocked = false;
      Step(top.ep);
      continue;
    }
    // Nothing more due in this round: wait for the next alarm, or a round at this instant.
    for (const Alarm& a : deferred_alarms_) PushAlarm(a);
    deferred_alarms_.clear();
    if (wake_heap_.empty()) break;
    const double at = std::max(wake_heap_.front().at, now);
    sched_waiting_ = true;
    wake_timer_at_ = at;
    wake_timer_ = simgrid::kernel::timer::Timer::set(at, [this] { RingBell(); });
    sched_bell_->acquire();
    round_first_seq_ = wake_seq_;
  }
  sched_bell_ = nullptr;
}

void WorldImpl::NodeStart(int ep) {
  WindowMark(ep, 0);
  if (ep < first_server_ep_) {
    Effects effects;
    NodeAt(ep)->Start(LocalNow(endpoints_[static_cast<size_t>(ep)], 0), effects);
    ApplyNodeEffects(ep, effects);
  } else {
    RestartServer(ep - first_server_ep_);
  }
}

void WorldImpl::Turn(int ep, double now) {
  if (!IsNode(ep)) {
    const int hub = ep - hub_ep0_;
    Endpoint& e = endpoints_[static_cast<size_t>(ep)];
    while (auto due = e.timers.PopDue(now)) FireHubEvent(hub, due->second);
    return;
  }
  NodeTurn(ep, now);
}

double WorldImpl::NextTurn(int ep) const {
  const Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  double next = e.timers.NextOr(end_s_);
  if (!e.outputs.empty()) next = std::min(next, e.outputs.front().at);
  return next;
}

void WorldImpl::Handle(int ep, std::unique_ptr<Packet> p) {
  if (IsNode(ep)) {
    HandleAtNode(ep, std::move(p));
  } else {
    HandleAtHub(ep - hub_ep0_, std::move(p));
  }
}

void WorldImpl::NodeTurn(int ep, double now) {
  Endpoint& e = endpoints_[static_cast<size_t>(ep)];
  const auto slot = static_cast<size_t>(ep);
  WindowMark(ep, now);  // before the node's timers change its counters
  while (auto due = e.timers.PopDue(now)) {
    const TimerEntry& t = due->second;
    if (t.kind == kDeferredSend) {
      auto it = deferred_.find(t.id);
      std::unique_ptr<Packet> p = std::move(it->second);
      deferred_.erase(it);
      const int to = static_cast<int>(t.index);
      Transmit(ep, to, std::move(p));
      continue;
    }
    if (t.kind == kHistoryLoaded) {
      auto it = history_answers_.find(t.id);
      auto [token, rows] = std::move(it->second);
      history_answers_.erase(it);
      // The store that asked died meanwhile: its successor never asked.
      if (t.index != Incarnation32(nodes_.incarnation(slot))) continue;
      Effects effects;
      static_cast<MessageStore*>(NodeAt(ep))
          ->OnHistoryLoaded(LocalNow(e, now), token, std::move(rows), effects);
      Digest(now, ep, 101, token, 0);
      ApplyNodeEffects(ep, effects);
      continue;
    }
    if (t.kind == kDedupLoaded) {
      auto it = dedup_answers_.find(t.id);
      auto [token, found] = std::move(it->second);
      dedup_answers_.erase(it);
      if (t.index != Incarnation32(nodes_.incarnation(slot))) continue;  // as for kHistoryLoaded
      Effects effects;
      static_cast<MessageStore*>(NodeAt(ep))
          ->OnDedupLoaded(LocalNow(e, now), token, std::move(found), effects);
      Digest(now, ep, 102, token, 0);
      // The answer may store the message: its reply waits for the disk, as a message's does
      // (the look-up's CPU is not charged).
      QueueNodeEffects(ep, effects, std::max(now, e.busy_until_s));
      continue;
    }
    if (t.index != Incarnation32(nodes_.incarnation(slot))) continue;
    Node* node = NodeAt(ep);
    if (node == nullptr) continue;
    Effects effects;
    node->OnTimer(std::max(LocalNow(e, now), t.local_at), t.id, effects);
    Digest(now, ep, 100, t.id, 0);
    ApplyNodeEffects(ep, effects);
  }
  while (!e.outputs.empty() && e.outputs.front().at <= now) {
    Endpoint::Output o = std::move(e.outputs.front());
    e.outputs.pop_front();
    if (o.incarnation == nodes_.incarnation(slot)) ApplyNodeEffects(ep, o.effects);
  }
}

void WorldImpl::HubStart(int hub) {
  Rng& rng = hub_rngs_[static_cast<size_t>(hub)];
  for (UserId u : hub_users_[static_cast<size_t>(hub)]) {
    const uint32_t idx = static_cast<uint32_t>(u.value);
    const StartPlan start = PlanStart(sc_, rng);
    ScheduleHub(hub, start.at_s, kGoOnline, idx, 0);
    if (!start.online) {
      // A device that starts offline is in an offline period from the start, and its periodic
      // background sync runs as after kGoOffline (without it, pushes woke such a device but
      // nothing else did until the user came back, and its waits counted from the first push).
      UserState& us = users_[u.value - 1];
      us.last_disconnect_s = 0;
      if (sc_.background_sync_s > 0) {
        us.wake_generation++;
        ScheduleHub(hub, sc_.background_sync_s * rng.UniformDouble(), kBackgroundWake, idx,
                    (uint64_t{us.wake_generation} << 1) | 1);
      }
    }
    if (sc_.send_rate_per_user_hz() > 0) {
      ScheduleHub(hub, sc_.send_start_s + NextSendGap(sc_, rng), kWorkloadSend, idx, 0);
    }
    if (sc_.introduce_contacts) ScheduleHub(hub, IntroductionAt(sc_, 0, rng), kIntroduce, idx, 0);
  }
  ScheduleHub(hub, sc_.duration_s, kHeal, 0, 0);
}

void WorldImpl::ControllerLoop() {
  std::vector<std::pair<double, std::function<void()>>> plan;
  for (const CrashSpec& c : sc_.crashes) {
    const int server = CrashServerIndex(c);
    if (server >= 0) {
      plan.emplace_back(c.at_s, [this, server] { CrashServer(server); });
      if (c.restart_s >= 0) {
        plan.emplace_back(c.restart_s, [this, server] { RestartServer(server); });
      }
      continue;
    }
    // A slot name: "store", "store1" (a shard), "writer", ...
    const int ep = ServiceEndpoint(CrashNode(c));
    assert(ep >= 0);  // Validate accepted only these names (ServiceNodeNames)
    const bool torn = c.torn_write;
    plan.emplace_back(c.at_s, [this, ep, torn] { CrashService(ep, torn); });
    if (c.restart_s >= 0) plan.emplace_back(c.restart_s, [this, ep] { RestartService(ep); });
  }
  // Pauses act in the node's own loop (PausedUntil); the plan only counts and traces them.
  for (const PauseSpec& p : sc_.pauses) {
    const double end = PauseEnd(sc_, p);
    if (end <= p.at_s) continue;
    const std::string node = p.node;
    plan.emplace_back(p.at_s, [this, node] {
      measures_.faults["pause"]++;
      if (options_.trace) Trace(s4u::Engine::get_clock(), absl::StrCat(node, " PAUSE"));
    });
    plan.emplace_back(end, [this, node] {
      measures_.faults["resume"]++;
      if (options_.trace) Trace(s4u::Engine::get_clock(), absl::StrCat(node, " RESUME"));
    });
  }
  auto wall_now = [this] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  };
  plan.emplace_back(std::min(sc_.send_start_s, sc_.duration_s),
                    [this, wall_now] { wall_at_load_start_s_ = wall_now(); });
  plan.emplace_back(sc_.duration_s, [this, wall_now] {
    wall_at_load_end_s_ = wall_now();
    healed_ = true;
    for (int ep = 0; ep < first_server_ep_; ep++) RestartService(ep);
    for (int s = 0; s < servers_; s++) RestartServer(s);
  });
  std::stable_sort(plan.begin(), plan.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  const double tick = std::max(end_s_ / 100, 0.5);
  double next_progress = tick;
  const double sample_every = sc_.sample_interval_ms / 1000;
  double next_sample = sample_every > 0 ? sample_every : end_s_;
  Rng sample_rng(MixSeed(seed_, 0x5a3b1e));
  size_t i = 0;
  while (true) {
    ReapSends();
    const double now = s4u::Engine::get_clock();
    while (i < plan.size() && plan[i].first <= now) plan[i++].second();
    if (sample_every > 0 && now >= next_sample) {
      SampleQueues();
      // Jittered sampling instants, so samples do not lock onto periodic timers.
      next_sample += sample_every * (0.5 + sample_rng.UniformDouble());
      if (next_sample >= sc_.duration_s) next_sample = end_s_;
    }
    if (now >= next_progress) {
      next_progress += tick;
      if (!options_.progress) continue;
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                        wall_start_).count();
      if (wall > 2) {
        const int done = static_cast<int>(40 * now / end_s_);
        std::fprintf(stderr, "\r[%s%s] %5.1f%%  sim %.1f/%.1f s  wall %.1f s",
                     std::string(static_cast<size_t>(done), '#').c_str(),
                     std::string(static_cast<size_t>(40 - done), '.').c_str(),
                     100 * now / end_s_, now, end_s_, wall);
      }
    }
    FlushSends();
    if (now >= end_s_) break;
    double next = std::min({end_s_, next_progress, next_sample});
    if (i < plan.size()) next = std::min(next, plan[i].first);
    s4u::this_actor::sleep_until(next);
  }
  if (options_.progress) std::fprintf(stderr, "\n");
}

RunResult WorldImpl::Run() {
  wall_start_ = std::chrono::steady_clock::now();
  std::vector<std::string> args{"chatlab", "--log=root.thres:critical"};
  uncontended_ = sc_.network_model == "uncontended";
  std::string model = sc_.network_model == "textbook" || uncontended_ ? "CM02" : sc_.network_model;
  args.push_back("--cfg=network/model:" + model);
  double lat = sc_.latency_factor, bw = sc_.bandwidth_factor;
  if (sc_.network_model == "textbook" || uncontended_) {
    lat = lat < 0 ? 1 : lat;
    bw = bw < 0 ? 1 : bw;
  }
  if (lat >= 0) args.push_back(absl::StrCat("--cfg=network/latency-factor:", lat));
  if (bw >= 0) args.push_back(absl::StrCat("--cfg=network/bandwidth-factor:", bw));
  for (const std::string& c : options_.simgrid_config) args.push_back("--cfg=" + c);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  s4u::Engine engine(&argc, argv.data());
  BuildPlatform();
  BuildPopulation();
  PlanPauses();
  const double eff_lat = simgrid::config::get_value<double>("network/latency-factor");
  const double eff_bw = simgrid::config::get_value<double>("network/bandwidth-factor");
  network_model_ = absl::StrFormat("%s (network/model %s, latency factor %g, bandwidth factor %g)",
                                   sc_.network_model, model, eff_lat, eff_bw);
  if (uncontended_) {
    // The timers are set from actors' code (WakeAt): SimGrid must run one actor at a time.
    if (simgrid::config::get_value<int>("contexts/nthreads") > 1) {
      std::fprintf(stderr, "chatlab: network.model = uncontended needs SimGrid's "
                           "contexts/nthreads = 1\n");
      std::exit(2);
    }
    latency_factor_ = eff_lat;
    bandwidth_factor_ = eff_bw;
    tcp_gamma_ = simgrid::config::get_value<double>("network/TCP-gamma");
    network_model_ = absl::StrFormat(
        "uncontended (latency + size / bandwidth along the route, no sharing, no SimGrid "
        "communications; latency factor %g, bandwidth factor %g)",
        eff_lat, eff_bw);
  }
  // Services first, then chat servers.
  for (int ep = 0; ep < first_server_ep_; ep++) nodes_.Create(static_cast<size_t>(ep));
  if (uncontended_) {
    // One actor runs every endpoint (SchedulerLoop): no context switch per wake-up.
    s4u::Actor::create("endpoints", endpoints_[static_cast<size_t>(store_eps_[0])].host,
                       [this] { SchedulerLoop(); });
  } else {
    for (int ep = 0; ep < hub_ep0_; ep++) {
      s4u::Actor::create(endpoints_[ep].name, endpoints_[ep].host, [this, ep] {
        BindOutbox(static_cast<size_t>(ep));
        NodeStart(ep);
        ActorLoop(ep);
      });
    }
    for (int h = 0; h < hubs_; h++) {
      s4u::Actor::create(endpoints_[HubEndpoint(h)].name, endpoints_[HubEndpoint(h)].host,
                         [this, h] {
                           BindOutbox(static_cast<size_t>(HubEndpoint(h)));
                           HubStart(h);
                           ActorLoop(HubEndpoint(h));
                         });
    }
  }
  s4u::Actor::create("controller", endpoints_[static_cast<size_t>(store_eps_[0])].host, [this] {
    BindOutbox(sends_.size() - 1);
    ControllerLoop();
  });
  engine.run();
  // Comms still in flight when the run ended: drop them while the engine lives, and free the
  // packets nobody received.
  if (wake_timer_ != nullptr) wake_timer_->remove();
  wake_timer_ = nullptr;
  wake_heap_.clear();
  for (Endpoint& e : endpoints_) e.inbox.clear();
  sends_.clear();
  for (Bundle* b : in_flight_) delete b;
  in_flight_.clear();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  RunResult r = Collect(wall);
  r.network_model = network_model_;
  return r;
}

}  // namespace world

RunResult RunSimulation(const RunOptions& options) {
  world::WorldImpl w(options);
  return w.Run();
}

}  // namespace chatlab::sim
