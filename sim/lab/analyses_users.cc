// The analyses of the user-facing experiments: offline, presence, failover, ids.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/lab/check_builder.h"
#include "sim/lab/compare.h"

namespace chatlab::sim::lab::analyses_internal {

namespace {

// The mean time until an offline device starts to connect, for a message whose own push did not
// wake it (lost, or pushes off): E[min(R, D, P)] with R ~ Exp(M) the user's return, D the time
// to the next periodic background wake and P ~ Exp(1/mu) the next successful push of a later
// message. Averaged over the offline time of an episode that starts at 0 (weight exp(-s/M): the
// user has not returned by s) and over the chain's phase phi ~ U(0, S): offline time is
// [0, phi) and then [phi + k S + b, phi + (k + 1) S) (each wake keeps the device connected b
// seconds, and a message sent then is delivered online, not counted).
// Without periodic wakes (S = 0) a wait can outlast the run: one longer than the time left
// until the heal, R, uniform over [r_lo, r_hi] (sends uniform over the window), is not counted,
// so the counted mean is E[X; X < R] / P(X < R) with X ~ Exp(h). r_hi <= 0: no cut-off.
double OfflineWaitToWake(double m, double s, double b, double mu, double r_lo = 0,
                         double r_hi = 0) {
  const double h = 1 / m + mu;
  if (s <= 0 && r_hi <= 0) return 1 / h;
  if (s <= 0) {
    const double kept = MeanOverUniform(r_lo, r_hi - r_lo, [&](double r) {
      return 1 / h - (r + 1 / h) * std::exp(-h * r);
    });
    const double share = MeanOverUniform(r_lo, r_hi - r_lo, [&](double r) {
      return 1 - std::exp(-h * r);
    });
    return kept / share;
  }
  // G(L) = int_0^L e^{-u/M} E[min(Exp(h), L - u)] du, H(L) = int_0^L e^{-u/M} du.
  const auto g = [&](double l) {
    if (l <= 0) return 0.0;
    const double tail = mu > 0 ? (std::exp(-l / m) - std::exp(-h * l)) / mu : l * std::exp(-l / m);
    return (m * (1 - std::exp(-l / m)) - tail) / h;
  };
  const auto hh = [&](double l) { return l > 0 ? m * (1 - std::exp(-l / m)) : 0.0; };
  const double cycle = std::max(0.0, s - b), per = 1 / (1 - std::exp(-s / m));
  const double num = MeanOverUniform(0, s, [&](double phi) {
    return g(phi) + std::exp(-(phi + b) / m) * per * g(cycle);
  });
  const double den = MeanOverUniform(0, s, [&](double phi) {
    return hh(phi) + std::exp(-(phi + b) / m) * per * hh(cycle);
  });
  return num / den;
}

// E over a message's recipient of OfflineWaitToWake: a recipient with in-degree k (how many
// contact lists name it) gets messages at lambda k / c; the recipient of a message has in-degree
// 1 + Poisson(c) (size-biased), so mu = (1 - q) lambda (1 + j) / c with j ~ Poisson(c).
double OfflineWaitLost(const Vars& v) {
  const double c = v.at("c"), push = v.at("push") > 0 ? 1 : 0;
  const double lambda = v.at("sent") / (v.at("users") * v.at("window_s"));
  double sum = 0, weight = std::exp(-c);
  for (int j = 0; j <= static_cast<int>(4 * c) + 30; j++) {
    const double mu = push * (1 - v.at("q")) * lambda * (1 + j) / c;
    // Time left until the heal for a send in the window [W0, send_end).
    const double r_lo = v.at("heal_s") - v.at("send_end_s"), r_hi = v.at("heal_s") - v.at("W0");
    sum += weight * OfflineWaitToWake(v.at("M"), v.at("S"), v.at("b"), mu, r_lo, r_hi);
    weight *= c / (j + 1);
  }
  return sum;
}

// The point with these push, push-loss and sync values, or -1.
int OfflinePoint(const SweepData& d, bool push, double q, double sync_s) {
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.wake_on_push == push && ScenarioNumber(s, "faults.push_loss") == q &&
        s.background_sync_s == sync_s) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Push alone against a background sync alone (the shortest interval swept), per push loss: a
// cross-x comparison the per-x design ranking cannot state. Where a lossy push alone is slower
// than sync alone, the answer says so.
void OfflinePushAgainstSync(const SweepData& d, Analysis& a) {
  std::vector<double> losses, syncs;
  for (const Scenario& s : d.scenarios) {
    const double q = ScenarioNumber(s, "faults.push_loss").value_or(0);
    if (std::find(losses.begin(), losses.end(), q) == losses.end()) losses.push_back(q);
    if (s.background_sync_s > 0 &&
        std::find(syncs.begin(), syncs.end(), s.background_sync_s) == syncs.end()) {
      syncs.push_back(s.background_sync_s);
    }
  }
  if (syncs.empty()) return;
  const double sync = *std::min_element(syncs.begin(), syncs.end());
  const std::string m = "metrics.offline_delivery.mean_ms";
  for (double q : losses) {
    const int push = OfflinePoint(d, true, q, 0), alone = OfflinePoint(d, false, q, sync),
              both = OfflinePoint(d, true, q, sync);
    if (push < 0 || alone < 0 || both < 0) continue;
    const Paired p = PairedDiff(d.BySeed(static_cast<size_t>(push), m),
                                d.BySeed(static_cast<size_t>(alone), m));
    const std::string text = absl::StrFormat(
        "With %g%% of pushes lost, push alone (no background sync) leaves an offline user "
        "waiting %.1f s on average and a background sync every %g s without push %.1f s (push "
        "alone minus sync alone: %s); both together, %.1f s.",
        100 * q, p.mean_a / 1000, sync, p.mean_b / 1000, PairedText(p, "ms"),
        d.At(static_cast<size_t>(both), m).mean / 1000);
    a.findings.push_back(text);
    if (p.significant && p.diff > 0) a.headline.push_back(text);
  }
}

}  // namespace

// Offline: how long until a user who was offline holds a message sent to it.
void Offline(const SweepData& d, Analysis& a) {
  a.note =
      "What the simulator does (sim/world/workload.cc): a user offline for Exp(M) (M = "
      "offline_mean_s) has its device wake in the background every S (background_sync_s; first "
      "wake at a uniform phase) and, with wake_on_push, when a push arrives (each lost with "
      "probability q = push_loss; every message to an offline user is pushed). A wake keeps "
      "the device connected b = background_session_s: it syncs and shows what waited, and "
      "metrics.offline_delivery counts it as held; a message sent while it is connected is "
      "delivered online and is not counted. So a message sent offline (at a uniform instant of "
      "the offline time) waits until the device starts to connect, then the connect, sync and "
      "catch-up round trips (metrics.offline_fetch, measured). Its own push wakes the device "
      "with probability p = (1 - q) after two client hops (send, push); otherwise the wait is "
      "min(return, next periodic wake, next successful push of a later message), averaged over "
      "the offline time of an episode (OfflineWaitToWake in sim/lab/analyses_users.cc has the "
      "integral; with S = 0 it is 1 / (1/M + mu), with pushes off and b = 0 the old M - "
      "(M^2/S)(1 - e^{-S/M})). Later messages come at lambda (1 + j) / c for a recipient named "
      "in 1 + j contact lists, j ~ Poisson(c), lambda = sent / (users x window_s). Left out: "
      "the first interval of the initial offline period's phase is modelled like any other, "
      "a push wake's session removes b seconds of offline time at random (about 1%), a "
      "periodic wake that falls in a push wake's session is skipped, and the push transit's "
      "store and backend time (what the push points' simulated figure has above the model). "
      "Waits still running at the heal (heal_s = duration_s) are not counted; sending stops "
      "(workload.send_end_s) well before it, and with S = 0 the model drops the same waits "
      "(few, but the longest).";
  for (size_t i = 0; i < d.points.size(); i++) {
    // Without push the loss rate changes nothing: those points repeat the first loss's runs,
    // and their check is not repeated.
    const Scenario& s = d.scenarios[i];
    if (!s.wake_on_push && OfflinePoint(d, false, ScenarioNumber(d.scenarios[0], "faults.push_loss")
                                                       .value_or(0),
                                        s.background_sync_s) != static_cast<int>(i)) {
      continue;
    }
    CheckBuilder c(d, i, "mean offline delivery (s)",
                   "p 2 c_ms / 1000 + (1 - p) E_j[w(mu_j)] + fetch_ms / 1000, p = push (1 - q), "
                   "mu_j = push (1 - q) lambda (1 + j) / c, j ~ Poisson(c), lambda = sent / "
                   "(users window_s); w(mu) = 1 / h for S = 0, else E_phi[G(phi) + K G(S - b)] / "
                   "E_phi[H(phi) + K H(S - b)], phi ~ U(0, S), K = exp(-(phi + b)/M) / (1 - "
                   "exp(-S/M)), h = 1/M + mu, G(L) = (M (1 - exp(-L/M)) - (exp(-L/M) - "
                   "exp(-h L)) / mu) / h (L exp(-L/M) for the fraction when mu = 0), H(L) = M "
                   "(1 - exp(-L/M)); with S = 0 a wait longer than the time left to the heal, R "
                   "~ U(heal_s - send_end_s, heal_s - W0), is not counted: w(mu) = E_R[1/h - (R "
                   "+ 1/h) exp(-h R)] / E_R[1 - exp(-h R)]",
                   0.10,
                   "sampling: about 700 waits a point (10 seeds; quick: 1 seed of 3000 users), "
                   "coefficient of variation 1 to 1.7, and waits in one offline period end "
                   "together: a 95% half-width of about 7 to 10%");
    c.Param("M", "workload.offline_mean_s");
    c.Param("S", "workload.background_sync_s");
    c.Param("b", "workload.background_session_s");
    c.Param("push", "workload.wake_on_push");
    c.Param("q", "faults.push_loss");
    c.Param("c", "workload.contacts_per_user");
    c.Param("users", "workload.users");
    c.Param("c_ms", "network.client_latency_ms");
    c.Metric("sent", "metrics.messages_sent_window");
    c.Metric("window_s", "metrics.window_s");
    c.Param("heal_s", "scenario.duration_s");
    c.Param("send_end_s", "workload.send_end_s");
    c.Metric("W0", "metrics.window_start_s");
    c.Metric("fetch_ms", "metrics.offline_fetch.mean_ms");
    c.Metric("wait_ms", "metrics.offline_delivery.mean_ms");
    a.checks.push_back(c.Done([](const Vars& v) { return v.at("wait_ms") / 1000; },
                              [](const Vars& v) {
                                const double p = (v.at("push") > 0 ? 1 : 0) * (1 - v.at("q"));
                                return p * 2 * v.at("c_ms") / 1000 +
                                       (1 - p) * OfflineWaitLost(v) + v.at("fetch_ms") / 1000;
                              }));
  }
  OfflinePushAgainstSync(d, a);
}

// Presence: polling-only views are stale by about P/2, less what alternating states hide.
void Presence(const SweepData& d, Analysis& a) {
  a.note =
      "A contact that is not pushed is read at the viewer's next poll (every P, at a random "
      "phase). It alternates online spells, Exp(tau_on) with tau_on the session mean, and "
      "offline spells, Exp(tau_off). At a poll the current spell, of state k, has age v with "
      "density proportional to exp(-v/tau_k), and the viewer sees a change only if the previous "
      "poll, P - v before the spell began, found the other state j: probability pi_j + pi_k "
      "exp(-(P - v)(1/tau_on + 1/tau_off)). The mean staleness of what users see is "
      "int_0^P v f(v) dv / int_0^P f(v) dv with f(v) = sum_k exp(-v/tau_k) (pi_j + pi_k "
      "exp(-(P - v)(1/tau_on + 1/tau_off))): P/2 when states last long. Checked where the short "
      "list is empty (everyone polls) and users churn.";
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.protocol.presence_fanout != PresenceFanout::kShortList ||
        s.protocol.presence_short_list_size != 0 || s.session_mean_s <= 0 ||
        s.offline_mean_s <= 0) {
      continue;
    }
    CheckBuilder c(d, i, "mean presence staleness (s) of seen changes",
                   "int_0^P v f(v) dv / int_0^P f(v) dv, P = P_us / 1e6, f as in the note");
    c.Param("P_us", "protocol.presence_poll_interval_us");
    c.Param("tau_on", "workload.session_mean_s");
    c.Param("tau_off", "workload.offline_mean_s");
    c.Metric("staleness_ms", "metrics.presence_staleness.mean_ms");
    a.checks.push_back(c.Done(
        [](const Vars& v) { return v.at("staleness_ms") / 1000; },
        [](const Vars& v) {
          const double p = v.at("P_us") / 1e6, tau_on = v.at("tau_on"), tau_off = v.at("tau_off");
          const double pi_on = tau_on / (tau_on + tau_off), pi_off = 1 - pi_on;
          const double rate = 1 / tau_on + 1 / tau_off;
          const auto f = [&](double u) {
            const double mix = std::exp(-(p - u) * rate);
            return std::exp(-u / tau_on) * (pi_off + pi_on * mix) +
                   std::exp(-u / tau_off) * (pi_on + pi_off * mix);
          };
          return MeanOverUniform(0, p, [&](double u) { return u * f(u); }) /
                 MeanOverUniform(0, p, f);
        }));
  }
}

