#include "sim/lab/experiment.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sim/scenario.h"

namespace chatlab::sim::lab {
namespace {

std::string Where(const std::string& path, const toml::node& n) {
  return absl::StrCat(path, ":", n.source().begin.line);
}

// A TOML scalar as a --set value.
std::optional<std::string> ScalarText(const toml::node& n) {
  if (auto v = n.value_exact<int64_t>()) return std::to_string(*v);
  if (auto v = n.value_exact<double>()) return absl::StrCat(*v);
  if (auto v = n.value_exact<bool>()) return std::string(*v ? "true" : "false");
  if (auto v = n.value_exact<std::string>()) return *v;
  return std::nullopt;
}

// key may be a linked axis, "a,b": every key it names takes the value.
absl::Status CheckValue(const std::string& where, const std::string& key, const std::string& v) {
  for (absl::string_view k : absl::StrSplit(key, ',')) {
    Scenario s = DefaultScenario();
    absl::Status st = ApplyOverride(s, absl::StrCat(k, "=", v));
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
  }
  return absl::OkStatus();
}

// Adds an axis, or replaces the values of an axis with the same key.
void AddAxis(ExperimentSpec& spec, Axis axis) {
  for (Axis& a : spec.axes) {
    if (a.key == axis.key) {
      a.values = std::move(axis.values);
      return;
    }
  }
  spec.axes.push_back(std::move(axis));
}

// Reads seeds / vary / set of a [sweep] or [sweep.quick] table into spec.
absl::Status ReadSweepTable(const toml::table& t, const std::string& path, const std::string& name,
                            ExperimentSpec& spec) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    const std::string full = absl::StrCat(name, ".", key);
    if (key == "quick" && name == "sweep") continue;
    if (key == "seeds") {
      auto n = v.value_exact<int64_t>();
      if (!n || *n < 1 || *n > kSweepSeedsMax) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, v), ": ", full, ": expected an integer in [1, ", kSweepSeedsMax, "]"));
      }
      spec.seeds = static_cast<int>(*n);
    } else if (key == "set") {
      const toml::array* arr = v.as_array();
      if (arr == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(path, v), ": ", full, ": expected an array of \"key=value\""));
      }
      for (const toml::node& item : *arr) {
        auto s = item.value_exact<std::string>();
        const size_t eq = s ? s->find('=') : std::string::npos;
        if (eq == std::string::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(path, item), ": ", full, ": expected \"key=value\""));
        }
        absl::Status st = CheckValue(Where(path, item), s->substr(0, eq), s->substr(eq + 1));
        if (!st.ok()) return st;
        spec.sets.push_back(*s);
      }
    } else if (key == "vary") {
      const toml::table* vt = v.as_table();
      if (vt == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, v), ": ", full, ": expected a table of \"section.key\" = [values]"));
      }
      for (const auto& [vk, vv] : *vt) {
        const std::string axis_key(vk.str());
        const toml::array* arr = vv.as_array();
        if (arr == nullptr || arr->empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(path, vv), ": ", full, ".\"", axis_key, "\": expected a non-empty array"));
        }
        Axis axis{axis_key, {}};
        for (const toml::node& item : *arr) {
          auto text = ScalarText(item);
          if (!text) {
            return absl::InvalidArgumentError(absl::StrCat(
                Where(path, item), ": ", full, ".\"", axis_key, "\": expected scalar values"));
          }
          absl::Status st = CheckValue(Where(path, item), axis_key, *text);
          if (!st.ok()) return st;
          axis.values.push_back(*text);
        }
        AddAxis(spec, std::move(axis));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": unknown key '", full, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadReport(const toml::table& t, const std::string& path, ExperimentSpec& spec) {
  auto text = [&](const toml::node& v, const std::string& key, std::string* out) {
    auto s = v.value_exact<std::string>();
    if (!s) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": ", key, ": expected a string"));
    }
    *out = *s;
    return absl::OkStatus();
  };
  auto boolean = [&](const toml::node& v, const std::string& key, bool* out) {
    auto b = v.value_exact<bool>();
    if (!b) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": ", key, ": expected a boolean"));
    }
    *out = *b;
    return absl::OkStatus();
  };
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    const std::string full = "report." + key;
    absl::Status st;
    if (key == "question") {
      st = text(v, full, &spec.question);
    } else if (key == "x") {
      st = text(v, full, &spec.x);
    } else if (key == "x_label") {
      st = text(v, full, &spec.x_label);
    } else if (key == "x_log") {
      st = boolean(v, full, &spec.x_log);
    } else if (key == "analysis") {
      st = text(v, full, &spec.analysis);
    } else if (key == "conclusion") {
      const toml::table* ct = v.as_table();
      if (ct == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(Where(path, v), ": ", full,
                                                       ": expected a [report.conclusion] table"));
      }
      for (const auto& [ck, cv] : *ct) {
        const std::string cname(ck.str());
        if (cname == "metric") {
          st = text(cv, full + ".metric", &spec.conclusion_metric);
        } else if (cname == "label") {
          st = text(cv, full + ".label", &spec.conclusion_label);
        } else if (cname == "better") {
          std::string b;
          st = text(cv, full + ".better", &b);
          if (st.ok() && b != "lower" && b != "higher") {
            st = absl::InvalidArgumentError(
                absl::StrCat(Where(path, cv), ": ", full, ".better: expected lower|higher"));
          }
          spec.lower_is_better = b == "lower";
        } else {
          st = absl::InvalidArgumentError(
              absl::StrCat(Where(path, cv), ": unknown key '", full, ".", cname, "'"));
        }
        if (!st.ok()) return st;
      }
    } else if (key == "plot") {
      const toml::array* arr = v.as_array();
      if (arr == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(path, v), ": report.plot: expected [[report.plot]] tables"));
      }
      for (const toml::node& item : *arr) {
        const toml::table* pt = item.as_table();
        if (pt == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(path, item), ": report.plot: each entry must be a table"));
        }
        PlotSpec plot;
        for (const auto& [pk, pv] : *pt) {
          const std::string pname(pk.str());
          const std::string pfull = "report.plot." + pname;
          if (pname == "metric") {
            st = text(pv, pfull, &plot.metric);
          } else if (pname == "title") {
            st = text(pv, pfull, &plot.title);
          } else if (pname == "ylabel") {
            st = text(pv, pfull, &plot.ylabel);
          } else if (pname == "y_log") {
            st = boolean(pv, pfull, &plot.y_log);
          } else {
            st = absl::InvalidArgumentError(
                absl::StrCat(Where(path, pv), ": unknown key '", pfull, "'"));
          }
          if (!st.ok()) return st;
        }
        if (plot.metric.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(path, item), ": report.plot: 'metric' is required"));
        }
        if (plot.title.empty()) plot.title = plot.metric;
        spec.plots.push_back(std::move(plot));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": unknown key '", full, "'"));
    }
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExperimentSpec> LoadExperiment(const std::string& scenario_path, bool quick,
                                              const std::vector<std::string>& vary) {
  auto scenario = LoadScenario(scenario_path);
  if (!scenario.ok()) return scenario.status();
  toml::table root;
  try {
    root = toml::parse(ReadTextFile(scenario_path), scenario_path);
  } catch (const toml::parse_error& err) {
    return absl::InvalidArgumentError(absl::StrCat(scenario_path, ":", err.source().begin.line,
                                                   ": ", std::string(err.description())));
  }
  ExperimentSpec spec;
  spec.scenario_path = scenario_path;
  spec.scenario_name = scenario->name;
  spec.base_seed = scenario->seed;
  if (const toml::table* sweep = root["sweep"].as_table()) {
    absl::Status st = ReadSweepTable(*sweep, scenario_path, "sweep", spec);
    if (!st.ok()) return st;
    if (quick) {
      if (const toml::table* q = (*sweep)["quick"].as_table()) {
        st = ReadSweepTable(*q, scenario_path, "sweep.quick", spec);
        if (!st.ok()) return st;
      }
    }
  }
  if (const toml::table* report = root["report"].as_table()) {
    absl::Status st = ReadReport(*report, scenario_path, spec);
    if (!st.ok()) return st;
  }
  for (const std::string& v : vary) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--vary '", v, "': expected section.key=v1,v2,..."));
    }
    Axis axis{v.substr(0, eq), absl::StrSplit(v.substr(eq + 1), ',')};
    for (const std::string& value : axis.values) {
      absl::Status st = CheckValue("--vary", axis.key, value);
      if (!st.ok()) return st;
    }
    AddAxis(spec, std::move(axis));
  }
  if (!spec.x.empty()) {
    bool found = false;
    for (const Axis& a : spec.axes) found |= a.key == spec.x;
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(
          scenario_path, ": report.x: '", spec.x, "' is not one of the varied keys"));
    }
  } else if (!spec.axes.empty()) {
    spec.x = spec.axes.front().key;
  }
  if (spec.x_label.empty()) spec.x_label = spec.x;
  return spec;
}

std::vector<Point> Grid(const ExperimentSpec& spec) {
  std::vector<Point> points{Point{}};
  for (const Axis& a : spec.axes) {
    std::vector<Point> next;
    for (const Point& p : points) {
      for (const std::string& v : a.values) {
        Point q = p;
        q[a.key] = v;
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  return points;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string PointLabel(const Point& p, const std::vector<std::string>& keys) {
  std::vector<std::string> parts;
  for (const std::string& k : keys) {
    auto it = p.find(k);
    if (it == p.end()) continue;
    const std::string first = k.substr(0, k.find(','));
    const size_t dot = first.rfind('.');
    parts.push_back(absl::StrCat(dot == std::string::npos ? first : first.substr(dot + 1), "=",
                                 it->second));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace chatlab::sim::lab
