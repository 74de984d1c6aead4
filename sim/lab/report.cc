#include "sim/lab/report.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "sim/lab/analyses.h"
#include "sim/lab/sweep.h"
#include "sim/results.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;


Stat Summarize(const std::vector<double>& v) {
  // Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
  static constexpr double kT[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                  2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                  2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                  2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  Stat s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  const size_t df = v.size() - 1;
  const double t = df <= 30 ? kT[df - 1] : 1.960;
  s.ci95 = t * sd / std::sqrt(static_cast<double>(v.size()));
  return s;
}

std::optional<double> MetricValue(const json& results, const std::string& path) {
  const size_t slash = path.find(" / ");
  if (slash != std::string::npos) {
    auto a = MetricValue(results, path.substr(0, slash));
    auto b = MetricValue(results, path.substr(slash + 3));
    if (!a || !b || *b == 0) return std::nullopt;  // undefined: the run is left out
    return *a / *b;
  }
  const json* cur = &results;
  for (absl::string_view seg : absl::StrSplit(path, '.')) {
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
  if (cur->is_number()) return cur->get<double>();
  if (cur->is_boolean()) return cur->get<bool>() ? 1.0 : 0.0;
  return std::nullopt;
}

Stat SweepData::At(size_t point, const std::string& metric) const {
  std::vector<double> v;
  for (const json& r : runs[point]) {
    if (auto x = MetricValue(r, metric)) v.push_back(*x);
  }
  return Summarize(v);
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
    d.scenarios.push_back(s);
    std::vector<json> runs;
    for (uint64_t seed : d.seeds) {
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

namespace {

std::string Html(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string Num(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e6 || a < 1e-3) return absl::StrFormat("%.3g", v);
  if (a >= 100) return absl::StrFormat("%.0f", v);
  if (a >= 10) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.3g", v);
}

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

bool AllNumeric(const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    try {
      size_t used = 0;
      (void)std::stod(v, &used);
      if (used != v.size()) return false;
    } catch (...) {
      return false;
    }
  }
  return true;
}

// The grid as x values and series (every combination of the other axes).
struct Layout {
  std::vector<std::string> xs;
  bool numeric = true;
  std::vector<Point> series;  // values of the non-x axes
  std::vector<std::string> series_keys;
  // point index for (series, x), or -1
  std::vector<std::vector<int>> index;
};

Layout MakeLayout(const SweepData& d) {
  Layout l;
  for (const Axis& a : d.spec.axes) {
    if (a.key == d.spec.x) {
      l.xs = a.values;
    } else {
      l.series_keys.push_back(a.key);
    }
  }
  if (l.xs.empty()) l.xs.push_back("");
  l.numeric = AllNumeric(l.xs);
  ExperimentSpec sub;
  for (const Axis& a : d.spec.axes) {
    if (a.key != d.spec.x) sub.axes.push_back(a);
  }
  l.series = Grid(sub);
  for (const Point& s : l.series) {
    std::vector<int> row;
    for (const std::string& x : l.xs) {
      int found = -1;
      for (size_t i = 0; i < d.points.size(); i++) {
        bool match = d.spec.x.empty() || d.points[i].at(d.spec.x) == x;
        for (const auto& [k, v] : s) match = match && d.points[i].at(k) == v;
        if (match) found = static_cast<int>(i);
      }
      row.push_back(found);
    }
    l.index.push_back(row);
  }
  return l;
}

std::string SeriesName(const Layout& l, size_t s) {
  const std::string label = PointLabel(l.series[s], l.series_keys);
  return label.empty() ? "all" : label;
}

absl::Status RunGnuplot(const fs::path& dir, const std::string& script_name) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    const std::string log = "plots/gnuplot.log";
    if (std::FILE* f = std::freopen(log.c_str(), "a", stderr)) (void)f;
    execlp("gnuplot", "gnuplot", script_name.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (rc == 127) {
    return absl::FailedPreconditionError(
        "gnuplot not found: install it (scripts/install-deps.sh installs gnuplot-nox)");
  }
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", (dir / script_name).string(),
                                            " (exit ", rc, "); see ", (dir / "plots/gnuplot.log").string()));
  }
  return absl::OkStatus();
}

std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string GnuplotText(const std::string& s) {
  return absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}, {"_", "\\_"}, {"^", "\\^"}});
}

