// The floor under the simulator's uncontended model: what SimGrid alone costs per wake-up of an
// actor blocked on a semaphore that a kernel timer releases. With one actor it is the model's
// scheduler (sim/world/loops.cc, SchedulerLoop: one actor runs every endpoint and is woken once
// per distinct instant); with many, the design before it (an actor per endpoint).
//
// A actors each block on a semaphore; one kernel timer, due at the earliest entry of a heap of
// (time, actor), releases the semaphores of the actors due; a woken actor does no work but arm
// its next wake-up an exponential gap later (mean A / rate, so the whole world wakes `rate`
// times per simulated second). Prints wake-ups per wall-clock second and microseconds per
// wake-up: the protocol, the oracle and the metrics come on top of it.
//
// Usage: simgrid_wakeups [actors] [wake-ups per simulated second] [simulated seconds]
//        (default 1100 actors, 370000/s, 20 s: the seed's load at 1M users and 1000 client hosts)
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>
#include <random>
#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace s4u = simgrid::s4u;

namespace {

struct World {
  std::vector<s4u::SemaphorePtr> bells;
  // (due time, arming order, actor): the earliest on top.
  using Entry = std::tuple<double, uint64_t, int>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  uint64_t seq = 0;
  simgrid::kernel::timer::Timer* timer = nullptr;
  double timer_at = 0;
  uint64_t wakes = 0;

  void Ring() {
    timer = nullptr;
    const double now = s4u::Engine::get_clock();
    while (!heap.empty() && std::get<0>(heap.top()) <= now) {
      bells[static_cast<size_t>(std::get<2>(heap.top()))]->release();
      heap.pop();
    }
    if (!heap.empty()) Arm(std::get<0>(heap.top()));
  }
  void Arm(double at) {
    if (timer != nullptr) {
      if (timer_at <= at) return;
      timer->remove();
    }
    timer_at = at;
    timer = simgrid::kernel::timer::Timer::set(at, [this] { Ring(); });
  }
  void WakeAt(int actor, double at) {
    heap.emplace(at, seq++, actor);
    Arm(at);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int actors = argc > 1 ? std::atoi(argv[1]) : 1100;
  const double rate = argc > 2 ? std::atof(argv[2]) : 370000;
  const double seconds = argc > 3 ? std::atof(argv[3]) : 20;
  if (actors < 1 || rate <= 0 || seconds <= 0) {
    std::fprintf(stderr, "usage: simgrid_wakeups [actors >= 1] [rate > 0] [seconds > 0]\n");
    return 2;
  }
  std::string log = "--log=root.thres:critical";
  char* args[] = {argv[0], log.data()};
  int n = 2;
  s4u::Engine e(&n, args);
  auto* zone = s4u::create_full_zone("zone");
  s4u::Host* host = zone->create_host("h", 1e9);
  zone->seal();
  static World world;
  const double mean_gap = static_cast<double>(actors) / rate;
  for (int a = 0; a < actors; a++) {
    world.bells.push_back(s4u::Semaphore::create(0));
    s4u::Actor::create("a" + std::to_string(a), host, [a, mean_gap, seconds] {
      std::mt19937_64 rng(static_cast<uint64_t>(a) + 1);
      std::exponential_distribution<double> gap(1.0 / mean_gap);
      while (true) {
        const double next = s4u::Engine::get_clock() + gap(rng);
        if (next >= seconds) break;
        world.WakeAt(a, next);
        world.bells[static_cast<size_t>(a)]->acquire();
        world.wakes++;
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  e.run();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  world.bells.clear();  // while the engine lives
  const auto wakes = static_cast<double>(world.wakes);
  std::printf(
      "simgrid_wakeups: %d actors, %.0f wake-ups in %.0f simulated s, %.2f s wall = %.0f "
      "wake-ups/s, %.2f us each\n",
      actors, wakes, seconds, wall, wakes / wall, wall / wakes * 1e6);
  return 0;
}
