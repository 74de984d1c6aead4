// Running the real `chatlab` binary from a simulator test: one process per simulation (SimGrid
// allows one engine per process), its output captured and its results.json read back.
#ifndef CHATLAB_TESTS_SIM_CHATLAB_PROCESS_H_
#define CHATLAB_TESTS_SIM_CHATLAB_PROCESS_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace chatlab_test {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
  nlohmann::json results;
};

// A fresh directory under the system temp dir, named for the test and this process.
inline std::filesystem::path TempDir(const std::string& prefix, const std::string& tag) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              (prefix + "-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs `chatlab ARGS --out DIR --no-progress` and reads DIR/results.json when there is one.
inline Outcome RunChatlab(const std::string& args, const std::filesystem::path& out_dir) {
  Outcome o;
  const std::string cmd = std::string(CHATLAB_BIN) + " " + args + " --out " + out_dir.string() +
                          " --no-progress 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) o.output.append(buf, n);
  const int status = pclose(p);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_dir / "results.json");
  if (in) o.results = nlohmann::json::parse(in, nullptr, false);
  return o;
}

}  // namespace chatlab_test

#endif  // CHATLAB_TESTS_SIM_CHATLAB_PROCESS_H_
