#include "sim/lab/stats.h"

#include <cassert>
#include <cmath>
#include <numbers>

namespace chatlab::sim::lab {
namespace {

// The standard normal p-quantile (Acklam's rational approximation, relative error < 1.2e-9).
double NormalQuantile(double p) {
  assert(p > 0 && p < 1);
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) return -NormalQuantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

}  // namespace

double StudentQuantile(double p, int df) {
  assert(p > 0.5 && p < 1);
  assert(df >= 1);
  if (df == 1) return std::tan(std::numbers::pi * (p - 0.5));
  if (df == 2) return (2 * p - 1) / std::sqrt(2 * p * (1 - p));
  const double z = NormalQuantile(p), v = df;
  const double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  const double g1 = (z3 + z) / 4;
  const double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

Stat Summarize(const std::vector<double>& v) {
  Stat s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  s.ci95 = StudentQuantile(0.975, s.n - 1) * sd / std::sqrt(static_cast<double>(s.n));
  return s;
}

std::optional<double> Paired::Ratio() const {
  if (mean_b == 0) return std::nullopt;
  return mean_a / mean_b;
}

Paired Flip(const Paired& p) {
  Paired f = p;
  f.mean_a = p.mean_b;
  f.mean_b = p.mean_a;
  f.diff = -p.diff;
  return f;
}

Paired PairedDiff(const std::vector<std::optional<double>>& a,
                  const std::vector<std::optional<double>>& b) {
  assert(a.size() == b.size());
  Paired p;
  std::vector<double> diffs;
  for (size_t k = 0; k < a.size(); k++) {
    if (!a[k] || !b[k]) continue;
    diffs.push_back(*a[k] - *b[k]);
    p.mean_a += *a[k];
    p.mean_b += *b[k];
  }
  p.n = static_cast<int>(diffs.size());
  if (p.n == 0) return p;
  p.mean_a /= p.n;
  p.mean_b /= p.n;
  const Stat s = Summarize(diffs);
  p.diff = s.mean;
  p.ci95 = s.ci95;
  if (p.n < 2) return p;
  double ss = 0;
  for (double x : diffs) ss += (x - s.mean) * (x - s.mean);
  const double se = std::sqrt(ss / (p.n - 1)) / std::sqrt(static_cast<double>(p.n));
  p.mdd = (StudentQuantile(0.975, p.n - 1) + StudentQuantile(0.80, p.n - 1)) * se;
  // A difference that is exactly the same at every seed has no spread: significant unless 0.
  p.significant = se == 0 ? p.diff != 0 : std::fabs(p.diff) > p.ci95;
  return p;
}

}  // namespace chatlab::sim::lab
