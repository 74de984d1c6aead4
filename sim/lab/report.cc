#include "sim/lab/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/oracle.h"
#include "sim/lab/analyses.h"
#include "sim/lab/answer.h"
#include "sim/lab/compare.h"
#include "sim/lab/plots.h"
#include "sim/lab/report_render.h"
#include "sim/lab/sweep.h"
#include "sim/results.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

std::string StatText(const Stat& s) {
  if (s.n == 0) return "n/a";
  if (s.n < 2) return Num(s.mean);
  return absl::StrCat(Num(s.mean), " ± ", Num(s.ci95));
}

std::string ShortKey(const std::string& key) {
  const std::string k = key.substr(0, key.find(','));
  const size_t dot = k.rfind('.');
  return dot == std::string::npos ? k : k.substr(dot + 1);
}

// RFC 4180: a field with a comma, quote or newline is quoted.
std::string CsvField(const std::string& f) {
  if (f.find_first_of(",\"\n") == std::string::npos) return f;
  return absl::StrCat("\"", absl::StrReplaceAll(f, {{"\"", "\"\""}}), "\"");
}

std::vector<std::string> CsvSplit(const std::string& line) {
  std::vector<std::string> out{""};
  bool quoted = false;
  for (size_t i = 0; i < line.size(); i++) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        i++;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// Every numeric leaf of a results.json under the sections a reader compares, by the path
// MetricValue reads ("metrics.node_load.store.utilization").
void NumericLeaves(const json& j, const std::string& path, std::set<std::string>* out) {
  if (j.is_number() || j.is_boolean()) {
    out->insert(path);
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) NumericLeaves(v, path.empty() ? k : path + "." + k, out);
  } else if (j.is_array()) {
    for (const json& e : j) {
      if (e.is_object() && e.contains("node") && e["node"].is_string()) {
        NumericLeaves(e, path + "." + e["node"].get<std::string>(), out);
      }
    }
  }
}

std::vector<std::string> AllRunColumns(const SweepData& d) {
  std::set<std::string> leaves;
  for (const auto& runs : d.runs) {
    for (const json& r : runs) {
      for (const char* section : {"metrics", "invariants", "faults_fired", "recovery_paths"}) {
        if (r.contains(section)) NumericLeaves(r[section], section, &leaves);
      }
      for (const char* top : {"sim_time_s", "events"}) {
        if (r.contains(top)) leaves.insert(top);
      }
    }
  }
  leaves.erase("invariants.ok");
  return {leaves.begin(), leaves.end()};
}

void AddUnique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// Nodes busy for kSaturatedUtilization of the window or more at some point: there the node's
// queue, not the design, sets much of the latency, and a reader should know it.
constexpr double kSaturatedUtilization = 0.7;
std::vector<std::string> SaturationFindings(const SweepData& d) {
  std::map<std::string, std::vector<std::string>> busy;  // node -> "point (utilisation)"
  for (size_t i = 0; i < d.points.size(); i++) {
    if (d.runs[i].empty() || !d.runs[i][0].contains("metrics")) continue;
    const nlohmann::json& loads = d.runs[i][0]["metrics"].value("node_load", nlohmann::json());
    if (!loads.is_array()) continue;
    for (const nlohmann::json& n : loads) {
      const std::string node = n.value("node", "");
      if (node.empty()) continue;
      const Stat u = d.At(i, absl::StrCat("metrics.node_load.", node, ".utilization_window"));
      if (u.n == 0 || u.mean < kSaturatedUtilization) continue;
      std::vector<std::string> words;
      for (const Axis& a : d.spec.axes) words.push_back(ValueWords(d.spec, a.key, d.points[i].at(a.key)));
      busy[node].push_back(absl::StrFormat("%s (%.2f)", absl::StrJoin(words, ", "), u.mean));
    }
  }
  std::vector<std::string> out;
  for (const auto& [node, where] : busy) {
    out.push_back(absl::StrCat(
        "Near saturation: ", node, " is busy ", kSaturatedUtilization * 100,
        "% of the measurement window or more (node_load.", node, ".utilization_window) at ",
        where.size(), where.size() == 1 ? " point: " : " points: ", absl::StrJoin(where, "; "),
        ". There its queue, not the design alone, sets the latency."));
  }
  return out;
}

}  // namespace

