// The report's statistics and answer, in-process on synthetic sweeps: intervals from the
// tables, paired differences, and the rule that a sentence names a winner only where every
// paired difference is significant.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sim/lab/answer.h"
#include "sim/lab/check_builder.h"
#include "sim/lab/compare.h"
#include "sim/lab/stats.h"

namespace chatlab::sim::lab {
namespace {

TEST(Stats, StudentQuantileMatchesTheTables) {
  // Two-sided 95% (p = 0.975) for df = 1..10, 20, 30 from the standard tables.
  const std::vector<std::pair<int, double>> t975 = {
      {1, 12.706}, {2, 4.303}, {3, 3.182}, {4, 2.776}, {5, 2.571}, {6, 2.447}, {7, 2.365},
      {8, 2.306},  {9, 2.262}, {10, 2.228}, {20, 2.086}, {30, 2.042}};
  for (const auto& [df, t] : t975) EXPECT_NEAR(StudentQuantile(0.975, df), t, 0.002 * t) << df;
  EXPECT_NEAR(StudentQuantile(0.80, 9), 0.883, 0.002);
  EXPECT_NEAR(StudentQuantile(0.80, 2), 1.061, 0.002);
  EXPECT_NEAR(StudentQuantile(0.975, 100000), 1.960, 0.001);
}

TEST(Stats, PairedDifferenceSeesWhatUnpairedIntervalsHide) {
  // Two designs whose seeds vary a lot but which differ by exactly 1 at every seed.
  std::vector<std::optional<double>> a, b;
  for (int k = 0; k < 10; k++) {
    b.push_back(100.0 * k);
    a.push_back(100.0 * k + 1);
  }
  const Paired p = PairedDiff(a, b);
  EXPECT_EQ(p.n, 10);
  EXPECT_DOUBLE_EQ(p.diff, 1);
  EXPECT_TRUE(p.significant);
  std::vector<double> av, bv;
  for (int k = 0; k < 10; k++) av.push_back(*a[k]), bv.push_back(*b[k]);
  EXPECT_GT(Summarize(av).ci95 + Summarize(bv).ci95, 100);  // unpaired: hopelessly wide
}

TEST(Stats, PairedDifferenceSkipsMissingPairsAndReportsWhatItCouldSee) {
  const std::vector<std::optional<double>> a = {1, 3, std::nullopt, 2, 5};
  const std::vector<std::optional<double>> b = {2, 1, 7, 3, 4};
  const Paired p = PairedDiff(a, b);
  EXPECT_EQ(p.n, 4);
  EXPECT_DOUBLE_EQ(p.diff, (-1 + 2 - 1 + 1) / 4.0);
  EXPECT_FALSE(p.significant);
  EXPECT_GT(p.mdd, p.ci95);  // 80% power needs more than the interval's half-width
  const Paired f = Flip(p);
  EXPECT_DOUBLE_EQ(f.diff, -p.diff);
  EXPECT_DOUBLE_EQ(f.mean_a, p.mean_b);
}

// A sweep of two forwarding designs over one x value; metric m per seed.
SweepData TwoDesigns(const std::vector<double>& direct, const std::vector<double>& queue) {
  SweepData d;
  d.spec.design = "protocol.forwarding";
  d.spec.axes = {{"protocol.forwarding", {"direct", "queue"}}};
  d.spec.conclusion_metric = "metrics.m";
  d.spec.conclusion_label = "latency";
  d.points = Grid(d.spec);
  for (size_t k = 0; k < direct.size(); k++) d.seeds.push_back(k + 1);
  d.scenarios.resize(2);
  d.runs.resize(2);
  for (size_t k = 0; k < direct.size(); k++) {
    d.runs[0].push_back({{"metrics", {{"m", direct[k]}}}});
    d.runs[1].push_back({{"metrics", {{"m", queue[k]}}}});
  }
  return d;
}

std::string Joined(const Answer& a) {
  std::string s;
  for (const std::string& x : a.sentences) s += x + "\n";
  return s;
}

TEST(Answer, NamesAWinnerOnlyWhereThePairedDifferenceIsSignificant) {
  // Noise far larger than the difference: no winner may be named.
  const SweepData noisy = TwoDesigns({10, 30, 12, 40, 25, 11, 33, 28, 19, 22},
                                     {12, 27, 15, 38, 21, 16, 30, 31, 17, 25});
  const Layout ln = MakeLayout(noisy);
  const Answer an = BuildAnswer(noisy, ln, 0, 0);
  EXPECT_EQ(Joined(an).find("has the lowest"), std::string::npos) << Joined(an);
  EXPECT_NE(Joined(an).find("cannot be told apart"), std::string::npos) << Joined(an);
  EXPECT_NE(Joined(an).find("would have seen a difference of"), std::string::npos);
  EXPECT_EQ(an.confidence, "medium");
  // The same seeds with queue always 5 higher: direct wins, with its paired interval.
  std::vector<double> direct = {10, 30, 12, 40, 25, 11, 33, 28, 19, 22}, queue;
  for (double x : direct) queue.push_back(x + 5);
  const SweepData clear = TwoDesigns(direct, queue);
  const Answer ac = BuildAnswer(clear, MakeLayout(clear), 0, 0);
  EXPECT_NE(Joined(ac).find("Direct has the lowest latency"), std::string::npos) << Joined(ac);
  EXPECT_NE(Joined(ac).find("worse by 5"), std::string::npos) << Joined(ac);
  EXPECT_EQ(ac.confidence, "high");
  EXPECT_LE(ac.sentences.size(), static_cast<size_t>(kAnswerSentencesMax));
  // An also-metric's widest gap, in a sweep with no regime and no x: no empty "at , ".
  SweepData with_also = clear;
  with_also.spec.also.push_back({"metrics.m", "the same latency", true});
  const Answer aa = BuildAnswer(with_also, MakeLayout(with_also), 0, 0);
  EXPECT_NE(Joined(aa).find("the widest gap is queue against direct: "), std::string::npos)
      << Joined(aa);
  EXPECT_EQ(Joined(aa).find(" at ,"), std::string::npos) << Joined(aa);
}

TEST(Checks, SeedSpreadIsPairedAndTellsABiasFromNoise) {
  // queue = direct + 5 at every seed, direct itself spread widely: the difference has no
  // seed-to-seed spread, so a model of 5.4 holds on 10% but sits outside the interval.
  std::vector<double> direct = {10, 30, 12, 40, 25, 11, 33, 28, 19, 22}, queue;
  for (double x : direct) queue.push_back(x + 5);
  const SweepData d = TwoDesigns(direct, queue);
  auto diff_check = [&](double model) {
    analyses_internal::CheckBuilder c(d, 1, "queue - direct", "5");
    c.Metric("q", "metrics.m", 1);
    c.Metric("d", "metrics.m", 0);
    return c.Done([](const Vars& v) { return v.at("q") - v.at("d"); },
                  [model](const Vars&) { return model; });
  };
  const Check exact = diff_check(5), biased = diff_check(5.4);
  EXPECT_EQ(exact.sim_seeds, 10);
  EXPECT_NEAR(exact.sim_ci95, 0, 1e-9);
  EXPECT_TRUE(exact.ModelInsideCi());
  EXPECT_TRUE(biased.Passed());
  EXPECT_FALSE(biased.ModelInsideCi());
  // One point's own figure: its spread is the seeds' (t(0.975, 9) s / sqrt(10)).
  analyses_internal::CheckBuilder one(d, 0, "direct", "22");
  one.Metric("d", "metrics.m", 0);
  const Check spread = one.Done([](const Vars& v) { return v.at("d"); },
                                [](const Vars&) { return 22.0; });
  EXPECT_NEAR(spread.sim_ci95, Summarize(direct).ci95, 1e-9);
  EXPECT_TRUE(spread.ModelInsideCi());  // 23 against 22, within +-7.5
}

TEST(Answer, NamesTheLastDesignWhereItIsTwiceTheBest) {
  SweepData d;
  d.spec.design = "protocol.forwarding";
  d.spec.axes = {{"protocol.forwarding", {"direct", "buffered", "queue"}}};
  d.spec.conclusion_metric = "metrics.m";
  d.spec.conclusion_label = "latency";
  d.points = Grid(d.spec);
  d.scenarios.resize(3);
  d.runs.resize(3);
  for (int k = 0; k < 10; k++) {
    d.seeds.push_back(static_cast<uint64_t>(k + 1));
    d.runs[0].push_back({{"metrics", {{"m", 100.0 + k}}}});
    d.runs[1].push_back({{"metrics", {{"m", 120.0 + k}}}});
    d.runs[2].push_back({{"metrics", {{"m", 900.0 + 3 * k}}}});
  }
  std::string text = Joined(BuildAnswer(d, MakeLayout(d), 0, 0));
  EXPECT_NE(text.find("the next best, buffered, is worse by 20"), std::string::npos) << text;
  EXPECT_NE(text.find("the last, queue, by 809"), std::string::npos) << text;
  // At 1.5x the best the last design is not singled out.
  for (int k = 0; k < 10; k++) d.runs[2][static_cast<size_t>(k)]["metrics"]["m"] = 150.0 + k;
  text = Joined(BuildAnswer(d, MakeLayout(d), 0, 0));
  EXPECT_EQ(text.find("the last,"), std::string::npos) << text;
}

TEST(Answer, FewSeedsOrMissedChecksLowerTheConfidence) {
  const SweepData few = TwoDesigns({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(BuildAnswer(few, MakeLayout(few), 0, 0).confidence, "low");
  std::vector<double> direct(10, 1), queue(10, 2);
  const SweepData d = TwoDesigns(direct, queue);
  EXPECT_EQ(BuildAnswer(d, MakeLayout(d), 4, 1).confidence, "low");
}

TEST(Claims, ACrossoverIsPartlyNotDisagrees) {
  // Direct is faster at 0 ms jitter and slower at 200 ms: the claim holds in one regime only.
  SweepData d;
  d.spec.design = "protocol.forwarding";
  d.spec.x = "faults.delay_ms_max";
  d.spec.axes = {{"protocol.forwarding", {"direct", "queue"}},
                 {"faults.delay_ms_max", {"0", "200"}}};
  d.spec.conclusion_metric = "metrics.m";
  d.spec.conclusion_label = "latency";
  d.points = Grid(d.spec);
  d.scenarios.resize(d.points.size());
  d.runs.resize(d.points.size());
  for (int k = 0; k < 10; k++) {
    d.seeds.push_back(static_cast<uint64_t>(k + 1));
    for (size_t i = 0; i < d.points.size(); i++) {
      const bool fast = (d.points[i].at("protocol.forwarding") == "direct") ==
                        (d.points[i].at("faults.delay_ms_max") == "0");
      d.runs[i].push_back({{"metrics", {{"m", (fast ? 10.0 : 20.0) + k}}}});
    }
  }
  ClaimSpec c;
  c.seed = "direct is faster";
  c.better = "direct";
  c.than = "queue";
  const ClaimVerdict v = JudgeClaim(d, MakeLayout(d), c);
  EXPECT_EQ(v.verdict, "partly") << v.evidence;
  EXPECT_EQ(v.agree, 1);
  EXPECT_EQ(v.disagree, 1);
  EXPECT_NE(v.evidence.find("the opposite at 1"), std::string::npos) << v.evidence;
}

TEST(Claims, VerdictFollowsThePairedDifference) {
  std::vector<double> direct = {10, 30, 12, 40, 25, 11, 33, 28, 19, 22}, queue;
  for (double x : direct) queue.push_back(x + 5);
  const SweepData d = TwoDesigns(direct, queue);
  const Layout l = MakeLayout(d);
  ClaimSpec c;
  c.seed = "direct is faster";
  c.better = "direct";
  c.than = "queue";
  EXPECT_EQ(JudgeClaim(d, l, c).verdict, "agrees");
  std::swap(c.better, c.than);
  EXPECT_EQ(JudgeClaim(d, l, c).verdict, "disagrees");
  c.kind = "similar";
  EXPECT_EQ(JudgeClaim(d, l, c).verdict, "disagrees");
  const SweepData noisy = TwoDesigns({10, 30, 12, 40, 25, 11, 33, 28, 19, 22},
                                     {12, 27, 15, 38, 21, 16, 30, 31, 17, 25});
  EXPECT_EQ(JudgeClaim(noisy, MakeLayout(noisy), c).verdict, "agrees");
  c.kind = "better";
  EXPECT_EQ(JudgeClaim(noisy, MakeLayout(noisy), c).verdict, "cannot tell");
  c.where = {{"protocol.forwarding", "=", "nonexistent"}};
  EXPECT_EQ(JudgeClaim(noisy, MakeLayout(noisy), c).verdict, "not tested");
}

TEST(Claims, SimilarWithAMarginAsksWhetherTheDifferenceMatters) {
  // Queue 1% above direct at every seed: significant, but far inside a 10% margin.
  std::vector<double> direct = {100, 300, 120, 400, 250, 110, 330, 280, 190, 220}, queue;
  for (double x : direct) queue.push_back(x * 1.01);
  const SweepData d = TwoDesigns(direct, queue);
  const Layout l = MakeLayout(d);
  ClaimSpec c;
  c.seed = "the two are alike";
  c.kind = "similar";
  c.better = "direct";
  c.than = "queue";
  EXPECT_EQ(JudgeClaim(d, l, c).verdict, "disagrees");  // no margin: any significant difference
  c.margin = 0.1;
  const ClaimVerdict within = JudgeClaim(d, l, c);
  EXPECT_EQ(within.verdict, "agrees") << within.evidence;
  EXPECT_NE(within.evidence.find("within +-10%"), std::string::npos) << within.evidence;
  // 50% apart: beyond the margin.
  std::vector<double> far;
  for (double x : direct) far.push_back(x * 1.5);
  const SweepData dfar = TwoDesigns(direct, far);
  EXPECT_EQ(JudgeClaim(dfar, MakeLayout(dfar), c).verdict, "disagrees");
  // Noise wider than the margin: the interval straddles it.
  const SweepData noisy = TwoDesigns({10, 30, 12, 40, 25, 11, 33, 28, 19, 22},
                                     {12, 27, 15, 38, 21, 16, 30, 31, 17, 25});
  EXPECT_EQ(JudgeClaim(noisy, MakeLayout(noisy), c).verdict, "cannot tell");
}

TEST(Answer, ADesignThatIsNeverBestGetsItsOwnSentence) {
  SweepData d;
  d.spec.design = "protocol.group_delivery";
  d.spec.x = "workload.group_size_max";
  d.spec.axes = {{"protocol.group_delivery", {"push", "pull", "hybrid"}},
                 {"workload.group_size_max", {"10", "1000"}}};
  d.spec.conclusion_metric = "metrics.m";
  d.spec.conclusion_label = "cost";
  d.points = Grid(d.spec);
  for (int k = 0; k < 10; k++) d.seeds.push_back(static_cast<uint64_t>(k + 1));
  d.scenarios.resize(d.points.size());
  d.runs.resize(d.points.size());
  for (size_t i = 0; i < d.points.size(); i++) {
    const std::string design = d.points[i].at("protocol.group_delivery");
    const bool large = d.points[i].at("workload.group_size_max") == "1000";
    // push wins small groups, pull wins large ones, hybrid is 20% above the better of the two.
    const double push = large ? 200 : 10, pull = large ? 20 : 100;
    const double base = design == "push" ? push : design == "pull" ? pull : 1.2 * std::min(push, pull);
    for (int k = 0; k < 10; k++) d.runs[i].push_back({{"metrics", {{"m", base + k}}}});
  }
  const std::string text = Joined(BuildAnswer(d, MakeLayout(d), 0, 0));
  EXPECT_NE(text.find("Hybrid is never the best on cost: at each of the 2 points tested"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("Push is never"), std::string::npos) << text;
  EXPECT_EQ(text.find("Pull is never"), std::string::npos) << text;
}

TEST(Answer, LargeRatiosReadAsRatios) {
  EXPECT_EQ(RatioText(1.37), "1.37x");
  EXPECT_EQ(RatioText(1.012), "1.01x");
  EXPECT_EQ(RatioText(16.2), "16x");
  EXPECT_EQ(RatioText(157.7), "158x");
  Paired p;
  p.n = 10;
  p.mean_a = 4810;
  p.mean_b = 30.5;
  p.diff = 4779.5;
  p.ci95 = 21;
  const std::string text = PairedText(p, "ms");
  EXPECT_NE(text.find("158x the other"), std::string::npos) << text;
  EXPECT_EQ(text.find("%,"), std::string::npos) << text;  // no "+15669%,"
}

TEST(Layout, SeparatesXDesignAndRegimes) {
  SweepData d;
  d.spec.design = "protocol.forwarding";
  d.spec.x = "faults.delay_ms_max";
  d.spec.axes = {{"protocol.forwarding", {"direct", "queue"}},
                 {"protocol.gap_detection_enabled", {"true", "false"}},
                 {"faults.delay_ms_max", {"0", "200"}}};
  d.spec.names["protocol.gap_detection_enabled=true"] = "gap detection on";
  d.spec.names["faults.delay_ms_max"] = "{} ms jitter";
  d.points = Grid(d.spec);
  const Layout l = MakeLayout(d);
  ASSERT_EQ(l.designs.size(), 2u);
  ASSERT_EQ(l.regimes.size(), 2u);
  ASSERT_EQ(l.xs.size(), 2u);
  EXPECT_TRUE(l.numeric);
  for (size_t r = 0; r < 2; r++) {
    for (size_t de = 0; de < 2; de++) {
      for (size_t x = 0; x < 2; x++) {
        const int p = l.Index(r, de, x);
        ASSERT_GE(p, 0);
        const Point& pt = d.points[static_cast<size_t>(p)];
        EXPECT_EQ(pt.at("protocol.forwarding"), l.designs[de]);
        EXPECT_EQ(pt.at("faults.delay_ms_max"), l.xs[x]);
      }
    }
  }
  EXPECT_EQ(SeriesWords(d, l, 0, 1), "queue, gap detection on");
  EXPECT_EQ(RegimeWords(d, l, 1), "gap_detection_enabled=false");
  EXPECT_EQ(XWords(d, l, 1), "200 ms jitter");
}

}  // namespace
}  // namespace chatlab::sim::lab
