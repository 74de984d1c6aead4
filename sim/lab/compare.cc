#include "sim/lab/compare.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"

namespace chatlab::sim::lab {
namespace {

bool AllNumeric(const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    char* end = nullptr;
    (void)std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') return false;
  }
  return true;
}

bool Matches(const Point& p, const std::string& key, const std::string& value) {
  auto it = p.find(key);
  return key.empty() || (it != p.end() && it->second == value);
}

}  // namespace

Layout MakeLayout(const SweepData& d) {
  Layout l;
  ExperimentSpec regimes;
  for (const Axis& a : d.spec.axes) {
    if (a.key == d.spec.x) {
      l.xs = a.values;
    } else if (a.key == d.spec.design) {
      l.designs = a.values;
    } else {
      regimes.axes.push_back(a);
      l.regime_keys.push_back(a.key);
    }
  }
  if (l.xs.empty()) l.xs.push_back("");
  if (l.designs.empty()) l.designs.push_back("");
  l.numeric = AllNumeric(l.xs);
  l.regimes = Grid(regimes);
  l.index.assign(l.regimes.size() * l.designs.size() * l.xs.size(), -1);
  for (size_t i = 0; i < d.points.size(); i++) {
    const Point& p = d.points[i];
    for (size_t r = 0; r < l.regimes.size(); r++) {
      bool regime = true;
      for (const auto& [k, v] : l.regimes[r]) regime = regime && Matches(p, k, v);
      if (!regime) continue;
      for (size_t de = 0; de < l.designs.size(); de++) {
        if (!Matches(p, d.spec.design, l.designs[de])) continue;
        for (size_t x = 0; x < l.xs.size(); x++) {
          if (Matches(p, d.spec.x, l.xs[x])) {
            l.index[(r * l.designs.size() + de) * l.xs.size() + x] = static_cast<int>(i);
          }
        }
      }
    }
  }
  return l;
}

std::string RegimeWords(const SweepData& d, const Layout& l, size_t r) {
  std::vector<std::string> parts;
  for (const std::string& k : l.regime_keys) parts.push_back(ValueWords(d.spec, k, l.regimes[r].at(k)));
  return absl::StrJoin(parts, ", ");
}

std::string DesignWords(const SweepData& d, const Layout& l, size_t de) {
  if (d.spec.design.empty()) return "";
  return ValueWords(d.spec, d.spec.design, l.designs[de]);
}

std::string SeriesWords(const SweepData& d, const Layout& l, size_t r, size_t de) {
  std::vector<std::string> parts;
  if (!d.spec.design.empty()) parts.push_back(DesignWords(d, l, de));
  const std::string regime = RegimeWords(d, l, r);
  if (!regime.empty()) parts.push_back(regime);
  return parts.empty() ? "all" : absl::StrJoin(parts, ", ");
}

std::string XWords(const SweepData& d, const Layout& l, size_t x) {
  if (d.spec.x.empty()) return "";
  return ValueWords(d.spec, d.spec.x, l.xs[x]);
}

bool Present(const Layout& l, size_t r, size_t x) {
  for (size_t de = 0; de < l.designs.size(); de++) {
    if (l.Index(r, de, x) >= 0) return true;
  }
  return false;
}

Ranking Rank(const SweepData& d, const Layout& l, size_t r, size_t x, const std::string& metric,
             bool lower_is_better) {
  Ranking k;
  k.regime = r;
  k.x = x;
  k.stats.resize(l.designs.size());
  k.vs_best.resize(l.designs.size());
  for (size_t de = 0; de < l.designs.size(); de++) {
    const int p = l.Index(r, de, x);
    if (p < 0) continue;
    k.stats[de] = d.At(static_cast<size_t>(p), metric);
    if (k.stats[de].n > 0) k.order.push_back(de);
  }
  if (k.order.empty()) return k;
  std::stable_sort(k.order.begin(), k.order.end(), [&](size_t a, size_t b) {
    return lower_is_better ? k.stats[a].mean < k.stats[b].mean
                           : k.stats[a].mean > k.stats[b].mean;
  });
  const size_t best = k.order.front();
  const auto best_values = d.BySeed(static_cast<size_t>(l.Index(r, best, x)), metric);
  k.winner = k.order.size() > 1;
  for (size_t j = 1; j < k.order.size(); j++) {
    const size_t other = k.order[j];
    k.vs_best[other] =
        PairedDiff(best_values, d.BySeed(static_cast<size_t>(l.Index(r, other, x)), metric));
    if (!k.vs_best[other].significant) {
      k.winner = false;
      k.undecided.push_back(other);
    }
  }
  return k;
}

