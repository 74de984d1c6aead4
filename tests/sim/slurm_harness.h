// A single-node Slurm cluster started by a test (docs/experiments.md, "Executors"): munged with a
// fresh key on a socket of its own, slurmctld and slurmd (this host, its cores) with a
// configuration of their own on 127.0.0.1 ports below the ephemeral range, all under one
// directory, all stopped when the object is destroyed. Slurm's commands find it through
// SLURM_CONF, which Start sets for this process and its children. Needs root (slurmd starts jobs
// as their user) and Debian's munge, slurmctld, slurmd and slurm-client.
#ifndef CHATLAB_TESTS_SIM_SLURM_HARNESS_H_
#define CHATLAB_TESTS_SIM_SLURM_HARNESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "real-transport/util.h"

namespace chatlab_test {

class LocalSlurm {
 public:
  // Starts the three daemons under dir and waits (up to 60 s) until the node takes jobs. "" or
  // why not (a binary missing, a daemon that exited: its log named).
  std::string Start(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    dir_ = dir;
    for (const char* bin : {"/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd",
                            "/usr/bin/sbatch", "/usr/bin/sinfo"}) {
      if (access(bin, X_OK) != 0) {
        return std::string(bin) +
               " is missing: install munge, slurmctld, slurmd and slurm-client "
               "(scripts/install-deps.sh)";
      }
    }
    if (geteuid() != 0) return "slurmd needs root";
    std::error_code ec;
    for (const char* sub : {"munge", "state", "spool"}) fs::create_directories(dir / sub, ec);
    fs::permissions(dir / "munge", fs::perms::owner_all, ec);
    {  // A fresh key, readable by its owner only (munged refuses anything looser).
      std::random_device rd;
      std::string key(1024, '\0');
      for (char& c : key) c = static_cast<char>(rd());
      const std::string path = (dir / "munge" / "munge.key").string();
      std::ofstream(path, std::ios::binary) << key;
      chmod(path.c_str(), 0400);
    }
    const std::string socket = (dir / "munge" / "munge.socket").string();
    munged_ = Spawn({"/usr/sbin/munged", "--foreground", "--force",
                     "--key-file=" + (dir / "munge" / "munge.key").string(), "--socket=" + socket,
                     "--pid-file=" + (dir / "munge" / "munged.pid").string(),
                     "--log-file=" + (dir / "munge" / "munged.log").string(),
                     "--seed-file=" + (dir / "munge" / "munged.seed").string()},
                    (dir / "munge" / "munged.out").string());
    pid_t none = 0;
    if (!WaitFor([&] { return fs::exists(socket); }, munged_, none)) {
      return "munged did not start; see " + (dir / "munge").string();
    }
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    host_ = std::string(host).substr(0, std::string(host).find('.'));
    const absl::StatusOr<uint16_t> ctld_port = chatlab::real::PickFreePort();
    const absl::StatusOr<uint16_t> slurmd_port = chatlab::real::PickFreePort();
    if (!ctld_port.ok() || !slurmd_port.ok() || *ctld_port == *slurmd_port) return "no free port";
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    conf_ = (dir / "slurm.conf").string();
    std::ofstream(conf_) << "ClusterName=chatlab\n"
                         << "SlurmctldHost=" << host_ << "(127.0.0.1)\n"
                         << "SlurmctldPort=" << *ctld_port << "\n"
                         << "SlurmdPort=" << *slurmd_port << "\n"
                         << "SlurmUser=root\nSlurmdUser=root\n"
                         << "AuthType=auth/munge\nCredType=cred/munge\n"
                         << "AuthInfo=socket=" << socket << "\n"
                         << "StateSaveLocation=" << (dir / "state").string() << "\n"
                         << "SlurmdSpoolDir=" << (dir / "spool").string() << "\n"
                         << "SlurmctldPidFile=" << (dir / "slurmctld.pid").string() << "\n"
                         << "SlurmdPidFile=" << (dir / "slurmd.pid").string() << "\n"
                         << "SlurmctldLogFile=" << (dir / "slurmctld.log").string() << "\n"
                         << "SlurmdLogFile=" << (dir / "slurmd.log").string() << "\n"
                         << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
                         << "JobAcctGatherType=jobacct_gather/none\n"
                         << "AccountingStorageType=accounting_storage/none\n"
                         << "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
                         << "MpiDefault=none\nReturnToService=2\n"
                         << "SlurmctldTimeout=30\nSlurmdTimeout=30\n"
                         << "NodeName=" << host_ << " NodeAddr=127.0.0.1 CPUs=" << cpus
                         << " State=UNKNOWN\n"
                         << "PartitionName=chatlab Nodes=ALL Default=YES MaxTime=INFINITE "
                            "State=UP\n";
    setenv("SLURM_CONF", conf_.c_str(), 1);
    slurmctld_ =
        Spawn({"/usr/sbin/slurmctld", "-D", "-c", "-f", conf_}, (dir / "slurmctld.out").string());
    slurmd_ =
        Spawn({"/usr/sbin/slurmd", "-D", "-f", conf_, "-N", host_}, (dir / "slurmd.out").string());
    const bool idle = WaitFor(
        [&] {
          const std::string state = Output("/usr/bin/sinfo -h -o %t 2>/dev/null");
          return state.rfind("idle", 0) == 0 || state.rfind("mix", 0) == 0;
        },
        slurmctld_, slurmd_);
    if (!idle) {
      return "the Slurm node did not come up idle in 60 s; see " + dir.string() +
             "/slurmctld.log and slurmd.log (sinfo: " +
             Output("/usr/bin/sinfo -h -o '%t %E' 2>&1") + ")";
    }
    return "";
  }

  ~LocalSlurm() {
    for (pid_t* pid : {&slurmd_, &slurmctld_, &munged_}) {
      if (*pid <= 0) continue;
      // Never signal a pid once reaped: as root, a reused pid would be someone else's.
      kill(*pid, SIGTERM);
      bool reaped = false;
      for (int i = 0; i < 500 && !reaped; i++) {
        reaped = waitpid(*pid, nullptr, WNOHANG) == *pid;
        if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (!reaped) {
        kill(*pid, SIGKILL);
        waitpid(*pid, nullptr, 0);
      }
      *pid = 0;
    }
    unsetenv("SLURM_CONF");
  }

  const std::string& conf() const { return conf_; }

  // A command's stdout.
  static std::string Output(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) return out;
    std::array<char, 512> buf;
    size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    pclose(p);
    return out;
  }

 private:
  static pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    return pid;
  }

  // Polls ready every 100 ms for up to 60 s; false at once if one of the processes exited (its
  // pid, reaped, is set to 0 so that nothing signals it again).
  template <typename Ready>
  static bool WaitFor(Ready ready, pid_t& a, pid_t& b) {
    for (int i = 0; i < 600; i++) {
      if (ready()) return true;
      for (pid_t* pid : {&a, &b}) {
        if (*pid > 0 && waitpid(*pid, nullptr, WNOHANG) == *pid) {
          *pid = 0;
          return false;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::filesystem::path dir_;
  std::string host_;
  std::string conf_;
  pid_t munged_ = 0, slurmctld_ = 0, slurmd_ = 0;
};

}  // namespace chatlab_test

#endif  // CHATLAB_TESTS_SIM_SLURM_HARNESS_H_
