#include "sim/lab/sweep_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "sim/lab/sweep.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::optional<double> MetricValue(const json& results, const std::string& path) {
  const size_t slash = path.find(" / ");
  if (slash != std::string::npos) {
    auto a = MetricValue(results, path.substr(0, slash));
    auto b = MetricValue(results, path.substr(slash + 3));
    if (!a || !b || *b == 0) return std::nullopt;  // undefined: the run is left out
    return *a / *b;
  }
  const json* cur = &results;
  const json* parent = nullptr;
  for (absl::string_view seg : absl::StrSplit(path, '.')) {
    parent = cur;
    const std::string key(seg);
    if (cur->is_object()) {
      auto it = cur->find(key);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else if (cur->is_array()) {
      const json* found = nullptr;
      for (const json& e : *cur) {
        if (e.is_object() && e.contains("node") && e["node"] == key) found = &e;
      }
      if (found == nullptr) return std::nullopt;
      cur = found;
    } else {
      return std::nullopt;
    }
  }
  // A distribution with no samples ({"count": 0, "p50_ms": 0, ...}) has no mean nor
  // percentiles: the run is left out rather than averaged in as 0 ms.
  if (parent != nullptr && parent->is_object() && parent->contains("count") &&
      (*parent)["count"] == 0 && !absl::EndsWith(path, ".count")) {
    return std::nullopt;
  }
  if (cur->is_number()) return cur->get<double>();
  if (cur->is_boolean()) return cur->get<bool>() ? 1.0 : 0.0;
  return std::nullopt;
}

namespace {

// A numeric field of a [[faults.crash]], [[faults.pause]] or [[faults.clock]] entry:
// "faults.crash.0.restart_s", "faults.pause.0.resume_s" (by index), "faults.clock.server:1.skew_ms" (by the entry's node: the last entry naming
// exactly that node; none means that node's clock is true: skew, drift and step 0).
std::optional<double> FaultNumber(const Scenario& s, const std::string& key) {
  const std::vector<std::string> parts = absl::StrSplit(key, '.');
  if (parts.size() != 4 || parts[0] != "faults") return std::nullopt;
  const std::string& sel = parts[2];
  const std::string& field = parts[3];
  size_t index = 0;
  const bool by_index = absl::SimpleAtoi(sel, &index);
  if (parts[1] == "crash") {
    if (!by_index || index >= s.crashes.size()) return std::nullopt;
    const CrashSpec& c = s.crashes[index];
    if (field == "at_s") return c.at_s;
    if (field == "restart_s") return c.restart_s;
    if (field == "torn_write") return c.torn_write ? 1.0 : 0.0;
    return std::nullopt;
  }
  if (parts[1] == "pause") {
    if (!by_index || index >= s.pauses.size()) return std::nullopt;
    const PauseSpec& p = s.pauses[index];
    if (field == "at_s") return p.at_s;
    if (field == "resume_s") return p.resume_s;
    return std::nullopt;
  }
  if (parts[1] != "clock") return std::nullopt;
  ClockSpec c;  // a true clock
  if (by_index) {
    if (index >= s.clocks.size()) return std::nullopt;
    c = s.clocks[index];
  } else {
    for (const ClockSpec& e : s.clocks) {
      if (e.node == sel) c = e;
    }
  }
  if (field == "skew_ms") return c.skew_ms;
  if (field == "drift_ppm") return c.drift_ppm;
  if (field == "step_at_s") return c.step_at_s;
  if (field == "step_ms") return c.step_ms;
  return std::nullopt;
}

}  // namespace

std::optional<double> ScenarioNumber(const Scenario& s, const std::string& key) {
  if (key.rfind("faults.", 0) == 0) {
    if (auto v = FaultNumber(s, key)) return v;
  }
  for (const KeyValue& kv : KeyValues(s)) {
    if (kv.key != key) continue;
    if (auto* i = std::get_if<int64_t>(&kv.value)) return static_cast<double>(*i);
    if (auto* d = std::get_if<double>(&kv.value)) return *d;
    if (auto* b = std::get_if<bool>(&kv.value)) return *b ? 1.0 : 0.0;
    return std::nullopt;
  }
  return std::nullopt;
}

