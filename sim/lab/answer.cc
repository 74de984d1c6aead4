#include "sim/lab/answer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace chatlab::sim::lab {
namespace {

struct Metric {
  std::string path;
  std::string label;
  bool lower_is_better = true;
};

// One regime's verdicts along x for one metric: runs of x with the same verdict.
struct Segment {
  size_t first = 0, last = 0;  // x indices
  std::string key;             // "W:d" (design d wins) or "U:d,e" (cannot tell d and e apart)
  Ranking at_last;             // the ranking at `last`
};

std::string VerdictKey(const Ranking& k) {
  if (k.winner) return absl::StrCat("W:", k.best());
  std::vector<size_t> group{k.best()};
  group.insert(group.end(), k.undecided.begin(), k.undecided.end());
  std::sort(group.begin(), group.end());
  return absl::StrCat("U:", absl::StrJoin(group, ","));
}

std::vector<Segment> Segments(const SweepData& d, const Layout& l, size_t r, const Metric& m) {
  std::vector<Segment> out;
  for (size_t x = 0; x < l.xs.size(); x++) {
    if (!Present(l, r, x)) continue;
    Ranking k = Rank(d, l, r, x, m.path, m.lower_is_better);
    if (k.order.empty()) continue;
    const std::string key = VerdictKey(k);
    if (!out.empty() && out.back().key == key) {
      out.back().last = x;
      out.back().at_last = std::move(k);
    } else {
      out.push_back({x, x, key, std::move(k)});
    }
  }
  return out;
}

std::string Range(const SweepData& d, const Layout& l, const Segment& s, bool whole) {
  if (d.spec.x.empty()) return "";
  if (whole) {
    return absl::StrCat(" at every value tested, ", XWords(d, l, 0), " to ",
                        XWords(d, l, l.xs.size() - 1));
  }
  if (s.first == s.last) return absl::StrCat(" at ", XWords(d, l, s.first));
  return absl::StrCat(" from ", XWords(d, l, s.first), " to ", XWords(d, l, s.last));
}

std::string Phrase(const SweepData& d, const Layout& l, const Metric& m, const Segment& s,
                   bool whole) {
  const Ranking& k = s.at_last;
  const std::string best_word = m.lower_is_better ? "lowest" : "highest";
  const std::string at = (whole && l.xs.size() > 1) || s.first != s.last
                             ? absl::StrCat(" at ", XWords(d, l, s.last))
                             : "";
  if (k.order.size() == 1) {
    return absl::StrCat(DesignWords(d, l, k.best()), " alone was run", Range(d, l, s, whole));
  }
  if (k.winner) {
    const size_t next = k.order[1];
    // With three designs or more, a last one at twice the best or worse is named too: a
    // design that collapses (a queue under jitter) is the result a reader must not miss.
    std::string worst;
    const size_t last = k.order.back();
    if (k.order.size() >= 3 && k.vs_best[last].significant) {
      const std::optional<double> ratio = Flip(k.vs_best[last]).Ratio();
      if (ratio && (*ratio >= 2 || *ratio <= 0.5)) {
        worst = absl::StrCat("; the last, ", DesignWords(d, l, last), ", by ",
                             PairedText(Flip(k.vs_best[last]), ""));
      }
    }
    return absl::StrCat(DesignWords(d, l, k.best()), " has the ", best_word, " ", m.label,
                        Range(d, l, s, whole), " (the next best, ", DesignWords(d, l, next),
                        ", is worse by ", PairedText(Flip(k.vs_best[next]), ""), worst, at, ")");
  }
  std::vector<std::string> names{DesignWords(d, l, k.best())};
  double mdd = 0;
  bool one_seed = false;  // a pair on one seed has no interval: neither a difference nor "identical"
  for (size_t u : k.undecided) {
    names.push_back(DesignWords(d, l, u));
    mdd = std::max(mdd, k.vs_best[u].mdd);
    one_seed = one_seed || k.vs_best[u].n < 2;
  }
  std::string behind;
  if (names.size() < k.order.size()) {
    std::vector<std::string> rest;
    for (size_t j = 1; j < k.order.size(); j++) {
      if (std::find(k.undecided.begin(), k.undecided.end(), k.order[j]) == k.undecided.end()) {
        rest.push_back(DesignWords(d, l, k.order[j]));
      }
    }
    // "Both ahead" only where every design tied with the best is itself significantly better
    // than each of the rest (paired); otherwise only the best is said to be ahead.
    bool all_ahead = true;
    for (size_t u : k.undecided) {
      for (size_t j = 1; j < k.order.size(); j++) {
        const size_t o = k.order[j];
        if (std::find(k.undecided.begin(), k.undecided.end(), o) != k.undecided.end()) continue;
        const Paired p =
            PairedDiff(d.BySeed(static_cast<size_t>(l.Index(k.regime, u, k.x)), m.path),
                       d.BySeed(static_cast<size_t>(l.Index(k.regime, o, k.x)), m.path));
        const bool better = m.lower_is_better ? p.diff < 0 : p.diff > 0;
        all_ahead = all_ahead && p.significant && better;
      }
    }
    behind = all_ahead ? absl::StrCat(", both ahead of ", absl::StrJoin(rest, " and "))
                       : absl::StrCat(", and only ", DesignWords(d, l, k.best()),
                                      " is significantly ahead of ", absl::StrJoin(rest, " and "));
  }
  const double mean = std::fabs(k.stats[k.best()].mean);
  return absl::StrCat(absl::StrJoin(names, " and "), " cannot be told apart on ", m.label,
                      Range(d, l, s, whole), behind,
                      one_seed ? absl::StrCat(" (one seed", at, ": no interval)")
                      : mdd > 0 ? absl::StrCat(" (these seeds would have seen a difference of ",
                                             Num(mdd), mean > 0 ? absl::StrFormat(
                                                                      ", %.0f%% of the mean", 100 * mdd / mean)
                                                                : "",
                                             at, ")")
                              : absl::StrCat(" (identical at every seed", at, ")"));
}

// One regime's sentence for one metric, and whether it has a crossover.
std::string RegimeSentence(const SweepData& d, const Layout& l, size_t r, const Metric& m,
                           const std::vector<Segment>& segs) {
  if (segs.empty()) return "";
  if (d.spec.design.empty()) {
    // No alternatives: how the metric moves along x, paired across x on the same seeds.
    const int p0 = l.Index(r, 0, segs.front().first), p1 = l.Index(r, 0, segs.back().last);
    if (p0 < 0 || p1 < 0) return "";
    const Stat a = d.At(static_cast<size_t>(p0), m.path);
    if (p0 == p1) return absl::StrCat(m.label, " is ", Num(a.mean), " ± ", Num(a.ci95));
    const Paired p = PairedDiff(d.BySeed(static_cast<size_t>(p1), m.path),
                                d.BySeed(static_cast<size_t>(p0), m.path));
    return absl::StrCat(m.label, " goes from ", Num(p.mean_b), " at ",
                        XWords(d, l, segs.front().first), " to ", Num(p.mean_a), " at ",
                        XWords(d, l, segs.back().last), " (paired change ", PairedText(p, ""),
                        p.significant ? "" : "; not significant", ")");
  }
  std::vector<std::string> parts;
  // "At every value tested" only when the one segment spans every x: an x where the metric has
  // no value (nothing of the kind happened there) is not a value tested.
  const bool whole = segs.size() == 1 && segs.front().first == 0 &&
                     segs.front().last + 1 == l.xs.size();
  for (const Segment& s : segs) parts.push_back(Phrase(d, l, m, s, whole));
  std::string out = absl::StrJoin(parts, "; ");
  for (size_t i = 1; i < segs.size(); i++) {
    absl::StrAppend(&out, i == 1 ? "; the verdict changes between " : " and between ",
                    XWords(d, l, segs[i - 1].last), " and ", XWords(d, l, segs[i].first));
  }
  return out;
}

std::string Capital(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// The largest significant paired ratio between any two designs, over every cell, for an
// [[report.also]] metric.
std::string StrongestEffect(const SweepData& d, const Layout& l, const Metric& m) {
  double best_rel = 0;
  std::string text;
  for (size_t r = 0; r < l.regimes.size(); r++) {
    for (size_t x = 0; x < l.xs.size(); x++) {
      if (!Present(l, r, x)) continue;
      const Ranking k = Rank(d, l, r, x, m.path, m.lower_is_better);
      if (k.order.size() < 2) continue;
      const size_t worst = k.order.back();
      const Paired& p = k.vs_best[worst];
      if (!p.significant || std::fabs(p.Relative()) <= best_rel) continue;
      best_rel = std::fabs(p.Relative());
      std::vector<std::string> parts;
      for (std::string w : {RegimeWords(d, l, r), XWords(d, l, x)}) {
        if (!w.empty()) parts.push_back(std::move(w));
      }
      const std::string where = absl::StrJoin(parts, ", ");
      const auto ratio = p.Ratio();
      text = absl::StrCat("on ", m.label, ", the widest gap is ", DesignWords(d, l, worst),
                          " against ", DesignWords(d, l, k.best()),
                          where.empty() ? "" : absl::StrCat(" at ", where), ": ", Num(p.mean_b),
                          " against ", Num(p.mean_a),
                          ratio && *ratio > 0 ? absl::StrCat(" (", RatioText(1 / *ratio), ")") : "",
                          ", a paired difference of ", PairedText(Flip(p), ""));
    }
  }
  return text.empty() ? absl::StrCat("on ", m.label, ", no two designs differ significantly")
                      : text;
}

// With three or more designs, a design that is never the best nor tied with the best at any
// (regime, x) cell is dominated: the regime sentences name only winners, so say it here, with its
// closest approach to the best.
std::string NeverBest(const SweepData& d, const Layout& l, const Metric& m) {
  if (l.designs.size() < 3) return "";
  // Where one design wins everywhere, the headline already says every other one never is.
  std::set<size_t> winners;
  for (size_t r = 0; r < l.regimes.size(); r++) {
    for (size_t x = 0; x < l.xs.size(); x++) {
      if (Present(l, r, x)) winners.insert(Rank(d, l, r, x, m.path, m.lower_is_better).best());
    }
  }
  if (winners.size() < 2) return "";
  std::vector<std::string> out;
  for (size_t design = 0; design < l.designs.size(); design++) {
    int cells = 0;
    bool ever = false;
    std::optional<Ranking> closest;
    for (size_t r = 0; r < l.regimes.size() && !ever; r++) {
      for (size_t x = 0; x < l.xs.size() && !ever; x++) {
        if (!Present(l, r, x) || l.Index(r, design, x) < 0) continue;
        Ranking k = Rank(d, l, r, x, m.path, m.lower_is_better);
        cells++;
        const Paired& p = k.vs_best[design];
        if (k.best() == design || !p.significant) {
          ever = true;
        } else if (!closest ||
                   std::fabs(p.Relative()) < std::fabs(closest->vs_best[design].Relative())) {
          closest = std::move(k);
        }
      }
    }
    if (ever || cells == 0 || !closest) continue;
    const Paired& p = closest->vs_best[design];
    std::vector<std::string> parts;
    for (std::string w : {RegimeWords(d, l, closest->regime), XWords(d, l, closest->x)}) {
      if (!w.empty()) parts.push_back(std::move(w));
    }
    out.push_back(absl::StrCat(
        Capital(DesignWords(d, l, design)), " is never the best on ", m.label, ": at each of the ",
        cells, " points tested another design is significantly better; at its closest (",
        absl::StrJoin(parts, ", "), ") it is worse than ", DesignWords(d, l, closest->best()),
        " by ", PairedText(Flip(p), "")));
  }
  return out.empty() ? "" : absl::StrJoin(out, ". ") + ".";
}

}  // namespace

Answer BuildAnswer(const SweepData& d, const Layout& l, int checks, int check_failures,
                   int checks_outside_ci) {
  Answer a;
  if (d.spec.conclusion_metric.empty()) {
    a.sentences.push_back("This sweep declares no [report.conclusion] metric, so it names no answer.");
    a.confidence = "low";
    a.confidence_why = "no headline metric";
    return a;
  }
  const Metric head{d.spec.conclusion_metric,
                    d.spec.conclusion_label.empty() ? d.spec.conclusion_metric
                                                    : d.spec.conclusion_label,
                    d.spec.lower_is_better};
  // Headline, per regime; regimes with the same verdict pattern share the answer's sentence.
  std::map<std::string, std::vector<size_t>> groups;  // pattern -> regimes
  std::vector<std::string> pattern_order;
  std::vector<std::string> regime_sentence(l.regimes.size());
  for (size_t r = 0; r < l.regimes.size(); r++) {
    const std::vector<Segment> segs = Segments(d, l, r, head);
    RegimeConclusion c{RegimeWords(d, l, r), {}};
    regime_sentence[r] = RegimeSentence(d, l, r, head, segs);
    if (regime_sentence[r].empty()) continue;
    for (size_t x = 0; x < l.xs.size(); x++) {
      if (!Present(l, r, x)) continue;
      a.cells++;
      if (Rank(d, l, r, x, head.path, head.lower_is_better).winner) a.cells_decided++;
    }
    c.sentences.push_back(Capital(regime_sentence[r]) + ".");
    for (const AlsoMetric& also : d.spec.also) {
      const Metric m{also.metric, also.label, also.lower_is_better};
      const std::string s = RegimeSentence(d, l, r, m, Segments(d, l, r, m));
      if (!s.empty()) c.sentences.push_back(Capital(s) + ".");
    }
    a.conclusions.push_back(std::move(c));
    // Without a design axis every regime has its own figures: no sharing.
    std::string pattern = d.spec.design.empty() ? absl::StrCat("regime ", r) : "";
    for (const Segment& s : segs) absl::StrAppend(&pattern, s.key, "@", s.first, "-", s.last, ";");
    if (!groups.count(pattern)) pattern_order.push_back(pattern);
    groups[pattern].push_back(r);
  }
  constexpr size_t kGroupsMax = 3;
  for (size_t g = 0; g < pattern_order.size() && g < kGroupsMax; g++) {
    const std::vector<size_t>& rs = groups[pattern_order[g]];
    std::vector<std::string> names;
    for (size_t r : rs) names.push_back(RegimeWords(d, l, r));
    std::string lead;
    if (!names.front().empty()) {
      lead = rs.size() == 1
                 ? absl::StrCat("With ", names.front(), ": ")
                 : absl::StrCat("With ", names.front(), " (and likewise with ",
                                absl::StrJoin(names.begin() + 1, names.end(), "; "), "): ");
    }
    a.sentences.push_back(absl::StrCat(lead, lead.empty() ? Capital(regime_sentence[rs.front()])
                                                           : regime_sentence[rs.front()],
                                       "."));
  }
  if (pattern_order.size() > kGroupsMax) {
    a.sentences.push_back(absl::StrCat("The other ", pattern_order.size() - kGroupsMax,
                                       " verdict patterns are under Conclusions, per regime."));
  }
  if (!d.spec.design.empty()) {
    std::vector<std::string> effects;
    for (const AlsoMetric& also : d.spec.also) {
      effects.push_back(StrongestEffect(d, l, {also.metric, also.label, also.lower_is_better}));
    }
    if (!effects.empty()) a.sentences.push_back(Capital(absl::StrJoin(effects, "; ")) + ".");
  }
  if (!d.spec.design.empty()) {
    if (std::string never = NeverBest(d, l, head); !never.empty()) a.sentences.push_back(never);
  }
  // The seeds the points ran: fewer than configured where sequential sampling stopped early.
  const int seeds = static_cast<int>(d.SeedsMin());
  std::vector<std::string> why;
  if (seeds < kSweepSeedsDefault) why.push_back(absl::StrCat("only ", seeds, " seeds per point"));
  if (check_failures > 0) {
    why.push_back(absl::StrCat(check_failures, " of ", checks, " checks against theory missed"));
  }
  if (!why.empty()) {
    a.confidence = "low";
  } else if (d.spec.design.empty() || a.cells_decided == a.cells) {
    a.confidence = "high";
  } else {
    a.confidence = "medium";
    why.push_back(absl::StrCat(a.cells - a.cells_decided, " of ", a.cells,
                               " comparisons cannot name a winner"));
  }
  a.confidence_why = why.empty() ? "every comparison is significant" : absl::StrJoin(why, "; ");
  const std::string seeds_text =
      d.SeedsMin() == d.SeedsMax()
          ? absl::StrCat(seeds, " seeds per point")
          : absl::StrCat(d.SeedsMin(), " to ", d.SeedsMax(),
                         " seeds per point (more where the headline was less precise)");
  a.sentences.push_back(absl::StrCat(
      "How sure: ", a.confidence, "; ", seeds_text,
      d.spec.design.empty() ? ", the same seeds at every point" : ", designs paired by seed",
      d.spec.design.empty() ? ""
                            : absl::StrCat(", ", a.cells_decided, " of ", a.cells,
                                           " comparisons name a significant winner"),
      checks > 0 ? absl::StrCat(", ", checks - check_failures, " of ", checks,
                                " checks against theory within tolerance",
                                checks_outside_ci > 0
                                    ? absl::StrCat(" (", checks_outside_ci,
                                                   " of them with the model outside the "
                                                   "seeds' 95% interval)")
                                    : "")
                 : "",
      "."));
  if (a.sentences.size() > static_cast<size_t>(kAnswerSentencesMax)) {
    a.sentences.erase(a.sentences.begin() + kAnswerSentencesMax - 1, a.sentences.end() - 1);
  }
  return a;
}

}  // namespace chatlab::sim::lab
