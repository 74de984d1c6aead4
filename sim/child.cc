#include "sim/child.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>

namespace chatlab::sim {
namespace {

pid_t Spawn(const ChildJob& job, const std::string& program = "") {
  std::vector<char*> argv;
  for (const std::string& a : job.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    if (!job.log_path.empty()) {
      const int fd = open(job.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
      }
    }
    execv(program.empty() ? "/proc/self/exe" : program.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

ChildExit FromStatus(int status) {
  ChildExit e;
  if (WIFEXITED(status)) {
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  } else {
    e.code = 127;
  }
  return e;
}

}  // namespace

ChildExit RunChild(const ChildJob& job, const std::string& program) {
  const pid_t pid = Spawn(job, program);
  if (pid < 0) return ChildExit{127, 0};
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ChildExit{127, 0};
  }
  return FromStatus(status);
}

void RunPool(size_t count, int parallel, const std::function<ChildJob(size_t)>& make_job,
             const std::function<void(size_t, ChildExit)>& on_done) {
  parallel = std::max(1, parallel);
  // Only the pids this pool started are waited for, so a caller's other children are left alone.
  std::map<pid_t, size_t> running;
  size_t next = 0;
  while (next < count || !running.empty()) {
    while (next < count && static_cast<int>(running.size()) < parallel) {
      const size_t i = next++;
      const pid_t pid = Spawn(make_job(i));
      if (pid < 0) {
        on_done(i, ChildExit{127, 0});
        continue;
      }
      running[pid] = i;
    }
    if (running.empty()) continue;
    // Poll our own children in pid order: waitpid(-1) would also reap a caller's other children.
    int status = 0;
    pid_t ended = -1;
    ChildExit exit;
    while (ended < 0) {
      for (const auto& [pid, i] : running) {
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
          ended = pid;
          exit = FromStatus(status);
          break;
        }
        if (r < 0 && errno != EINTR) {  // not ours after all: count it as a failed start
          ended = pid;
          exit = ChildExit{127, 0};
          break;
        }
      }
      if (ended < 0) usleep(2000);
    }
    const size_t i = running.at(ended);
    running.erase(ended);
    on_done(i, exit);
  }
}

int DefaultJobs() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace chatlab::sim
