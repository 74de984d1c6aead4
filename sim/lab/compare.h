// Compare: the designs of a sweep set against each other, seed by seed.
//
// A report's grid has three kinds of axes (docs/reports-method.md): x, the design (the
// alternatives the question is about) and regimes (every other varied key). Layout indexes the
// points by (regime, design, x); Rank orders the designs at one (regime, x) by a metric and pairs
// the best with each other design over the shared seeds; a winner is named only where every
// such paired difference is significant.
#ifndef CHATLAB_SIM_LAB_COMPARE_H_
#define CHATLAB_SIM_LAB_COMPARE_H_

#include <optional>
#include <string>
#include <vector>

#include "sim/lab/stats.h"
#include "sim/lab/sweep_data.h"

namespace chatlab::sim::lab {

struct Layout {
  std::vector<std::string> xs;  // {""} when the sweep has no x axis
  bool numeric = true;          // every x parses as a number
  std::vector<std::string> designs;  // the design axis's values ({""} when none)
  std::vector<Point> regimes;        // combinations of the regime axes ({{}} when none)
  std::vector<std::string> regime_keys;
  // The point at (regime r, design d, x), or -1 when the grid lacks it.
  int Index(size_t r, size_t d, size_t x) const { return index[(r * designs.size() + d) * xs.size() + x]; }
  std::vector<int> index;
};
Layout MakeLayout(const SweepData& data);

// Words for a regime ("gap detection on, 0.5 msg/s"; "" when there are no regimes), a design, a
// series (design and regime: "pull, 0.5 msg/s") and an x value ("200 ms jitter").
std::string RegimeWords(const SweepData& data, const Layout& l, size_t r);
std::string DesignWords(const SweepData& data, const Layout& l, size_t d);
std::string SeriesWords(const SweepData& data, const Layout& l, size_t r, size_t d);
std::string XWords(const SweepData& data, const Layout& l, size_t x);

// The designs at one (regime, x), ranked by one metric.
struct Ranking {
  size_t regime = 0;
  size_t x = 0;
  std::vector<size_t> order;       // designs present, best mean first (ties keep grid order)
  std::vector<Stat> stats;         // by design index (n = 0 where absent)
  std::vector<Paired> vs_best;     // by design index: best - design, paired by seed
  bool winner = false;             // order[0] is significantly better than every other design
  std::vector<size_t> undecided;   // designs the best cannot be told apart from
  size_t best() const { return order.front(); }
};
// REQUIRES: at least one design is present at (r, x).
Ranking Rank(const SweepData& data, const Layout& l, size_t r, size_t x,
             const std::string& metric, bool lower_is_better);
// Whether (r, x) has any point.
bool Present(const Layout& l, size_t r, size_t x);

// A claim's verdict (docs/reports-method.md).
struct ClaimVerdict {
  std::string verdict;  // "agrees" | "disagrees" | "partly" | "cannot tell" | "not tested"
  int agree = 0, disagree = 0, undecided = 0;  // matching (regime, x) cells
  std::string evidence;  // one sentence with the strongest paired difference either way
};
ClaimVerdict JudgeClaim(const SweepData& data, const Layout& l, const ClaimSpec& claim);

// Numbers as a report prints them: three significant figures, no exponent below 1e6.
std::string Num(double v);
// Text for HTML, in an element or a double-quoted attribute: & < > " escaped.
std::string HtmlEscape(const std::string& s);
// "1.01x", "1.37x", "16x", "158x" (never "1.6e+02x", nor "1x" for 1.01).
std::string RatioText(double r);
// "-52 ms (95% CI -64 to -40), -31%, 10 seeds" for a paired difference; unit may be "".
// Relative differences of +1000% and more read as a ratio ("158x the other").
std::string PairedText(const Paired& p, const std::string& unit);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_COMPARE_H_
