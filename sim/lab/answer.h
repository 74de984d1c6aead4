// Answer: the sentences a report opens with, computed from the paired comparisons.
//
// "The answer" is at most kAnswerSentencesMax plain sentences: the recommendation per regime
// (regimes with the same verdict share a sentence), where the lead changes along x, the effect
// with its paired interval and seed count, the negative results (designs that cannot be told
// apart, with the difference the seeds could have seen), and how sure. "Conclusions" gives the
// same per regime in full. Nothing here is written by hand: a sentence names a winner only
// where compare.h's Rank found every paired difference significant.
#ifndef CHATLAB_SIM_LAB_ANSWER_H_
#define CHATLAB_SIM_LAB_ANSWER_H_

#include <string>
#include <vector>

#include "sim/lab/compare.h"

namespace chatlab::sim::lab {

inline constexpr int kAnswerSentencesMax = 6;

struct RegimeConclusion {
  std::string regime;                  // words ("" when the sweep has no regimes)
  std::vector<std::string> sentences;  // headline metric, then each [[report.also]] metric
};

struct Answer {
  std::vector<std::string> sentences;  // at most kAnswerSentencesMax
  std::vector<RegimeConclusion> conclusions;
  std::string confidence;  // "high" | "medium" | "low"
  std::string confidence_why;
  int cells = 0;            // (regime, x) cells compared on the headline metric
  int cells_decided = 0;    // ... with a significant winner
};

// checks / check_failures: the validation section's counts (failures lower the confidence);
// checks_outside_ci: checks that hold on their tolerance with the model outside the simulated
// figure's 95% interval (said, so that "within tolerance" is not read as "within noise").
Answer BuildAnswer(const SweepData& data, const Layout& layout, int checks, int check_failures,
                   int checks_outside_ci = 0);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_ANSWER_H_
