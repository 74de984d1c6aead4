// The analyses of the traffic experiments: db-writes, forwarding, capacity (groups: analyses_groups.cc).
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/store.h"
#include "sim/lab/check_builder.h"
#include "sim/lab/compare.h"
#include "sim/lab/plan.h"

namespace chatlab::sim::lab::analyses_internal {

// Little's law is checked on queues holding at least this many items on average.
constexpr double kLittleMin = 0.2;

// Bulk service: a writer that flushes T after the first waiting item (or at b items).
namespace {

// P(N = n) for N ~ Poisson(x), computed in logs (x up to thousands).
double PoissonPmf(int n, double x) {
  if (x <= 0) return n == 0 ? 1 : 0;
  return std::exp(-x + n * std::log(x) - std::lgamma(n + 1.0));
}

// A batch opens with its first item, and closes at T or when b items wait, whichever is first;
// later items arrive Poisson(lambda). Its mean size is 1 + E[min(N(T), b - 1)].
double BatchMeanSize(double lambda, double t, double b) {
  const int cap = static_cast<int>(b) - 1;
  double below = 0, p_below = 0;  // E[N; N < cap], P(N < cap)
  for (int n = 0; n < cap; n++) {
    const double p = PoissonPmf(n, lambda * t);
    below += n * p;
    p_below += p;
  }
  return 1 + below + cap * (1 - p_below);
}

// The summed wait of a batch's items: int_0^tau (1 + N(u)) du with tau the close, whose mean is
// int_0^T E[(1 + N(u)) 1{N(u) <= b - 2}] du (the batch is open at u while N(u) < b - 1).
double BatchTotalWait(double lambda, double t, double b) {
  const int cap = static_cast<int>(b) - 1;
  return t * analyses_internal::MeanOverUniform(0, t, [&](double u) {
    double sum = 0;
    for (int n = 0; n < cap; n++) sum += (1 + n) * PoissonPmf(n, lambda * u);
    return sum;
  });
}

}  // namespace

// What batching costs a user, per load: the ack leaves when the writer takes the message, the
// delivery only after the batch commits. Batched at its longest window and largest batch
// against direct writes, paired by seed (every point runs the same seeds).
void DbWritesLatencyCost(const SweepData& d, Analysis& a) {
  std::map<int, std::pair<int, int>> by_users;  // users -> (direct point, slowest batched)
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    auto& [direct, batched] = by_users.try_emplace(s.users, -1, -1).first->second;
    if (s.protocol.write_path != WritePath::kBatched) {
      if (direct < 0) direct = static_cast<int>(i);
      continue;
    }
    const auto key = [&](int j) {
      const Scenario& o = d.scenarios[static_cast<size_t>(j)];
      return std::make_pair(o.protocol.writer_flush_window_us, o.protocol.writer_batch_max);
    };
    if (batched < 0 || key(static_cast<int>(i)) > key(batched)) batched = static_cast<int>(i);
  }
  const std::string shown = "metrics.end_to_end_latency.p50_ms", ack = "metrics.ack_latency.p50_ms";
  for (const auto& [users, pts] : by_users) {
    if (pts.first < 0 || pts.second < 0) continue;
    const auto b = static_cast<size_t>(pts.second), dp = static_cast<size_t>(pts.first);
    const Paired ps = PairedDiff(d.BySeed(b, shown), d.BySeed(dp, shown));
    const Paired pa = PairedDiff(d.BySeed(b, ack), d.BySeed(dp, ack));
    const Scenario& s = d.scenarios[b];
    a.headline.push_back(absl::StrFormat(
        "At %d users, batching (up to %d a batch, %d us window) changes the p50 ack by %s but "
        "delays delivery until the batch commits: p50 send to shown %s against direct writes.",
        users, s.protocol.writer_batch_max, s.protocol.writer_flush_window_us,
        PairedText(pa, "ms"), PairedText(ps, "ms")));
  }
}

