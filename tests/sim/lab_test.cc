// Sweeps, reports and the planner end to end: the real `chatlab` binary, gnuplot, and (when it
// is installed) headless Chromium opening the report.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string output;
};

Result Shell(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Result Chatlab(const std::string& args) {
  return Shell(std::string(CHATLAB_BIN) + " " + args);
}

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream b;
  b << in.rdbuf();
  return b.str();
}

fs::path Fresh(const std::string& tag) {
  const fs::path dir = fs::temp_directory_path() / ("chatlab-lab-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  return dir;
}

// Fields of one CSV line (RFC 4180 quotes).
size_t CsvFields(const std::string& line) {
  size_t fields = 1;
  bool quoted = false;
  for (const char c : line) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) fields++;
  }
  return fields;
}

std::string Scenario(const std::string& name) {
  return std::string(CHATLAB_SOURCE_DIR) + "/scenarios/" + name;
}

TEST(Report, TinySweepWritesEveryFileAndEveryPlotItReferences) {
  const fs::path dir = Fresh("tiny");
  Result r = Chatlab("sweep " + Scenario("demo.toml") + " --seeds 2 --jobs 2 --no-progress --out " +
                     dir.string() + " --report");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("6 runs (0 already done)"), std::string::npos) << r.output;
  for (const char* f : {"sweep.json", "report.md", "report.html", "data.csv"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  const std::string md = Read(dir / "report.md");
  EXPECT_NE(md.find("**Conclusion.** forwarding="), std::string::npos) << md.substr(0, 600);
  std::regex image(R"(\]\((plots/[^)]+\.svg)\))");
  int images = 0;
  for (auto it = std::sregex_iterator(md.begin(), md.end(), image); it != std::sregex_iterator(); ++it) {
    images++;
    EXPECT_TRUE(fs::exists(dir / (*it)[1].str())) << (*it)[1].str();
    EXPECT_GT(fs::file_size(dir / (*it)[1].str()), 1000u);
  }
  EXPECT_EQ(images, 3);
  const std::string html = Read(dir / "report.html");
  EXPECT_EQ(html.find("src=\""), std::string::npos) << "the HTML must not load anything";
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) svgs++;
  EXPECT_EQ(svgs, 3u);

  // Resumable: the same command runs nothing again and gives the same report.
  Result again = Chatlab("sweep " + Scenario("demo.toml") + " --seeds 2 --no-progress --out " +
                         dir.string() + " --report");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("6 runs (6 already done)"), std::string::npos) << again.output;
  EXPECT_EQ(Read(dir / "report.md"), md);
  // Another grid into the same directory is refused, not mixed.
  Result other = Chatlab("sweep " + Scenario("demo.toml") + " --seeds 3 --no-progress --out " +
                         dir.string());
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.output.find("different sweep"), std::string::npos) << other.output;

  // Headless Chromium opens it without errors, and its screenshot is not blank: a screenshot
  // of the report compresses far worse than one of an empty page of the same size.
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "chromium not installed";
  const fs::path blank = dir / "blank.html";
  std::ofstream(blank) << "<!DOCTYPE html><html><body></body></html>\n";
  const std::string chromium =
      "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--window-size=1100,2400 --enable-logging=stderr --v=0 ";
  Result shot = Shell(chromium + "--screenshot=" + (dir / "report.png").string() + " file://" +
                      (dir / "report.html").string());
  ASSERT_TRUE(fs::exists(dir / "report.png")) << shot.output;
  EXPECT_EQ(shot.output.find("Uncaught"), std::string::npos) << shot.output;
  EXPECT_EQ(shot.output.find("CONSOLE(") , std::string::npos) << shot.output;
  Shell(chromium + "--screenshot=" + (dir / "blank.png").string() + " file://" + blank.string());
  ASSERT_TRUE(fs::exists(dir / "blank.png"));
  EXPECT_GT(fs::file_size(dir / "report.png"), 5 * fs::file_size(dir / "blank.png"));
  fs::remove_all(dir);
}

// Each experiment's quick variant runs and reports; where the checks against theory are
// expected to hold on the quick variant, they do.
class Experiment : public ::testing::TestWithParam<std::pair<const char*, bool>> {};

TEST_P(Experiment, QuickVariantRunsAndReports) {
  const auto [name, checks_hold] = GetParam();
  const fs::path dir = Fresh(name);
  Result r = Chatlab(std::string("sweep ") + Scenario(std::string(name) + ".toml") +
                     " --quick --no-progress --out " + dir.string() + " --report");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "report.html"));
  const std::string md = Read(dir / "report.md");
  EXPECT_NE(md.find("**Conclusion.**"), std::string::npos);
  std::smatch m;
  const std::regex validation(R"(validation: (\d+) of (\d+) checks)");
  ASSERT_TRUE(std::regex_search(r.output, m, validation)) << r.output;
  if (checks_hold) {
    EXPECT_GT(std::stoi(m[2]), 0) << r.output;
    EXPECT_EQ(m[1], m[2]) << r.output << md;
  }
  // Every data.csv row has the header's columns (a linked axis "a,b,c" is one quoted column).
  std::ifstream csv(dir / "data.csv");
  std::string header, line;
  ASSERT_TRUE(std::getline(csv, header));
  int rows = 0;
  while (std::getline(csv, line)) {
    EXPECT_EQ(CsvFields(line), CsvFields(header)) << header << "\n" << line;
    rows++;
  }
  EXPECT_GT(rows, 0);
  // One build made the runs and the report, and the report says which.
  EXPECT_NE(md.find("- ChatLab 0."), std::string::npos);
  EXPECT_EQ(md.find("runs by"), std::string::npos);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    All, Experiment,
    ::testing::Values(std::make_pair("forwarding", true), std::make_pair("groups", true),
                      std::make_pair("db-writes", true), std::make_pair("presence", true),
                      std::make_pair("ids", false), std::make_pair("offline", true),
                      std::make_pair("failover", false), std::make_pair("capacity", true)),
    [](const auto& info) {
      std::string n = info.param.first;
      for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

TEST(Sweep, BadVaryNamesTheKey) {
  Result r = Chatlab("sweep " + Scenario("demo.toml") + " --vary workload.nonsense=1,2 --out " +
                     Fresh("bad").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("workload.nonsense"), std::string::npos) << r.output;
  Result t = Chatlab("sweep " + Scenario("demo.toml") + " --vary workload.users=ten --out " +
                     Fresh("bad2").string());
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_NE(t.output.find("workload.users"), std::string::npos) << t.output;
}

TEST(Report, MissingSweepIsBadInput) {
  const fs::path dir = Fresh("empty");
  fs::create_directories(dir);
  Result r = Chatlab("report " + dir.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("sweep.json"), std::string::npos) << r.output;
}

TEST(Plan, FlagsTheSeedsUnitSlips) {
  Result r = Chatlab("plan");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("messages per hour"), std::string::npos);
  EXPECT_NE(r.output.find("4.167e+07"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FLAG"), std::string::npos);
  EXPECT_NE(r.output.find("3 figure(s) flagged"), std::string::npos) << r.output;
  Result bad = Chatlab("plan --set messages_per_day=lots");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("messages_per_day"), std::string::npos);
}

}  // namespace