// Failover: no acknowledged message may be lost; users cut off by a chat server's crash are back
// after the client's capped exponential backoff.
namespace {

// The mean time from a chat server's crash to a cut-off user's next connection, in seconds.
// The user learns of the crash d after it (d: one way between a client host and a chat server),
// waits the backoff B_1, opens a session to a server drawn uniformly from its region's S
// (the crashed one refuses it: q = 1/S), learns the answer 2d later, and on a refusal waits B_2,
// and so on. B_a is uniform on [b_a/2, b_a] (equal jitter), b_a = min(b0 2^(a-1), bmax), so
// E[R] = d + sum_{a>=1} q^(a-1) (E[B_a] + 2d).
double ReconnectMeanModel(const Vars& v) {
  const double d_s = (v.at("client_latency_ms") + v.at("access_latency_ms")) / 1000;
  const double q = 1 / v.at("S");
  const auto b0 = static_cast<int64_t>(v.at("b0_us")), bmax = static_cast<int64_t>(v.at("bmax_us"));
  double mean_s = d_s, reach = 1;  // reach: P(attempt a happens) = q^(a-1)
  int64_t base = b0;
  for (int attempt = 1; attempt <= 64 && reach > 1e-12; attempt++) {
    const int64_t b = std::min(base, bmax);
    const int64_t half = std::max<int64_t>(b / 2, 1);
    const double backoff_s = (static_cast<double>(half) + static_cast<double>(half) / 2) / 1e6;
    mean_s += reach * (backoff_s + 2 * d_s);
    reach *= q;
    if (base < bmax) base *= 2;
  }
  return mean_s;
}

}  // namespace