void DbWrites(const SweepData& d, Analysis& a) {
  a.note =
      "Batch writer as a bulk-service queue: the flush timer starts with the first waiting item, "
      "and a batch closes at T or when b items wait, whichever comes first. With Poisson "
      "arrivals at rate lambda the batch is open at time u after its first item while fewer than "
      "b - 1 more have come, so a batch holds B = 1 + E[min(N(T), b - 1)] items and its items "
      "wait E[int_0^T (1 + N(u)) 1{N(u) <= b - 2} du] in total, N(u) ~ Poisson(lambda u). "
      "Far below b this is the timer's B = 1 + lambda T and W = (T + lambda T^2/2) / (1 + lambda "
      "T); far above, the size rule's B = b and W = (b - 1) / (2 lambda). The store's time to "
      "take a batch is not in the wait. Little's "
      "law L = lambda*W is checked on the writer's queue and on the store's CPU queue, with L "
      "sampled at jittered instants and lambda*W from per-message timings. Checks on queues "
      "holding under 0.2 items on average are skipped (a few thousand samples cannot estimate "
      "so small a mean within 10%). Store requests: "
      "each message in the window is one append (direct) or 1/B of a batch (batched), and one "
      "delivery-receipt write in both designs; reads are counted as measured.";
  std::vector<int> direct_checked;  // users counts whose direct point was checked
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.protocol.write_path != WritePath::kBatched) {
      // Batch size and window do not apply to direct writes: those points repeat one run per
      // load, and its checks are made once.
      if (std::find(direct_checked.begin(), direct_checked.end(), s.users) !=
          direct_checked.end()) {
        continue;
      }
      direct_checked.push_back(s.users);
    }
    if (s.protocol.write_path == WritePath::kBatched) {
      // One model for every batched point: a batch closes at min(T, the (b-1)-th arrival
      // after its first item); below b/2 items it is the timer's 1 + lambda T, far above it
      // the size rule's (b - 1) / (2 lambda).
      CheckBuilder w(d, i, "mean batching wait (ms)",
                     "W = 1000 E[int_0^T (1 + N(t)) 1{N(t) <= b - 2} dt] / B, B = 1 + E[min(N(T), "
                     "b - 1)], N(t) ~ Poisson(lambda t), T = T_us / 1e6");
      w.Metric("lambda", "metrics.writer_arrival_rate_per_s");
      w.Param("T_us", "protocol.writer_flush_window_us");
      w.Param("b", "protocol.writer_batch_max");
      w.Metric("W_ms", "metrics.writer_mean_wait_ms");
      a.checks.push_back(w.Done(Var("W_ms"), [](const Vars& v) {
        const double t = v.at("T_us") / 1e6;
        return 1000 * BatchTotalWait(v.at("lambda"), t, v.at("b")) /
               BatchMeanSize(v.at("lambda"), t, v.at("b"));
      }));
      CheckBuilder b(d, i, "mean batch size",
                     "B = 1 + E[min(N(T), b - 1)], N(T) ~ Poisson(lambda T), T = T_us / 1e6");
      b.Metric("lambda", "metrics.writer_arrival_rate_per_s");
      b.Param("T_us", "protocol.writer_flush_window_us");
      b.Param("b", "protocol.writer_batch_max");
      b.Metric("B", "metrics.writer_mean_batch");
      a.checks.push_back(b.Done(Var("B"), [](const Vars& v) {
        return BatchMeanSize(v.at("lambda"), v.at("T_us") / 1e6, v.at("b"));
      }));
      const double lambda = d.At(i, "metrics.writer_arrival_rate_per_s").mean;
      if (lambda * d.At(i, "metrics.writer_mean_wait_ms").mean / 1000 >= kLittleMin) {
        CheckBuilder l(d, i, "Little's law, writer queue", "L = lambda W_ms / 1000");
        l.Metric("lambda", "metrics.writer_arrival_rate_per_s");
        l.Metric("W_ms", "metrics.writer_mean_wait_ms");
        l.Metric("L", "metrics.writer_mean_waiting_sampled");
        a.checks.push_back(l.Done(Var("L"), [](const Vars& v) {
          return v.at("lambda") * v.at("W_ms") / 1000;
        }));
      }
    }
    {
      // Store requests in the window: appends (1 per message, or 1/B), receipt writes (1 per
      // message: every message here is 1:1 and its recipient is online), and the reads.
      const bool batched = s.protocol.write_path == WritePath::kBatched;
      CheckBuilder r(d, i, "store requests per second",
                     batched ? "R = (S / B + S + reads) / (t1 - t0)" : "R = (2 S + reads) / (t1 - t0)",
                     0.05, "a per-user term outside the model (the connect syncs) adds a constant number of requests a user, a few percent at most");
      r.Metric("S", "metrics.messages_sent_window");
      if (batched) r.Metric("B", "metrics.writer_mean_batch");
      r.Metric("reads", "metrics.store_reads_window");
      r.Metric("t0", "metrics.window_start_s");
      r.Metric("t1", "metrics.window_end_s");
      r.Metric("R", "metrics.store_requests_per_s");
      a.checks.push_back(r.Done(Var("R"), [batched](const Vars& v) {
        const double appends = batched ? v.at("S") / v.at("B") : v.at("S");
        return (appends + v.at("S") + v.at("reads")) / (v.at("t1") - v.at("t0"));
      }));
    }
    if (d.At(i, "metrics.node_load.store.mean_in_system_little").mean >= kLittleMin) {
      CheckBuilder l(d, i, "Little's law, store CPU queue", "L = lambda W (measured per request)");
      l.Metric("lambda_W", "metrics.node_load.store.mean_in_system_little");
      l.Metric("L", "metrics.node_load.store.mean_in_system_sampled");
      a.checks.push_back(l.Done(Var("L"), Var("lambda_W")));
    }
  }
  // Capacity of the store under batching: b / (s0 + s1 b) items per second.
  const Scenario& s = d.scenarios.front();
  // s0: what one write request costs the store whatever it carries (receive, transaction,
  // answer); s1: each message row it writes (docs/cost-model.md), on hosts cpu_speed_factor
  // times the reference core.
  const double s0 = (s.store_request_us + s.store_commit_us + s.send_us) / 1e6 / s.cpu_speed_factor;
  const double s1 = s.store_item_write_us / 1e6 / s.cpu_speed_factor;
  double best_b = 0;
  for (size_t i = 0; i < d.points.size(); i++) {
    if (d.scenarios[i].protocol.write_path == WritePath::kBatched) {
      best_b = std::max(best_b, d.At(i, "metrics.writer_mean_batch").mean);
    }
  }
  if (best_b > 0) {
    a.findings.push_back(absl::StrFormat(
        "At the largest mean batch measured (%.1f items) the store's capacity for message rows "
        "alone, b/(s0 + s1 b), is %.0f writes/s, against %.0f writes/s for one write per request "
        "(s0 = %.1f us, s1 = %.1f us): a %.1fx gain on the rows.",
        best_b, best_b / (s0 + s1 * best_b), 1 / (s0 + s1), s0 * 1e6, s1 * 1e6,
        best_b / (s0 + s1 * best_b) * (s0 + s1)));
  }
  // What the store's CPU pays per message in the window, every request included (receipts are
  // written one by one in both designs, so the whole-store gain is smaller than the rows' gain).
  struct PerMessage {
    double direct_us = 0, batched_us = 0, batch = -1;  // batched_us at the regime's largest batch
  };
  std::map<std::string, PerMessage> per_message;  // by regime (the axes but design, b and T)
  for (size_t i = 0; i < d.points.size(); i++) {
    const double sent = d.At(i, "metrics.messages_sent_window").mean;
    if (sent <= 0) continue;
    const double us = d.At(i, "metrics.node_load.store.busy_s_window").mean / sent * 1e6;
    std::string regime;
    for (const Axis& ax : d.spec.axes) {
      if (ax.key == d.spec.design || ax.key == "protocol.writer_batch_max" ||
          ax.key == "protocol.writer_flush_window_us") {
        continue;
      }
      regime += ValueWords(d.spec, ax.key, d.points[i].at(ax.key)) + " ";
    }
    PerMessage& pm = per_message[regime];
    if (d.scenarios[i].protocol.write_path == WritePath::kBatched) {
      const double batch = d.At(i, "metrics.writer_mean_batch").mean;
      if (batch > pm.batch) pm.batch = batch, pm.batched_us = us;
    } else {
      pm.direct_us = us;
    }
  }
  for (const auto& [regime, v] : per_message) {
    if (v.direct_us <= 0 || v.batched_us <= 0) continue;
    a.findings.push_back(absl::StrFormat(
        "%store CPU per message sent in the window, every request included: %.1f us under "
        "direct writes against %.1f us under batched writes at its largest mean batch (%.1f), "
        "%.2fx (node_load.store.busy_s_window / messages_sent_window). Delivery receipts are "
        "written one request each in both designs, which is why the gain is smaller than the "
        "rows'.",
        regime.empty() ? "S" : absl::StrCat("At ", regime.substr(0, regime.size() - 1), ", s"),
        v.direct_us, v.batched_us, v.batch, v.direct_us / v.batched_us));
  }
  DbWritesLatencyCost(d, a);
}

