#include "sim/lab/experiment.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
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
    } else if (key == "seeds_min") {
      auto n = v.value_exact<int64_t>();
      if (!n || *n < 0 || *n > kSweepSeedsMax) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, v), ": ", full, ": expected an integer in [0, ", kSweepSeedsMax, "]"));
      }
      spec.seeds_min = static_cast<int>(*n);
    } else if (key == "target_half_width") {
      auto x = v.value<double>();
      if (!x || !(*x > 0) || *x >= 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(path, v), ": ", full, ": expected a number in (0, 1)"));
      }
      spec.target_half_width = *x;
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

// "key<=value" and friends; the longest operator that matches wins.
absl::StatusOr<Condition> ParseCondition(const std::string& text) {
  for (const char* op : {"<=", ">=", "!=", "=", "<", ">"}) {
    const size_t at = text.find(op);
    if (at == std::string::npos || at == 0) continue;
    Condition c{text.substr(0, at), op, text.substr(at + std::string(op).size())};
    if (c.value.empty()) break;
    return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "': expected key OP value with OP one of = != < <= > >="));
}

// Reads a table of string fields into named outputs; unknown keys are errors.
absl::Status ReadFields(const toml::table& t, const std::string& path, const std::string& prefix,
                        const std::map<std::string, std::string*>& fields) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    auto it = fields.find(key);
    if (it == fields.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": unknown key '", prefix, ".", key, "'"));
    }
    auto s = v.value_exact<std::string>();
    if (!s) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, v), ": ", prefix, ".", key, ": expected a string"));
    }
    *it->second = *s;
  }
  return absl::OkStatus();
}

absl::Status ReadBetter(const std::string& text, const std::string& where, bool* lower) {
  if (text != "lower" && text != "higher") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected better = lower|higher, got '", text, "'"));
  }
  *lower = text == "lower";
  return absl::OkStatus();
}

absl::Status ReadAlso(const toml::node& v, const std::string& path, ExperimentSpec& spec) {
  const toml::array* arr = v.as_array();
  if (arr == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, v), ": report.also: expected [[report.also]] tables"));
  }
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, item), ": report.also: each entry must be a table"));
    }
    AlsoMetric a;
    std::string better = "lower";
    absl::Status st = ReadFields(*t, path, "report.also",
                                 {{"metric", &a.metric}, {"label", &a.label}, {"better", &better}});
    if (st.ok()) st = ReadBetter(better, Where(path, item) + ": report.also", &a.lower_is_better);
    if (!st.ok()) return st;
    if (a.metric.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, item), ": report.also: 'metric' is required"));
    }
    if (a.label.empty()) a.label = a.metric;
    spec.also.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status ReadClaims(const toml::node& v, const std::string& path, ExperimentSpec& spec) {
  const toml::array* arr = v.as_array();
  if (arr == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, v), ": report.claim: expected [[report.claim]] tables"));
  }
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, item), ": report.claim: each entry must be a table"));
    }
    ClaimSpec c;
    std::string better_metric = "";
    toml::table fields = *t;
    if (const toml::node* m = t->get("margin")) {
      const std::optional<double> margin = m->value<double>();
      if (!margin || *margin <= 0 || *margin >= 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, *m), ": report.claim.margin: expected a number in (0, 1), the relative "
                             "difference that matters"));
      }
      c.margin = *margin;
      fields.erase("margin");
    }
    if (const toml::node* w = t->get("where")) {
      const toml::array* wa = w->as_array();
      if (wa == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, *w), ": report.claim.where: expected an array of \"key<=value\""));
      }
      for (const toml::node& cond : *wa) {
        auto text = cond.value_exact<std::string>();
        auto parsed = text ? ParseCondition(*text)
                           : absl::InvalidArgumentError("expected a string");
        if (!parsed.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(path, cond), ": report.claim.where: ", parsed.status().message()));
        }
        c.where.push_back(*parsed);
      }
      fields.erase("where");
    }
    absl::Status st =
        ReadFields(fields, path, "report.claim",
                   {{"seed", &c.seed}, {"axis", &c.axis}, {"kind", &c.kind},
                    {"metric", &c.metric}, {"metric_better", &better_metric},
                    {"better", &c.better}, {"than", &c.than}});
    if (!st.ok()) return st;
    if (c.margin > 0 && c.kind != "similar") {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, item), ": report.claim.margin: only a kind = \"similar\" claim has one"));
    }
    if (c.kind != "better" && c.kind != "similar") {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, item), ": report.claim.kind: expected better|similar, got '", c.kind, "'"));
    }
    if (c.seed.empty() || c.better.empty() || c.than.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, item), ": report.claim: 'seed', 'better' and 'than' are required"));
    }
    c.lower_is_better = spec.lower_is_better;
    if (!better_metric.empty()) {
      st = ReadBetter(better_metric, Where(path, item) + ": report.claim.metric_better",
                      &c.lower_is_better);
      if (!st.ok()) return st;
    }
    spec.claims.push_back(std::move(c));
  }
  return absl::OkStatus();
}

