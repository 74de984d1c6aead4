#include "sim/lab/plots.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;

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
                                            " (exit ", rc, "); see ",
                                            (dir / "plots/gnuplot.log").string()));
  }
  return absl::OkStatus();
}

namespace {

std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// A gnuplot double-quoted string: enhanced text is off, so only \ and " need escaping.
std::string Quote(const std::string& s) {
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

// A line of the plot: one value (mean, half-width) per x category or value.
struct Line {
  std::string title;
  std::vector<std::optional<std::pair<double, double>>> points;
};

// Writes the data and script for lines over the x positions and runs gnuplot.
absl::StatusOr<PlotFile> Draw(const SweepData& d, const std::string& base,
                              const std::string& title, const std::string& xlabel,
                              const std::string& ylabel, const std::vector<std::string>& xs,
                              bool numeric, bool y_log, const std::vector<Line>& lines,
                              bool zero_line) {
  const fs::path dir(d.dir);
  std::ofstream dat(dir / "plots" / (base + ".dat"));
  dat << "# x";
  for (const Line& l : lines) dat << "\tmean[" << l.title << "]\tci95";
  dat << "\n";
  for (size_t xi = 0; xi < xs.size(); xi++) {
    dat << (numeric ? xs[xi] : std::to_string(xi));
    for (const Line& l : lines) {
      const auto& p = l.points[xi];
      if (!p || (y_log && p->first <= 0)) {
        dat << "\tNaN\tNaN";
      } else {
        dat << "\t" << absl::StrFormat("%.9g", p->first) << "\t" << absl::StrFormat("%.9g", p->second);
      }
    }
    dat << "\n";
  }
  dat.close();
  std::ofstream gp(dir / "plots" / (base + ".gp"));
  gp << "set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'\n"
     << "set termoption noenhanced\n"
     << "set output 'plots/" << base << ".svg'\n"
     << "set title " << Quote(title) << "\n"
     << "set xlabel " << Quote(xlabel) << "\n"
     << "set ylabel " << Quote(ylabel) << "\n"
     << "set grid\nset key below\nset datafile missing 'NaN'\n"
     << "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n";
  if (d.spec.x_log && numeric) gp << "set logscale x\n";
  if (y_log) gp << "set logscale y\n";
  if (!numeric) {
    gp << "set xtics (";
    for (size_t xi = 0; xi < xs.size(); xi++) gp << (xi ? ", " : "") << Quote(xs[xi]) << " " << xi;
    gp << ")\n";
  }
  if (zero_line) gp << "set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'\n";
  gp << "plot ";
  for (size_t s = 0; s < lines.size(); s++) {
    gp << (s ? ", \\\n     " : "") << "'plots/" << base << ".dat' using 1:" << 2 + 2 * s << ":"
       << 3 + 2 * s << " with yerrorlines lw 2 pt 7 title " << Quote(lines[s].title);
  }
  gp << "\n";
  gp.close();
  absl::Status st = RunGnuplot(dir, "plots/" + base + ".gp");
  if (!st.ok()) return st;
  return PlotFile{title, "plots/" + base + ".svg"};
}

// The x positions: the x axis's values in words, or the designs when the sweep has no x.
std::vector<std::string> XLabels(const SweepData& d, const Layout& l) {
  std::vector<std::string> xs;
  if (d.spec.x.empty()) {
    for (size_t de = 0; de < l.designs.size(); de++) xs.push_back(DesignWords(d, l, de));
  } else {
    for (size_t x = 0; x < l.xs.size(); x++) xs.push_back(l.numeric ? l.xs[x] : XWords(d, l, x));
  }
  return xs;
}

}  // namespace

absl::StatusOr<PlotFile> DrawMetricPlot(const SweepData& d, const Layout& l, const PlotSpec& plot,
                                        size_t n) {
  std::vector<Line> lines;
  const bool by_design = d.spec.x.empty();
  const size_t positions = by_design ? l.designs.size() : l.xs.size();
  for (size_t r = 0; r < l.regimes.size(); r++) {
    for (size_t de = 0; de < (by_design ? 1 : l.designs.size()); de++) {
      Line line{by_design ? (RegimeWords(d, l, r).empty() ? "all" : RegimeWords(d, l, r))
                          : SeriesWords(d, l, r, de),
                {}};
      for (size_t k = 0; k < positions; k++) {
        const int p = by_design ? l.Index(r, k, 0) : l.Index(r, de, k);
        const Stat st = p < 0 ? Stat{} : d.At(static_cast<size_t>(p), plot.metric);
        line.points.push_back(st.n == 0 ? std::nullopt
                                        : std::optional(std::make_pair(st.mean, st.ci95)));
      }
      lines.push_back(std::move(line));
    }
  }
  // A log axis cannot show a zero or a negative mean (gnuplot drops the point: a series that
  // wins with 0 would vanish), so such a plot falls back to a linear axis and says so.
  bool y_log = plot.y_log;
  for (const Line& line : lines) {
    for (const auto& pt : line.points) y_log = y_log && (!pt || pt->first > 0);
  }
  const std::string title =
      y_log == plot.y_log ? plot.title : plot.title + " (linear axis: some means are 0)";
  const std::string base = absl::StrFormat("%02d_%s", n, Slug(plot.metric).substr(0, 60));
  return Draw(d, base, title, by_design ? d.spec.design : d.spec.x_label, plot.ylabel,
              XLabels(d, l), by_design ? false : l.numeric, y_log, lines, false);
}

absl::StatusOr<PlotFile> DrawPairedPlot(const SweepData& d, const Layout& l, size_t n) {
  if (d.spec.design.empty() || l.designs.size() < 2 || d.spec.conclusion_metric.empty()) {
    return absl::FailedPreconditionError("no design axis with two designs and a headline metric");
  }
  size_t base_design = 0;
  for (size_t de = 0; de < l.designs.size(); de++) {
    if (l.designs[de] == d.spec.baseline) base_design = de;
  }
  const std::string& metric = d.spec.conclusion_metric;
  const bool by_design = d.spec.x.empty();
  std::vector<Line> lines;
  std::vector<std::string> xs;
  if (by_design) {
    for (size_t de = 0; de < l.designs.size(); de++) {
      if (de != base_design) xs.push_back(DesignWords(d, l, de));
    }
  } else {
    xs = XLabels(d, l);
  }
  auto paired = [&](size_t r, size_t de, size_t x) -> std::optional<std::pair<double, double>> {
    const int a = l.Index(r, de, x), b = l.Index(r, base_design, x);
    if (a < 0 || b < 0) return std::nullopt;
    const Paired p = PairedDiff(d.BySeed(static_cast<size_t>(a), metric),
                                d.BySeed(static_cast<size_t>(b), metric));
    if (p.n == 0) return std::nullopt;
    return std::make_pair(p.diff, p.ci95);
  };
  for (size_t r = 0; r < l.regimes.size(); r++) {
    if (by_design) {
      Line line{RegimeWords(d, l, r).empty() ? "all" : RegimeWords(d, l, r), {}};
      for (size_t de = 0; de < l.designs.size(); de++) {
        if (de != base_design) line.points.push_back(paired(r, de, 0));
      }
      lines.push_back(std::move(line));
      continue;
    }
    for (size_t de = 0; de < l.designs.size(); de++) {
      if (de == base_design) continue;
      Line line{absl::StrCat(DesignWords(d, l, de), " - ", DesignWords(d, l, base_design),
                             RegimeWords(d, l, r).empty() ? "" : ", ", RegimeWords(d, l, r)),
                {}};
      for (size_t x = 0; x < l.xs.size(); x++) line.points.push_back(paired(r, de, x));
      lines.push_back(std::move(line));
    }
  }
  const std::string label =
      d.spec.conclusion_label.empty() ? metric : d.spec.conclusion_label;
  return Draw(d, absl::StrFormat("%02d_paired_difference", n),
              absl::StrCat("Paired difference against ", DesignWords(d, l, base_design), ": ",
                           label),
              by_design ? d.spec.design : d.spec.x_label,
              absl::StrCat("difference in ", label, " (same seeds)"), xs,
              by_design ? false : l.numeric, false, lines, true);
}

}  // namespace chatlab::sim::lab
