// history_check: replays a recorded history (docs/history-format.md) into the core's oracle.
//
//   history_check FILE      (or - for stdin)
//
// Prints the verdict as JSON on stdout and each first violation on stderr. Exit status: 0 when
// every promise held, 1 when the oracle found a violation, 2 when FILE is not a history.
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "real-transport/history.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: history_check FILE   (FILE is a chatlab-history/1 JSON, - for stdin)\n";
    return 2;
  }
  const std::string path = argv[1];
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      std::cerr << "history_check: cannot read " << path << "\n";
      return 2;
    }
    text.assign(std::istreambuf_iterator<char>(f), {});
  }
  const auto verdict = chatlab::real::CheckHistory(text);
  if (!verdict.ok()) {
    std::cerr << "history_check: " << path << ": " << verdict.status().message() << "\n";
    return 2;
  }
  std::cout << chatlab::real::VerdictJson(*verdict) << "\n";
  for (const std::string& v : verdict->violations) std::cerr << "violation: " << v << "\n";
  std::cerr << "history_check: " << verdict->users << " users, " << verdict->events << " events, "
            << verdict->sent << " sent, " << verdict->acked << " acked, " << verdict->displayed
            << " displayed; "
            << (verdict->final_checked ? "final check against the truth; " : "no truth; ")
            << verdict->counts.total() << " violations\n";
  return verdict->ok() ? 0 : 1;
}