absl::Status ReadNames(const toml::node& v, const std::string& path, ExperimentSpec& spec) {
  const toml::table* t = v.as_table();
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, v), ": report.names: expected a table of \"key[=value]\" = words"));
  }
  for (const auto& [k, w] : *t) {
    auto words = w.value_exact<std::string>();
    if (!words) {
      return absl::InvalidArgumentError(absl::StrCat(Where(path, w), ": report.names.\"",
                                                     std::string(k.str()), "\": expected a string"));
    }
    spec.names[std::string(k.str())] = *words;
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
    } else if (key == "design") {
      st = text(v, full, &spec.design);
    } else if (key == "baseline") {
      st = text(v, full, &spec.baseline);
    } else if (key == "names") {
      st = ReadNames(v, path, spec);
    } else if (key == "also") {
      st = ReadAlso(v, path, spec);
    } else if (key == "claim") {
      continue;  // read after the loop: a claim's default direction is the conclusion's
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
  if (const toml::node* claims = t.get("claim")) return ReadClaims(*claims, path, spec);
  return absl::OkStatus();
}

const Axis* FindAxis(const ExperimentSpec& spec, const std::string& key) {
  for (const Axis& a : spec.axes) {
    if (a.key == key) return &a;
  }
  return nullptr;
}

// The report's roles and names must refer to what the sweep varies.
absl::Status CheckReportRefs(const std::string& path, const ExperimentSpec& spec) {
  auto err = [&](const std::string& m) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", m));
  };
  const Axis* design = spec.design.empty() ? nullptr : FindAxis(spec, spec.design);
  if (!spec.design.empty()) {
    if (design == nullptr) {
      return err(absl::StrCat("report.design: '", spec.design, "' is not one of the varied keys"));
    }
    if (spec.design == spec.x) return err("report.design: the design axis cannot also be x");
  }
  auto is_value = [&](const Axis* axis, const std::string& v) {
    return axis != nullptr &&
           std::find(axis->values.begin(), axis->values.end(), v) != axis->values.end();
  };
  if (!spec.baseline.empty() && !is_value(design, spec.baseline)) {
    return err(absl::StrCat("report.baseline: '", spec.baseline,
                            "' is not a value of the design axis"));
  }
  for (const ClaimSpec& c : spec.claims) {
    const std::string axis_key = c.axis.empty() ? spec.design : c.axis;
    const Axis* axis = axis_key.empty() ? nullptr : FindAxis(spec, axis_key);
    if (axis == nullptr) {
      return err(absl::StrCat("report.claim: axis '", axis_key, "' is not one of the varied keys",
                              axis_key.empty() ? " (set report.design or the claim's axis)" : ""));
    }
    for (const std::string* v : {&c.better, &c.than}) {
      if (!is_value(axis, *v)) {
        return err(absl::StrCat("report.claim: '", *v, "' is not a value of ", axis_key));
      }
    }
    for (const Condition& w : c.where) {
      if (FindAxis(spec, w.key) == nullptr) {
        return err(absl::StrCat("report.claim.where: '", w.key, "' is not one of the varied keys"));
      }
    }
  }
  for (const auto& [k, words] : spec.names) {
    const std::string key = k.substr(0, k.find('='));
    if (FindAxis(spec, key) == nullptr) {
      return err(absl::StrCat("report.names: '", key, "' is not one of the varied keys"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool Condition::Holds(const std::string& actual) const {
  char* end_a = nullptr;
  char* end_v = nullptr;
  const double a = std::strtod(actual.c_str(), &end_a);
  const double v = std::strtod(value.c_str(), &end_v);
  const bool numeric = !actual.empty() && !value.empty() && *end_a == '\0' && *end_v == '\0';
  if (op == "=") return numeric ? a == v : actual == value;
  if (op == "!=") return numeric ? a != v : actual != value;
  if (!numeric) return false;
  if (op == "<") return a < v;
  if (op == "<=") return a <= v;
  if (op == ">") return a > v;
  if (op == ">=") return a >= v;
  return false;
}

std::string MetricWords(const ExperimentSpec& spec, const std::string& metric) {
  if (metric == spec.conclusion_metric && !spec.conclusion_label.empty()) {
    return spec.conclusion_label;
  }
  for (const AlsoMetric& a : spec.also) {
    if (a.metric == metric) return a.label;
  }
  for (const PlotSpec& p : spec.plots) {
    if (p.metric == metric) return p.title;
  }
  return metric;
}

std::string ValueWords(const ExperimentSpec& spec, const std::string& key,
                       const std::string& value) {
  if (auto it = spec.names.find(absl::StrCat(key, "=", value)); it != spec.names.end()) {
    return it->second;
  }
  if (auto it = spec.names.find(key); it != spec.names.end()) {
    return absl::StrReplaceAll(it->second, {{"{}", value}});
  }
  if (key == spec.design) return value;
  const std::string first = key.substr(0, key.find(','));
  const size_t dot = first.rfind('.');
  return absl::StrCat(dot == std::string::npos ? first : first.substr(dot + 1), "=", value);
}

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
  } else {
    // The first axis that is not the design; none when the design is the only axis.
    for (const Axis& a : spec.axes) {
      if (a.key != spec.design) {
        spec.x = a.key;
        break;
      }
    }
  }
  if (spec.x_label.empty()) spec.x_label = spec.x;
  if (absl::Status st = CheckReportRefs(scenario_path, spec); !st.ok()) return st;
  if (spec.seeds_min > 0 && spec.conclusion_metric.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        scenario_path, ": sweep.seeds_min: sequential sampling needs a [report.conclusion] metric"));
  }
  if (spec.seeds_min >= spec.seeds) spec.seeds_min = 0;  // nothing to stop early
  if (spec.baseline.empty() && !spec.design.empty()) {
    spec.baseline = FindAxis(spec, spec.design)->values.front();
  }
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