void Failover(const SweepData& d, Analysis& a) {
  a.note =
      "A chat server's crash closes its sessions; each client learns it one hop later (d = "
      "network.client_latency_ms + network.access_latency_ms) and reconnects on its own timer: "
      "attempt a waits B_a, uniform on [b_a/2, b_a] with b_a = min(b0 2^(a-1), bmax) (equal "
      "jitter, core/client.cc Backoff), then opens a session to a chat server drawn uniformly "
      "from its region's S (sim OpenSession with no target: reconnect_other_server applies only "
      "to a user coming back from being offline, not to this reconnect). The crashed server "
      "refuses (q = 1/S) and the answer comes back after 2d. So the mean time from the crash "
      "to the user's next connection is E[R] = d + sum_{a>=1} q^(a-1) (E[B_a] + 2d). Left out: "
      "the crashed server's restart (faults.crash.0.restart_s: a user still cut off then succeeds "
      "at once, which lowers the mean below the model, more with a long backoff cap, whose "
      "retries can reach past the restart) and CPU queueing at the surviving "
      "servers, which take the reconnects of a quarter of the users within about 0.5 s. "
      "Service crashes (writer, broker, store) cut nobody off: their cost shows in ack and "
      "delivery latencies and retries, measured, not modelled.";
  // A crash may lose an acknowledged message (not in the store) or leave one that the store has
  // unshown to a participant (its recipients never caught up): two different failures.
  uint64_t lost = 0, unshown = 0;
  for (const auto& point_runs : d.runs) {
    for (const nlohmann::json& r : point_runs) {
      lost += static_cast<uint64_t>(MetricValue(r, "invariants.lost_acked").value_or(0));
      unshown += static_cast<uint64_t>(MetricValue(r, "invariants.acked_unshown").value_or(0));
    }
  }
  a.findings.push_back(
      absl::StrCat("Acknowledged messages lost (not in the store) across all runs: ", lost,
                   "; stored but never shown to a participant: ", unshown, "."));
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (s.crashes.size() != 1 || CrashServerIndex(s.crashes[0]) < 0 || s.session_mean_s > 0 ||
        d.At(i, "metrics.failover_reconnect.count").mean <= 0) {
      continue;
    }
    CheckBuilder c(d, i, "mean reconnect after a chat server crash (s)",
                   "d + sum_{a>=1} q^(a-1) (3/4 min(b0 2^(a-1), bmax) + 2d), q = 1/S, d = "
                   "(client_latency_ms + access_latency_ms) / 1000",
                   0.10, "sampling: a few hundred users cut off per run, B_a spread over [b/2, b]");
    c.Param("b0_us", "protocol.client_retry_initial_us");
    c.Param("bmax_us", "protocol.client_retry_max_us");
    c.Param("S", "topology.servers_per_region");
    c.Param("client_latency_ms", "network.client_latency_ms");
    c.Param("access_latency_ms", "network.access_latency_ms");
    c.Metric("reconnect_ms", "metrics.failover_reconnect.mean_ms");
    a.checks.push_back(
        c.Done([](const Vars& v) { return v.at("reconnect_ms") / 1000; }, &ReconnectMeanModel));
  }
}

