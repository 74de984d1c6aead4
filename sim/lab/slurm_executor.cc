#include "sim/lab/slurm_executor.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sim/child.h"

namespace chatlab::sim::lab {
namespace {

namespace fs = std::filesystem;

// 'text' for sh, single quotes inside closed and reopened.
std::string ShellQuote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// The first executable `name` on PATH, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// The job id sbatch --parsable printed ("12345" or "12345;cluster") among its log's lines.
std::string JobId(const std::string& log) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    const absl::string_view id = line.substr(0, line.find(';'));
    uint64_t n = 0;
    if (!id.empty() && absl::SimpleAtoi(id, &n)) return std::string(id);
  }
  return "";
}

std::string ReadTrimmed(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream buf;
  buf << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(buf.str()));
}

}  // namespace

absl::StatusOr<std::string> FindSbatch() {
  std::string sbatch = FindOnPath("sbatch");
  if (sbatch.empty()) {
    return absl::InvalidArgumentError(
        "--executor slurm: sbatch is not on PATH (install Debian's slurm-client, and give the "
        "cluster's configuration: SLURM_CONF or /etc/slurm/slurm.conf)");
  }
  return sbatch;
}

absl::Status RunOnSlurm(const std::vector<SlurmTask>& tasks, const std::string& sweep_dir,
                        const SlurmOptions& options,
                        const std::function<void(size_t, int status)>& on_done) {
  if (tasks.empty()) return absl::OkStatus();
  const absl::StatusOr<std::string> found = FindSbatch();
  if (!found.ok()) return found.status();
  const std::string& sbatch = *found;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path cwd = fs::current_path(ec);
  const fs::path slurm_dir = fs::absolute(fs::path(sweep_dir) / "slurm", ec);
  int round = 0;
  while (fs::exists(slurm_dir / absl::StrCat("round-", round))) round++;
  const fs::path dir = slurm_dir / absl::StrCat("round-", round);
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": ", ec.message()));

  for (size_t i = 0; i < tasks.size(); i++) {
    const fs::path run_dir = fs::absolute(tasks[i].dir);
    // A stale status from an earlier attempt must not stand for this one.
    fs::remove(run_dir / "exit_status", ec);
    std::string command = ShellQuote(self.string());
    for (size_t a = 1; a < tasks[i].args.size(); a++) {
      absl::StrAppend(&command, " ", ShellQuote(tasks[i].args[a]));
    }
    std::ofstream(dir / absl::StrCat("task-", i, ".sh"))
        << "#!/bin/sh\n# chatlab sweep run " << tasks[i].id << "\n"
        << "cd " << ShellQuote(cwd.string()) << " || exit 1\n"
        << "echo \"$SLURM_ARRAY_JOB_ID\" > " << ShellQuote((run_dir / "slurm_job").string()) << "\n"
        << command << " > " << ShellQuote((run_dir / "run.log").string()) << " 2>&1\n"
        << "echo $? > " << ShellQuote((run_dir / "exit_status").string()) << "\n";
  }
  std::ofstream(dir / "array.sh") << "#!/bin/sh\nexec /bin/sh " << ShellQuote(dir.string())
                                  << "/task-$SLURM_ARRAY_TASK_ID.sh\n";
  std::string array = absl::StrCat("--array=0-", tasks.size() - 1);
  if (options.max_parallel > 0) absl::StrAppend(&array, "%", options.max_parallel);
  ChildJob job{{sbatch, "--parsable", "--wait", array, "--ntasks=1", "--cpus-per-task=1",
                absl::StrCat("--job-name=chatlab-", options.name.empty() ? "sweep" : options.name),
                absl::StrCat("--output=", (dir / "slurm-%A_%a.out").string()),
                absl::StrCat("--chdir=", cwd.string())},
               (dir / "sbatch.log").string()};
  if (!options.partition.empty()) {
    job.args.push_back(absl::StrCat("--partition=", options.partition));
  }
  job.args.push_back((dir / "array.sh").string());
  if (options.progress) {
    std::fprintf(stderr, "chatlab: sweep: %zu runs as a Slurm job array (%s), waiting\n",
                 tasks.size(), (dir / "sbatch.log").c_str());
  }
  const ChildExit submitted = RunChild(job, sbatch);
  const std::string job_id = JobId(ReadTrimmed(dir / "sbatch.log"));
  if (!submitted.ok() && job_id.empty()) {
    return absl::InternalError(absl::StrCat("sbatch failed (exit ", submitted.status(), "); see ",
                                            (dir / "sbatch.log").string()));
  }
  // sbatch --wait exits with the highest task exit code; each task's own status is in its run
  // directory (a task exits 0 once it has written it).
  for (size_t i = 0; i < tasks.size(); i++) {
    const std::string status = ReadTrimmed(fs::absolute(tasks[i].dir) / "exit_status");
    int code = 0;
    if (status.empty() || !absl::SimpleAtoi(status, &code)) {
      return absl::InternalError(
          absl::StrCat("Slurm job ", job_id, " task ", i, " (run ", tasks[i].id,
                       ") left no exit status (not run, or killed); see ",
                       (dir / absl::StrCat("slurm-", job_id, "_", i, ".out")).string()));
    }
    on_done(i, code);
  }
  return absl::OkStatus();
}

}  // namespace chatlab::sim::lab
