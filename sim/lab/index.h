// Index: every report's answer in one table (reports/index.md and reports/index.html).
//
// Reads DIR/*/summary.json and DIR/*/*/summary.json (written by WriteReport and by
// `chatlab compare`) in name order and writes one row per
// report: the question, the answer, how sure, the seed's own claims beside it with the data's
// verdict, and a link. Pure function of the summaries.
#ifndef CHATLAB_SIM_LAB_INDEX_H_
#define CHATLAB_SIM_LAB_INDEX_H_

#include <string>

#include "absl/status/statusor.h"

namespace chatlab::sim::lab {

struct IndexOutcome {
  int reports = 0;
  std::string markdown_path;
  std::string html_path;
};

// NotFound when DIR holds no report with a summary.json.
absl::StatusOr<IndexOutcome> WriteIndex(const std::string& dir);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_INDEX_H_