// Ids: the share of messages whose chat-server-minted id is below its conversation's head.
namespace {

// Where the ids model applies: chat servers mint on constant offsets (no drift, no step), and
// every message goes to one group of every user, from users who stay on their home server.
bool IdsModelApplies(const Scenario& s) {
  if (s.protocol.id_generator != IdGenerator::kChatServer || s.regions != 1) return false;
  if (s.groups != 1 || s.group_size_min != s.users || s.group_share < 1) return false;
  if (s.session_mean_s > 0 || s.online_fraction < 1 || !s.crashes.empty()) return false;
  for (const ClockSpec& c : s.clocks) {
    if (c.drift_ppm != 0 || c.step_at_s >= 0 || c.node.rfind("server:", 0) != 0) return false;
  }
  return s.servers() <= 16;
}

// The model: the mean over minted messages of P(minted below the head), in the symbols the
// check prints (s0.. skews in ms, n0.. ids minted per server, lambda the conversation's rate).
double IdsOutOfOrderModel(const Vars& v, bool snowflake) {
  const int servers = static_cast<int>(v.at("S"));
  const double lambda_per_ms = SendRate(v) * v.at("users") / 1000;
  std::vector<double> skew, share;
  double minted = 0;
  for (int j = 0; j < servers; j++) {
    skew.push_back(v.at(absl::StrCat("s", j)));
    share.push_back(v.at(absl::StrCat("n", j)));
    minted += share.back();
  }
  if (minted <= 0) return 0;
  double rate = 0;
  for (int i = 0; i < servers; i++) {
    // phi: where in its millisecond the message's Snowflake timestamp falls (uniform); a server
    // with lower node bits (j < i) must be a whole millisecond ahead to outrank in a tie. Its own
    // server (j = i) never outranks it: the sequence bits order one server's ids in a millisecond.
    const auto p_not_below = [&](double phi) {
      double window_ms = 0;
      for (int j = 0; j < servers; j++) {
        if (snowflake && j == i) continue;
        const double w = snowflake ? skew[j] - skew[i] + phi - (j < i ? 1 : 0) : skew[j] - skew[i];
        window_ms += share[j] / minted * std::max(0.0, w);
      }
      return std::exp(-lambda_per_ms * window_ms);
    };
    const double p_below = 1 - (snowflake ? MeanOverUniform(0, 1, p_not_below) : p_not_below(0));
    rate += share[i] / minted * p_below;
  }
  return rate;
}

}  // namespace