void ForwardingHopsAndBroker(const SweepData& d, size_t i, Analysis& a);

// The share of 1:1 messages whose two users are on different chat servers, over the window:
// 1 - 1/S with users spread evenly; a chat server's crash at c moves its users to the others for
// good (they stay where they reconnected), so from c on the share is 1 - 1/(S - 1).
constexpr char kCrossingFormula[] =
    "x = [(c - W0)(1 - 1/S) + (W1 - c)(1 - 1/(S - 1))] / (W1 - W0), S = servers_per_region, c "
    "the chat server's crash, [W0, W1) the window";
void AddCrossingInputs(CheckBuilder& c, bool server_crash) {
  c.Param("S", "topology.servers_per_region");
  if (server_crash) {
    c.Param("c", "faults.crash.0.at_s");
    c.Metric("W0", "metrics.window_start_s");
    c.Metric("W1", "metrics.window_end_s");
  }
}
double CrossingShare(const Vars& v, bool server_crash) {
  const double S = v.at("S");
  if (!server_crash) return 1 - 1 / S;
  const double w0 = v.at("W0"), w1 = v.at("W1");
  const double c = std::clamp(v.at("c"), w0, w1);
  return ((c - w0) * (1 - 1 / S) + (w1 - c) * (1 - 1 / (S - 1))) / (w1 - w0);
}
bool ServerCrash(const Scenario& s) {
  return !s.crashes.empty() && CrashServerIndex(s.crashes[0]) >= 0;
}

