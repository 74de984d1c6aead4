// `chatlab compare`'s report: the metrics both sides' results.json share, their per-seed values,
// the paired comparison, the tolerance checks, the overlaid CDFs, and the answer in words.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "sim/lab/compare.h"
#include "sim/lab/plots.h"
#include "sim/lab/stats.h"
#include "sim/lab/vs_real.h"
#include "sim/results.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kSeedsMin = 10;  // docs/reports-method.md

// A number at a dotted path of a results.json, or nullopt.
std::optional<double> At(const json& r, const std::string& path) {
  const json* j = &r;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    const std::string key(part);
    if (!j->is_object() || !j->contains(key)) return std::nullopt;
    j = &(*j)[key];
  }
  if (j->is_boolean()) return j->get<bool>() ? 1.0 : 0.0;
  if (!j->is_number()) return std::nullopt;
  return j->get<double>();
}

bool IsReal(const json& r) { return r.value("environment", "") == "real"; }

// A count per sent message: the simulator's from its own fields (sum of sim_paths), the real
// cluster's from metrics.server (chatd's counters, play/measure.h), absent when they were not
// read or a restart lost some.
std::optional<double> PerSent(const json& r, const std::vector<std::string>& sim_paths,
                              const std::string& real_name) {
  const std::optional<double> sent = At(r, "metrics.messages_sent");
  if (!sent || *sent <= 0) return std::nullopt;
  if (IsReal(r)) {
    const std::optional<double> complete = At(r, "metrics.server.complete");
    const std::optional<double> v = At(r, "metrics.server." + real_name);
    if (!complete || *complete == 0 || !v) return std::nullopt;
    return *v / *sent;
  }
  double sum = 0;
  for (const std::string& p : sim_paths) {
    const std::optional<double> v = At(r, p);
    if (!v) return std::nullopt;
    sum += *v;
  }
  return sum / *sent;
}

// How many node messages a fault kind hit in a run: the simulator's faults_fired.SIM_KIND, the
// real nemesis's network.REAL_KIND (its proxy), 0 where the run had no such fault.
std::optional<double> FaultCount(const json& r, const std::string& sim_kind,
                                 const std::string& real_kind) {
  if (IsReal(r)) {
    if (!r.contains("network")) return 0.0;
    return At(r, "network." + real_kind);
  }
  if (!r.contains("faults_fired")) return std::nullopt;
  return At(r, "faults_fired." + sim_kind).value_or(0.0);
}

struct MetricDef {
  std::string name;   // data.csv's column
  std::string label;  // in words
  double tolerance;   // the largest |real / sim - 1| that agrees; 0: no check
  std::function<std::optional<double>(const json&)> get;
};

