// The report's content, gathered by report.cc and rendered as Markdown and as self-contained
// HTML by report_render.cc. Internal to sim/lab/.
#ifndef CHATLAB_SIM_LAB_REPORT_RENDER_H_
#define CHATLAB_SIM_LAB_REPORT_RENDER_H_

#include <string>
#include <vector>

#include "sim/lab/analyses.h"
#include "sim/lab/answer.h"
#include "sim/lab/compare.h"
#include "sim/lab/plots.h"

namespace chatlab::sim::lab {

struct ClaimRow {
  const ClaimSpec* claim;
  ClaimVerdict verdict;
  std::string tested_as;  // "queue better than direct on order violations, where gap detection off"
};

struct ReportContent {
  std::string dir;
  std::string title;
  std::string question;
  Answer answer;
  std::vector<ClaimRow> claims;
  std::vector<std::string> warnings;
  std::vector<std::string> findings;
  std::vector<PlotFile> plots;
  int seeds = 0;            // the sweep's seed list (the cap when sequential)
  std::string seeds_words;  // "10", or "3 to 10 (sequential: ...)"
  std::vector<std::string> table_header;
  std::vector<std::vector<std::string>> table_rows;
  const Analysis* analysis = nullptr;
  // How it was made.
  std::string version_text, scenario_path, seeds_text, model_text, grid_text, sweep_cmd,
      report_cmd, scenario_text;
};

std::string RenderMarkdown(const ReportContent& c);
std::string RenderHtml(const ReportContent& c);

}  // namespace chatlab::sim::lab

#endif  // CHATLAB_SIM_LAB_REPORT_RENDER_H_
