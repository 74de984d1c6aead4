#include "sim/lab/analyses.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/lab/check_builder.h"

namespace chatlab::sim::lab {

double Check::RelativeError() const {
  if (analytic == 0) return simulated == 0 ? 0 : 1e9;
  return std::fabs(simulated - analytic) / std::fabs(analytic);
}

Vars Check::Values() const {
  Vars v;
  for (const CheckInput& in : inputs) v[in.name] = in.value;
  return v;
}

std::string Check::InputsText() const {
  std::vector<std::string> parts;
  for (const CheckInput& in : inputs) {
    parts.push_back(absl::StrFormat("%s = %.6g (%s, p%03d)", in.name, in.value, in.column,
                                    static_cast<int>(in.point)));
  }
  return absl::StrJoin(parts, "; ");
}

void CheckColumns(const Analysis& a, std::vector<std::string>* metrics,
                  std::vector<std::string>* params) {
  for (const Check& c : a.checks) {
    for (const CheckInput& in : c.inputs) {
      std::vector<std::string>* into = in.is_param ? params : metrics;
      if (std::find(into->begin(), into->end(), in.column) == into->end()) {
        into->push_back(in.column);
      }
    }
  }
  for (const std::string& key : a.finding_params) {
    if (std::find(params->begin(), params->end(), key) == params->end()) params->push_back(key);
  }
}

Analysis RunAnalysis(const std::string& name, const SweepData& data) {
  using namespace analyses_internal;
  using Fn = void (*)(const SweepData&, Analysis&);
  static const std::map<std::string, Fn> kAnalyses = {
      {"capacity", &Capacity}, {"db-writes", &DbWrites}, {"failover", &Failover},
      {"forwarding", &Forwarding}, {"groups", &Groups}, {"ids", &Ids},
      {"offline", &Offline}, {"presence", &Presence}};
  Analysis a;
  if (name.empty()) {
    a.note = "This sweep declares no analysis.";
  } else if (auto it = kAnalyses.find(name); it != kAnalyses.end()) {
    it->second(data, a);
  } else {
    a.note = absl::StrCat("Unknown analysis '", name, "': no validation was run.");
  }
  return a;
}

}  // namespace chatlab::sim::lab