Stat SweepData::At(size_t point, const std::string& metric) const {
  std::vector<double> v;
  for (const json& r : runs[point]) {
    if (auto x = MetricValue(r, metric)) v.push_back(*x);
  }
  return Summarize(v);
}

size_t SweepData::SeedsMin() const {
  size_t n = seeds.size();
  for (const auto& r : runs) n = std::min(n, r.size());
  return n;
}

size_t SweepData::SeedsMax() const {
  size_t n = 0;
  for (const auto& r : runs) n = std::max(n, r.size());
  return n;
}

std::vector<std::optional<double>> SweepData::BySeed(size_t point,
                                                     const std::string& metric) const {
  std::vector<std::optional<double>> v(seeds.size());
  for (size_t k = 0; k < runs[point].size(); k++) v[k] = MetricValue(runs[point][k], metric);
  return v;
}

absl::StatusOr<SweepData> LoadSweep(const std::string& dir) {
  SweepData d;
  d.dir = dir;
  std::ifstream in(fs::path(dir) / "sweep.json");
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(dir, "/sweep.json: not found (is this a `chatlab sweep` directory?)"));
  }
  d.manifest = json::parse(in, nullptr, false);
  if (d.manifest.is_discarded() || !d.manifest.contains("scenario_text")) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/sweep.json: not a sweep manifest"));
  }
  // The report reads the scenario the sweep ran, as recorded, not today's file.
  const fs::path scenario_copy = fs::path(dir) / "scenario.toml";
  std::ofstream(scenario_copy) << d.manifest["scenario_text"].get<std::string>();
  auto spec = LoadExperiment(scenario_copy.string(), d.manifest.value("quick", false),
                             d.manifest.value("vary", std::vector<std::string>{}));
  if (!spec.ok()) return spec.status();
  d.spec = *spec;
  d.spec.scenario_path = d.manifest["scenario_file"].get<std::string>();
  d.points = Grid(d.spec);
  for (const auto& s : d.manifest["seeds"]) d.seeds.push_back(s.get<uint64_t>());
  // A sequential sweep records how many seeds each point ran; otherwise every point ran all.
  std::vector<size_t> counts(d.points.size(), d.seeds.size());
  if (d.manifest.value("seeds_min", 0) > 0) {
    std::ifstream in(fs::path(dir) / "seeds_run.json");
    const json run = json::parse(in, nullptr, false);
    if (run.is_discarded() || !run.contains("seeds_per_point") ||
        run["seeds_per_point"].size() != d.points.size()) {
      return absl::NotFoundError(absl::StrCat(
          dir, "/seeds_run.json: missing or stale; finish the sequential sweep first (rerun the "
               "same `chatlab sweep`, it resumes)"));
    }
    for (size_t i = 0; i < counts.size(); i++) {
      counts[i] = std::min(d.seeds.size(), run["seeds_per_point"][i].get<size_t>());
    }
    d.sequential_rule = run.value("rule", "");
  }
  auto base = LoadScenario(scenario_copy.string());
  if (!base.ok()) return base.status();
  for (const std::string& set : d.spec.sets) (void)ApplyOverride(*base, set);
  for (size_t i = 0; i < d.points.size(); i++) {
    Scenario s = *base;
    for (const auto& [k, v] : d.points[i]) {
      for (absl::string_view key : absl::StrSplit(k, ',')) {
        (void)ApplyOverride(s, absl::StrCat(key, "=", v));
      }
    }
    ScaleServers(s);
    d.scenarios.push_back(s);
    std::vector<json> runs;
    for (size_t k = 0; k < counts[i]; k++) {
      const uint64_t seed = d.seeds[k];
      const fs::path p = fs::path(dir) / "runs" / RunId(i, seed) / "results.json";
      std::ifstream r(p);
      if (!r) {
        return absl::NotFoundError(absl::StrCat(
            p.string(), ": missing; finish the sweep first (rerun the same `chatlab sweep`, it "
                        "resumes)"));
      }
      json j = json::parse(r, nullptr, false);
      if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(p.string(), ": not JSON"));
      runs.push_back(std::move(j));
    }
    d.runs.push_back(std::move(runs));
  }
  return d;
}

}  // namespace chatlab::sim::lab
