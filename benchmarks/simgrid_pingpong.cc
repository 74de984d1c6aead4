// The raw SimGrid baseline: two actors on two hosts bounce a small message through mailboxes.
// Prints communications per wall-clock second, the ceiling any SimGrid-based simulator
// approaches per hop. Usage: simgrid_pingpong [round_trips]
#include <simgrid/s4u.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace s4u = simgrid::s4u;

int main(int argc, char** argv) {
  const long round_trips = argc > 1 ? std::atol(argv[1]) : 200000;
  std::string log = "--log=root.thres:critical";
  char* args[] = {argv[0], log.data()};
  int n = 2;
  s4u::Engine e(&n, args);
  auto* zone = s4u::create_full_zone("zone");
  s4u::Host* a = zone->create_host("a", 1e9);
  s4u::Host* b = zone->create_host("b", 1e9);
  s4u::Link* link = zone->create_link("ab", 1.25e9)->set_latency(1e-4)->seal();
  zone->add_route(a->get_netpoint(), b->get_netpoint(), nullptr, nullptr,
                  {s4u::LinkInRoute(link)}, true);
  zone->seal();
  static int payload = 0;
  s4u::Actor::create("ping", a, [round_trips] {
    s4u::Mailbox* to = s4u::Mailbox::by_name("pong");
    s4u::Mailbox* from = s4u::Mailbox::by_name("ping");
    for (long i = 0; i < round_trips; i++) {
      to->put(&payload, 100);
      from->get<int>();
    }
  });
  s4u::Actor::create("pong", b, [round_trips] {
    s4u::Mailbox* to = s4u::Mailbox::by_name("ping");
    s4u::Mailbox* from = s4u::Mailbox::by_name("pong");
    for (long i = 0; i < round_trips; i++) {
      from->get<int>();
      to->put(&payload, 100);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  e.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("simgrid_pingpong: %ld communications in %.2f s wall = %.0f communications/s\n",
              2 * round_trips, wall, 2.0 * static_cast<double>(round_trips) / wall);
  return 0;
}