// Forwarding: buffering adds the flush wait to messages that cross servers.
// Why the queue backs up under jitter: the broker keeps one entry in flight per consumer, so a
// consumer takes at most one entry per round trip. Its load is rho_c = lambda_c E[RTT], with
// lambda_c the publishes per consumer per second and E[RTT] = 2 (2 a + q J / 2) for a
// QueueDeliver and its QueueAck (a = the access link's latency, each hop crossing two; q of
// the messages delayed by U(0, J)). Above 1 the queue grows while the load lasts.
void ForwardingQueueConsumer(const SweepData& d, Analysis& a) {
  std::vector<std::string> parts;
  double worst_rho = 0, worst_j = 0, worst_p50 = 0, calm_p50 = -1;
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.protocol.forwarding != ForwardingStrategy::kQueue ||
        !s.protocol.gap_detection_enabled) {
      continue;
    }
    const double servers = s.servers_per_region;
    const double lambda_c = d.At(i, "metrics.broker_publishes_window").mean /
                            d.At(i, "metrics.window_s").mean / servers;
    const double rtt_s =
        2 * (2 * s.access_latency_ms + s.delay_probability * s.delay_ms_max / 2) / 1000;
    const double rho = lambda_c * rtt_s;
    const double p50 = d.At(i, "metrics.delivery_latency_online.p50_ms").mean;
    const double taken = d.At(i, "metrics.broker_deliveries_window").mean /
                         d.At(i, "metrics.window_s").mean / servers;
    parts.push_back(absl::StrFormat(
        "J = %g ms: lambda_c = %.1f/s, E[RTT] = %.1f ms, rho_c = %.3g, taken %.1f/s (ceiling "
        "1/E[RTT] = %.0f/s), p50 %.0f ms",
        s.delay_ms_max, lambda_c, rtt_s * 1000, rho, taken, 1 / rtt_s, p50));
    if (rho > worst_rho) worst_rho = rho, worst_j = s.delay_ms_max, worst_p50 = p50;
    if (s.delay_ms_max == 0) calm_p50 = p50;
  }
  if (parts.empty()) return;
  for (const char* key : {"network.access_latency_ms", "faults.delay_probability",
                          "faults.delay_ms_max", "topology.servers_per_region"}) {
    a.finding_params.push_back(key);
  }
  a.findings.push_back(absl::StrCat(
      "The queue's limit is its consumers, not the broker's CPU: the broker keeps one entry in "
      "flight per consumer (QueueDeliver, then wait for its QueueAck), so a consumer takes at "
      "most one entry per round trip. rho_c = lambda_c E[RTT], lambda_c = "
      "broker_publishes_window / (window_s S), E[RTT] = 2 (2 a + q J / 2), a = "
      "network.access_latency_ms, q = faults.delay_probability, J = faults.delay_ms_max "
      "(gap detection on); taken = broker_deliveries_window / (window_s S): ",
      absl::StrJoin(parts, "; "),
      ". Where rho_c passes 1 the queue grows for as long as the load lasts, and what the "
      "consumers take stays near the ceiling. rho_c is if anything understated: S counts every "
      "server, though the crashed one consumed nothing for 5 s of the window, and receipts are "
      "published only after deliveries, so a backlog holds lambda_c down. A consumer "
      "prefetch window of k entries (RabbitMQ's basic.qos) would keep k round trips in flight "
      "and so divide rho_c by k, at the price of entries overtaking each other under jitter "
      "(gap detection's job); it is not built, so this is a prediction, not a measurement."));
  if (worst_rho > 1 && calm_p50 >= 0) {
    a.headline.push_back(absl::StrFormat(
        "The queue collapses at %g ms of jitter (median delivery %.0f ms against %.0f ms without "
        "jitter) because each consumer takes one entry per round trip and the round trip has "
        "grown past the gap between entries (rho_c = %.2f, formula in the findings); the broker "
        "itself is nearly idle, so a faster broker should not help (inferred: its speed was not "
        "varied); a consumer prefetch window above 1 should (predicted, not built).",
        worst_j, worst_p50, calm_p50, worst_rho));
  }
}