const std::vector<MetricDef>& Metrics() {
  static const auto* metrics = [] {
    auto* m = new std::vector<MetricDef>;
    m->push_back({"invariants_ok", "runs holding every invariant (1 = all held)", 0,
                  [](const json& r) { return At(r, "invariants.ok"); }});
    m->push_back({"violations", "invariant violations, all kinds", 0, [](const json& r) {
                    std::optional<double> sum = 0.0;
                    for (const char* k :
                         {"lost_acked", "acked_unshown", "duplicates_shown", "order_violations",
                          "receipt_regressions", "undelivered_after_heal", "acks_contradicted",
                          "receipts_unfounded"}) {
                      const std::optional<double> v = At(r, absl::StrCat("invariants.", k));
                      if (!v) return std::optional<double>();
                      *sum += *v;
                    }
                    return sum;
                  }});
    const auto plain = [&](const std::string& name, const std::string& label,
                           const std::string& path, double tol) {
      m->push_back({name, label, tol, [path](const json& r) { return At(r, path); }});
    };
    plain("messages_sent", "messages sent", "metrics.messages_sent", 0);
    plain("messages_acked", "messages acknowledged", "metrics.messages_acked", 0);
    plain("messages_delivered", "messages shown to another participant",
          "metrics.messages_delivered", 0);
    plain("displays", "displays to recipients", "metrics.displays", 0);
    m->push_back(
        {"store_requests_per_sent", "store requests per sent message", 0,
         [](const json& r) { return PerSent(r, {"metrics.store_requests"}, "store_requests"); }});
    m->push_back(
        {"store_writes_per_sent", "messages stored per sent message", 0,
         [](const json& r) { return PerSent(r, {"metrics.store_writes"}, "store_writes"); }});
    m->push_back({"forward_requests_per_sent", "inter-server requests made per sent message", 0,
                  [](const json& r) {
                    return PerSent(r, {"metrics.forward_batches", "metrics.broker_publishes"},
                                   "forward_requests");
                  }});
    m->push_back(
        {"notifications_per_sent", "push notifications per sent message", 0,
         [](const json& r) { return PerSent(r, {"metrics.notifications"}, "notifications"); }});
    for (const auto& [name, label, sim_kind, real_kind] :
         std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
             {"faults_lost", "node messages lost (faults.loss)", "loss", "lost"},
             {"faults_duplicated", "node messages duplicated", "duplicate", "duplicated"},
             {"faults_delayed", "node messages delayed", "delay", "delayed"},
             {"faults_cut", "node messages cut by partitions", "partition_drop", "cut"}}) {
      m->push_back({name, label, 0,
                    [s = sim_kind, r = real_kind](const json& j) { return FaultCount(j, s, r); }});
    }
    plain("catchups", "catch-up reads (GetMessages) by clients", "metrics.catchups", 0);
    plain("gaps_detected", "gaps detected by clients (prev_msg_id)", "metrics.gaps_detected", 0);
    plain("retries", "client resends", "metrics.retries", 0);
    for (const auto& [kind, words] : {std::pair<std::string, std::string>{"ack", "send to ack"},
                                      {"end_to_end", "send to first shown to another"}}) {
      const std::string base =
          kind == "ack" ? "metrics.ack_latency." : "metrics.end_to_end_latency.";
      // The tolerances: p50 within 25%, p99 within 50%.
      plain(kind + "_p50_ms", words + ", p50 (ms)", base + "p50_ms", 0.25);
      plain(kind + "_p95_ms", words + ", p95 (ms)", base + "p95_ms", 0);
      plain(kind + "_p99_ms", words + ", p99 (ms)", base + "p99_ms", 0.5);
      plain(kind + "_mean_ms", words + ", mean (ms)", base + "mean_ms", 0);
    }
    return m;
  }();
  return *metrics;
}

using Column = std::vector<std::optional<double>>;  // entry k: seed k

Column Values(const std::vector<std::optional<json>>& side, const MetricDef& m) {
  Column c;
  for (const auto& r : side) c.push_back(r ? m.get(*r) : std::nullopt);
  return c;
}

Stat Of(const Column& c) {
  std::vector<double> v;
  for (const auto& x : c) {
    if (x) v.push_back(*x);
  }
  return Summarize(v);
}

std::string MeanCi(const Stat& s) {
  if (s.n == 0) return "n/a";
  // Equal values give a half-width of rounding noise (1e-16): it is 0.
  const double ci = s.ci95 <= 1e-9 * std::fabs(s.mean) ? 0 : s.ci95;
  return s.n < 2 ? Num(s.mean) : absl::StrCat(Num(s.mean), " ± ", Num(ci));
}

// One tolerance check: real against the calibrated simulator on a metric.
struct Check {
  const MetricDef* metric;
  Paired paired;  // a = real, b = sim
  bool within = false;
  // The seed whose removal alone flips the verdict (0: none does), and the ratio without it.
  uint64_t fragile_seed = 0;
  double ratio_without = 0;
};

// Whether dropping one seed flips a tolerance verdict: the first seed that does, if any.
void LeaveOneOut(Check& c, const Column& real, const Column& sim,
                 const std::vector<uint64_t>& seeds) {
  for (size_t k = 0; k < real.size() && k < seeds.size(); k++) {
    Column r = real, s = sim;
    r[k].reset();
    s[k].reset();
    const std::optional<double> ratio = PairedDiff(r, s).Ratio();
    if (!ratio) continue;
    const bool within = std::fabs(*ratio - 1) <= c.metric->tolerance;
    if (within != c.within) {
      c.fragile_seed = seeds[k];
      c.ratio_without = *ratio;
      return;
    }
  }
}

// The mean percentile curve of a side's runs (percentile k averaged over the runs that have it).
std::vector<double> MeanCurve(const std::vector<std::optional<json>>& side,
                              const std::string& kind) {
  std::vector<double> sum(101, 0);
  int n = 0;
  for (const auto& r : side) {
    if (!r) continue;
    const json* p = &(*r)["metrics"][kind + "_latency"];
    if (!p->contains("percentiles_ms") || (*p)["percentiles_ms"].size() != 101) continue;
    for (size_t k = 0; k < 101; k++) sum[k] += (*p)["percentiles_ms"][k].get<double>();
    n++;
  }
  if (n == 0) return {};
  for (double& v : sum) v /= n;
  return sum;
}

