// Stats: the few estimators every report uses, with their assumptions in their names.
//
// Runs of one sweep share their seed list across points (common random numbers), so two designs
// are compared seed by seed: a paired difference, not two overlapping intervals.
// docs/reports-method.md gives the definitions.
#ifndef CHATLAB_SIM_LAB_STATS_H_
#define CHATLAB_SIM_LAB_STATS_H_

#include <optional>
#include <vector>

namespace chatlab::sim::lab {

// The p-quantile of Student's t with df degrees of freedom (p in (0.5, 1), df >= 1): exact for
// df = 1 and 2, the Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5) above, which is
// within 0.1% of the tables for df >= 3 at the quantiles used here (0.80, 0.975).
double StudentQuantile(double p, int df);

// Mean and 95% confidence interval (Student's t) of a sample.
struct Stat {
  double mean = 0;
  double ci95 = 0;  // half-width; 0 for fewer than two values
  int n = 0;
};
Stat Summarize(const std::vector<double>& values);

// The paired difference a - b over the pairs where both are present.
struct Paired {
  int n = 0;              // pairs used
  double mean_a = 0;      // over the pairs used
  double mean_b = 0;
  double diff = 0;        // mean of a_k - b_k
  double ci95 = 0;        // half-width, t(0.975, n-1) s_d / sqrt(n); 0 below two pairs
  double mdd = 0;         // minimal detectable difference, 5% two-sided, 80% power
  bool significant = false;  // n >= 2 and the interval excludes 0
  // diff / mean_b (0 when mean_b is 0).
  double Relative() const { return mean_b == 0 ? 0 : diff / mean_b; }
  // mean_a / mean_b (nullopt when mean_b is 0).
  std::optional<double> Ratio() const;
};
// The same comparison the other way round: b - a.
Paired Flip(const Paired& p);
// REQUIRES: a.size() == b.size(); entry k of both is seed k.
Paired PairedDiff(const std::vector<std::optional<double>>& a,
                  const std::vector<std::optional<double>>& b);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_STATS_H_