void Forwarding(const SweepData& d, Analysis& a) {
  a.note =
      "Buffered forwarding keeps one buffer per destination server. The first entry (message, "
      "receipt or typing) into an empty buffer starts its flush timer, T = F + U where U is "
      "uniform over the jitter J; entries arriving meanwhile ride along. With Poisson entries at "
      "rate lambda per buffer, an entry waits E_T[(T + lambda T^2 / 2) / (1 + lambda T)] on "
      "average (the bulk-service formula of db-writes): F + J/2 at low rates, tending to E[T]/2 "
      "as lambda grows. lambda is measured in the measurement window: entries per buffer that "
      "forwarded in the window (forward_entries_per_buffer) / window_s, so buffers idle while "
      "their server was down are not counted as carrying traffic. The first check compares the "
      "measured wait of every buffered entry with the formula. The second compares buffered "
      "with direct on the same seeds: a recipient online on another server waits the flush on "
      "top of the direct path, so the difference is the crossing share x times the wait. With "
      "users spread over S servers a fraction 1 - 1/S of 1:1 messages cross; the crashed "
      "server's users stay where they reconnected, so from the crash on 1 - 1/(S - 1) cross, "
      "and x weighs the two over the window (the hop check uses the same x). "
      "Checked at zero extra delay with gap detection on; these runs include the crash of "
      "server 1. Hops: every entry about a crossing 1:1 message (the message, its "
      "delivery receipt back, a read receipt, typing) is 2 requests under direct forwarding "
      "and 3 under the queue (publish, deliver, ack), so a sent message costs h e times the "
      "crossing share. "
      "Broker: its CPU in the window is what the cost model charges its inputs (request + item "
      "per entry + send per delivery; the tick's redeliveries are free), and with Poisson "
      "inputs its mean sojourn is the M/G/1 one. The queue's real limit is not CPU (rho is a "
      "fraction of a percent here) but one entry in flight per consumer, a round trip each; "
      "with jitter that round trip grows and the queue backs up (the consumer-load finding), "
      "which is why the hop check applies at zero delay only.";
  auto bulk_wait_ms = [](const Vars& v) {
    const double lambda = v.at("entries_per_buffer") / v.at("window_s");
    return 1e3 * MeanOverUniform(v.at("F_us") / 1e6, v.at("J_us") / 1e6, [&](double t) {
      return (t + lambda * t * t / 2) / (1 + lambda * t);
    });
  };
  auto add_bulk_inputs = [](CheckBuilder& c) {
    c.Param("F_us", "protocol.buffered_flush_interval_us");
    c.Param("J_us", "protocol.buffered_flush_jitter_us");
    c.Metric("entries_per_buffer", "metrics.forward_entries_per_buffer");
    c.Metric("window_s", "metrics.window_s");
  };
  ForwardingQueueConsumer(d, a);
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.delay_ms_max == 0 && s.protocol.gap_detection_enabled) {
      ForwardingHopsAndBroker(d, i, a);
    }
    if (s.protocol.forwarding != ForwardingStrategy::kBuffered || s.delay_ms_max != 0 ||
        !s.protocol.gap_detection_enabled) {
      continue;
    }
    CheckBuilder w(d, i, "mean flush wait of a buffered entry (ms)",
                   "1000 E_T[(T + lambda T^2/2) / (1 + lambda T)], T = (F_us + U(0, J_us)) / 1e6, "
                   "lambda = entries_per_buffer / window_s",
                   0.10);
    add_bulk_inputs(w);
    w.Metric("wait_ms", "metrics.buffer_mean_wait_ms");
    a.checks.push_back(w.Done(Var("wait_ms"), bulk_wait_ms));
    // The direct point with the same other values.
    Point want = d.points[i];
    want["protocol.forwarding"] = "direct";
    for (size_t j = 0; j < d.points.size(); j++) {
      if (d.points[j] != want) continue;
      const bool crash = ServerCrash(s);
      CheckBuilder c(d, i, "buffered - direct mean delivery latency to online recipients (ms)",
                     absl::StrCat("x times the flush wait above, ",
                                  crash ? kCrossingFormula : "x = 1 - 1/S, S = servers_per_region"),
                     0.15,
                     "users are not exactly uniform over the servers, and a recipient who "
                     "reconnects meanwhile is served by catch-up rather than the buffer");
      add_bulk_inputs(c);
      AddCrossingInputs(c, crash);
      c.Metric("lat_buffered_ms", "metrics.delivery_latency_online.mean_ms");
      c.Metric("lat_direct_ms", "metrics.delivery_latency_online.mean_ms", j);
      a.checks.push_back(c.Done(
          [](const Vars& v) { return v.at("lat_buffered_ms") - v.at("lat_direct_ms"); },
          [bulk_wait_ms, crash](const Vars& v) { return CrossingShare(v, crash) * bulk_wait_ms(v); }));
    }
  }
}