struct Side {
  std::string name;  // "real", "sim", "sim-defaults"
  std::string words;
  const std::vector<std::optional<json>>* runs;
};

// plots/cdf_KIND.svg: the sides' mean curves, latency on a log axis.
std::optional<std::string> DrawCdf(const fs::path& dir, const std::string& kind,
                                   const std::string& title, const std::vector<Side>& sides,
                                   std::string* error) {
  fs::create_directories(dir / "plots");
  const std::string base = "cdf_" + kind;
  std::ofstream dat(dir / "plots" / (base + ".dat"));
  std::vector<std::vector<double>> curves;
  for (const Side& s : sides) curves.push_back(MeanCurve(*s.runs, kind));
  for (size_t i = 0; i < sides.size(); i++) {
    dat << "# " << sides[i].words << "\n";
    for (size_t k = 0; k < curves[i].size(); k++) {
      // A log axis cannot show 0 ms: such a percentile is drawn at 1 us.
      dat << absl::StrFormat("%.6g\t%.2f\n", std::max(curves[i][k], 0.001), k / 100.0);
    }
    dat << "\n\n";
  }
  dat.close();
  std::ofstream gp(dir / "plots" / (base + ".gp"));
  gp << "set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'\n"
     << "set termoption noenhanced\nset output 'plots/" << base << ".svg'\n"
     << "set title '" << title << "'\nset xlabel 'latency (ms, log scale)'\n"
     << "set ylabel 'fraction of messages'\nset grid\nset key below\nset logscale x\n"
     << "set yrange [0:1]\nplot ";
  for (size_t i = 0; i < sides.size(); i++) {
    gp << (i ? ", \\\n     " : "") << "'plots/" << base << ".dat' index " << i
       << " using 1:2 with lines lw 2 title '" << sides[i].words << "'";
  }
  gp << "\n";
  gp.close();
  if (absl::Status st = RunGnuplot(dir, "plots/" + base + ".gp"); !st.ok()) {
    *error = std::string(st.message());
    return std::nullopt;
  }
  return "plots/" + base + ".svg";
}

}  // namespace