absl::StatusOr<ReportOutcome> WriteReport(const std::string& dir_arg) {
  auto loaded = LoadSweep(dir_arg);
  if (!loaded.ok()) return loaded.status();
  const SweepData& d = *loaded;
  const fs::path dir(dir_arg);
  fs::remove_all(dir / "plots");
  fs::create_directories(dir / "plots");
  const Layout layout = MakeLayout(d);

  ReportContent c;
  c.dir = dir_arg;
  size_t n = 1;
  if (auto paired = DrawPairedPlot(d, layout, n); paired.ok()) {
    c.plots.push_back(*paired);
    n++;
  } else if (paired.status().code() != absl::StatusCode::kFailedPrecondition) {
    return paired.status();
  }
  for (const PlotSpec& p : d.spec.plots) {
    auto svg = DrawMetricPlot(d, layout, p, n++);
    if (!svg.ok()) return svg.status();
    c.plots.push_back(*svg);
  }
  const Analysis analysis = RunAnalysis(d.spec.analysis, d);
  c.analysis = &analysis;
  ReportOutcome out;
  out.plots = static_cast<int>(c.plots.size());
  for (const Check& k : analysis.checks) {
    out.validation_checks++;
    if (!k.Passed()) out.validation_failures++;
    if (k.Passed() && k.sim_seeds >= 2 && !k.ModelInsideCi()) out.validation_outside_ci++;
  }
  c.answer = BuildAnswer(d, layout, out.validation_checks, out.validation_failures,
                         out.validation_outside_ci);
  std::vector<std::string>& said = c.answer.sentences;
  for (const std::string& h : analysis.headline) {
    if (said.size() >= static_cast<size_t>(kAnswerSentencesMax)) break;
    said.insert(said.end() - 1, h);  // the last sentence is "How sure"
  }
  c.findings = analysis.findings;  // headline sentences are findings too (Offline adds both)
  for (std::string& f : SaturationFindings(d)) c.findings.push_back(std::move(f));
  for (const ClaimSpec& claim : d.spec.claims) {
    const std::string axis = claim.axis.empty() ? d.spec.design : claim.axis;
    std::vector<std::string> where;
    for (const Condition& w : claim.where) {
      where.push_back(w.op == "=" ? ValueWords(d.spec, w.key, w.value)
                                  : absl::StrCat(ShortKey(w.key), " ", w.op, " ", w.value));
    }
    const std::string tested_as = absl::StrCat(
        ValueWords(d.spec, axis, claim.better),
        claim.kind == "similar" ? " no different from " : " better than ",
        ValueWords(d.spec, axis, claim.than), " on ",
        MetricWords(d.spec, claim.metric.empty() ? d.spec.conclusion_metric : claim.metric),
        where.empty() ? "" : absl::StrCat(", where ", absl::StrJoin(where, " and ")));
    c.claims.push_back({&claim, JudgeClaim(d, layout, claim), tested_as});
  }

  // Invariants across every run. A point "switches a protection off" when it disables
  // de-duplication or gap detection, or uses plain timestamp ids: there a violation is the
  // point of the experiment. Anywhere else it is a defect.
  auto unprotected = [](const Scenario& s) {
    return !s.protocol.dedup_enabled || !s.protocol.gap_detection_enabled ||
           s.protocol.id_scheme == IdScheme::kTimestamp;
  };
  uint64_t violations = 0, defects = 0;
  std::vector<std::string> violated;
  std::set<std::string> models, run_versions;
  for (size_t i = 0; i < d.points.size(); i++) {
    for (size_t k = 0; k < d.runs[i].size(); k++) {
      const json& r = d.runs[i][k];
      models.insert(r.value("network_model", "?"));
      run_versions.insert(r.value("chatlab_version", "unknown"));
      if (!r["invariants"].value("ok", true)) {
        violations++;
        if (!unprotected(d.scenarios[i])) defects++;
        violated.push_back(RunId(i, d.seeds[k]));
      }
    }
  }
  size_t runs = 0;
  for (const auto& point_runs : d.runs) runs += point_runs.size();
  if (violations == 0 && runs > 0 &&
      c.answer.sentences.size() < static_cast<size_t>(kAnswerSentencesMax)) {
    c.answer.sentences.insert(
        c.answer.sentences.end() - 1,
        absl::StrCat("All ", runs, " runs held every one of the oracle's ",
                     std::size(kInvariants),
                     " invariants (no acknowledged message lost or left unshown, no duplicate "
                     "shown, no order violation)."));
  }
  const bool quick = d.manifest.value("quick", false);
  c.seeds = static_cast<int>(d.seeds.size());
  c.seeds_words = d.SeedsMin() == d.SeedsMax()
                      ? absl::StrCat(d.SeedsMax())
                      : absl::StrCat(d.SeedsMin(), " to ", d.SeedsMax());
  if (!d.sequential_rule.empty()) {
    c.seeds_words += absl::StrCat(" (", d.sequential_rule, ")");
  }
  if (c.seeds < kSweepSeedsDefault) {
    c.warnings.push_back(absl::StrCat(
        "Only ", c.seeds, " seed(s) per point", quick ? " (the quick CI variant)" : "",
        ": paired intervals are wide and the answer is tentative; the full report runs at least ",
        kSweepSeedsDefault, "."));
  }
  if (out.validation_failures > 0) {
    c.warnings.push_back(absl::StrCat("Validation: ", out.validation_failures, " of ",
                                      out.validation_checks,
                                      " checks against theory miss their tolerance; see the "
                                      "validation section."));
  }
  if (violations > 0) {
    c.warnings.push_back(absl::StrCat(
        violations, " runs violated an invariant: ", absl::StrJoin(violated, ", "),
        defects == 0 ? " (all at points that switch a protection off: de-duplication, gap "
                       "detection or safe ids)."
                     : absl::StrCat(" (", defects, " of them with every protection on: a defect; "
                                    "each run's results.json has its repro).")));
  }

  // The table: the headline, the also metrics and every plotted metric at every point.
  std::vector<std::string> keys;
  for (const Axis& a : d.spec.axes) keys.push_back(a.key);
  std::vector<std::string> metrics;
  AddUnique(metrics, d.spec.conclusion_metric);
  for (const AlsoMetric& a : d.spec.also) AddUnique(metrics, a.metric);
  for (const PlotSpec& p : d.spec.plots) AddUnique(metrics, p.metric);
  for (const std::string& k : keys) c.table_header.push_back(ShortKey(k));
  for (const std::string& m : metrics) c.table_header.push_back(m);
  for (size_t i = 0; i < d.points.size(); i++) {
    std::vector<std::string> row;
    for (const std::string& k : keys) row.push_back(d.points[i].at(k));
    for (const std::string& m : metrics) row.push_back(StatText(d.At(i, m)));
    c.table_rows.push_back(row);
  }

  // data.csv: the axes, the scenario keys the checks read, the metrics above and the checks',
  // then every other numeric value of every run.
  std::vector<std::string> check_metrics, params;
  CheckColumns(analysis, &check_metrics, &params);
  std::vector<std::string> columns = metrics;
  for (const ClaimSpec& claim : d.spec.claims) AddUnique(columns, claim.metric);
  for (const std::string& m : check_metrics) AddUnique(columns, m);
  for (const std::string& m : AllRunColumns(d)) AddUnique(columns, m);
  std::ofstream csv(dir / "data.csv");
  csv << "point,seed";
  for (const std::string& k : keys) csv << "," << CsvField(k);
  for (const std::string& p : params) {
    if (std::find(keys.begin(), keys.end(), p) == keys.end()) csv << "," << CsvField(p);
  }
  for (const std::string& m : columns) csv << "," << CsvField(m);
  csv << "\n";
  for (size_t i = 0; i < d.points.size(); i++) {
    for (size_t k = 0; k < d.runs[i].size(); k++) {
      csv << i << "," << d.seeds[k];
      for (const std::string& key : keys) csv << "," << CsvField(d.points[i].at(key));
      for (const std::string& p : params) {
        if (std::find(keys.begin(), keys.end(), p) != keys.end()) continue;
        csv << "," << absl::StrFormat("%.9g", ScenarioNumber(d.scenarios[i], p).value_or(0));
      }
      for (const std::string& m : columns) {
        auto v = MetricValue(d.runs[i][k], m);
        csv << "," << (v ? absl::StrFormat("%.9g", *v) : "");
      }
      csv << "\n";
    }
  }
  csv.close();
  std::ofstream checks(dir / "checks.csv");
  checks << "check,point,formula,inputs,simulated,simulated_ci95,seeds,model,relative_error,"
            "tolerance,verdict,model_inside_ci\n";
  for (const Check& k : analysis.checks) {
    checks << CsvField(k.name) << "," << CsvField(k.point) << "," << CsvField(k.formula) << ","
           << CsvField(k.InputsText()) << "," << absl::StrFormat("%.9g", k.simulated) << ","
           << absl::StrFormat("%.9g", k.sim_ci95) << "," << k.sim_seeds << ","
           << absl::StrFormat("%.9g", k.analytic) << ","
           << absl::StrFormat("%.6g", k.RelativeError()) << ","
           << absl::StrFormat("%.6g", k.tolerance) << "," << (k.Passed() ? "holds" : "misses")
           << "," << (k.sim_seeds < 2 ? "n/a" : k.ModelInsideCi() ? "yes" : "no") << "\n";
  }
  checks.close();

  // How it was made, and the commands that regenerate it.
  std::string sweep_cmd =
      absl::StrCat("chatlab sweep ", d.spec.scenario_path, quick ? " --quick" : "");
  for (const std::string& v : d.manifest.value("vary", std::vector<std::string>{})) {
    absl::StrAppend(&sweep_cmd, " --vary ", v);
  }
  absl::StrAppend(&sweep_cmd, " --out ", dir_arg);
  c.sweep_cmd = sweep_cmd;
  c.report_cmd = absl::StrCat("chatlab report ", dir_arg);
  c.title = absl::StrCat(d.spec.scenario_name, quick ? " (quick variant)" : "");
  c.question = d.spec.question.empty() ? "(no [report] question declared)" : d.spec.question;
  c.scenario_path = d.spec.scenario_path;
  // The seeds run: a point that stopped early ran the first of them.
  const std::vector<uint64_t> run_seeds(d.seeds.begin(),
                                        d.seeds.begin() + static_cast<ptrdiff_t>(d.SeedsMax()));
  c.seeds_text = absl::StrJoin(run_seeds, ", ");
  if (d.SeedsMin() != d.SeedsMax()) {
    c.seeds_text += absl::StrCat(" (", d.SeedsMin(), " to ", d.SeedsMax(), " a point)");
  }
  c.version_text = ChatlabVersion();
  if (run_versions != std::set<std::string>{ChatlabVersion()}) {
    c.version_text += absl::StrCat(" (report); runs by ", absl::StrJoin(run_versions, ", "));
  }
  c.model_text = absl::StrJoin(models, "; ");
  c.scenario_text = d.manifest["scenario_text"].get<std::string>();
  for (const Axis& a : d.spec.axes) {
    absl::StrAppend(&c.grid_text, a.key, " = ", absl::StrJoin(a.values, ", "), "\n");
  }
  for (const std::string& s : d.spec.sets) absl::StrAppend(&c.grid_text, "set ", s, "\n");

  out.markdown_path = (dir / "report.md").string();
  std::ofstream(out.markdown_path) << RenderMarkdown(c);
  out.html_path = (dir / "report.html").string();
  std::ofstream(out.html_path) << RenderHtml(c);

  // summary.json: what the index (chatlab index) gathers.
  json summary;
  summary["name"] = d.spec.scenario_name;
  summary["question"] = c.question;
  summary["answer"] = c.answer.sentences;
  summary["confidence"] = c.answer.confidence;
  summary["confidence_why"] = c.answer.confidence_why;
  summary["seeds"] = c.seeds;
  summary["seeds_min"] = d.SeedsMin();
  summary["quick"] = quick;
  summary["checks"] = out.validation_checks;
  summary["check_failures"] = out.validation_failures;
  summary["checks_outside_ci"] = out.validation_outside_ci;
  summary["violations"] = violations;
  summary["defects"] = defects;
  summary["claims"] = json::array();
  for (const ClaimRow& r : c.claims) {
    summary["claims"].push_back({{"seed", r.claim->seed},
                                 {"tested_as", r.tested_as},
                                 {"verdict", r.verdict.verdict},
                                 {"evidence", r.verdict.evidence}});
  }
  std::ofstream(dir / "summary.json") << summary.dump(2) << "\n";
  out.answer = c.answer.sentences;
  out.confidence = c.answer.confidence;
  return out;
}