// Draws one plot; returns the SVG's path relative to the report directory.
absl::StatusOr<std::string> DrawPlot(const SweepData& d, const Layout& l, const PlotSpec& plot,
                                     size_t n) {
  const fs::path dir(d.dir);
  const std::string base = absl::StrFormat("%02d_%s", n, Slug(plot.metric).substr(0, 60));
  std::ofstream dat(dir / "plots" / (base + ".dat"));
  dat << "# x";
  for (size_t s = 0; s < l.series.size(); s++) dat << "\tmean[" << SeriesName(l, s) << "]\tci95";
  dat << "\n";
  for (size_t xi = 0; xi < l.xs.size(); xi++) {
    dat << (l.numeric ? l.xs[xi] : std::to_string(xi));
    for (size_t s = 0; s < l.series.size(); s++) {
      const int p = l.index[s][xi];
      const Stat st = p < 0 ? Stat{} : d.At(static_cast<size_t>(p), plot.metric);
      if (st.n == 0 || (plot.y_log && st.mean <= 0)) {
        dat << "\tNaN\tNaN";
      } else {
        dat << "\t" << absl::StrFormat("%.9g", st.mean) << "\t" << absl::StrFormat("%.9g", st.ci95);
      }
    }
    dat << "\n";
  }
  dat.close();
  std::ofstream gp(dir / "plots" / (base + ".gp"));
  gp << "set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'\n"
     << "set output 'plots/" << base << ".svg'\n"
     << "set title \"" << GnuplotText(plot.title) << "\"\n"
     << "set xlabel \"" << GnuplotText(d.spec.x_label) << "\"\n"
     << "set ylabel \"" << GnuplotText(plot.ylabel) << "\"\n"
     << "set grid\nset key outside right top\nset datafile missing 'NaN'\n"
     << "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n";
  if (d.spec.x_log && l.numeric) gp << "set logscale x\n";
  if (plot.y_log) gp << "set logscale y\n";
  if (!l.numeric) {
    gp << "set xtics (";
    for (size_t xi = 0; xi < l.xs.size(); xi++) {
      gp << (xi ? ", " : "") << "\"" << GnuplotText(l.xs[xi]) << "\" " << xi;
    }
    gp << ")\n";
  }
  gp << "plot ";
  for (size_t s = 0; s < l.series.size(); s++) {
    gp << (s ? ", \\\n     " : "") << "'plots/" << base << ".dat' using 1:" << 2 + 2 * s << ":"
       << 3 + 2 * s << " with yerrorlines lw 2 pt 7 title \"" << GnuplotText(SeriesName(l, s))
       << "\"";
  }
  gp << "\n";
  gp.close();
  absl::Status st = RunGnuplot(dir, "plots/" + base + ".gp");
  if (!st.ok()) return st;
  return "plots/" + base + ".svg";
}