// Forwarding hops per sent message, and the broker's CPU under queue forwarding.
void ForwardingHopsAndBroker(const SweepData& d, size_t i, Analysis& a) {
  const Scenario& s = d.scenarios[i];
  const bool queue = s.protocol.forwarding == ForwardingStrategy::kQueue;
  if (s.group_share > 0 || (!queue && s.protocol.forwarding != ForwardingStrategy::kDirect)) {
    return;
  }
  // A 1:1 message crosses servers when its two users are on different ones (1 - 1/S with users
  // spread uniformly), and so does everything about it: the message, the recipient's delivery
  // receipt back to the sender, the read receipt when reads are on, and the typing start and
  // stop. Each forwarded entry is h hops: ForwardBatch + ForwardResult (direct), QueuePublish +
  // QueueDeliver + QueueAck (queue).
  // A chat server's crash moves its users to the others for good (they stay where they
  // reconnected after it restarts), so from the crash on 1 - 1/(S - 1) of 1:1 messages cross.
  const bool server_crash = ServerCrash(s);
  const std::string formula = absl::StrCat(
      "h e x, h = 3 at a queue point and 2 at a direct one (the point's protocol.forwarding), "
      "e = 2 + [read_delay_s > 0] + 2 typing, ",
      server_crash ? kCrossingFormula : "x = 1 - 1/S, S = servers_per_region");
  CheckBuilder h(d, i, "inter-server requests per sent message", formula, 0.05,
                 "users are spread over the servers by a hash, not exactly evenly");
  h.Param("read_delay_s", "workload.read_delay_mean_s");
  h.Param("typing", "workload.typing_probability");
  AddCrossingInputs(h, server_crash);
  h.Metric("hops", "metrics.inter_server_requests_window");
  h.Metric("sent", "metrics.messages_sent_window");
  a.checks.push_back(h.Done([](const Vars& v) { return v.at("hops") / v.at("sent"); },
                            [queue, server_crash](const Vars& v) {
                              const double e = 2 + (v.at("read_delay_s") > 0 ? 1 : 0) +
                                               2 * v.at("typing");
                              return (queue ? 3 : 2) * e * CrossingShare(v, server_crash);
                            }));
  if (!queue) return;
  // The broker's CPU (sim/world/cost.h): each input costs broker_request_us, plus
  // broker_item_us per entry it carries (one per publish here; one for an ack or a subscribe),
  // plus send_us per QueueDeliver it sends; the tick's redeliveries cost nothing.
  auto service_s = [](const Vars& v) {
    const double inputs = v.at("P") + v.at("A") + v.at("Sub");
    return (inputs * v.at("r_us") + (v.at("E") + v.at("A") + v.at("Sub")) * v.at("i_us") +
            (v.at("D") - v.at("Rd")) * v.at("s_us")) /
           1e6 / v.at("speed");
  };
  auto add_cost_inputs = [](CheckBuilder& c) {
    c.Param("r_us", "cost.broker_request_us");
    c.Param("i_us", "cost.broker_item_us");
    c.Param("s_us", "cost.send_us");
    c.Param("speed", "cost.cpu_speed_factor");
    c.Metric("P", "metrics.broker_publishes_window");
    c.Metric("A", "metrics.broker_acks_window");
    c.Metric("Sub", "metrics.broker_subscribes_window");
    c.Metric("E", "metrics.forward_entries_window");
    c.Metric("D", "metrics.broker_deliveries_window");
    c.Metric("Rd", "metrics.broker_redeliveries_window");
    c.Metric("window_s", "metrics.window_s");
  };
  // An accounting check, not a queueing model: it holds by the cost model's construction
  // when every broker input is counted once, and fails when one is missed or double-counted.
  CheckBuilder u(d, i, "broker CPU utilisation in the window (cost-model accounting)",
                 "rho = [(P + A + Sub) r_us + (E + A + Sub) i_us + (D - Rd) s_us] / (1e6 speed "
                 "window_s)",
                 0.05, "hops are counted when sent and CPU when they arrive (about 0.1 ms later)");
  add_cost_inputs(u);
  u.Metric("rho", "metrics.node_load.broker.utilization_window");
  a.checks.push_back(u.Done(Var("rho"), [service_s](const Vars& v) {
    return service_s(v) / v.at("window_s");
  }));
  // M/G/1 (Pollaczek-Khinchine): an input waits lambda E[S^2] / (2 (1 - rho)) behind others,
  // then its own service. Inputs cost c0 = (r + i) / speed, and c0 + s / speed when they send
  // a delivery (a fraction f = (D - Rd) / N of the N = P + A + Sub inputs).
  CheckBuilder w(d, i, "broker mean sojourn per input (us), M/G/1",
                 "E[S] + lambda E[S^2] / (2 (1 - lambda E[S])), N = P + A + Sub, lambda = N / "
                 "window_s, E[S] as in rho x window_s / N, E[S^2] = ((N - F) c0^2 + F (c0 + "
                 "s_us / speed)^2) / N, c0 = (r_us + i_us) / speed, F = D - Rd (in us)",
                 0.05, "one entry per publish assumed for E[S^2]; arrivals not quite Poisson");
  add_cost_inputs(w);
  w.Metric("sojourn_ms", "metrics.node_load.broker.mean_sojourn_ms");
  a.checks.push_back(w.Done([](const Vars& v) { return v.at("sojourn_ms") * 1000; },
                            [service_s](const Vars& v) {
                              const double n = v.at("P") + v.at("A") + v.at("Sub");
                              const double f = v.at("D") - v.at("Rd");
                              const double mean_us = service_s(v) * 1e6 / n;
                              const double c0 = (v.at("r_us") + v.at("i_us")) / v.at("speed");
                              const double c1 = c0 + v.at("s_us") / v.at("speed");
                              const double second = ((n - f) * c0 * c0 + f * c1 * c1) / n;
                              const double lambda_per_us = n / v.at("window_s") / 1e6;
                              return mean_us + lambda_per_us * second /
                                                   (2 * (1 - lambda_per_us * mean_us));
                            }));
}