void Ids(const SweepData& d, Analysis& a) {
  a.note =
      "With id_generator = chat_server a message minted at true time t on server i gets the id "
      "t + s_i (s_i: that server's clock offset); the store keeps the conversation append-only, "
      "so the id is below the head, and lifted, when an earlier message of the conversation was "
      "minted on a server j ahead of i within the last s_j - s_i. With Poisson sends at rate "
      "lambda to one conversation and a share p_j of its ids minted on server j, P(below | i) = "
      "1 - exp(-lambda sum_j p_j (s_j - s_i)^+), and the rate per message is sum_i p_i P(below "
      "| i). Snowflake ids keep milliseconds and then the node bits (which grow with the server "
      "index), so the window from server j != i is (s_j - s_i + phi - [j < i] 1 ms)^+ with phi, "
      "the message's place inside its millisecond, uniform on [0, 1 ms): even equal clocks "
      "reorder within a millisecond; the server's own earlier ids in that millisecond have lower "
      "sequence bits, so j = i adds nothing. Sequence ids are numbered by the store: 0. Left "
      "out: the client-to-server path (every client has the same latency, so the mint times stay "
      "Poisson), queueing between mint and store (sub-millisecond here), a lift raising the head "
      "by 1 us, and drift and clock steps (the check applies only to constant offsets on the "
      "chat servers, one group of every user, no churn). p_j is measured (metrics.ids_minted), "
      "averaged over seeds (the model of the mean p is about 1% above the mean of per-seed "
      "models).";
  for (size_t i = 0; i < d.points.size(); i++) {
    const Scenario& s = d.scenarios[i];
    if (!IdsModelApplies(s)) continue;
    const IdScheme scheme = s.protocol.id_scheme;
    std::string formula =
        "sum_i p_i (1 - exp(-lambda sum_j p_j (s_j - s_i)^+)), lambda = rate_total or rate x "
        "users (per s; skews s in s), p_j = n_j / sum n";
    if (scheme == IdScheme::kSnowflake) {
      formula =
          "sum_i p_i (1 - E_phi exp(-lambda sum_{j != i} p_j (s_j - s_i + phi - [j < i] 1 ms)^+)), "
          "phi ~ U(0, 1 ms), lambda = rate_total or rate x users, p_j = n_j / sum n";
    } else if (scheme == IdScheme::kSequence) {
      formula = "0: the store numbers each conversation head + 1";
    }
    CheckBuilder c(d, i, "ids minted below the head, per message sent", formula);
    c.Param("S", "topology.servers_per_region");
    AddSendRate(c);
    for (int j = 0; j < s.servers(); j++) {
      c.Param(absl::StrCat("s", j), absl::StrCat("faults.clock.server:", j, ".skew_ms"));
      c.Metric(absl::StrCat("n", j), absl::StrCat("metrics.ids_minted.server", j));
    }
    c.Metric("out_of_order", "metrics.out_of_order_ids");
    c.Metric("sent", "metrics.messages_sent");
    Check check = c.Done(
        [](const Vars& v) { return v.at("sent") > 0 ? v.at("out_of_order") / v.at("sent") : 0; },
        [scheme](const Vars& v) {
          if (scheme == IdScheme::kSequence) return 0.0;
          return IdsOutOfOrderModel(v, scheme == IdScheme::kSnowflake);
        });
    // The count is what is noisy: three Poisson standard errors of the events the model expects
    // over the point's runs, plus 5% for what the model leaves out.
    const double events =
        check.analytic * check.Values().at("sent") * static_cast<double>(d.runs[i].size());
    if (scheme == IdScheme::kSequence) {
      check.tolerance = 0;
      check.tolerance_why =
          "exact: the store numbers the ids, so any id below the head is a defect";
    } else {
      check.tolerance = 0.05 + 3 / std::sqrt(std::max(events, 1.0));
      check.tolerance_why = absl::StrFormat(
          "5%% for what the model leaves out + 3/sqrt(%.0f), three Poisson standard errors of "
          "the %.0f out-of-order ids it expects over the point's runs",
          events, events);
    }
    a.checks.push_back(std::move(check));
  }
  if (a.checks.empty()) {
    a.note += " No point of this sweep fits the model's conditions, so no check was run.";
  }
}

}  // namespace chatlab::sim::lab::analyses_internal
