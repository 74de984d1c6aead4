// `chatlab sweep --executor slurm` on a real single-node Slurm the test starts (munged,
// slurmctld, slurmd: tests/sim/slurm_harness.h): the grid runs as a job array, each run gives
// what the local executor gives at the same seed, and a second sweep resumes without resubmitting.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "chatlab_process.h"
#include "gtest/gtest.h"
#include "slurm_harness.h"

namespace {

namespace fs = std::filesystem;
using chatlab_test::Outcome;

// The tiny scenario (two seeds, two forwarding designs: four runs of a few seconds each).
const char* kSweep =
    "[scenario]\nname = \"slurm-tiny\"\nduration_s = 3\nquiet_s = 2\n"
    "[topology]\nservers_per_region = 2\n"
    "[workload]\nusers = 6\nonline_fraction = 1.0\nsession_mean_s = 0\nsend_rate_hz = 0.5\n"
    "groups = 1\ngroup_size_min = 3\ngroup_size_max = 3\ncontacts_per_user = 2\n"
    "[sweep]\nseeds = 2\nvary.\"protocol.forwarding\" = [\"direct\", \"buffered\"]\n";

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Needs root and Debian's Slurm packages: CI sets CHATLAB_REQUIRE_SLURM=1 (.ci/run), where a
// missing piece fails the test; elsewhere it is skipped, naming what it needs.
TEST(SlurmExecutor, ASweepRunsAsAJobArrayAndMatchesTheLocalExecutor) {
  const char* required = std::getenv("CHATLAB_REQUIRE_SLURM");
  if ((required == nullptr || std::string(required) != "1") &&
      (geteuid() != 0 || access("/usr/sbin/slurmctld", X_OK) != 0)) {
    GTEST_SKIP() << "needs root and slurmctld, slurmd, slurm-client, munge "
                    "(scripts/install-deps.sh); CHATLAB_REQUIRE_SLURM=1 makes this a failure";
  }
  const fs::path dir = chatlab_test::TempDir("chatlab-slurm", "sweep");
  chatlab_test::LocalSlurm slurm;
  const std::string started = slurm.Start(dir / "cluster");
  ASSERT_EQ(started, "");
  const fs::path sc = dir / "tiny.toml";
  std::ofstream(sc) << kSweep;

  const Outcome on_slurm =
      chatlab_test::RunChatlab("sweep " + sc.string() + " --executor slurm", dir / "slurm-sweep");
  ASSERT_EQ(on_slurm.exit_code, 0) << on_slurm.output;
  EXPECT_NE(on_slurm.output.find("sweep: 4 runs (0 already done)"), std::string::npos)
      << on_slurm.output;
  const Outcome local = chatlab_test::RunChatlab("sweep " + sc.string(), dir / "local-sweep");
  ASSERT_EQ(local.exit_code, 0) << local.output;

  // Every run went through one Slurm job array (the job id each task wrote), exited 0, and
  // traced exactly what the local executor's run of the same point and seed traced.
  std::string job;
  for (const char* id : {"p000-s1", "p000-s2", "p001-s1", "p001-s2"}) {
    const fs::path run = dir / "slurm-sweep" / "runs" / id;
    const std::string this_job = Read(run / "slurm_job");
    // A Slurm job id, not the empty line a task run outside Slurm would write.
    EXPECT_TRUE(this_job.size() > 1 &&
                this_job.find_first_not_of("0123456789\n") == std::string::npos)
        << id << ": '" << this_job << "'";
    if (job.empty()) job = this_job;
    EXPECT_EQ(this_job, job) << id;
    EXPECT_EQ(Read(run / "exit_status"), "0\n") << id;
    const nlohmann::json a = nlohmann::json::parse(Read(run / "results.json"), nullptr, false);
    const nlohmann::json b = nlohmann::json::parse(
        Read(dir / "local-sweep" / "runs" / id / "results.json"), nullptr, false);
    ASSERT_FALSE(a.is_discarded() || b.is_discarded()) << id;
    EXPECT_EQ(a["trace_digest"], b["trace_digest"]) << id;
    EXPECT_EQ(a["invariants"]["ok"], true) << id;
  }
  EXPECT_TRUE(fs::exists(dir / "slurm-sweep" / "slurm" / "round-0" / "array.sh"));
  EXPECT_TRUE(fs::exists(dir / "slurm-sweep" / "slurm" / "round-0" / "task-3.sh"));

  // Resumable: every run has its results, so nothing is submitted again.
  const Outcome again =
      chatlab_test::RunChatlab("sweep " + sc.string() + " --executor slurm", dir / "slurm-sweep");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("sweep: 4 runs (4 already done)"), std::string::npos) << again.output;
  EXPECT_FALSE(fs::exists(dir / "slurm-sweep" / "slurm" / "round-1"));
  fs::remove_all(dir);
}

TEST(SlurmExecutor, BadExecutorOrNoSbatchIsRefusedNamingIt) {
  const fs::path dir = chatlab_test::TempDir("chatlab-slurm", "refused");
  const fs::path sc = dir / "tiny.toml";
  std::ofstream(sc) << kSweep;
  const Outcome bad =
      chatlab_test::RunChatlab("sweep " + sc.string() + " --executor pbs", dir / "bad");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--executor pbs: expected local or slurm"), std::string::npos)
      << bad.output;
  // No sbatch on PATH: refused before anything runs, saying what to install.
  const std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  setenv("PATH", (dir / "nothing-here").c_str(), 1);
  const Outcome none =
      chatlab_test::RunChatlab("sweep " + sc.string() + " --executor slurm", dir / "none");
  setenv("PATH", path.c_str(), 1);
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("sbatch is not on PATH"), std::string::npos) << none.output;
  fs::remove_all(dir);
}

}  // namespace
