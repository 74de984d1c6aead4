// chatlab_demo: a few messages, a group and a reconnect pushed through the unchanged core on
// the in-process environment, narrated. It is the quick start's main job until the simulator
// exists: it shows each feature of the seed design working end to end, then checks the
// invariants with the oracle.
//
// Usage: chatlab_demo [--seed N] [--trace]
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>

#include "core/oracle.h"
#include "sim/inproc/cluster.h"

namespace chatlab::inproc {
namespace {

const UserId kAlice(1), kBob(2), kCarol(3);
const GroupId kFriends(10);

const char* Name(UserId u) {
  switch (u.value) {
    case 1: return "alice";
    case 2: return "bob";
    case 3: return "carol";
    default: return "?";
  }
}

class Demo {
 public:
  explicit Demo(uint64_t seed, bool trace) {
    ClusterOptions o;
    o.seed = seed;
    o.servers = 2;
    o.config.client_sync_interval_us = 5 * kUsPerSecond;
    if (trace) o.trace = [](std::string_view line) { std::cout << "    trace " << line << "\n"; };
    cluster_ = std::make_unique<Cluster>(o);
    for (UserId u : {kAlice, kBob, kCarol}) cluster_->AddClient(u);
    std::cout << "ChatLab demo: 2 chat servers (n101, n102), message store, user mapping,\n"
              << "presence and notification services, in-process environment, seed " << seed
              << "\n  repro: chatlab_demo --seed " << seed << "\n\n";
  }

  void Step(const std::string& what) {
    std::cout << "[" << std::fixed << std::setprecision(3) << Seconds() << "s] " << what << "\n";
  }
  double Seconds() const {
    return static_cast<double>(c().now() - c().options().start_time_us) / kUsPerSecond;
  }
  Cluster& c() const { return *cluster_; }

  void ShowView(UserId viewer, const ConversationId& conv) {
    std::cout << "    " << Name(viewer) << " sees " << ToString(conv) << ":";
    for (const ChatMessage& m : c().client(viewer).View(conv)) {
      std::cout << " [" << Name(m.sender) << ": " << m.body << "]";
    }
    std::cout << "\n";
  }

  int Run() {
    const auto ab = ConversationId::Direct(kAlice, kBob);
    const auto group = ConversationId::Group(kFriends);
    const NodeId s1 = c().servers()[0], s2 = c().servers()[1];

    Step("alice connects to n101, bob to n102");
    c().Connect(kAlice, s1);
    c().Connect(kBob, s2);
    c().RunFor(kUsPerSecond);

    Step("alice types, then sends bob two messages (server-to-server forwarding: direct)");
    c().SetTyping(kAlice, ab, true);
    c().RunFor(50 * kUsPerMs);
    std::cout << "    bob sees alice typing: "
              << (c().client(kBob).IsTyping(ab, kAlice, c().now()) ? "yes" : "no") << "\n";
    (void)c().Send(kAlice, ab, "hi bob");
    (void)c().Send(kAlice, ab, "lunch?");
    c().SetTyping(kAlice, ab, false);
    c().RunFor(kUsPerSecond);
    ShowView(kBob, ab);
    const MessageId last = c().client(kBob).LastShown(ab);
    std::cout << "    alice sees bob's delivery receipt up to the last message: "
              << (c().client(kAlice).ReceiptShown(ab, ReceiptKind::kDelivered, kBob) == last
                      ? "yes"
                      : "no")
              << "\n";
    Step("bob reads the chat");
    c().MarkRead(kBob, ab);
    c().RunFor(kUsPerSecond);
    std::cout << "    alice sees bob's read receipt: "
              << (c().client(kAlice).ReceiptShown(ab, ReceiptKind::kRead, kBob) == last ? "yes"
                                                                                         : "no")
              << "\n";

    Step("bob goes offline; alice writes again (push notification to bob's phone)");
    c().Disconnect(kBob);
    c().RunFor(kUsPerSecond);
    const std::optional<PresenceStatus> bob = c().client(kAlice).Presence(kBob);
    std::cout << "    alice sees bob " << (bob.has_value() && !bob->online ? "offline" : "online")
              << "\n";
    (void)c().Send(kAlice, ab, "call me when you land");
    c().RunFor(kUsPerSecond);
    std::cout << "    notifications pushed to bob's phone: "
              << c().client(kBob).stats().notifications << "\n";

    Step("bob reconnects, this time to n101, and catches up from the store");
    c().Connect(kBob, s1);
    c().RunFor(kUsPerSecond);
    ShowView(kBob, ab);

    Step("alice, bob and carol join group g10; carol connects to n102");
    c().Connect(kCarol, s2);
    c().RunFor(kUsPerSecond);
    for (UserId u : {kAlice, kBob, kCarol}) c().JoinGroup(u, kFriends);
    c().RunFor(kUsPerSecond);
    (void)c().Send(kCarol, group, "hello friends");
    (void)c().Send(kAlice, group, "hi carol");
    c().RunFor(kUsPerSecond);
    for (UserId u : {kAlice, kBob, kCarol}) ShowView(u, group);

    Step("carol leaves the group; bob posts");
    c().LeaveGroup(kCarol, kFriends);
    c().RunFor(kUsPerSecond);
    (void)c().Send(kBob, group, "bye carol");
    c().RunFor(kUsPerSecond);
    ShowView(kCarol, group);
    ShowView(kAlice, group);

    Step("n102 crashes while alice sends; bob's server n101 survives; carol reconnects");
    c().CrashServer(s2);
    (void)c().Send(kAlice, group, "anyone there?");
    c().RunFor(10 * kUsPerSecond);
    c().RestartServer(s2);
    c().RunFor(10 * kUsPerSecond);
    ShowView(kBob, group);
    std::cout << "    carol reconnected to " << ToString(c().client(kCarol).server()) << "\n";

    c().oracle().CheckFinal(c().Truth());
    const InvariantCounts& k = c().oracle().counts();
    std::cout << "\nInvariants:";
    ForEachInvariant(k, [](const char* name, uint64_t n) { std::cout << " " << name << "=" << n; });
    std::cout << "\n";
    std::cout << "Messages sent " << c().oracle().sent() << ", acked " << c().oracle().acked()
              << "; node messages " << c().counters().node_messages << ", store appends "
              << c().store().stats().appends << ", trace digest " << std::hex
              << c().trace_digest() << std::dec << "\n";
    if (k.total() != 0) {
      for (const std::string& v : c().oracle().first_violations()) std::cout << "  " << v << "\n";
      return 1;
    }
    std::cout << "All invariants hold.\n";
    return 0;
  }

 private:
  std::unique_ptr<Cluster> cluster_;
};

}  // namespace
}  // namespace chatlab::inproc

int main(int argc, char** argv) {
  uint64_t seed = 1;
  bool trace = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      char* end = nullptr;
      seed = std::strtoull(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0') {
        std::cerr << "chatlab_demo: --seed takes a whole number, got '" << argv[i] << "'\n";
        return 2;
      }
    } else if (std::strcmp(argv[i], "--trace") == 0) {
      trace = true;
    } else {
      std::cerr << "chatlab_demo: unknown option '" << argv[i]
                << "'\nusage: chatlab_demo [--seed N] [--trace]\n";
      return 2;
    }
  }
  return chatlab::inproc::Demo(seed, trace).Run();
}
