#include "sim/swarm/shrink.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/scenario.h"
#include "sim/child.h"
#include "sim/swarm/common.h"
#include "sim/swarm/reduce.h"
#include "sim/swarm/story.h"

namespace chatlab::sim::swarm {
namespace {

namespace fs = std::filesystem;

// What one run of a scenario showed.
struct Verdict {
  ChildExit exit;
  std::vector<std::string> violated;  // invariant names, in name order
  std::vector<std::string> first;     // first_violations sentences
};

// Runs scenarios as child processes, J at a time, remembering every verdict by the scenario's
// text (two reductions can meet at the same scenario; it runs once).
class Runner {
 public:
  Runner(fs::path work, int jobs) : work_(std::move(work)), jobs_(jobs) {}

  // The verdicts of `scenarios`, in their order.
  std::vector<Verdict> RunAll(const std::vector<const Scenario*>& scenarios) {
    std::vector<std::string> texts;
    std::vector<size_t> fresh;  // indexes of scenarios not run before
    for (size_t i = 0; i < scenarios.size(); i++) {
      texts.push_back(ScenarioToToml(*scenarios[i]));
      const bool seen =
          cache_.contains(texts[i]) ||
          std::any_of(fresh.begin(), fresh.end(), [&](size_t k) { return texts[k] == texts[i]; });
      if (!seen) fresh.push_back(i);
    }
    std::vector<fs::path> dirs(fresh.size());
    RunPool(
        fresh.size(), jobs_,
        [&](size_t k) {
          dirs[k] = work_ / absl::StrCat(next_dir_++);
          fs::create_directories(dirs[k]);
          const std::string file = (dirs[k] / "scenario.toml").string();
          WriteFileWhole(file, texts[fresh[k]]);
          return ChildJob{
              {"chatlab", "run", file, "--out", dirs[k].string(), "--quiet", "--no-progress"},
              (dirs[k] / "run.log").string()};
        },
        [&](size_t k, ChildExit exit) {
          runs_++;
          Verdict v{exit, {}, {}};
          if (exit.signal == 0 && exit.code == 1) {
            const nlohmann::json r = ReadJsonFile((dirs[k] / "results.json").string());
            v.violated = ViolatedInvariants(r);
            v.first = FirstViolations(r);
          } else if (!exit.ok()) {
            // A crash or bad input is a simulator or reducer bug, not a reduction: keep it.
            const fs::path keep = work_.parent_path() / absl::StrCat("crashed-", k, "-", runs_);
            std::error_code ec;
            fs::copy_file(dirs[k] / "scenario.toml", keep.string() + ".toml", ec);
            fs::copy_file(dirs[k] / "run.log", keep.string() + ".log", ec);
            std::cerr << "shrink: a candidate run "
                      << (exit.signal != 0 ? absl::StrCat("was killed by signal ", exit.signal)
                                           : absl::StrCat("exited ", exit.code))
                      << " (a bug in the simulator or the reducer): kept as " << keep.string()
                      << ".toml\n";
          }
          cache_[texts[fresh[k]]] = v;
          fs::remove_all(dirs[k]);
        });
    std::vector<Verdict> out;
    for (const std::string& t : texts) out.push_back(cache_.at(t));
    return out;
  }
  int runs() const { return runs_; }

