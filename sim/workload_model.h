// The workload's decisions, shared by every environment that plays a scenario: the SimGrid
// simulator (sim/world/workload.cc) and the real player (real-transport/play/,
// docs/sim-vs-real.md).
//
// A scenario's [workload] says who the users are (contacts, groups, home chat server) and by
// which laws they act (inter-send times, 1:1 or group, typing first, read delays, session and
// offline lengths, reconnecting elsewhere). These are pure functions of the scenario, the run's
// seed and a seeded Rng: no clock, no SimGrid, no socket. An environment decides only *when*
// the draws happen (its own timers) and how an action reaches the core (ClientSession calls).
//
// Each function draws from its Rng in a fixed order; the simulator's golden trace
// (tests/sim/golden/tiny.trace) pins that order, so a change here that moves a draw shows there.
// Ids are the population's: users UserId(1..users), groups GroupId(1..groups). An environment
// with other ids (chatd's accounts) maps them.
#ifndef CHATLAB_SIM_WORKLOAD_MODEL_H_
#define CHATLAB_SIM_WORKLOAD_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/types.h"
#include "sim/scenario.h"

namespace chatlab::sim {

// One user of the population.
struct PopulationUser {
  int region = 0;
  int hub = 0;          // the simulator's client host; a real play has none
  int home_server = 0;  // chat server index in [0, servers()): where the user connects first
  std::vector<UserId> contacts;  // contacts_per_user draws (repeats possible), never the user
  std::vector<GroupId> groups;   // the groups the user joins on first connect, ascending
};

// The population of s under seed: users[i] is UserId(i + 1). Deterministic.
// REQUIRES: Validate(s) is ok.
std::vector<PopulationUser> BuildPopulation(const Scenario& s, uint64_t seed);

// The seed of user index i's ClientSession.
uint64_t ClientSeed(uint64_t seed, size_t user_index);

// Per-user draw streams. The simulator draws every user of a client host from the host's one
// Rng, in simulated-event order, which is deterministic there. A real play's event order is
// not, so it gives each user one Rng per stream: a user's session schedule and its send
// schedule then depend on the seed alone, not on when messages happened to arrive.
enum class UserStream : uint64_t {
  kChurn = 1,  // PlanStart, ConnectServer, session lengths and offline gaps
  kSend = 2,   // NextSendGap, ChooseSend, IntroductionAt
  kOther = 3,  // read delays, and the environment's own picks (any server)
};
uint64_t UserStreamSeed(uint64_t seed, size_t user_index, UserStream stream);

// An exponential draw with this mean (session lengths, offline gaps, read delays).
double ExponentialDraw(double mean_s, Rng& rng);

// The gap to a user's next send: Pareto (workload.pareto_alpha) or exponential, with mean
// 1 / send_rate_per_user_hz(). REQUIRES: send_rate_per_user_hz() > 0.
double NextSendGap(const Scenario& s, Rng& rng);

// When (seconds from the start) a user sends its introduction to contact number `contact`:
// slot `contact` of contacts_per_user equal slots over the first 80% of the warm-up, at a random
// point of its slot (so users do not send in lockstep).
double IntroductionAt(const Scenario& s, size_t contact, Rng& rng);

// How a user starts: online (connecting at a uniform point of the connect ramp) or offline
// (coming online after an exponential offline gap).
struct StartPlan {
  bool online = false;
  double at_s = 0;  // when the user first goes online
};
StartPlan PlanStart(const Scenario& s, Rng& rng);

// One workload send: the conversation (a group the user is in with probability group_share,
// else a contact) and whether the user types first (typing_probability) and sends
// typing_lead_ms later.
struct SendChoice {
  ConversationId conv;
  bool typing_first = false;
};
SendChoice ChooseSend(const Scenario& s, UserId user, const PopulationUser& u, Rng& rng);

// The chat server index a user going online goes to: its home server, or, on a reconnect
// (connected_before) with probability reconnect_other_server, a uniform server of its region.
// (The simulator's connected_before: the client connected before; a real play's: the workload
// took the user online before, which keeps the draw independent of connection timing.)
int ConnectServer(const Scenario& s, const PopulationUser& u, bool connected_before, Rng& rng);

// The body of every workload message: body_bytes bytes.
std::string WorkloadBody(const Scenario& s);

}  // namespace chatlab::sim

#endif  // CHATLAB_SIM_WORKLOAD_MODEL_H_
