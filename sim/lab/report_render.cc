#include "sim/lab/report_render.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace chatlab::sim::lab {
namespace fs = std::filesystem;
namespace {


// A Markdown table cell: pipes would end the cell.
std::string Cell(const std::string& s) { return absl::StrReplaceAll(s, {{"|", "\\|"}}); }

std::string Verdict(const Check& c) {
  if (!c.Passed()) return absl::StrFormat("MISSES (> %.0f%%)", 100 * c.tolerance);
  if (c.sim_seeds < 2) return "holds";
  return c.ModelInsideCi() ? "holds, within the seeds' 95% CI"
                           : "holds on tolerance; model outside the seeds' 95% CI";
}

// The simulated figure with its seed-to-seed 95% half-width.
std::string Simulated(const Check& c) {
  return c.sim_seeds >= 2 ? absl::StrCat(Num(c.simulated), " ± ", Num(c.sim_ci95))
                          : Num(c.simulated);
}

std::string Tolerance(const Check& c) {
  return absl::StrCat(absl::StrFormat("%.0f%%", 100 * c.tolerance),
                      c.tolerance_why.empty() ? "" : absl::StrCat(" (", c.tolerance_why, ")"));
}

std::string Slug(const std::string& s) {
  std::string out;
  for (char ch : s) out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return out;
}

}  // namespace

std::string RenderMarkdown(const ReportContent& c) {
  std::string md;
  absl::StrAppend(&md, "# ", c.title, "\n\n**Question.** ", c.question, "\n\n## The answer\n\n");
  for (const std::string& s : c.answer.sentences) absl::StrAppend(&md, "- ", s, "\n");
  md += "\n";
  for (const std::string& w : c.warnings) absl::StrAppend(&md, "> **Warning.** ", w, "\n\n");
  if (!c.claims.empty()) {
    md += "## The seed's claims against the data\n\n| the seed says | tested as | verdict | evidence |\n"
          "| --- | --- | --- | --- |\n";
    for (const ClaimRow& r : c.claims) {
      absl::StrAppend(&md, "| ", Cell(r.claim->seed), " | ", Cell(r.tested_as), " | **",
                      r.verdict.verdict, "** | ", Cell(r.verdict.evidence), " |\n");
    }
    md += "\n";
  }
  md += "## Conclusions per regime\n\n";
  for (const RegimeConclusion& rc : c.answer.conclusions) {
    if (!rc.regime.empty()) absl::StrAppend(&md, "**", rc.regime, ".** ");
    absl::StrAppend(&md, absl::StrJoin(rc.sentences, " "), "\n\n");
  }
  if (!c.findings.empty()) {
    md += "**Findings of the analysis.**\n\n";
    for (const std::string& f : c.findings) absl::StrAppend(&md, "- ", f, "\n");
    md += "\n";
  }
  absl::StrAppend(&md, "## Plots\n\nEach point is the mean over ", c.seeds_words,
                  " seeds; error bars are 95% confidence intervals (Student's t). The paired "
                  "plot shows each design minus the baseline on the same seeds.\n\n");
  for (const PlotFile& p : c.plots) absl::StrAppend(&md, "![", p.title, "](", p.svg, ")\n\n");
  absl::StrAppend(&md, "## Results (mean ± 95% CI)\n\n| ", absl::StrJoin(c.table_header, " | "),
                  " |\n|");
  for (size_t i = 0; i < c.table_header.size(); i++) md += " --- |";
  md += "\n";
  for (const auto& row : c.table_rows) absl::StrAppend(&md, "| ", absl::StrJoin(row, " | "), " |\n");
  absl::StrAppend(&md, "\nPer-run values of every metric: [data.csv](data.csv). Checks with their "
                       "inputs: [checks.csv](checks.csv).\n\n## Validation against theory\n\n");
  const Analysis& a = *c.analysis;
  if (!a.note.empty()) absl::StrAppend(&md, a.note, "\n\n");
  if (!a.checks.empty()) {
    md += "| check | point | formula | inputs (data.csv column, point) | simulated (± 95% CI over "
          "seeds) | model | "
          "error | tolerance | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for (const Check& k : a.checks) {
      absl::StrAppend(&md, "| ", Cell(k.name), " | ", Cell(k.point), " | `", Cell(k.formula), "` | ",
                      Cell(k.InputsText()), " | ", Simulated(k), " | ", Num(k.analytic), " | ",
                      absl::StrFormat("%.1f%%", 100 * k.RelativeError()), " | ",
                      Cell(Tolerance(k)), " | ", Verdict(k), " |\n");
    }
    md += "\n";
  }
  absl::StrAppend(&md, "## How this was made\n\n- ChatLab ", c.version_text, "\n- Scenario: `",
                  c.scenario_path, "` (text below)\n- Seeds: ", c.seeds_text,
                  "\n- Network model: ", c.model_text, "\n- Grid:\n\n```\n", c.grid_text,
                  "```\n\nRegenerate:\n\n```\n", c.sweep_cmd, "\n", c.report_cmd,
                  "\n```\n\n<details><summary>Scenario file</summary>\n\n```toml\n", c.scenario_text,
                  "```\n\n</details>\n");
  return md;
}