// The conclusion: which series wins the conclusion metric at each x, and where that changes.
std::string Conclude(const SweepData& d, const Layout& l) {
  const std::string metric = d.spec.conclusion_metric;
  if (metric.empty()) return "";
  const std::string what = d.spec.conclusion_label.empty() ? metric : d.spec.conclusion_label;
  const std::string best_word = d.spec.lower_is_better ? "lowest" : "highest";
  const std::string xname = ShortKey(d.spec.x);
  auto better = [&](double a, double b) { return d.spec.lower_is_better ? a < b : a > b; };
  if (l.series.size() <= 1 && !l.numeric && l.xs.size() > 1) {
    // Categories on x and no series: rank the categories.
    std::vector<std::pair<double, size_t>> ranked;
    for (size_t xi = 0; xi < l.xs.size(); xi++) {
      if (l.index[0][xi] >= 0) ranked.push_back({d.At(static_cast<size_t>(l.index[0][xi]), metric).mean, xi});
    }
    std::sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
      return better(a.first, b.first) || (a.first == b.first && a.second < b.second);
    });
    std::vector<std::string> rest;
    for (size_t k = 1; k < ranked.size(); k++) {
      rest.push_back(absl::StrCat(l.xs[ranked[k].second], " ", Num(ranked[k].first)));
    }
    const Stat w = d.At(static_cast<size_t>(l.index[0][ranked[0].second]), metric);
    const Stat r = d.At(static_cast<size_t>(l.index[0][ranked[1].second]), metric);
    const bool overlap = std::fabs(w.mean - r.mean) <= w.ci95 + r.ci95;
    return absl::StrCat(xname, "=", l.xs[ranked[0].second], " has the ", best_word, " ", what,
                        " (", Num(ranked[0].first), "; then ", absl::StrJoin(rest, ", "), ")",
                        overlap ? ", but the difference to the next is within the 95% confidence "
                                  "intervals"
                                : "",
                        ".");
  }
  if (l.series.size() <= 1) {
    const int first = l.index[0].front(), last = l.index[0].back();
    if (first < 0 || last < 0) return "";
    const Stat a = d.At(static_cast<size_t>(first), metric);
    const Stat b = d.At(static_cast<size_t>(last), metric);
    if (l.xs.size() == 1) return absl::StrCat(what, " is ", StatText(a), ".");
    return absl::StrCat(what, " goes from ", Num(a.mean), " at ", xname, "=", l.xs.front(),
                         " to ", Num(b.mean), " at ", xname, "=", l.xs.back(),
                         a.mean != 0 ? absl::StrFormat(" (x%.2g)", b.mean / a.mean) : "", ".");
  }
  std::vector<int> winner(l.xs.size(), -1);
  std::vector<int> runner(l.xs.size(), -1);
  for (size_t xi = 0; xi < l.xs.size(); xi++) {
    for (size_t s = 0; s < l.series.size(); s++) {
      const int p = l.index[s][xi];
      if (p < 0) continue;
      const double m = d.At(static_cast<size_t>(p), metric).mean;
      const int w = winner[xi];
      if (w < 0 || better(m, d.At(static_cast<size_t>(l.index[w][xi]), metric).mean)) {
        runner[xi] = w;
        winner[xi] = static_cast<int>(s);
      } else if (runner[xi] < 0 ||
                 better(m, d.At(static_cast<size_t>(l.index[runner[xi]][xi]), metric).mean)) {
        runner[xi] = static_cast<int>(s);
      }
    }
  }
  auto value = [&](int s, size_t xi) {
    return d.At(static_cast<size_t>(l.index[s][xi]), metric);
  };
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t xi = 1; xi <= l.xs.size(); xi++) {
    if (xi < l.xs.size() && winner[xi] == winner[start]) continue;
    const int w = winner[start];
    std::string range;
    if (l.xs.size() == 1 || (start == 0 && xi == l.xs.size())) {
      range = l.xs.size() == 1 ? "" : absl::StrCat(" at every ", xname, " tested");
    } else if (start == 0) {
      range = absl::StrCat(" for ", xname, " up to ", l.xs[xi - 1]);
    } else if (xi == l.xs.size()) {
      range = absl::StrCat(" from ", xname, "=", l.xs[start], " on");
    } else {
      range = absl::StrCat(" for ", xname, " from ", l.xs[start], " to ", l.xs[xi - 1]);
    }
    const size_t at = xi - 1;
    // Series that tie the winner exactly at the range's last x (e.g. several designs at 0).
    std::vector<std::string> tied;
    for (size_t s = 0; s < l.series.size(); s++) {
      if (static_cast<int>(s) == w || l.index[s][at] < 0) continue;
      if (value(static_cast<int>(s), at).mean == value(w, at).mean) tied.push_back(SeriesName(l, s));
    }
    if (!tied.empty()) {
      parts.push_back(absl::StrCat(
          SeriesName(l, static_cast<size_t>(w)), " ties with ", absl::StrJoin(tied, " and "),
          " for the ", best_word, " ", what, range, " (", Num(value(w, at).mean),
          l.xs.size() > 1 ? absl::StrCat(" at ", xname, "=", l.xs[at]) : "", ")"));
      start = xi;
      continue;
    }
    std::string detail;
    if (runner[at] >= 0) {
      const Stat a = value(w, at), b = value(runner[at], at);
      const bool overlap = std::fabs(a.mean - b.mean) <= a.ci95 + b.ci95;
      detail = absl::StrCat(" (", Num(a.mean), " against ", Num(b.mean), " for ",
                            SeriesName(l, static_cast<size_t>(runner[at])),
                            l.xs.size() > 1 ? absl::StrCat(" at ", xname, "=", l.xs[at]) : "",
                            overlap ? "; within the 95% confidence intervals" : "", ")");
    }
    parts.push_back(absl::StrCat(SeriesName(l, static_cast<size_t>(w)), " has the ", best_word,
                                 " ", what, range, detail));
    start = xi;
  }
  std::string out = absl::StrJoin(parts, "; ");
  if (parts.size() > 1) {
    out = absl::StrCat(out, ". The lead changes ", parts.size() - 1,
                       parts.size() == 2 ? " time" : " times", ".");
  } else {
    out += ".";
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

  ReportOutcome out;
  std::vector<std::pair<const PlotSpec*, std::string>> plots;
  for (size_t i = 0; i < d.spec.plots.size(); i++) {
    auto svg = DrawPlot(d, layout, d.spec.plots[i], i + 1);
    if (!svg.ok()) return svg.status();
    plots.emplace_back(&d.spec.plots[i], *svg);
  }
  out.plots = static_cast<int>(plots.size());
  const Analysis analysis = RunAnalysis(d.spec.analysis, d);
  std::string conclusion = Conclude(d, layout);
  for (const std::string& f : analysis.findings) conclusion += (conclusion.empty() ? "" : " ") + f;
  if (conclusion.empty()) conclusion = "No [report.conclusion] metric is declared for this sweep.";
  out.conclusion = conclusion;
  for (const Check& c : analysis.checks) {
    out.validation_checks++;
    if (!c.Passed()) out.validation_failures++;
  }

  // Invariants across every run.
  // A point "switches a protection off" when it disables de-duplication or gap detection, or
  // uses plain timestamp ids (which collide and go back with the clock): there a violation is
  // the point of the experiment. Anywhere else it is a defect.
  auto unprotected = [](const Scenario& s) {
    return !s.protocol.dedup_enabled || !s.protocol.gap_detection_enabled ||
           s.protocol.id_scheme == IdScheme::kTimestamp;
  };
  uint64_t violations = 0, defects = 0;
  std::vector<std::string> violated;
  std::set<std::string> models;
  std::set<std::string> run_versions;  // the builds that made the runs
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

  // The table: every plotted metric at every point.
  std::vector<std::string> keys;
  for (const Axis& a : d.spec.axes) keys.push_back(a.key);
  std::vector<std::string> metrics;
  if (!d.spec.conclusion_metric.empty()) metrics.push_back(d.spec.conclusion_metric);
  for (const PlotSpec& p : d.spec.plots) {
    if (std::find(metrics.begin(), metrics.end(), p.metric) == metrics.end()) {
      metrics.push_back(p.metric);
    }
  }
  std::vector<std::string> header;
  for (const std::string& k : keys) header.push_back(ShortKey(k));
  for (const std::string& m : metrics) header.push_back(m);
  std::vector<std::vector<std::string>> rows;
  std::ofstream csv(dir / "data.csv");
  // RFC 4180: a linked axis ("a,b,c") is one column, so its name is quoted.
  auto field = [](const std::string& f) {
    if (f.find_first_of(",\"\n") == std::string::npos) return f;
    return absl::StrCat("\"", absl::StrReplaceAll(f, {{"\"", "\"\""}}), "\"");
  };
  csv << "point,seed";
  for (const std::string& k : keys) csv << "," << field(k);
  for (const std::string& m : metrics) csv << "," << field(m);
  csv << "\n";
  for (size_t i = 0; i < d.points.size(); i++) {
    std::vector<std::string> row;
    for (const std::string& k : keys) row.push_back(d.points[i].at(k));
    for (const std::string& m : metrics) row.push_back(StatText(d.At(i, m)));
    rows.push_back(row);
    for (size_t k = 0; k < d.runs[i].size(); k++) {
      csv << i << "," << d.seeds[k];
      for (const std::string& key : keys) csv << "," << field(d.points[i].at(key));
      for (const std::string& m : metrics) {
        auto v = MetricValue(d.runs[i][k], m);
        csv << "," << (v ? absl::StrFormat("%.9g", *v) : "");
      }
      csv << "\n";
    }
  }
  csv.close();

  // Commands that regenerate it.
  const bool quick = d.manifest.value("quick", false);
  std::string sweep_cmd = absl::StrCat("chatlab sweep ", d.spec.scenario_path, quick ? " --quick" : "");
  for (const std::string& v : d.manifest.value("vary", std::vector<std::string>{})) {
    absl::StrAppend(&sweep_cmd, " --vary ", v);
  }
  absl::StrAppend(&sweep_cmd, " --out ", dir_arg);
  const std::string report_cmd = absl::StrCat("chatlab report ", dir_arg);
  const std::string title = absl::StrCat(d.spec.scenario_name, quick ? " (quick variant)" : "");
  const std::string question = d.spec.question.empty() ? "(no [report] question declared)" : d.spec.question;
  std::vector<std::string> warnings;
  if (out.validation_failures > 0) {
    warnings.push_back(absl::StrCat("Validation: ", out.validation_failures, " of ",
                                    out.validation_checks,
                                    " checks against theory are off by more than their tolerance; "
                                    "see the validation section."));
  }
  if (violations > 0) {
    warnings.push_back(absl::StrCat(violations, " runs violated an invariant: ",
                                    absl::StrJoin(violated, ", "),
                                    defects == 0
                                        ? " (all at points that switch a protection off: "
                                          "de-duplication, gap detection or safe ids)."
                                        : absl::StrCat(" (", defects, " of them with every "
                                                       "protection on: a defect; each run's "
                                                       "results.json has its repro).")));
  }
  std::string seeds_text = absl::StrJoin(d.seeds, ", ");
  // The report's build, and the builds that made the runs when they differ.
  std::string version_text = ChatlabVersion();
  if (run_versions != std::set<std::string>{ChatlabVersion()}) {
    version_text += absl::StrCat(" (report); runs by ", absl::StrJoin(run_versions, ", "));
  }
  const std::string model_text = absl::StrJoin(models, "; ");
  const std::string scenario_text = d.manifest["scenario_text"].get<std::string>();
  std::string grid_text;
  for (const Axis& a : d.spec.axes) {
    absl::StrAppend(&grid_text, a.key, " = ", absl::StrJoin(a.values, ", "), "\n");
  }
  for (const std::string& s : d.spec.sets) absl::StrAppend(&grid_text, "set ", s, "\n");

  // ---- Markdown ----
  std::string md;
  absl::StrAppend(&md, "# ", title, "\n\n**Question.** ", question, "\n\n**Conclusion.** ",
                  conclusion, "\n\n");
  for (const std::string& w : warnings) absl::StrAppend(&md, "> **Warning.** ", w, "\n\n");
  absl::StrAppend(&md, "## Plots\n\nEach point is the mean over ", d.seeds.size(),
                  " seeds; error bars are 95% confidence intervals (Student's t).\n\n");
  for (const auto& [p, svg] : plots) absl::StrAppend(&md, "![", p->title, "](", svg, ")\n\n");
  absl::StrAppend(&md, "## Results (mean ± 95% CI)\n\n| ", absl::StrJoin(header, " | "), " |\n|");
  for (size_t i = 0; i < header.size(); i++) md += " --- |";
  md += "\n";
  for (const auto& row : rows) absl::StrAppend(&md, "| ", absl::StrJoin(row, " | "), " |\n");
  absl::StrAppend(&md, "\nPer-run values: [data.csv](data.csv).\n\n## Validation against theory\n\n");
  if (!analysis.note.empty()) absl::StrAppend(&md, analysis.note, "\n\n");
  if (!analysis.checks.empty()) {
    md += "| check | point | simulated | analytic | relative error | within tolerance |\n"
          "| --- | --- | --- | --- | --- | --- |\n";
    for (const Check& c : analysis.checks) {
      absl::StrAppend(&md, "| ", c.name, " | ", c.point, " | ", Num(c.simulated), " | ",
                      Num(c.analytic), " | ", absl::StrFormat("%.1f%%", 100 * c.RelativeError()),
                      " | ", c.Passed() ? "yes" : absl::StrFormat("NO (> %.0f%%)", 100 * c.tolerance),
                      " |\n");
    }
    md += "\n";
  }
  absl::StrAppend(&md, "## How this was made\n\n- ChatLab ", version_text, "\n- Scenario: `",
                  d.spec.scenario_path, "` (text below)\n- Seeds: ", seeds_text,
                  "\n- Network model: ", model_text, "\n- Grid:\n\n```\n", grid_text,
                  "```\n\nRegenerate:\n\n```\n", sweep_cmd, "\n", report_cmd,
                  "\n```\n\n<details><summary>Scenario file</summary>\n\n```toml\n", scenario_text,
                  "```\n\n</details>\n");
  out.markdown_path = (dir / "report.md").string();
  std::ofstream(out.markdown_path) << md;

  // ---- HTML, self-contained: the SVGs are inlined ----
  std::string h;
  absl::StrAppend(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>",
                  Html(title), " - ChatLab report</title>\n<style>\n"
                  "body{font-family:Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;"
                  "padding:0 1em;color:#222;line-height:1.45}\n"
                  "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}\n"
                  "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}\n"
                  "th{background:#f0f0f0}\n.warn{background:#fff3cd;border:1px solid #e0b000;"
                  "padding:0.6em 1em;margin:1em 0}\n.concl{background:#eef6ee;border-left:4px solid "
                  "#3a3;padding:0.6em 1em}\npre{background:#f6f6f6;padding:0.8em;overflow-x:auto;"
                  "font-size:0.85em}\nfigure{margin:1em 0}\nfigure svg{max-width:100%;height:auto}\n"
                  ".bad{color:#b00;font-weight:bold}\n</style></head><body>\n");
  absl::StrAppend(&h, "<h1>", Html(title), "</h1>\n<p><b>Question.</b> ", Html(question),
                  "</p>\n<p class=\"concl\"><b>Conclusion.</b> ", Html(conclusion), "</p>\n");
  for (const std::string& w : warnings) absl::StrAppend(&h, "<p class=\"warn\"><b>Warning.</b> ", Html(w), "</p>\n");
  absl::StrAppend(&h, "<h2>Plots</h2>\n<p>Each point is the mean over ", d.seeds.size(),
                  " seeds; error bars are 95% confidence intervals.</p>\n");
  for (const auto& [p, svg] : plots) {
    std::string text = ReadTextFile((dir / svg).string());
    const size_t start = text.find("<svg");
    if (start != std::string::npos) text = text.substr(start);
    absl::StrAppend(&h, "<figure id=\"", Slug(svg), "\">", text, "<figcaption>", Html(p->title),
                    "</figcaption></figure>\n");
  }
  absl::StrAppend(&h, "<h2>Results (mean ± 95% CI)</h2>\n<table><tr>");
  for (const std::string& c : header) absl::StrAppend(&h, "<th>", Html(c), "</th>");
  h += "</tr>\n";
  for (const auto& row : rows) {
    h += "<tr>";
    for (const std::string& c : row) absl::StrAppend(&h, "<td>", Html(c), "</td>");
    h += "</tr>\n";
  }
  absl::StrAppend(&h, "</table>\n<h2>Validation against theory</h2>\n");
  if (!analysis.note.empty()) absl::StrAppend(&h, "<p>", Html(analysis.note), "</p>\n");
  if (!analysis.checks.empty()) {
    h += "<table><tr><th>check</th><th>point</th><th>simulated</th><th>analytic</th>"
         "<th>relative error</th><th>within tolerance</th></tr>\n";
    for (const Check& c : analysis.checks) {
      absl::StrAppend(&h, "<tr><td style=\"text-align:left\">", Html(c.name), "</td><td>",
                      Html(c.point), "</td><td>", Num(c.simulated), "</td><td>", Num(c.analytic),
                      "</td><td>", absl::StrFormat("%.1f%%", 100 * c.RelativeError()), "</td><td",
                      c.Passed() ? ">yes" : " class=\"bad\">NO", "</td></tr>\n");
    }
    h += "</table>\n";
  }
  absl::StrAppend(&h, "<h2>How this was made</h2>\n<ul><li>ChatLab ", Html(version_text),
                  "</li><li>Scenario: <code>", Html(d.spec.scenario_path),
                  "</code></li><li>Seeds: ", seeds_text, "</li><li>Network model: ",
                  Html(model_text), "</li></ul>\n<pre>", Html(grid_text),
                  "</pre>\n<p>Regenerate:</p>\n<pre>", Html(sweep_cmd), "\n", Html(report_cmd),
                  "</pre>\n<details><summary>Scenario file</summary><pre>", Html(scenario_text),
                  "</pre></details>\n</body></html>\n");
  out.html_path = (dir / "report.html").string();
  std::ofstream(out.html_path) << h;
  return out;
}

}  // namespace chatlab::sim::lab