// Capacity: the plan's per-second figures, scaled down, against the simulation.
void Capacity(const SweepData& d, Analysis& a) {
  a.note =
      "The plan (chatlab plan) predicts inserts per second = online users x send rate and "
      "polling syncs per second = online users / refresh interval (one store request each). Each "
      "point runs that load scaled down (users and servers divided by the same factor) and "
      "measures the store. Every store request a user causes: one StoreSync when it connects "
      "(at U, uniform over the connect ramp) and one every refresh interval after that; per "
      "message it sends, one StoreAppend and, per recipient, one StoreReceipt when the "
      "recipient's delivered watermark moves (every shown message, as each is acknowledged on "
      "its own) and one more for the read watermark when reads are on. The request check "
      "applies where every user connects at the start and stays (online_fraction = 1, "
      "session_mean_s = 0) and to 1:1 messages only "
      "(group_share = 0); the first sync reaches the store about 3 client hops (h) after U, so "
      "those of users connecting just before the window's start fall in it. It leaves out "
      "catch-up reads (a sync that sees a head not yet delivered; about 0.1% of requests here). "
      "A user sends from its connect, so the inserts model counts the part of the ramp before "
      "it.";
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    // A user sends from its connect at U (uniform over the ramp) or the send start, whichever
    // is later, to the send end.
    CheckBuilder c(d, i, "store inserts/s (store writes / send window)",
                   "online users x send rate x E_U[end - max(U, start)] / (end - start), U "
                   "uniform over [0, ramp)");
    AddSendRate(c);
    AddSendWindow(c);
    c.Param("online_fraction", "workload.online_fraction");
    c.Param("ramp", "workload.connect_ramp_s");
    c.Metric("writes", "metrics.store_writes");
    a.checks.push_back(c.Done(
        [](const Vars& v) { return v.at("writes") / SendWindow(v); },
        [](const Vars& v) {
          const double window = SendWindow(v), start = v.at("send_start_s");
          const double sending = MeanOverUniform(0, v.at("ramp"), [&](double u) {
            return window - std::max(0.0, u - start);
          });
          return v.at("users") * v.at("online_fraction") * SendRate(v) * sending / window;
        }));
    if (s.protocol.client_sync_interval_us > 0 && s.session_mean_s <= 0 && s.online_fraction >= 1 &&
        s.group_share <= 0) {
      // store_requests_per_s counts the requests that reached the store in the measurement
      // window [W0, W1): the syncs at U + k refresh in it, and the window's messages.
      CheckBuilder r(d, i, "store requests/s",
                     "online (E[#{k >= 0: W0 <= U + h + k refresh < W1}] / (W1 - W0) + rate (1 "
                     "+ 1 + [read_delay_s > 0])), online = users x online_fraction, U uniform "
                     "over [0, ramp), h = 3 (client_ms + access_ms) / 1000 the connect handshake "
                     "before the first sync reaches the store, refresh = sync_us / 1e6; per "
                     "message: its append, the recipient's delivery receipt, its read receipt "
                     "when reads are on",
                     0.05,
                     "Poisson noise on the window's sends (the message terms are about 13% of "
                     "the total) and catch-up reads (about 0.1%)");
      AddSendRate(r);
      r.Param("online_fraction", "workload.online_fraction");
      r.Param("sync_us", "protocol.client_sync_interval_us");
      r.Param("ramp", "workload.connect_ramp_s");
      r.Param("read_delay_s", "workload.read_delay_mean_s");
      r.Param("client_ms", "network.client_latency_ms");
      r.Param("access_ms", "network.access_latency_ms");
      r.Metric("W0", "metrics.window_start_s");
      r.Metric("W1", "metrics.window_end_s");
      r.Metric("requests_per_s", "metrics.store_requests_per_s");
      a.checks.push_back(r.Done(Var("requests_per_s"), [](const Vars& v) {
        const double online = v.at("users") * v.at("online_fraction");
        const double refresh = v.at("sync_us") / 1e6, w0 = v.at("W0"), w1 = v.at("W1");
        const double h = 3 * (v.at("client_ms") + v.at("access_ms")) / 1000;
        const double syncs = MeanOverUniform(0, v.at("ramp"), [&](double u) {
          double n = 0;
          for (double t = u + h; t < w1; t += refresh) n += t >= w0;
          return n;
        });
        const double per_message = 1 + 1 + (v.at("read_delay_s") > 0 ? 1 : 0);
        return online * syncs / (w1 - w0) + online * SendRate(v) * per_message;
      }));
      // The plan's own chain at this load, with nothing from the run but the measured figure:
      // each online user polls once a refresh interval and each message costs its insert and
      // the plan's receipts (PlanAssumptions::receipts_per_message: delivery and read).
      const double receipts = PlanAssumptions{}.receipts_per_message;
      CheckBuilder pl(d, i, "store requests/s, the plan's chain at this load",
                      absl::StrFormat("online (1 / refresh + rate (1 + %g)), online = users x "
                                      "online_fraction, refresh = sync_us / 1e6 (chatlab plan: "
                                      "one select a refresh, an insert and %g receipts a "
                                      "message)",
                                      receipts, receipts),
                      0.05,
                      "holds where the run does what the plan assumes: every message read (read "
                      "receipts on), sync phases spread over one refresh interval and a window "
                      "a whole number of them");
      AddSendRate(pl);
      pl.Param("online_fraction", "workload.online_fraction");
      pl.Param("sync_us", "protocol.client_sync_interval_us");
      pl.Metric("requests_per_s", "metrics.store_requests_per_s");
      a.checks.push_back(pl.Done(Var("requests_per_s"), [receipts](const Vars& v) {
        return v.at("users") * v.at("online_fraction") *
               (1e6 / v.at("sync_us") + SendRate(v) * (1 + receipts));
      }));
    }
  }
  // The plan's chain against the runs, in one sentence for the answer.
  double worst = 0, seed_low = 0;  // seed_low: the seed's chain (no receipts) under the runs
  int plan_checks = 0;
  std::string widest;
  for (const Check& k : a.checks) {
    if (k.name != "store requests/s, the plan's chain at this load") continue;
    plan_checks++;
    const Vars v = k.Values();
    const double seed_chain =
        v.at("users") * v.at("online_fraction") * (1e6 / v.at("sync_us") + SendRate(v));
    seed_low = std::max(seed_low, 1 - seed_chain / k.simulated);
    if (k.RelativeError() >= worst) {
      worst = k.RelativeError();
      widest = absl::StrFormat("%.0f measured against %.0f at %s", k.simulated, k.analytic,
                               k.point);
    }
  }
  if (plan_checks > 0) {
    a.headline.push_back(absl::StrFormat(
        "The chain of `chatlab plan` (the seed's polling and inserts plus the delivery and read "
        "receipts the seed leaves out), run as it assumes, predicts the store's requests per "
        "second within %.2g%% at all %d sizes (widest: %s); the seed's own chain, without the "
        "receipts, is up to %.0f%% under the runs, and its figures that do not follow from each "
        "other are in the findings.",
        100 * worst, plan_checks, widest, 100 * seed_low));
  }
  PlanAssumptions plan;
  const std::vector<PlanRow> rows = ComputePlan(plan);
  std::vector<std::string> flagged;
  for (const PlanRow& r : rows) {
    if (!r.consistent) {
      flagged.push_back(absl::StrCat(
          absl::StrFormat("%s: computed %.4g %s, the seed says %s", r.figure, r.computed, r.unit,
                          r.seed_says),
          r.note.empty() ? "" : absl::StrCat(" (", r.note, ")")));
    }
  }
  a.findings.push_back(absl::StrCat(
      "The seed's chain, recomputed by `chatlab plan`, has ", flagged.size(),
      " figure(s) that do not follow from the others: ", absl::StrJoin(flagged, "; "), "."));
}

}  // namespace chatlab::sim::lab::analyses_internal