int WriteVsRealReport(const VsRealRuns& runs) {
  const fs::path dir(runs.dir);
  const bool calibrated = !runs.calibration.empty();
  std::vector<Side> sides{{"real", "real cluster", &runs.real}};
  if (calibrated) sides.push_back({"sim", "simulator, calibrated", &runs.sim});
  sides.push_back({"sim-defaults", "simulator, scenario as written", &runs.sim_defaults});
  const std::vector<std::optional<json>>& sim = calibrated ? runs.sim : runs.sim_defaults;
  const size_t n = runs.seeds.size();

  // data.csv: one row per (side, seed).
  {
    std::ofstream csv(dir / "data.csv");
    csv << "side,seed";
    for (const MetricDef& m : Metrics()) csv << "," << m.name;
    csv << "\n";
    for (const Side& s : sides) {
      for (size_t k = 0; k < n; k++) {
        csv << s.name << "," << runs.seeds[k];
        for (const MetricDef& m : Metrics()) {
          const std::optional<double> v = (*s.runs)[k] ? m.get(*(*s.runs)[k]) : std::nullopt;
          csv << "," << (v ? absl::StrFormat("%.9g", *v) : "");
        }
        csv << "\n";
      }
    }
  }
  {
    std::ofstream csv(dir / "calibration.csv");
    csv << "key,value,formula,inputs\n";
    for (const CalibratedKey& c : runs.calibration) {
      csv << c.key << "," << absl::StrFormat("%.9g", c.value) << ",\"" << c.formula << "\",\""
          << absl::StrReplaceAll(c.inputs, {{"\"", "'"}}) << "\"\n";
    }
  }
  {
    std::ofstream csv(dir / "cdf.csv");
    csv << "side,latency,percentile,ms\n";
    for (const Side& s : sides) {
      for (const char* kind : {"ack", "end_to_end"}) {
        const std::vector<double> c = MeanCurve(*s.runs, kind);
        for (size_t k = 0; k < c.size(); k++) {
          csv << s.name << "," << kind << "," << k << "," << absl::StrFormat("%.6g", c[k]) << "\n";
        }
      }
    }
  }

  // The comparison.
  std::vector<Check> checks;
  std::map<std::string, Paired> paired;
  for (const MetricDef& m : Metrics()) {
    const Paired p = PairedDiff(Values(runs.real, m), Values(sim, m));
    paired[m.name] = p;
    if (m.tolerance > 0) {
      const std::optional<double> ratio = p.Ratio();
      Check c{&m, p, ratio && std::fabs(*ratio - 1) <= m.tolerance};
      LeaveOneOut(c, Values(runs.real, m), Values(sim, m), runs.seeds);
      checks.push_back(c);
    }
  }
  int violated_real = 0, violated_sim = 0, kills = 0;
  for (const auto& r : runs.real) {
    if (r && !(*r)["invariants"].value("ok", false)) violated_real++;
    if (r && r->contains("nemesis")) {
      for (const json& e : (*r)["nemesis"]) kills += e.value("action", "") == "kill -9";
    }
  }
  for (const Side& s : sides) {
    if (s.name == "real") continue;
    for (const auto& r : *s.runs) {
      if (r && !(*r)["invariants"].value("ok", false)) violated_sim++;
    }
  }
  const int held = static_cast<int>(
      std::count_if(checks.begin(), checks.end(), [](const Check& c) { return c.within; }));
  const std::string sim_words = calibrated ? "the calibrated simulator" : "the simulator";

  // The answer, in sentences.
  std::vector<std::string> answer;
  answer.push_back(
      violated_real + violated_sim == 0
          ? absl::StrFormat("Every run held every invariant: %d on the real cluster (with %d kill "
                            "-9 of a chatd process in all) and %d simulated.",
                            n, kills, n * (sides.size() - 1))
          : absl::StrFormat(
                "%d of %d real runs and %d simulated runs broke an invariant "
                "(data.csv, column violations; each run's results.json names the first).",
                violated_real, n, violated_sim));
  int beyond_noise = 0;  // within tolerance, yet a difference the seeds' noise does not explain
  for (const Check& c : checks) {
    const std::optional<double> ratio = c.paired.Ratio();
    if (c.within && c.paired.significant) beyond_noise++;
    answer.push_back(absl::StrFormat(
        "%s: real %s ms against %s %s ms, ratio %s, %s the %.0f%% tolerance (%d seeds; paired "
        "difference %s ms, 95%% CI ± %s, %s the seeds' noise; %s).",
        absl::StrReplaceAll(c.metric->label, {{" (ms)", ""}}), Num(c.paired.mean_a), sim_words,
        Num(c.paired.mean_b), ratio ? Num(*ratio) : "n/a", c.within ? "within" : "OUTSIDE",
        c.metric->tolerance * 100, c.paired.n, Num(c.paired.diff), Num(c.paired.ci95),
        c.paired.significant ? "beyond" : "within",
        c.fragile_seed == 0
            ? "no single seed's removal changes the verdict"
            : absl::StrFormat("without seed %d the ratio is %s and the verdict changes",
                              c.fragile_seed, Num(c.ratio_without))));
  }
  {
    const Paired& sent = paired["messages_sent"];
    const Paired& store = paired["store_requests_per_sent"];
    const Paired& fwd = paired["forward_requests_per_sent"];
    answer.push_back(absl::StrFormat(
        "Counts: the real runs sent %s messages on average against %s simulated; per sent "
        "message the real cluster made %s store requests against %s and %s inter-server "
        "requests against %s.",
        Num(sent.mean_a), Num(sent.mean_b), store.n ? Num(store.mean_a) : "n/a",
        store.n ? Num(store.mean_b) : "n/a", fwd.n ? Num(fwd.mean_a) : "n/a",
        fwd.n ? Num(fwd.mean_b) : "n/a"));
  }
  if (calibrated) {
    const Stat before = Of(Values(runs.sim_defaults, *checks[0].metric));
    answer.push_back(absl::StrFormat(
        "Calibration (the loopback round trip for the links, chatd's mean commit for the fsync, "
        "chatd's CPU per message for the CPU speed) moved the simulated ack p50 from %s ms, with "
        "the scenario's network and costs, to %s ms.",
        Num(before.mean), Num(checks[0].paired.mean_b)));
  }
  // High only when every check holds and no single seed's removal would change a verdict.
  const int fragile = static_cast<int>(std::count_if(
      checks.begin(), checks.end(), [](const Check& c) { return c.fragile_seed != 0; }));
  const std::string confidence =
      static_cast<int>(n) < kSeedsMin
          ? "low"
          : (held == static_cast<int>(checks.size()) && fragile == 0 ? "high" : "medium");
  const std::string confidence_why = absl::StrFormat(
      "%d seeds per side%s; %d of %d latency checks within tolerance%s%s", n,
      static_cast<int>(n) < kSeedsMin ? absl::StrFormat(" (under the %d a report needs)", kSeedsMin)
                                      : "",
      held, checks.size(),
      fragile > 0 ? absl::StrFormat(", %d of them changed by removing a single seed", fragile) : "",
      beyond_noise > 0
          ? absl::StrFormat(", %d within tolerance yet beyond the seeds' noise", beyond_noise)
          : "");

  // Plots.
  std::vector<std::pair<std::string, std::string>> plots;  // title, svg
  std::string plot_error;
  for (const auto& [kind, title] : {std::pair<std::string, std::string>{"ack", "Send to ack"},
                                    {"end_to_end", "Send to first shown to another participant"}}) {
    const std::string t = title + ": CDF, mean percentile curve over the seeds";
    if (auto svg = DrawCdf(dir, kind, t, sides, &plot_error)) plots.push_back({t, *svg});
  }

  // The measurements behind the differences.
  const auto real_mean = [&](const std::string& path) {
    std::vector<double> v;
    for (const auto& r : runs.real) {
      if (r) {
        if (auto x = At(*r, path)) v.push_back(*x);
      }
    }
    return Summarize(v);
  };
  const Stat server_ack = real_mean("metrics.server.server_ack_ms");
  const Stat server_ack_p99 = real_mean("metrics.server.server_ack_p99_ms_at_most");
  const Stat commit = real_mean("metrics.server.commit_ms");
  const Stat commit_p99 = real_mean("metrics.server.commit_p99_ms_at_most");
  const Stat rtt = real_mean("metrics.loopback_rtt.p50_ms");
  int beyond = 0;  // runs whose p99 bound is past the histogram (null in results.json)
  for (const auto& r : runs.real) {
    if (!r || !r->contains("metrics") || !(*r)["metrics"].contains("server")) continue;
    const json& sv = (*r)["metrics"]["server"];
    for (const char* k : {"commit_p99_ms_at_most", "server_ack_p99_ms_at_most"}) {
      beyond += sv.contains(k) && sv[k].is_null();
    }
  }
  std::vector<std::string> why;
  const CalibratedKey* cpu = nullptr;
  for (const CalibratedKey& c : runs.calibration) {
    if (c.key == "cost.cpu_speed_factor") cpu = &c;
  }
  why.push_back(absl::StrCat(
      "CPU. ",
      cpu != nullptr
          ? absl::StrFormat("%s. chatd's JSON codec, WebSocket framing, HTTP between processes, "
                            "SQLite's work and the hand-offs between its threads are the "
                            "difference; the calibration divides every simulated cost by %.3g "
                            "(cost.cpu_speed_factor), which assumes chatd's overhead falls on its "
                            "operations in the proportions the core's costs do. SQLite's CPU is "
                            "in chatd's; the commit's time is also cost.fsync_ms, so a commit's "
                            "CPU counts twice on the simulated side (a small part of a send: "
                            "the store's costs are a few tens of microseconds at factor 1).",
                            cpu->inputs, cpu->value)
          : "chatd's CPU was not calibrated (no calibration, or a run without its counters).",
      absl::StrFormat(" Inside chatd a send takes %s ms on average from the frame's arrival to its "
                      "ack being queued (chatd_send_ack_latency_seconds), %s ms of it the SQLite "
                      "commit (chatd_storage_commit_latency_seconds); the loopback round trip "
                      "is %s ms.",
                      Num(server_ack.mean), Num(commit.mean), Num(rtt.mean))));
  {
    // Which tails are longer on which side (ratio real / sim of p95 and p99).
    std::vector<std::string> real_longer, sim_longer;
    for (const char* name :
         {"ack_p95_ms", "ack_p99_ms", "end_to_end_p95_ms", "end_to_end_p99_ms"}) {
      const std::optional<double> r = paired[name].Ratio();
      if (!r) continue;
      const std::string words =
          absl::StrFormat("%s %s", absl::StrContains(name, "ack") ? "ack" : "end-to-end",
                          absl::StrContains(name, "p95") ? "p95" : "p99");
      (*r >= 1 ? real_longer : sim_longer)
          .push_back(absl::StrFormat("%s (ratio %s)", words, Num(*r)));
    }
    why.push_back(absl::StrCat(
        "Tails. ",
        real_longer.empty()
            ? ""
            : absl::StrFormat(
                  "The real tail is the longer on %s. The simulated disk commits in a constant "
                  "cost.fsync_ms; chatd's commits vary: their p99 was at most %s ms (the bucket "
                  "of chatd's histogram holding 99%%, mean over the runs) against a mean of %s "
                  "ms, and a send's p99 inside chatd at most %s ms against a mean of %s ms%s. "
                  "That variance, and queueing for this machine's %d cores (the clients and "
                  "every process share them), lengthen the real tail; the simulator (a core per "
                  "node, constant costs) has neither. ",
                  absl::StrJoin(real_longer, ", "), Num(commit_p99.mean), Num(commit.mean),
                  Num(server_ack_p99.mean), Num(server_ack.mean),
                  beyond > 0 ? absl::StrFormat(" (%d runs whose p99 passed the histogram's last "
                                               "bound, 10 s, are not in these means)",
                                               beyond)
                             : "",
                  std::max(1u, std::thread::hardware_concurrency())),
        sim_longer.empty()
            ? ""
            : absl::StrFormat(
                  "The simulated tail is the longer on %s: there the tail is set by the faults "
                  "both sides play (the crash and its reconnects, lost messages and their "
                  "retries and catch-ups), on the simulator's timing of them, and the real "
                  "cluster's recovery was the quicker.",
                  absl::StrJoin(sim_longer, ", "))));
  }
  {
    const Paired& lost = paired["faults_lost"];
    const Paired& cut = paired["faults_cut"];
    const Paired& dup = paired["faults_duplicated"];
    const Paired& delayed = paired["faults_delayed"];
    if (lost.mean_a + lost.mean_b + cut.mean_a + cut.mean_b + dup.mean_a + dup.mean_b +
            delayed.mean_a + delayed.mean_b >
        0) {
      std::string notes;
      for (const auto& r : runs.real) {
        if (r && r->contains("network")) {
          for (const json& n : (*r)["network"]["notes"]) {
            absl::StrAppend(&notes, " ", n.get<std::string>(), ".");
          }
          break;
        }
      }
      why.push_back(absl::StrFormat(
          "Network faults. Per run the simulator lost %s node messages, cut %s, duplicated %s "
          "and delayed %s; the real nemesis (a proxy on the links between processes) lost %s, "
          "cut %s, duplicated %s and delayed %s%s. It reaches only messages between processes:%s",
          Num(lost.mean_b), Num(cut.mean_b), Num(dup.mean_b), Num(delayed.mean_b), Num(lost.mean_a),
          Num(cut.mean_a), Num(dup.mean_a), Num(delayed.mean_a),
          runs.delay_ms_max == 0 ? " (the simulator's delays are of 0 ms here: "
                                   "faults.delay_ms_max = 0, nothing for the real side to play)"
                                 : "",
          notes.empty() ? " here the real side had no network fault to play." : notes));
    }
  }
  why.push_back(
      "Same seed, not the same draws: the player draws each user's sessions and sends from "
      "streams of its own, the simulator draws a client host's users from one stream in event "
      "order (docs/sim-vs-real.md). The workloads agree in distribution, not run by run, so the "
      "pairing by seed is nominal and counts such as messages sent differ by their sampling "
      "error.");
  if (kills > 0) {
    why.push_back(
        "A crash of chat server 0 or of a service is a kill of all of process 1 (the store and "
        "every service live there in chatd's embedded default), where the simulator crashes one "
        "node; a kill of another process is the simulator's crash of that chat server.");
  }

  // The version that made the runs: the simulator's results say it (chatplay is the same build).
  std::string runs_version = "unknown";
  for (const auto& r : runs.sim_defaults) {
    if (r) {
      runs_version = r->value("chatlab_version", "unknown");
      break;
    }
  }

  // report.md
  std::string md =
      absl::StrCat("# The simulator against a real chatd cluster: ", runs.scenario_name,
                   "\n\n**Question.** Run the same scenario in the simulator and on "
                   "a real chatd cluster on this machine: do the invariant verdicts "
                   "agree, and does the simulator, calibrated on this machine, "
                   "predict the real counts and latencies (p50 within 25%, p99 "
                   "within 50%)?\n\n**Answer.**\n\n");
  for (const std::string& a : answer) absl::StrAppend(&md, "* ", a, "\n");
  if (!runs.sets.empty()) {
    absl::StrAppend(&md, "\nBoth sides ran the scenario with `", absl::StrJoin(runs.sets, "`, `"),
                    "` (what a real cluster on one machine cannot play yet is set off on both "
                    "sides alike; docs/sim-vs-real.md).\n");
  }
  absl::StrAppend(&md, "\n**How sure:** ", confidence, " (", confidence_why,
                  "). Each figure is a mean over the seeds of that run's value, ± the 95% "
                  "confidence half-width (Student's t); the ratio is real over simulated.\n\n");
  absl::StrAppend(&md, "## Side by side\n\n| metric |");
  for (const Side& s : sides) absl::StrAppend(&md, " ", s.words, " |");
  absl::StrAppend(&md, " real / sim | tolerance |\n| --- |");
  for (size_t i = 0; i < sides.size(); i++) absl::StrAppend(&md, " --- |");
  absl::StrAppend(&md, " --- | --- |\n");
  std::string html_rows;
  for (const MetricDef& m : Metrics()) {
    const Paired& p = paired[m.name];
    const std::optional<double> ratio = p.Ratio();
    std::string tol = "";
    if (m.tolerance > 0) {
      tol = absl::StrFormat("%.0f%%: %s", m.tolerance * 100,
                            ratio && std::fabs(*ratio - 1) <= m.tolerance ? "within" : "OUTSIDE");
    }
    absl::StrAppend(&md, "| ", m.label, " |");
    absl::StrAppend(&html_rows, "<tr><td>", HtmlEscape(m.label), "</td>");
    for (const Side& s : sides) {
      const std::string cell = MeanCi(Of(Values(*s.runs, m)));
      absl::StrAppend(&md, " ", cell, " |");
      absl::StrAppend(&html_rows, "<td>", HtmlEscape(cell), "</td>");
    }
    const std::string r = ratio ? Num(*ratio) : "n/a";
    absl::StrAppend(&md, " ", r, " | ", tol, " |\n");
    absl::StrAppend(&html_rows, "<td>", r, "</td><td>", HtmlEscape(tol), "</td></tr>\n");
  }
  absl::StrAppend(&md,
                  "\nPer-message counts of the real cluster come from chatd's own counters "
                  "(the core's Stats, the names the simulator sums), read before each kill "
                  "and at the end; `n/a` where a run could not read them.\n\n## Latency "
                  "distributions\n\n");
  for (const auto& [title, svg] : plots) absl::StrAppend(&md, "![", title, "](", svg, ")\n\n");
  if (!plot_error.empty()) absl::StrAppend(&md, "(no plots: ", plot_error, ")\n\n");
  absl::StrAppend(&md,
                  "cdf.csv holds the curves: percentile k of each run, averaged over the "
                  "runs.\n\n## Calibration\n\n");
  if (!calibrated) {
    absl::StrAppend(&md, "None (--no-calibrate): the simulator ran the scenario as written.\n\n");
  } else {
    absl::StrAppend(&md, "| key | value | formula | inputs |\n| --- | --- | --- | --- |\n");
    for (const CalibratedKey& c : runs.calibration) {
      absl::StrAppend(&md, "| `", c.key, "` | ", absl::StrFormat("%.5g", c.value), " | `",
                      c.formula, "` | ", c.inputs, " |\n");
    }
    absl::StrAppend(&md,
                    "\nA simulated route crosses two links (the sender's and the "
                    "receiver's), so a quarter of the round trip on each makes every "
                    "one-way trip half of it. The CPU speed scales every cost of "
                    "docs/cost-model.md (benchmarked in-process on the core) by one factor, "
                    "so that the simulated CPU per sent message is chatd's. Nothing is fitted "
                    "to the latencies the checks judge, but the calibration is measured on the "
                    "same real runs the checks compare against (in-sample): a scenario's "
                    "prediction for another machine needs that machine's calibration.\n\n");
  }
  absl::StrAppend(&md, "## Where they differ, and why\n\n");
  for (const std::string& w : why) absl::StrAppend(&md, "* ", w, "\n");
  int recomputed = 0;  // real runs whose results.json was corrected from their history
  for (const auto& r : runs.real) {
    recomputed += r && (*r)["metrics"].contains("messages_delivered_note");
  }
  absl::StrAppend(
      &md, "\n## How this was made\n\n```sh\n", runs.command, "\n```\n\nSeeds ", runs.seeds.front(),
      " to ", runs.seeds.back(),
      "; for each, `chatplay --launch` on a fresh cluster, then `chatlab run` (",
      calibrated ? "with and without the calibration" : "as written",
      "). Real runs one at a time; each run's files are under real/, sim/ and "
      "sim-defaults/ (not committed). Runs made by ChatLab ",
      runs_version, ", this report written by ", ChatlabVersion(), ".",
      recomputed > 0 ? absl::StrFormat(" In %d real runs messages_delivered was recomputed "
                                       "after the runs, from their recorded histories by "
                                       "history_check (the play had counted the measurement "
                                       "window only; each results.json says so).",
                                       recomputed)
                     : "",
      "\n\nThe scenario (", runs.scenario_path, "):\n\n```toml\n", runs.scenario_text, "```\n");
  std::ofstream(dir / "report.md") << md;

  // report.html: the same content.
  std::string h = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sim against real: ",
      HtmlEscape(runs.scenario_name),
      "</title><style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em "
      "auto;padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;font-size:"
      "0.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f0f0f0}"
      "</style></head><body>\n<h1>The simulator against a real chatd cluster: ",
      HtmlEscape(runs.scenario_name), "</h1>\n<h2>Answer</h2><ul>");
  for (const std::string& a : answer) absl::StrAppend(&h, "<li>", HtmlEscape(a), "</li>");
  absl::StrAppend(&h, "</ul><p><b>How sure:</b> ", HtmlEscape(confidence), " (",
                  HtmlEscape(confidence_why),
                  ")</p>\n<h2>Side by side</h2><table><tr><th>metric</th>");
  for (const Side& s : sides) absl::StrAppend(&h, "<th>", HtmlEscape(s.words), "</th>");
  absl::StrAppend(&h, "<th>real / sim</th><th>tolerance</th></tr>\n", html_rows, "</table>\n");
  for (const auto& [title, svg] : plots) {
    absl::StrAppend(&h, "<h3>", HtmlEscape(title), "</h3><img src=\"", svg, "\" alt=\"",
                    HtmlEscape(title), "\">\n");
  }
  absl::StrAppend(&h, "<h2>Calibration</h2><ul>");
  for (const CalibratedKey& c : runs.calibration) {
    absl::StrAppend(&h, "<li><code>", c.key, " = ", absl::StrFormat("%.5g", c.value),
                    "</code>: ", HtmlEscape(c.formula), "; ", HtmlEscape(c.inputs), "</li>");
  }
  absl::StrAppend(&h, "</ul><h2>Where they differ, and why</h2><ul>");
  for (const std::string& w : why) absl::StrAppend(&h, "<li>", HtmlEscape(w), "</li>");
  absl::StrAppend(&h, "</ul><h2>How this was made</h2><pre>", HtmlEscape(runs.command),
                  "</pre><pre>", HtmlEscape(runs.scenario_text), "</pre></body></html>\n");
  std::ofstream(dir / "report.html") << h;

  // summary.json, for `chatlab index`.
  json summary{{"name", dir.filename().string()},
               {"question",
                absl::StrCat("On the ", runs.scenario_name,
                             " scenario, does the simulator, calibrated on this machine, predict "
                             "what a real chatd cluster does: the same invariant verdicts, "
                             "counts, and latencies (p50 within 25%, p99 within 50%)?")},
               {"answer", answer},
               {"confidence", confidence},
               {"confidence_why", confidence_why},
               {"seeds", n},
               {"seeds_min", kSeedsMin},
               {"checks", checks.size()},
               {"check_failures", static_cast<int>(checks.size()) - held},
               {"checks_outside_ci", beyond_noise},
               {"violations", violated_real + violated_sim},
               {"defects", 0},
               {"quick", false},
               {"claims", json::array()}};
  std::ofstream(dir / "summary.json") << summary.dump(2) << "\n";
  std::cout << "\n"
            << absl::StrJoin(answer, "\n") << "\nhow sure: " << confidence << " (" << confidence_why
            << ")\n";
  return violated_real + violated_sim;
}

}  // namespace chatlab::sim::lab
