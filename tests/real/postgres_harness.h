// A PostgreSQL server of a test's own, really started: initdb into a fresh directory, then
// pg_ctl start on a free 127.0.0.1 port (its Unix socket in that directory too), stopped with
// pg_ctl (mode immediate: like a crash, which the WAL recovers) and removed at the end. Run as
// root, as CI is, the server runs as the `postgres` user Debian's package creates, since initdb
// refuses root. Durability stays at PostgreSQL's defaults (fsync and synchronous_commit on):
// PostgresStorage refuses a server without them. initdb runs with --no-sync (its own files are
// not flushed), which only matters if the machine loses power during the test.
#ifndef CHATLAB_TESTS_REAL_POSTGRES_HARNESS_H_
#define CHATLAB_TESTS_REAL_POSTGRES_HARNESS_H_

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/real/harness.h"

namespace chatlab::real::testing {

class LocalPostgres {
 public:
  LocalPostgres() : port_(FreePort()) {
    const std::string bin = BinDir();
    if (bin.empty()) {
      error_ = "no /usr/lib/postgresql/*/bin/initdb: install the postgresql package";
      return;
    }
    as_ = AsUser();
    if (!as_.empty()) {
      const passwd* pw = getpwnam(as_.c_str());
      if (pw == nullptr || chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "cannot hand the data directory to the postgres user";
        return;
      }
    }
    if (Run({bin + "/initdb", "-D", data(), "-A", "trust", "-U", "chatlab", "--no-sync", "-E",
             "UTF8", "--locale=C"}) != 0) {
      error_ = "initdb failed: " + Log();
      return;
    }
    if (!Start()) error_ = "pg_ctl start failed: " + Log();
  }
  ~LocalPostgres() { Stop(); }
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  // Empty when the server runs; otherwise why not.
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  // A libpq connection string for database db.
  std::string ConnInfo(const std::string& db = "postgres") const {
    return absl::StrCat("host=127.0.0.1 port=", port_, " user=chatlab dbname=", db,
                        " connect_timeout=5");
  }
  // Creates database name; false (and error() set) if the server refuses.
  bool CreateDatabase(const std::string& name) {
    PGconn* conn = PQconnectdb(ConnInfo().c_str());
    bool ok = PQstatus(conn) == CONNECTION_OK;
    if (ok) {
      PGresult* r = PQexec(conn, absl::StrCat("CREATE DATABASE ", name).c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      if (!ok) error_ = PQerrorMessage(conn);
      PQclear(r);
    } else {
      error_ = PQerrorMessage(conn);
    }
    PQfinish(conn);
    return ok;
  }
  // pg_ctl start (waits until it accepts connections) and stop (immediate: no checkpoint, the
  // next start replays the WAL, as after a crash).
  bool Start() {
    running_ = Run({BinDir() + "/pg_ctl", "-D", data(), "-l", dir_ / "server.log", "-w", "-t",
                    "30", "-o",
                    absl::StrCat("-p ", port_, " -k ", dir_.path(),
                                 " -c listen_addresses=127.0.0.1"),
                    "start"}) == 0;
    return running_;
  }
  void Stop() {
    if (!running_) return;
    Run({BinDir() + "/pg_ctl", "-D", data(), "-m", "immediate", "-w", "stop"});  // NOLINT
    running_ = false;
  }

 private:
  // The newest installed server's binaries, or "".
  static std::string BinDir() {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      if (std::filesystem::exists(e.path() / "bin" / "initdb")) found.push_back(e.path());
    }
    if (found.empty()) return "";
    std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
      return std::stoi(std::filesystem::path(a).filename()) <
             std::stoi(std::filesystem::path(b).filename());
    });
    return found.back() + "/bin";
  }
  // Root runs the server as postgres; anyone else as themselves ("").
  static std::string AsUser() { return geteuid() == 0 ? "postgres" : ""; }
  std::string data() const { return dir_ / "data"; }
  int Run(std::vector<std::string> argv) {
    if (!as_.empty()) argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", as_, "--"});
    return RunCommand(argv, dir_ / "commands.log");
  }
  std::string Log() const {
    std::ifstream f(dir_ / "commands.log");
    std::string text(std::istreambuf_iterator<char>(f), {});
    std::ifstream g(dir_ / "server.log");
    text += std::string(std::istreambuf_iterator<char>(g), {});
    return text;
  }

  TempDir dir_;
  uint16_t port_;
  std::string as_;
  std::string error_;
  bool running_ = false;
};

}  // namespace chatlab::real::testing

#endif  // CHATLAB_TESTS_REAL_POSTGRES_HARNESS_H_