absl::StatusOr<int> RecheckFromCsv(const std::string& dir) {
  auto loaded = LoadSweep(dir);
  if (!loaded.ok()) return loaded.status();
  const Analysis analysis = RunAnalysis(loaded->spec.analysis, *loaded);
  std::ifstream in(fs::path(dir) / "data.csv");
  std::string line;
  if (!std::getline(in, line)) {
    return absl::NotFoundError(absl::StrCat(dir, "/data.csv: missing or empty (run chatlab report)"));
  }
  const std::vector<std::string> header = CsvSplit(line);
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); i++) column[header[i]] = i;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) rows.push_back(CsvSplit(line));
  auto mean_of = [&](const std::string& col, size_t point) -> std::optional<double> {
    auto it = column.find(col);
    if (it == column.end()) return std::nullopt;
    double sum = 0;
    int count = 0;
    for (const auto& r : rows) {
      if (r.size() != header.size() || std::stoul(r[0]) != point || r[it->second].empty()) continue;
      const std::string& f = r[it->second];
      sum += f == "true" ? 1 : f == "false" ? 0 : std::strtod(f.c_str(), nullptr);
      count++;
    }
    if (count == 0) return std::nullopt;
    return sum / count;
  };
  int rechecked = 0;
  for (const Check& k : analysis.checks) {
    Vars v;
    for (const CheckInput& input : k.inputs) {
      auto x = mean_of(input.column, input.point);
      if (!x) {
        return absl::FailedPreconditionError(absl::StrCat(
            "check '", k.name, "' at ", k.point, ": input ", input.name, " (", input.column,
            ", point ", input.point, ") is not in data.csv"));
      }
      v[input.name] = *x;
    }
    const double model = k.model(v), measured = k.measured(v);
    auto close = [](double a, double b) {
      return std::fabs(a - b) <= 1e-6 * std::max({1.0, std::fabs(a), std::fabs(b)});
    };
    if (!close(model, k.analytic) || !close(measured, k.simulated)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "check '%s' at %s: from data.csv the model gives %.9g and the measure %.9g; the "
          "report says %.9g and %.9g",
          k.name, k.point, model, measured, k.analytic, k.simulated));
    }
    rechecked++;
  }
  return rechecked;
}

}  // namespace chatlab::sim::lab