ClaimVerdict JudgeClaim(const SweepData& d, const Layout& l, const ClaimSpec& c) {
  (void)l;
  ClaimVerdict v;
  const std::string metric = c.metric.empty() ? d.spec.conclusion_metric : c.metric;
  const std::string axis = c.axis.empty() ? d.spec.design : c.axis;
  if (metric.empty() || axis.empty()) {
    v.verdict = "not tested";
    v.evidence = "no metric or axis to test it on";
    return v;
  }
  // Every point with axis = better, against the point that differs only in axis = than.
  double strongest_for = -1, strongest_against = -1;
  std::string for_text, against_text;
  double mdd_max = 0;
  int single_seed = 0;  // points compared on one seed: no interval, so no verdict either way
  int within = 0, beyond = 0;  // "similar" with a margin (below)
  std::string beyond_text;
  for (size_t i = 0; i < d.points.size(); i++) {
    const Point& pb = d.points[i];
    if (pb.at(axis) != c.better) continue;
    bool holds = true;
    for (const Condition& w : c.where) holds = holds && w.Holds(pb.at(w.key));
    if (!holds) continue;
    Point want = pb;
    want[axis] = c.than;
    size_t j = d.points.size();
    for (size_t k = 0; k < d.points.size(); k++) {
      if (d.points[k] == want) j = k;
    }
    if (j == d.points.size()) continue;
    const Paired p = PairedDiff(d.BySeed(i, metric), d.BySeed(j, metric));
    if (p.n == 0) continue;
    std::vector<std::string> where;
    for (const auto& [k, value] : pb) {
      if (k != axis) where.push_back(ValueWords(d.spec, k, value));
    }
    const std::string text = absl::StrCat(
        ValueWords(d.spec, axis, c.better), " minus ", ValueWords(d.spec, axis, c.than), " = ",
        PairedText(p, ""), where.empty() ? "" : absl::StrCat(" at ", absl::StrJoin(where, ", ")));
    const double gain = c.lower_is_better ? -p.diff : p.diff;  // > 0: `better` is better
    const double size = std::fabs(p.Relative()) + (p.mean_b == 0 ? std::fabs(p.diff) : 0);
    mdd_max = std::max(mdd_max, p.mdd);
    if (p.n < 2) single_seed++;
    // "similar" with a margin: the whole 95% interval inside +-margin x |than| (equivalent),
    // or the whole of it beyond (a difference that matters).
    const double m = c.margin * std::fabs(p.mean_b);
    if (p.n >= 2 && std::fabs(p.diff) + p.ci95 <= m) within++;
    if (p.n >= 2 && std::fabs(p.diff) - p.ci95 > m) {
      beyond++;
      beyond_text = text;
    }
    if (!p.significant) {
      v.undecided++;
    } else if (gain > 0) {
      v.agree++;
      if (size > strongest_for) strongest_for = size, for_text = text;
    } else {
      v.disagree++;
      if (size > strongest_against) strongest_against = size, against_text = text;
    }
  }
  const int cells = v.agree + v.disagree + v.undecided;
  const int significant = v.agree + v.disagree;
  if (cells == 0) {
    v.verdict = "not tested";
    v.evidence = "no pair of points matches the claim";
    return v;
  }
  // What the seeds could have detected: nothing at all with one seed a point.
  const std::string detectable =
      single_seed > 0 ? absl::StrCat("; ", single_seed, " of ", cells,
                                     " points ran one seed, which gives no interval")
                      : absl::StrCat("; the seeds would have seen a difference of ", Num(mdd_max));
  if (c.kind == "similar" && c.margin > 0) {
    const std::string margin = absl::StrFormat("%.0f%%", 100 * c.margin);
    if (beyond > 0) {
      v.verdict = "disagrees";
      v.evidence = absl::StrCat("the difference exceeds the ", margin, " margin at ", beyond,
                                " of ", cells, " points; e.g. ", beyond_text);
    } else if (within == cells) {
      v.verdict = "agrees";
      const std::string e = !against_text.empty() ? against_text
                            : !for_text.empty()   ? for_text
                                                  : "no significant difference";
      v.evidence = absl::StrCat("the 95% interval of the difference lies within +-", margin,
                                " at all ", cells, " points; e.g. ", e);
    } else {
      v.verdict = within > 0 ? "partly" : "cannot tell";
      v.evidence = absl::StrCat("within +-", margin, " at ", within, " of ", cells,
                                " points; at the rest the interval straddles the margin",
                                detectable);
    }
    return v;
  }
  if (c.kind == "similar") {
    // The claim is that the two do not differ (enough to matter). With a point of one seed,
    // no difference can be significant, so "no significant difference" says nothing.
    if (significant == 0 && single_seed > 0) {
      v.verdict = "cannot tell";
      v.evidence = absl::StrCat("no interval at ", cells, " points", detectable);
    } else if (significant == 0) {
      v.verdict = "agrees";
      v.evidence = absl::StrCat("no significant difference at any of ", cells, " points",
                                detectable);
    } else {
      v.verdict = "disagrees";
      v.evidence = absl::StrCat("significant difference at ", significant, " of ", cells,
                                " points; e.g. ", v.agree > 0 ? for_text : against_text);
    }
    return v;
  }
  if (v.disagree > 0 && v.agree > 0) {
    // Mixed: the claim holds in some regimes and the opposite in others (a crossover).
    v.verdict = "partly";
    v.evidence = absl::StrCat("holds at ", v.agree, " of ", cells, " points and the opposite at ",
                              v.disagree, "; e.g. against: ", against_text);
  } else if (v.disagree > 0) {
    v.verdict = "disagrees";
    v.evidence = absl::StrCat("the opposite holds at ", v.disagree, " of ", cells,
                              " points; e.g. ", against_text);
  } else if (v.agree == cells) {
    v.verdict = "agrees";
    v.evidence = absl::StrCat("significant at all ", cells, " points; e.g. ", for_text);
  } else if (v.agree > 0) {
    v.verdict = "partly";
    v.evidence = absl::StrCat("significant at ", v.agree, " of ", cells,
                              " points, no significant difference at the rest; e.g. ", for_text);
  } else {
    v.verdict = "cannot tell";
    v.evidence =
        absl::StrCat("no significant difference at any of ", cells, " points", detectable);
  }
  return v;
}

std::string Num(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e6 || a < 1e-3) return absl::StrFormat("%.3g", v);
  if (a >= 100) return absl::StrFormat("%.0f", v);
  if (a >= 10) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.3g", v);
}

std::string HtmlEscape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string RatioText(double r) {
  return r >= 9.95 ? absl::StrFormat("%.0fx", r) : absl::StrFormat("%.3gx", r);
}

std::string PairedText(const Paired& p, const std::string& unit) {
  const std::string u = unit.empty() ? "" : absl::StrCat(" ", unit);
  std::string rel;
  // Beyond +1000% a percentage stops reading as a size ("+15669%"): give the ratio instead.
  if (p.mean_b != 0) {
    rel = p.Relative() >= 10 ? absl::StrCat(", ", RatioText(1 + p.Relative()), " the other")
                             : absl::StrFormat(", %+.0f%%", 100 * p.Relative());
  }
  if (p.n < 2) return absl::StrCat(Num(p.diff), u, rel, ", 1 seed");
  return absl::StrCat(Num(p.diff), u, " (95% CI ", Num(p.diff - p.ci95), " to ",
                      Num(p.diff + p.ci95), ")", rel, ", ", p.n, " seeds");
}

}  // namespace chatlab::sim::lab
