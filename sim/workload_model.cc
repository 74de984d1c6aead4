#include "sim/workload_model.h"

#include <algorithm>
#include <cmath>

#include "absl/container/btree_set.h"

namespace chatlab::sim {

std::vector<PopulationUser> BuildPopulation(const Scenario& s, uint64_t seed) {
  Rng rng(MixSeed(seed, 0x9091));
  const int n = s.users;
  std::vector<PopulationUser> users(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) {
    PopulationUser& u = users[static_cast<size_t>(i)];
    u.region = i % s.regions;
    u.hub = u.region * s.hosts_per_region() +
            static_cast<int>(rng.Uniform(static_cast<uint64_t>(s.hosts_per_region())));
    u.home_server = u.region * s.servers_per_region +
                    static_cast<int>(rng.Uniform(static_cast<uint64_t>(s.servers_per_region)));
    for (int c = 0; c < s.contacts_per_user; c++) {
      uint64_t peer = 1 + rng.Uniform(static_cast<uint64_t>(n));
      if (peer == static_cast<uint64_t>(i + 1)) peer = 1 + (peer % static_cast<uint64_t>(n));
      u.contacts.push_back(UserId(peer));
    }
  }
  for (int g = 0; g < s.groups; g++) {
    const int size = s.group_size_min + static_cast<int>(rng.Uniform(static_cast<uint64_t>(
                                            s.group_size_max - s.group_size_min + 1)));
    absl::btree_set<uint64_t> members;
    while (static_cast<int>(members.size()) < size) {
      members.insert(1 + rng.Uniform(static_cast<uint64_t>(n)));
    }
    for (uint64_t m : members) users[m - 1].groups.push_back(GroupId(static_cast<uint64_t>(g + 1)));
  }
  return users;
}

uint64_t ClientSeed(uint64_t seed, size_t user_index) {
  return MixSeed(seed, 0xc11e47ULL + static_cast<uint64_t>(user_index));
}

uint64_t UserStreamSeed(uint64_t seed, size_t user_index, UserStream stream) {
  return MixSeed(MixSeed(seed, 0x5e7d0000ULL + static_cast<uint64_t>(user_index)),
                 static_cast<uint64_t>(stream));
}

double ExponentialDraw(double mean_s, Rng& rng) {
  return -mean_s * std::log(std::max(rng.UniformDouble(), 1e-12));
}

double NextSendGap(const Scenario& s, Rng& rng) {
  const double mean = 1.0 / s.send_rate_per_user_hz();
  const double u = std::max(rng.UniformDouble(), 1e-12);
  if (s.inter_send == "exponential") return -mean * std::log(u);
  const double xm = mean * (s.pareto_alpha - 1) / s.pareto_alpha;
  return xm / std::pow(u, 1.0 / s.pareto_alpha);
}

double IntroductionAt(const Scenario& s, size_t contact, Rng& rng) {
  const double slot = 0.8 * s.window_start_s() / s.contacts_per_user;
  return slot * (static_cast<double>(contact) + rng.UniformDouble());
}

StartPlan PlanStart(const Scenario& s, Rng& rng) {
  StartPlan plan;
  plan.online = rng.Bernoulli(s.online_fraction);
  plan.at_s =
      plan.online ? rng.UniformDouble() * s.connect_ramp_s : ExponentialDraw(s.offline_mean_s, rng);
  return plan;
}

SendChoice ChooseSend(const Scenario& s, UserId user, const PopulationUser& u, Rng& rng) {
  SendChoice choice;
  if (!u.groups.empty() && rng.Bernoulli(s.group_share)) {
    choice.conv = ConversationId::Group(u.groups[rng.Uniform(u.groups.size())]);
  } else {
    choice.conv = ConversationId::Direct(user, u.contacts[rng.Uniform(u.contacts.size())]);
  }
  choice.typing_first = s.typing_probability > 0 && rng.Bernoulli(s.typing_probability);
  return choice;
}

int ConnectServer(const Scenario& s, const PopulationUser& u, bool connected_before, Rng& rng) {
  if (!connected_before || !rng.Bernoulli(s.reconnect_other_server)) return u.home_server;
  return u.region * s.servers_per_region +
         static_cast<int>(rng.Uniform(static_cast<uint64_t>(s.servers_per_region)));
}

std::string WorkloadBody(const Scenario& s) {
  return std::string(static_cast<size_t>(s.body_bytes), 'x');
}

}  // namespace chatlab::sim
