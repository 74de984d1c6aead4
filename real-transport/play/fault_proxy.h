// The network nemesis of a real play (docs/sim-vs-real.md, "The nemesis"): one proxy per
// directed link between the processes of a cluster chatplay launched, which does to the node
// messages on that link what the scenario's [faults] do to the simulator's (sim/world/
// transport.cc SendNodeMessage): a partition or a loss drops the message, a duplicate delivers
// it twice, a delay holds it for a uniform time up to delay_ms_max. After the heal, nothing.
//
// How: process i runs with a --cluster list of its own (ClusterView), in which every other
// process j is this proxy's port for the link i -> j. chatd's peer links send one node message
// per HTTP request (POST /node, real-transport/chatd/peer_link.h); the proxy reads each request
// whole, answers it at once (204, as chatd does: node messages are best effort, the sender keeps
// nothing), decides its fate, and forwards the request unchanged (its MAC still holds) to process
// j on connections of its own. So a held message does not hold the link: messages behind it
// overtake it, as the simulator's delayed messages are overtaken.
//
// What it cannot reach: node messages between nodes of one process (chatd passes them in
// memory) and the clients' links. The admission says which of the scenario's node pairs that
// leaves without faults (Admission::network_note).
//
// Threading: one thread of its own; Stats may be read from any thread.
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_FAULT_PROXY_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_FAULT_PROXY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/util.h"

namespace chatlab::real {

// A partition between processes: from start_s until end_s (seconds of the play), messages from
// a process of `a` to one of `b` are dropped, and from `b` to `a` unless one_way.
struct ProcessCut {
  double start_s = 0;
  double end_s = 0;
  std::vector<int> a;  // 1-based process indexes
  std::vector<int> b;
  bool one_way = false;
};

struct FaultProxyOptions {
  int processes = 0;
  double loss = 0;  // the scenario's faults.*, per node message
  double duplicate = 0;
  double delay_probability = 0;
  double delay_ms_max = 0;
  std::vector<ProcessCut> cuts;
  uint64_t seed = 1;
};

class FaultProxy {
 public:
  // What the proxy did, summed over the links.
  struct Stats {
    std::atomic<uint64_t> messages{0};   // requests read from a sender
    std::atomic<uint64_t> forwarded{0};  // requests sent to their receiver (duplicates count)
    std::atomic<uint64_t> cut{0};        // dropped by a partition
    std::atomic<uint64_t> lost{0};       // dropped by faults.loss
    std::atomic<uint64_t> duplicated{0};
    std::atomic<uint64_t> delayed{0};
    std::atomic<uint64_t> forward_failed{0};  // the receiver was down or answered an error
    std::atomic<uint64_t> resent{0};      // sent again on a fresh connection (marked redelivered)
    std::atomic<uint64_t> overflowed{0};  // dropped: kQueueMax messages waited on the link
  };

  // Listens on a free 127.0.0.1 port for every ordered pair of processes. Faults start with
  // Start(); until then every message passes. Unavailable when a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Listen(const FaultProxyOptions& options);
  ~FaultProxy();  // stops the thread; messages held are dropped

  // The --cluster list process `index` (1-based) runs with, given every process's own place:
  // its own place at its index, the proxy port of each link from it elsewhere. The first call
  // sets where the proxy forwards (the places must not change afterwards).
  std::string ClusterView(int index, const std::vector<HostPort>& places);

  // The play's clock starts: the partitions' times count from now, the faults apply.
  void Start();
  // The heal: from now on every message passes untouched.
  void Heal();

  const Stats& stats() const { return *stats_; }

 private:
  class Impl;
  explicit FaultProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Stats* stats_;
};

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_FAULT_PROXY_H_
