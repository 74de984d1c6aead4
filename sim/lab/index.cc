#include "sim/lab/index.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "sim/lab/compare.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

std::string Cell(const std::string& s) {
  return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}});
}

struct Row {
  std::string name;
  json summary;
};

std::string Sure(const json& s) {
  std::string text = s.value("confidence", "?");
  const int checks = s.value("checks", 0);
  absl::StrAppend(&text, " (", s.value("seeds", 0), " seeds",
                  s.value("quick", false) ? ", quick variant" : "", "; ",
                  checks == 0 ? "no check against theory"
                              : absl::StrCat(checks - s.value("check_failures", 0), "/", checks,
                                             " checks hold"),
                  s.value("checks_outside_ci", 0) > 0
                      ? absl::StrCat(", ", s.value("checks_outside_ci", 0),
                                     " with the model outside the seeds' 95% CI")
                      : "",
                  ")");
  return text;
}

}  // namespace

absl::StatusOr<IndexOutcome> WriteIndex(const std::string& dir_arg) {
  const fs::path dir(dir_arg);
  std::vector<Row> rows;
  std::error_code ec;
  // A report is a directory with a summary.json, directly under DIR or one level down (a
  // family of reports: reports/sim-vs-real/demo), named by its path under DIR.
  std::vector<fs::path> candidates;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory()) continue;
    if (fs::exists(entry.path() / "summary.json")) {
      candidates.push_back(entry.path());
      continue;
    }
    std::error_code sub_ec;
    for (const auto& sub : fs::directory_iterator(entry.path(), sub_ec)) {
      if (sub.is_directory() && fs::exists(sub.path() / "summary.json")) {
        candidates.push_back(sub.path());
      }
    }
  }
  for (const fs::path& report : candidates) {
    const fs::path summary = report / "summary.json";
    std::ifstream in(summary);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("answer")) {
      return absl::InvalidArgumentError(absl::StrCat(summary.string(), ": not a report summary"));
    }
    rows.push_back({fs::relative(report, dir).string(), std::move(j)});
  }
  if (ec) return absl::NotFoundError(absl::StrCat(dir_arg, ": ", ec.message()));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat(
        dir_arg, ": no report with a summary.json (run chatlab sweep ... --report first)"));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });

  std::string md =
      "# ChatLab reports: the answers\n\nEach row is one design question, answered by a sweep "
      "of seeded simulations (docs/reports-method.md). The seed's claims are tested against "
      "the same data: agrees, partly, disagrees or cannot tell.\n\n| question | the answer | "
      "how sure | the seed says -> the data | report |\n| --- | --- | --- | --- | --- |\n";
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>ChatLab reports"
      "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:2em "
      "auto;padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;font-size:"
      "0.88em}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
      "th{background:#f0f0f0}ul{margin:0;padding-left:1.1em}.agrees{color:#070}.disagrees"
      "{color:#b00}.partly{color:#a60}</style></head><body>\n<h1>ChatLab reports: the answers"
      "</h1>\n<p>Each row is one design question, answered by a sweep of seeded simulations. "
      "The seed's claims are tested against the same data.</p>\n<table><tr><th>question</th>"
      "<th>the answer</th><th>how sure</th><th>the seed says &rarr; the data</th><th>report</th>"
      "</tr>\n";
  for (const Row& r : rows) {
    const json& s = r.summary;
    std::vector<std::string> answer = s["answer"].get<std::vector<std::string>>();
    std::vector<std::string> claims_md, claims_html;
    for (const json& c : s.value("claims", json::array())) {
      const std::string verdict = c.value("verdict", "?");
      // The same seed sentence can be tested several ways: say which each verdict is of.
      const std::string tested = c.value("tested_as", "");
      claims_md.push_back(absl::StrCat("\"", c.value("seed", ""), "\"",
                                       tested.empty() ? "" : absl::StrCat(" (tested as: ", tested, ")"),
                                       " -> **", verdict, "**"));
      claims_html.push_back(absl::StrCat(
          "<li>&ldquo;", HtmlEscape(c.value("seed", "")), "&rdquo;",
          tested.empty() ? "" : absl::StrCat(" (tested as: ", HtmlEscape(tested), ")"),
          " &rarr; <b class=\"", HtmlEscape(verdict), "\">", HtmlEscape(verdict), "</b></li>"));
    }
    const std::string link = absl::StrCat(r.name, "/report.md");
    absl::StrAppend(&md, "| ", Cell(s.value("question", "")), " | ",
                    Cell(absl::StrJoin(answer, " ")), " | ", Cell(Sure(s)), " | ",
                    claims_md.empty() ? "(no claim of the seed tested)"
                                      : Cell(absl::StrJoin(claims_md, "; ")),
                    " | [", r.name, "](", link, ") |\n");
    absl::StrAppend(&h, "<tr><td>", HtmlEscape(s.value("question", "")), "</td><td><ul>");
    for (const std::string& a : answer) absl::StrAppend(&h, "<li>", HtmlEscape(a), "</li>");
    absl::StrAppend(&h, "</ul></td><td>", HtmlEscape(Sure(s)), "</td><td>",
                    claims_html.empty() ? "(no claim of the seed tested)"
                                        : absl::StrCat("<ul>", absl::StrJoin(claims_html, ""), "</ul>"),
                    "</td><td><a href=\"", HtmlEscape(r.name), "/report.html\">", HtmlEscape(r.name),
                    "</a></td></tr>\n");
  }
  h += "</table>\n</body></html>\n";
  IndexOutcome out;
  out.reports = static_cast<int>(rows.size());
  out.markdown_path = (dir / "index.md").string();
  out.html_path = (dir / "index.html").string();
  std::ofstream(out.markdown_path) << md;
  std::ofstream(out.html_path) << h;
  return out;
}

}  // namespace chatlab::sim::lab
