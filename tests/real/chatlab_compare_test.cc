// `chatlab compare` (sim/lab/vs_real.h): a small scenario on a real cluster chatplay launches and
// in the simulator, twice (as written, and calibrated on the real runs), set side by side. The
// files a reader and a recompute need are written with what they must hold: every run's
// verdict, one stored message per sent message on every side (the same count, read from chatd's
// counters and from the simulator's), a calibration with formulas, and a calibration that moves
// the simulated latency towards the machine's. Bad input is refused before anything runs.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/real/harness.h"

namespace chatlab::real::testing {
namespace {

const std::string kScenario =
    std::string(CHATLAB_SOURCE_DIR) + "/tests/real/scenarios/play-small.toml";

std::string Read(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// data.csv as rows of column -> text.
std::vector<std::map<std::string, std::string>> ReadCsv(const std::string& path) {
  std::vector<std::map<std::string, std::string>> rows;
  std::istringstream in(Read(path));
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = absl::StrSplit(line, ',');
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

double Number(const std::string& text) {
  double v = -1;
  EXPECT_TRUE(absl::SimpleAtod(text, &v)) << "not a number: \"" << text << "\"";
  return v;
}

TEST(ChatlabCompare, SetsACalibratedSimulatorBesideARealCluster) {
  TempDir dir;
  const std::string out = dir / "out";
  const int status = RunCommand(
      {CHATLAB_BIN, "compare", kScenario, "--seeds", "2", "--out", out, "--chatplay", CHATPLAY_BIN},
      dir / "compare.log");
  const std::string log = Read(dir / "compare.log");
  ASSERT_EQ(status, 0) << log;

  const auto rows = ReadCsv(out + "/data.csv");
  ASSERT_EQ(rows.size(), 6u) << Read(out + "/data.csv");         // 3 sides x 2 seeds
  std::map<std::string, std::map<std::string, double>> ack_p50;  // side -> seed -> ms
  for (const auto& row : rows) {
    SCOPED_TRACE(row.at("side") + " seed " + row.at("seed"));
    EXPECT_EQ(row.at("invariants_ok"), "1");
    EXPECT_EQ(row.at("violations"), "0");
    EXPECT_GT(Number(row.at("messages_sent")), 5);
    // Every sent message is stored once, on every side: chatd's messages_stored counter and the
    // simulator's store_writes count the same thing.
    EXPECT_DOUBLE_EQ(Number(row.at("store_writes_per_sent")), 1.0);
    EXPECT_GT(Number(row.at("store_requests_per_sent")), 1.0);
    ack_p50[row.at("side")][row.at("seed")] = Number(row.at("ack_p50_ms"));
  }
  ASSERT_EQ(ack_p50.size(), 3u);
  // The scenario's simulated network has 20 ms client links; the machine's loopback is
  // microseconds. Calibrated, every seed's simulated ack is faster than as written.
  for (const auto& [seed, calibrated] : ack_p50["sim"]) {
    EXPECT_LT(calibrated, ack_p50["sim-defaults"][seed]) << "seed " << seed;
  }

  const auto calibration = ReadCsv(out + "/calibration.csv");
  std::vector<std::string> keys;
  for (const auto& row : calibration) {
    keys.push_back(row.at("key"));
    EXPECT_GT(Number(row.at("value")), 0) << row.at("key");
    EXPECT_FALSE(row.at("formula").empty()) << row.at("key");
  }
  EXPECT_EQ(keys,
            (std::vector<std::string>{"network.client_latency_ms", "network.access_latency_ms",
                                      "cost.fsync_ms", "cost.cpu_speed_factor"}));

  const nlohmann::json summary = nlohmann::json::parse(Read(out + "/summary.json"), nullptr, false);
  ASSERT_TRUE(summary.is_object());
  EXPECT_EQ(summary["seeds"], 2);
  EXPECT_EQ(summary["confidence"], "low");  // under the 10 seeds a report needs
  EXPECT_EQ(summary["checks"], 4);
  EXPECT_EQ(summary["violations"], 0);
  const std::string report = Read(out + "/report.md");
  EXPECT_TRUE(absl::StrContains(report, "Every run held every invariant")) << report;
  EXPECT_TRUE(absl::StrContains(report, "## Where they differ, and why")) << report;
  EXPECT_EQ(Read(out + "/cdf.csv").empty(), false);
  for (const char* side : {"real", "sim", "sim-defaults"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + side + "/seed-7/results.json")) << side;
  }
}

TEST(ChatlabCompare, RefusesBadInputNamingIt) {
  TempDir dir;
  const auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv{CHATLAB_BIN, "compare", kScenario, "--seeds", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::filesystem::remove(dir / "log");
    const int status = RunCommand(argv, dir / "log");
    return std::make_pair(status, Read(dir / "log"));
  };
  std::filesystem::create_directories(dir / "full");
  std::ofstream(dir / "full/x") << "x";
  auto [status, log] = run({"--out", dir / "full", "--chatplay", CHATPLAY_BIN});
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(absl::StrContains(log, "is not empty")) << log;
  std::tie(status, log) = run({"--out", dir / "a", "--chatplay", dir / "no-such-chatplay"});
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(absl::StrContains(log, "no-such-chatplay: not an executable file")) << log;
  std::tie(status, log) = run({"--out", dir / "b", "--set", "no.such=1"});
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(absl::StrContains(log, "no.such")) << log;
  // A scenario chatplay cannot play (two regions) fails on the real side, with chatplay's reason.
  std::tie(status, log) = run({"--out", dir / "c", "--chatplay", CHATPLAY_BIN, "--set",
                               "topology.regions=2", "--set", "topology.servers_per_region=3"});
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(absl::StrContains(log, "chatplay failed on seed 7")) << log;
  EXPECT_TRUE(absl::StrContains(log, "topology.regions")) << log;
}

}  // namespace
}  // namespace chatlab::real::testing
