// The platform: hosts, links and routes, the population of users and groups, node clocks.
#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "sim/world/world_impl.h"

namespace chatlab::sim::world {

// ---- Construction ----------------------------------------------------------------------------

WorldImpl::WorldImpl(const RunOptions& o)
    : options_(o),
      sc_(o.scenario),
      seed_(o.seed),
      rng_(MixSeed(o.seed, 0xfa017)),
      deployment_(host::Deployment::Options{o.scenario.servers(), o.scenario.protocol}),
      nodes_(deployment_, o.seed) {
  servers_ = sc_.servers();
  hubs_ = sc_.client_hosts();
  first_server_ep_ = deployment_.first_server();
  hub_ep0_ = static_cast<int>(deployment_.size());
  measures_.window.start_s = sc_.window_start_s();
  measures_.window.end_s = sc_.window_end_s();
  store_eps_ = deployment_.store_slots();
  writer_ep_ = deployment_.IndexOf(host::Role::kWriter);
  presence_ep_ = deployment_.IndexOf(host::Role::kPresence);
  end_s_ = sc_.duration_s + sc_.quiet_s;
  endpoints_.resize(static_cast<size_t>(hub_ep0_ + hubs_));
  sends_ = std::vector<Outbox>(endpoints_.size() + 1);
  const double fsync_s = sc_.fsync_ms / 1000;
  for (int i = 0; i < hub_ep0_; i++) {
    const host::NodeSlot& slot = deployment_.slot(static_cast<size_t>(i));
    Endpoint& e = endpoints_[static_cast<size_t>(i)];
    e.name = slot.name;
    e.node = slot.id;
    e.region = slot.server_index < 0 ? sc_.services_region
                                     : slot.server_index / sc_.servers_per_region;
    if (slot.service != nullptr && slot.service->durable) {
      // A store shard with a bounded tail cache reads its history back from its disk, and one
      // that looks resends up reads its dedup keys there.
      const bool index = slot.role == host::Role::kStore &&
                         (sc_.protocol.store_tail_cache > 0 || sc_.protocol.store_dedup_lookup);
      // Only a restart reads the records back, and only a planned crash restarts a service.
      bool crashes = false;
      for (const CrashSpec& c : sc_.crashes) {
        crashes = crashes || (CrashServerIndex(c) < 0 && ServiceEndpoint(CrashNode(c)) == i);
      }
      e.disk = std::make_unique<SimDisk>(fsync_s, index, /*keep_records=*/crashes);
    }
  }
  for (int h = 0; h < hubs_; h++) {
    Endpoint& e = endpoints_[static_cast<size_t>(hub_ep0_ + h)];
    e.name = absl::StrCat("clients", h);
    e.region = h / sc_.hosts_per_region();
  }
  for (const ClockSpec& c : sc_.clocks) {
    for (int ep = 0; ep < hub_ep0_; ep++) {
      if (!Selects(c.node, ep)) continue;
      Clock& k = endpoints_[static_cast<size_t>(ep)].clock;
      k.skew_us = static_cast<TimeUs>(std::llround(c.skew_ms * 1000));
      k.drift = c.drift_ppm * 1e-6;
      k.step_at_s = c.step_at_s;
      k.step_us = static_cast<TimeUs>(std::llround(c.step_ms * 1000));
    }
  }
  server_sessions_.resize(static_cast<size_t>(servers_));
  torn_pending_.assign(static_cast<size_t>(first_server_ep_), false);
}

bool WorldImpl::Selects(const std::string& sel, int ep) const {
  if (ep >= hub_ep0_) return sel == "clients" || sel == absl::StrCat("region:", endpoints_[ep].region);
  const host::NodeSlot& slot = deployment_.slot(static_cast<size_t>(ep));
  if (slot.server_index < 0) return sel == "services" || sel == slot.name;
  return sel == absl::StrCat("server:", slot.server_index) ||
         sel == absl::StrCat("region:", endpoints_[ep].region);
}

void WorldImpl::BuildPlatform() {
  auto* zone = s4u::create_full_zone("world");
  // Nodes' CPU is modelled per input (HandleAtNode, sim/world/cost.h), not by SimGrid
  // executions; a host's speed only has to be positive.
  const double speed = 1e9;
  std::vector<s4u::Link*> access(endpoints_.size());
  for (size_t i = 0; i < endpoints_.size(); i++) {
    Endpoint& e = endpoints_[i];
    e.host = zone->create_host(e.name, speed);
    const bool hub = static_cast<int>(i) >= hub_ep0_;
    e.access_latency_s = (hub ? sc_.client_latency_ms : sc_.access_latency_ms) / 1000;
    e.access_bandwidth_Bps =
        (hub ? sc_.client_bandwidth_mbps : sc_.access_bandwidth_mbps) * 1e6 / 8;
    // Without SimGrid communications (network.model = "uncontended"), no links or routes: the
    // transit time is TransitTime's, from the same figures.
    if (uncontended_) continue;
    access[i] = zone->create_link(e.name + "-link", e.access_bandwidth_Bps)
                    ->set_latency(e.access_latency_s)
                    ->seal();
  }
  wan_latency_s_ = sc_.inter_region_latency_ms / 1000;
  wan_bandwidth_Bps_ = sc_.inter_region_bandwidth_mbps * 1e6 / 8;
  std::map<std::pair<int, int>, s4u::Link*> wan;
  for (int a = 0; a < sc_.regions && !uncontended_; a++) {
    for (int b = a + 1; b < sc_.regions; b++) {
      wan[{a, b}] = zone->create_link(absl::StrCat("wan-", a, "-", b),
                                      sc_.inter_region_bandwidth_mbps * 1e6 / 8)
                        ->set_latency(sc_.inter_region_latency_ms / 1000)
                        ->seal();
    }
  }
  // Every pair of endpoints, client hubs included although they never talk to each other: leaving
  // those routes out saved 70 bytes per user at 300k users but made the run 1.5 times slower in
  // SimGrid, with the same results.
  for (size_t i = 0; i < endpoints_.size() && !uncontended_; i++) {
    for (size_t j = i + 1; j < endpoints_.size(); j++) {
      std::vector<s4u::LinkInRoute> links{s4u::LinkInRoute(access[i])};
      const int ra = endpoints_[i].region, rb = endpoints_[j].region;
      if (ra != rb) links.emplace_back(wan[{std::min(ra, rb), std::max(ra, rb)}]);
      links.emplace_back(access[j]);
      zone->add_route(endpoints_[i].host->get_netpoint(), endpoints_[j].host->get_netpoint(),
                      nullptr, nullptr, links, true);
    }
  }
  zone->seal();
  for (Endpoint& e : endpoints_) e.mailbox = s4u::Mailbox::by_name(e.name);
}

void WorldImpl::BuildPopulation() {
  // Who the users are is the workload model's (sim/workload_model.h), shared with the real
  // player; the hubs, their observers and the clients are the simulator's.
  const std::vector<PopulationUser> population = sim::BuildPopulation(sc_, seed_);
  users_.resize(population.size());
  hub_users_.resize(static_cast<size_t>(hubs_));
  for (int h = 0; h < hubs_; h++) {
    observers_.push_back(std::make_unique<HubObserver>(this, h));
    hub_rngs_.emplace_back(MixSeed(seed_, 0x40b0 + static_cast<uint64_t>(h)));
  }
  // One protocol config for every client (a copy each was a third of a client's memory).
  const auto config = std::make_shared<const ProtocolConfig>(sc_.protocol);
  for (size_t i = 0; i < population.size(); i++) {
    const PopulationUser& p = population[i];
    UserState& u = users_[i];
    static_cast<PopulationUser&>(u) = p;
    hub_users_[static_cast<size_t>(u.hub)].push_back(UserId(static_cast<uint64_t>(i + 1)));
    ClientSession::Options co;
    co.user = UserId(static_cast<uint64_t>(i + 1));
    co.shared_config = config;
    co.shared_stats = client_stats_;
    co.seed = ClientSeed(seed_, i);
    co.observer = observers_[static_cast<size_t>(u.hub)].get();
    clients_.emplace_back(co);
  }
}

// ---- Clocks ------------------------------------------------------------------------------------

TimeUs WorldImpl::LocalNow(const Endpoint& e, double t) const {
  TimeUs local = kStartUs + static_cast<TimeUs>(std::llround(t * 1e6 * (1 + e.clock.drift)));
  local += e.clock.skew_us;
  if (e.clock.step_at_s >= 0 && t >= e.clock.step_at_s) local += e.clock.step_us;
  return local;
}

double WorldImpl::SimTimeOf(const Endpoint& e, TimeUs at, double now) const {
  TimeUs base = at - kStartUs - e.clock.skew_us;
  if (e.clock.step_at_s >= 0 && now >= e.clock.step_at_s) base -= e.clock.step_us;
  const double t = static_cast<double>(base) / 1e6 / (1 + e.clock.drift);
  return std::max(t, now);
}

}  // namespace chatlab::sim::world
