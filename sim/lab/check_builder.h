// CheckBuilder and the helpers every analysis shares (internal to sim/lab/analyses*.cc).
#ifndef CHATLAB_SIM_LAB_CHECK_BUILDER_H_
#define CHATLAB_SIM_LAB_CHECK_BUILDER_H_

#include <cassert>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "sim/lab/analyses.h"

namespace chatlab::sim::lab::analyses_internal {

// E[f(U)] for U uniform over [lo, lo + width], by the midpoint rule on kMeanSteps points (exact
// enough for the smooth and step functions the checks average).
inline constexpr int kMeanSteps = 1000;
template <typename F>
double MeanOverUniform(double lo, double width, F f) {
  double sum = 0;
  for (int k = 0; k < kMeanSteps; k++) sum += f(lo + width * (k + 0.5) / kMeanSteps);
  return sum / kMeanSteps;
}

inline std::string Label(const SweepData& d, size_t i) {
  std::vector<std::string> parts;
  for (const Axis& a : d.spec.axes) parts.push_back(ValueWords(d.spec, a.key, d.points[i].at(a.key)));
  return parts.empty() ? "all" : absl::StrJoin(parts, ", ");
}

// Builds one check: each input is read from the sweep exactly as data.csv will hold it.
class CheckBuilder {
 public:
  CheckBuilder(const SweepData& d, size_t point, std::string name, std::string formula,
               double tolerance = 0.10, std::string tolerance_why = "")
      : d_(d), point_(point) {
    check_.name = std::move(name);
    check_.formula = std::move(formula);
    check_.point = Label(d, point);
    check_.tolerance = tolerance;
    check_.tolerance_why = std::move(tolerance_why);
  }
  // A measured metric (mean over the point's seeds) as symbol `sym`.
  double Metric(const std::string& sym, const std::string& metric) { return Metric(sym, metric, point_); }
  double Metric(const std::string& sym, const std::string& metric, size_t point) {
    const double v = d_.At(point, metric).mean;
    check_.inputs.push_back({sym, metric, false, point, v});
    return v;
  }
  // A scenario key's value at the point as symbol `sym`.
  double Param(const std::string& sym, const std::string& key) { return Param(sym, key, point_); }
  double Param(const std::string& sym, const std::string& key, size_t point) {
    const std::optional<double> v = ScenarioNumber(d_.scenarios[point], key);
    assert(v.has_value() && "a check's parameter must be a numeric scenario key");
    check_.inputs.push_back({sym, key, true, point, v.value_or(0)});
    return v.value_or(0);
  }
  Check Done(std::function<double(const Vars&)> measured, std::function<double(const Vars&)> model) {
    check_.measured = std::move(measured);
    check_.model = std::move(model);
    const Vars v = check_.Values();
    check_.simulated = check_.measured(v);
    check_.analytic = check_.model(v);
    SeedSpread(v);
    return std::move(check_);
  }

 private:
  // check_.sim_ci95 from `measured` on each seed's own metric values.
  void SeedSpread(const Vars& means) {
    std::vector<std::vector<std::optional<double>>> by_seed;
    for (const CheckInput& in : check_.inputs) {
      by_seed.push_back(in.is_param ? std::vector<std::optional<double>>{}
                                     : d_.BySeed(in.point, in.column));
    }
    std::vector<double> per_seed;
    for (size_t k = 0; k < d_.seeds.size(); k++) {
      Vars v = means;
      bool whole = true;
      for (size_t j = 0; j < check_.inputs.size() && whole; j++) {
        if (check_.inputs[j].is_param) continue;
        if (!by_seed[j][k]) whole = false;
        else v[check_.inputs[j].name] = *by_seed[j][k];
      }
      if (whole) per_seed.push_back(check_.measured(v));
    }
    const Stat s = Summarize(per_seed);
    check_.sim_ci95 = s.ci95;
    check_.sim_seeds = s.n;
  }

  const SweepData& d_;
  size_t point_;
  Check check_;
};

inline std::function<double(const Vars&)> Var(const std::string& sym) {
  return [sym](const Vars& v) { return v.at(sym); };
}

// The seconds of one scenario's sending window ([send_start_s, send_end_s or duration_s)).
inline double SendWindow(const Vars& v) {
  const double end = v.at("send_end_s") > 0 ? v.at("send_end_s") : v.at("duration_s");
  return end - v.at("send_start_s");
}
inline void AddSendWindow(CheckBuilder& c) {
  c.Param("duration_s", "scenario.duration_s");
  c.Param("send_start_s", "workload.send_start_s");
  c.Param("send_end_s", "workload.send_end_s");
}
// Mean sends per user per second: send_rate_total_hz / users when set, else send_rate_hz.
inline double SendRate(const Vars& v) {
  return v.at("rate_total") > 0 ? v.at("rate_total") / v.at("users") : v.at("rate");
}
inline void AddSendRate(CheckBuilder& c) {
  c.Param("rate", "workload.send_rate_hz");
  c.Param("rate_total", "workload.send_rate_total_hz");
  c.Param("users", "workload.users");
}


// The experiments' analyses (analyses_traffic.cc, analyses_groups.cc, analyses_users.cc).
void DbWrites(const SweepData& d, Analysis& a);
void Groups(const SweepData& d, Analysis& a);
void Forwarding(const SweepData& d, Analysis& a);
void Capacity(const SweepData& d, Analysis& a);
void Offline(const SweepData& d, Analysis& a);
void Presence(const SweepData& d, Analysis& a);
void Failover(const SweepData& d, Analysis& a);
void Ids(const SweepData& d, Analysis& a);

}  // namespace chatlab::sim::lab::analyses_internal

#endif  // CHATLAB_SIM_LAB_CHECK_BUILDER_H_