 private:
  const fs::path work_;
  const int jobs_;
  std::map<std::string, Verdict> cache_;
  int runs_ = 0;
  int next_dir_ = 0;
};

// True if the verdict violates one of the target invariants.
bool FailsTheSameWay(const Verdict& v, const std::set<std::string>& target) {
  if (v.exit.signal != 0 || v.exit.code != 1) return false;
  return std::any_of(v.violated.begin(), v.violated.end(),
                     [&](const std::string& name) { return target.contains(name); });
}

// Searches from `start` to a 1-minimal scenario (shrink.h explains the order).
struct Search {
  Scenario minimal;
  std::vector<std::string> kept;  // the reductions taken, in order
  bool minimal_proven = true;     // false if kShrinkRunsMax stopped the search
};

Search Reduce(const Scenario& start, const std::set<std::string>& target, Runner& runner,
              int jobs) {
  Search out{start, {}, true};
  int rule_start = 0;
  while (true) {
    std::vector<Candidate> all = Reductions(out.minimal);
    // Rule order, starting at the rule taken last and wrapping around.
    std::stable_partition(all.begin(), all.end(),
                          [&](const Candidate& c) { return c.rule >= rule_start; });
    const Candidate* taken = nullptr;
    for (size_t at = 0; at < all.size() && taken == nullptr; at += static_cast<size_t>(jobs)) {
      if (runner.runs() >= kShrinkRunsMax) {
        out.minimal_proven = false;
        return out;
      }
      std::vector<const Scenario*> chunk;
      for (size_t i = at; i < std::min(all.size(), at + static_cast<size_t>(jobs)); i++) {
        chunk.push_back(&all[i].scenario);
      }
      const std::vector<Verdict> verdicts = runner.RunAll(chunk);
      for (size_t i = 0; i < verdicts.size(); i++) {
        if (FailsTheSameWay(verdicts[i], target)) {
          taken = &all[at + i];
          break;
        }
      }
    }
    if (taken == nullptr) return out;  // no single reduction still fails: 1-minimal
    std::cerr << "shrink: " << taken->what << "  (" << runner.runs() << " runs so far)\n";
    out.kept.push_back(taken->what);
    rule_start = taken->rule;
    out.minimal = taken->scenario;
  }
}

std::string Shape(const Scenario& s) {
  return absl::StrFormat("users %d, groups %d, servers %d, faults %d, duration %g s (quiet %g s)",
                         s.users, s.groups, s.servers(), FaultCount(s), s.duration_s, s.quiet_s);
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The first violation sentence of one of the target invariants, or "".
std::string FirstOfTarget(const std::vector<std::string>& first,
                          const std::set<std::string>& target) {
  for (const std::string& f : first) {
    if (target.contains(f.substr(0, f.find(':')))) return f;
  }
  return "";
}

// The invariants the file as given violates (exit 1), or an exit code: 2 if it passes or does
// not run.
struct Original {
  std::set<std::string> target;
  std::vector<std::string> violated;
  int exit_code = 0;  // non-zero: stop with this code
};

Original RunOriginal(const std::string& path, const fs::path& dir) {
  const ChildExit exit = RunChild(
      {{"chatlab", "run", path, "--out", (dir / "original").string(), "--quiet", "--no-progress"},
       (dir / "original.log").string()});
  Original o;
  if (exit.ok()) {
    std::cerr << "chatlab: " << path << " does not fail: nothing to shrink\n";
    o.exit_code = 2;
  } else if (exit.signal != 0 || exit.code != 1) {
    std::cerr << "chatlab: shrink: " << path << " did not run (exit " << exit.status() << "; see "
              << (dir / "original.log").string() << ")\n";
    o.exit_code = 2;
  } else {
    o.violated = ViolatedInvariants(ReadJsonFile((dir / "original" / "results.json").string()));
    o.target.insert(o.violated.begin(), o.violated.end());
  }
  return o;
}

// minimal.toml: the scenario, its header saying what it violates, how to rerun it and how it
// was found.
void WriteMinimal(const fs::path& file, const std::string& source, const Scenario& before,
                  const Original& original, const Search& search, const Verdict& verdict,
                  const std::string& first, int runs) {
  std::string header = absl::StrCat(
      "chatlab shrink: a minimal scenario that still fails like ", source,
      "\nviolates: ", absl::StrJoin(verdict.violated, ", "),
      " (the original violated: ", absl::StrJoin(original.violated, ", "),
      ")\nfirst violation: ", first, "\nrepro: chatlab run ", file.string(),
      "\nstory of its first offending message: ", (file.parent_path() / "story.txt").string(),
      "\nshrink: ", runs, " runs, ",
      search.minimal_proven ? "1-minimal (no single reduction of it still fails)"
                            : absl::StrCat("stopped at kShrinkRunsMax = ", kShrinkRunsMax,
                                           " runs (maybe not minimal)"),
      "; seed ", search.minimal.seed, " kept fixed\nbefore: ", Shape(before),
      "\nafter:  ", Shape(search.minimal), "\nreductions kept, in order:");
  for (const std::string& k : search.kept) absl::StrAppend(&header, "\n  ", k);
  if (search.kept.empty()) absl::StrAppend(&header, "\n  (none: it was minimal already)");
  WriteFileWhole(file.string(), CommentLines(header) + "\n" + ScenarioToToml(search.minimal));
}

// story.txt: minimal.toml run again with --trace, and the lines of its first offending message.
// Returns the traced run's exit status (1 expected).
int WriteStory(const fs::path& dir, const std::set<std::string>& target) {
  const fs::path minimal = dir / "minimal.toml";
  const fs::path trace = dir / "trace.txt";
  const ChildExit traced =
      RunChild({{"chatlab", "run", minimal.string(), "--out", (dir / "final").string(), "--trace",
                 trace.string(), "--quiet", "--no-progress"},
                (dir / "final.log").string()});
  const std::string first = FirstOfTarget(
      FirstViolations(ReadJsonFile((dir / "final" / "results.json").string())), target);
  WriteFileWhole((dir / "story.txt").string(),
                 absl::StrCat("the story of the first offending message of ", minimal.string(),
                              "\n(chatlab run ", minimal.string(), " --trace ", trace.string(),
                              ")\n", Story(first, ReadLines(trace))));
  return traced.status();
}

}  // namespace

int Shrink(const ShrinkOptions& o) {
  absl::StatusOr<Scenario> loaded = LoadScenario(o.scenario_path);
  const absl::Status valid = loaded.ok() ? Validate(*loaded) : loaded.status();
  if (!valid.ok()) {
    std::cerr << "chatlab: " << valid.message() << "\n";
    return 2;
  }
  const fs::path dir(o.out_dir.empty() ? "out/shrink-" + loaded->name : o.out_dir);
  std::error_code ec;
  fs::remove_all(dir / "work", ec);
  fs::create_directories(dir / "work", ec);
  if (ec) {
    std::cerr << "chatlab: shrink: --out " << dir.string() << ": " << ec.message() << "\n";
    return 2;
  }
  const Original original = RunOriginal(o.scenario_path, dir);
  if (original.exit_code != 0) return original.exit_code;
  std::cerr << "shrink: " << o.scenario_path << " violates "
            << absl::StrJoin(original.violated, ", ") << "; " << Shape(*loaded) << "\n";
  const int jobs = o.jobs > 0 ? o.jobs : DefaultJobs();
  Runner runner(dir / "work", jobs);
  // What the search reduces is the file written back as TOML: it must fail the same way.
  if (!FailsTheSameWay(runner.RunAll({&*loaded})[0], original.target)) {
    std::cerr << "chatlab: shrink: " << o.scenario_path << " written back as TOML no longer "
              << "fails the same way (a ScenarioToToml bug)\n";
    return 2;
  }
  const Search search = Reduce(*loaded, original.target, runner, jobs);
  const Verdict verdict = runner.RunAll({&search.minimal})[0];  // cached: no new run
  const std::string first = FirstOfTarget(verdict.first, original.target);
  const int runs = runner.runs() + 2;  // + the original file's run and the traced rerun
  WriteMinimal(dir / "minimal.toml", o.scenario_path, *loaded, original, search, verdict, first,
               runs);
  const int traced = WriteStory(dir, original.target);
  fs::remove_all(dir / "work", ec);

  std::cout << "shrink: " << o.scenario_path << " violates "
            << absl::StrJoin(original.violated, ", ") << "\nshrink: " << runs << " runs, "
            << search.kept.size() << " reductions kept"
            << (search.minimal_proven ? ", 1-minimal" : ", NOT minimal")
            << "\n  before: " << Shape(*loaded) << "\n  after:  " << Shape(search.minimal)
            << "\n  first violation: " << first << "\nminimal: " << (dir / "minimal.toml").string()
            << "\nstory:   " << (dir / "story.txt").string() << "\nrepro:   chatlab run "
            << (dir / "minimal.toml").string() << "\n";
  if (traced != 1) {
    std::cout << "shrink: WARNING: the traced rerun of minimal.toml exited " << traced
              << ", not 1: is the simulator deterministic across runs?\n";
  }
  return 0;
}

}  // namespace chatlab::sim::swarm