std::string RenderHtml(const ReportContent& c) {
  std::string h;
  absl::StrAppend(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>",
                  HtmlEscape(c.title), " - ChatLab report</title>\n<style>\n"
                  "body{font-family:Helvetica,Arial,sans-serif;max-width:1040px;margin:2em auto;"
                  "padding:0 1em;color:#222;line-height:1.45}\n"
                  "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}\n"
                  "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}\n"
                  "th{background:#f0f0f0}\ntd.l{text-align:left}\n"
                  ".warn{background:#fff3cd;border:1px solid #e0b000;padding:0.6em 1em;margin:1em 0}\n"
                  ".answer{background:#eef6ee;border-left:4px solid #3a3;padding:0.4em 1em}\n"
                  "pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}\n"
                  "figure{margin:1em 0}\nfigure svg{max-width:100%;height:auto}\n"
                  ".bad{color:#b00;font-weight:bold}\n</style></head><body>\n");
  absl::StrAppend(&h, "<h1>", HtmlEscape(c.title), "</h1>\n<p><b>Question.</b> ", HtmlEscape(c.question),
                  "</p>\n<h2>The answer</h2>\n<ul class=\"answer\">\n");
  for (const std::string& s : c.answer.sentences) absl::StrAppend(&h, "<li>", HtmlEscape(s), "</li>\n");
  h += "</ul>\n";
  for (const std::string& w : c.warnings) {
    absl::StrAppend(&h, "<p class=\"warn\"><b>Warning.</b> ", HtmlEscape(w), "</p>\n");
  }
  if (!c.claims.empty()) {
    h += "<h2>The seed's claims against the data</h2>\n<table><tr><th>the seed says</th>"
         "<th>tested as</th><th>verdict</th><th>evidence</th></tr>\n";
    for (const ClaimRow& r : c.claims) {
      absl::StrAppend(&h, "<tr><td class=\"l\">", HtmlEscape(r.claim->seed), "</td><td class=\"l\">",
                      HtmlEscape(r.tested_as), "</td><td><b>", HtmlEscape(r.verdict.verdict),
                      "</b></td><td class=\"l\">", HtmlEscape(r.verdict.evidence), "</td></tr>\n");
    }
    h += "</table>\n";
  }
  h += "<h2>Conclusions per regime</h2>\n";
  for (const RegimeConclusion& rc : c.answer.conclusions) {
    absl::StrAppend(&h, "<p>", rc.regime.empty() ? "" : absl::StrCat("<b>", HtmlEscape(rc.regime), ".</b> "),
                    HtmlEscape(absl::StrJoin(rc.sentences, " ")), "</p>\n");
  }
  if (!c.findings.empty()) {
    h += "<p><b>Findings of the analysis.</b></p>\n<ul>\n";
    for (const std::string& f : c.findings) absl::StrAppend(&h, "<li>", HtmlEscape(f), "</li>\n");
    h += "</ul>\n";
  }
  absl::StrAppend(&h, "<h2>Plots</h2>\n<p>Each point is the mean over ", HtmlEscape(c.seeds_words),
                  " seeds; error bars are 95% confidence intervals. The paired plot shows each "
                  "design minus the baseline on the same seeds.</p>\n");
  for (const PlotFile& p : c.plots) {
    std::string text = ReadTextFile((fs::path(c.dir) / p.svg).string());
    const size_t start = text.find("<svg");
    if (start != std::string::npos) text = text.substr(start);
    absl::StrAppend(&h, "<figure id=\"", Slug(p.svg), "\">", text, "<figcaption>", HtmlEscape(p.title),
                    "</figcaption></figure>\n");
  }
  absl::StrAppend(&h, "<h2>Results (mean ± 95% CI)</h2>\n<table><tr>");
  for (const std::string& col : c.table_header) absl::StrAppend(&h, "<th>", HtmlEscape(col), "</th>");
  h += "</tr>\n";
  for (const auto& row : c.table_rows) {
    h += "<tr>";
    for (const std::string& col : row) absl::StrAppend(&h, "<td>", HtmlEscape(col), "</td>");
    h += "</tr>\n";
  }
  absl::StrAppend(&h, "</table>\n<p>Per-run values of every metric: <a href=\"data.csv\">data.csv"
                      "</a>. Checks with their inputs: <a href=\"checks.csv\">checks.csv</a>.</p>\n"
                      "<h2>Validation against theory</h2>\n");
  const Analysis& a = *c.analysis;
  if (!a.note.empty()) absl::StrAppend(&h, "<p>", HtmlEscape(a.note), "</p>\n");
  if (!a.checks.empty()) {
    h += "<table><tr><th>check</th><th>point</th><th>formula</th><th>inputs (data.csv column, "
         "point)</th><th>simulated (± 95% CI over seeds)</th><th>model</th><th>error</th><th>tolerance</th>"
         "<th>verdict</th></tr>\n";
    for (const Check& k : a.checks) {
      absl::StrAppend(&h, "<tr><td class=\"l\">", HtmlEscape(k.name), "</td><td class=\"l\">",
                      HtmlEscape(k.point), "</td><td class=\"l\"><code>", HtmlEscape(k.formula),
                      "</code></td><td class=\"l\">", HtmlEscape(k.InputsText()), "</td><td>",
                      HtmlEscape(Simulated(k)), "</td><td>", Num(k.analytic), "</td><td>",
                      absl::StrFormat("%.1f%%", 100 * k.RelativeError()), "</td><td>",
                      HtmlEscape(Tolerance(k)), "</td><td", k.Passed() ? ">" : " class=\"bad\">",
                      Verdict(k), "</td></tr>\n");
    }
    h += "</table>\n";
  }
  absl::StrAppend(&h, "<h2>How this was made</h2>\n<ul><li>ChatLab ", HtmlEscape(c.version_text),
                  "</li><li>Scenario: <code>", HtmlEscape(c.scenario_path), "</code></li><li>Seeds: ",
                  c.seeds_text, "</li><li>Network model: ", HtmlEscape(c.model_text), "</li></ul>\n<pre>",
                  HtmlEscape(c.grid_text), "</pre>\n<p>Regenerate:</p>\n<pre>", HtmlEscape(c.sweep_cmd), "\n",
                  HtmlEscape(c.report_cmd), "</pre>\n<details><summary>Scenario file</summary><pre>",
                  HtmlEscape(c.scenario_text), "</pre></details>\n</body></html>\n");
  return h;
}

}  // namespace chatlab::sim::lab
