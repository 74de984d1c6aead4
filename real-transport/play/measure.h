// What chatplay measures of the cluster besides the history (docs/sim-vs-real.md, "Sim against
// real"): the loopback round trip, for the simulator's network calibration, and what the
// processes counted during a play, read from each chatd's GET /metrics: the
// core nodes' own Stats (the counters the simulator sums for the same names), so that a play's
// results.json carries the per-message counts `chatlab compare` sets beside the simulator's
// (docs/sim-vs-real.md, "Sim against real").
//
// Counters are cumulative since each process started: a play reads them before and after and
// keeps the difference; a process the nemesis kills is read just before (its restart counts
// from zero again).
#ifndef CHATLAB_REAL_TRANSPORT_PLAY_MEASURE_H_
#define CHATLAB_REAL_TRANSPORT_PLAY_MEASURE_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "real-transport/util.h"

namespace chatlab::real {

// One scrape: every sample line of each process's /metrics (name with its labels, as printed,
// to its value), one map per process in cluster order.
struct ServerScrape {
  std::vector<std::map<std::string, double>> processes;
};

// Parses the Prometheus text format chatd prints: "name value" or "name{labels} value" lines,
// comments skipped. InvalidArgument naming the line when one does not parse.
absl::StatusOr<std::map<std::string, double>> ParseMetrics(std::string_view text);

// GET /metrics of every process, one at a time. Unavailable naming the process when one does not
// answer 200.
absl::StatusOr<ServerScrape> ScrapeCluster(const std::vector<HostPort>& cluster);

// The counts a comparison with the simulator needs, summed over the processes over the play,
// under the simulator's results.json names where it has the same count:
//   store_requests          MessageStore::Stats.requests        (sim: metrics.store_requests)
//   store_writes            MessageStore::Stats.messages_stored (sim: metrics.store_writes)
//   forward_requests        ChatServer::Stats.forwards_sent     (sim: forward_batches +
//                           broker_publishes, the inter-server requests a sender makes)
//   notifications           chatd_pushes_total, the notification service's PushToDevice
//                           (sim: metrics.notifications)
//   server_acks             ChatServer::Stats.acks
//   node_messages_sent      node messages POSTed to another process
//   storage_commits         SQLite transactions
//   cpu_seconds             the processes' CPU, user and system (process_cpu_seconds_total;
//                           sim: the nodes' busy_s, summed)
// and two means the calibration reads: commit_ms (one SQLite commit, fsync included) and
// server_ack_ms (SendMessage received to SendAck queued, inside chatd), with the bounds their
// histograms put on their p99 (the smallest bucket bound holding 99%; infinity past the last).
// `complete` is false when a counter went down with no scrape before (a process restarted unseen;
// its earlier counts are lost).
struct ServerCounts {
  std::map<std::string, double> counts;
  double commit_ms = 0;
  double server_ack_ms = 0;
  double commit_p99_ms_at_most = 0;
  double server_ack_p99_ms_at_most = 0;
  bool complete = true;
};

// Counts over a play whose processes may be killed and restarted: Start with a scrape of every
// process, BeforeKill with a scrape of the process about to be killed (what it counted so far is
// carried; its restart counts from zero), End with a scrape of every process. What a process
// counts between its last scrape and the kill (a millisecond) is lost.
class CountsOverPlay {
 public:
  void Start(const ServerScrape& s) { baseline_ = s.processes; }
  // REQUIRES: Start was called; process < the cluster's size.
  void BeforeKill(size_t process, const std::map<std::string, double>& metrics);
  ServerCounts End(const ServerScrape& s) const;
  // A process's counters could not be read before its kill: what it counted is lost.
  void MarkIncomplete() { complete_ = false; }

 private:
  std::vector<std::map<std::string, double>> baseline_;  // per process: its counters at its start
  std::vector<std::map<std::string, double>> carried_;   // per process: counted before kills
  bool complete_ = true;
};

// The network between the clients and the processes: `samples` TCP connects to each process
// (connect() to established, then closed: one SYN / SYN-ACK round trip through the kernel, no
// chatd code on the path), their median and 90th percentile in milliseconds, round trip.
// Unavailable naming the process when a connect fails.
struct RttProbe {
  double p50_ms = 0;
  double p90_ms = 0;
  int samples = 0;
};
absl::StatusOr<RttProbe> ProbeRtt(const std::vector<HostPort>& cluster, int samples);

}  // namespace chatlab::real

#endif  // CHATLAB_REAL_TRANSPORT_PLAY_MEASURE_H_
