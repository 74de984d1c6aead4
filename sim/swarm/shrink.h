// `chatlab shrink`: a failing scenario reduced, one simplification at a time, to a minimal one
// that still fails the same way (delta debugging, as Hypothesis and QuickCheck shrink inputs).
//
// "The same way" means: it violates at least one of the invariants the original violates, so a
// reduction that swaps a lost message for an unrelated liveness failure is not taken. The seed
// stays fixed. Reductions, in this fixed order (each one rule; one candidate per entry or switch):
//   remove one [[faults.partition]], [[faults.crash]], [[faults.pause]] or [[faults.clock]]
//   entry; zero loss,
//   duplicate, delay or push_loss; halve users, groups, group_size_max, servers_per_region,
//   regions, client_hosts_per_region, duration_s, quiet_s (not below kShrinkQuietMinS);
//   simplify a design switch toward forwarding=direct, group_delivery=push, write_path=direct,
//   presence_fanout=all, id_scheme=snowflake, id_generator=store, store_shards=1 (entries naming
//   a shard then name the store); turn off typing, wake_on_push,
//   background sync, churn (session_mean_s = 0, reconnect_other_server = 0), bring everyone
//   online at the start;
//   halve a partition's length or a crash's down time; halve the send rate; decrement users,
//   groups, group_size_max, servers_per_region, regions, client hosts.
// Every candidate is made valid (Validate) by the reduction itself: fewer servers drop the fault
// entries that named the ones gone, a shorter run drops faults that would start after it.
//
// Search: a round runs candidates in rule order starting at the rule last taken (wrapping
// around), J at a time, and takes the first in that order that still fails; the search stops
// when a whole round takes none, so the result is 1-minimal: no single reduction of it still
// fails. The order is fixed and the first failure in order is taken whatever J is, so the result
// is the same for every J (only the number of runs differs).
//
// Output: DIR/minimal.toml (standalone; its header says what it violates, the repro, the runs
// taken and every reduction kept), DIR/story.txt (sim/swarm/story.h), DIR/trace.txt.
#ifndef CHATLAB_SIM_SWARM_SHRINK_H_
#define CHATLAB_SIM_SWARM_SHRINK_H_

#include <string>

namespace chatlab::sim::swarm {

// quiet_s is never halved below this: the heal needs time (clients reconnect and sync; the
// default sync interval is 30 s), and a run too short to heal fails every liveness invariant
// whatever the bug, which would let the shrinker "reduce" to a different failure.
inline constexpr double kShrinkQuietMinS = 30;
// duration_s is never halved below this.
inline constexpr double kShrinkDurationMinS = 1;
// A partition or crash down time shorter than this is not halved again.
inline constexpr double kShrinkIntervalMinS = 0.2;
// At most this many candidate runs; the result so far is kept if the budget runs out (it is then
// not necessarily 1-minimal, and the header says so).
inline constexpr int kShrinkRunsMax = 2000;

struct ShrinkOptions {
  std::string scenario_path;
  std::string out_dir;  // "" -> out/shrink-<scenario name>
  int jobs = 0;         // candidates run at a time; 0: the number of cores
};

// Runs the shrink and prints a before/after summary to stdout. Returns the exit code: 0 done,
// 2 if the file does not fail ("FILE does not fail: nothing to shrink") or is bad input.
int Shrink(const ShrinkOptions& options);

}  // namespace chatlab::sim::swarm

#endif  // CHATLAB_SIM_SWARM_SHRINK_H_
