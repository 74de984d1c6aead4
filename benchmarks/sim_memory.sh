#!/usr/bin/env bash
# Where the simulator's bytes per user go: runs the scale benchmark's scenario (the seed's load,
# network.model = "uncontended"; benchmarks/sim_scale.sh) at USERS online users under heaptrack
# and prints the heap at its peak by the innermost ChatLab function that allocated it, in bytes
# per online user, beside the run's peak RSS per user. SimGrid's actor stacks are left out
# (heaptrack counts their 8 MB reservations; only the pages touched count in RSS).
#
# Usage: benchmarks/sim_memory.sh [USERS] [TOP]   (default 100000 users, 25 lines)
# Needs a release build and heaptrack (scripts/install-deps.sh installs it). Takes about 5x the
# plain run (about a minute at 100,000 users).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/scale_scenario.sh
n=${1:-100000}
top=${2:-25}
[[ "$n" =~ ^[1-9][0-9]*$ && "$top" =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: benchmarks/sim_memory.sh [USERS] [TOP] (positive integers; got '$n' '$top')" >&2
  exit 2
}
command -v heaptrack > /dev/null || { echo "sim_memory.sh: needs heaptrack" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
write_scale_scenario "$n" uncontended "$tmp/scale.toml"
# A run that breaks an invariant still shows where its memory went: its exit code is not fatal.
heaptrack -o "$tmp/heap" build/release/sim/chatlab run "$tmp/scale.toml" --out "$tmp/out" \
  --quiet --no-progress > "$tmp/heaptrack.log" 2>&1 || true
# heaptrack compresses with zstd when it finds it, with gzip otherwise.
recorded=("$tmp"/heap.*)
if [ ! -f "$tmp/out/results.json" ] || [ ! -f "${recorded[0]}" ]; then
  echo "sim_memory.sh: the run under heaptrack left no results.json or no recording:" >&2
  cat "$tmp/heaptrack.log" >&2
  exit 1
fi
heaptrack_print -f "${recorded[0]}" --print-flamegraph "$tmp/peak.txt" \
  --flamegraph-cost-type peak > /dev/null
python3 - "$tmp/peak.txt" "$tmp/out/results.json" "$n" "$top" <<'PY'
import collections, json, re, sys
path, results, n, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
by_owner = collections.Counter()
for line in open(path):
    stack, cost = line.rstrip().rsplit(' ', 1)
    frames = stack.split(';')
    if any('Context::' in f and 'simgrid' in f for f in frames):
        continue  # actor stacks
    # ChatLab's own functions (a container's, instantiated for a ChatLab type, does not count).
    ours = [f for f in frames if f.startswith('chatlab::')]
    owner = ours[-1] if ours else '(outside ChatLab: ' + frames[-1][:60] + ')'
    owner = owner.replace('(anonymous namespace)', '{anonymous}')
    owner = re.sub(r'\(.*', '', owner)  # drop the argument list
    owner = re.sub(r'<[^<>]*(<[^<>]*>[^<>]*)*>', '<>', owner)
    by_owner[owner.strip()] += int(cost)
total = sum(by_owner.values())
rss = json.load(open(results))['peak_rss_bytes']
print(f'{n} users: peak RSS under heaptrack {rss / n:.0f} B per user; heap at its peak '
      f'{total / n:.0f} B per user (the rest: the binary, SimGrid, stacks touched, the '
      f'allocator, heaptrack)')
print(f'{"B/user":>8} {"share":>6}  innermost ChatLab function that allocated it')
for owner, cost in by_owner.most_common(top):
    print(f'{cost / n:8.0f} {cost / total:6.1%}  {owner[:110]}')
PY
