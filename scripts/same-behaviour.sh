#!/bin/bash
# Does a refactor change what the simulator does? Runs one fixed set of seeded simulations with
# two chatlab binaries and compares their results.json, field by field, leaving out only what
# may differ between two builds of the same behaviour (version, wall time, peak memory, the repro
# line). Every scenario file is run, and faults.toml under every forwarding x write-path design.
#
#   scripts/same-behaviour.sh OLD_CHATLAB NEW_CHATLAB
#
# Prints one line per run that differs and exits 1 if any does; 0 when every run is identical
# (trace digest, event count, invariants, faults, recovery paths and every metric). The golden
# trace test (tests/sim/golden/tiny.trace) checks one run line by line; this checks many runs by
# their results. Takes about a minute.
#
# SAME_BEHAVIOUR_ARGS, when set, is added to every run, e.g.
#   SAME_BEHAVIOUR_ARGS="--set network.model=uncontended" scripts/same-behaviour.sh OLD NEW
set -euo pipefail
if [[ $# -ne 2 || ! -x "$1" || ! -x "$2" ]]; then
  echo "usage: $0 OLD_CHATLAB NEW_CHATLAB (two executable chatlab binaries)" >&2
  exit 2
fi
old=$1 new=$2
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

runs=()
for f in scenarios/*.toml scenarios/regressions/*.toml; do
  case $f in
    # Experiments run short: their point is the code paths, not the figures.
    scenarios/forwarding.toml|scenarios/db-writes.toml|scenarios/ids.toml|scenarios/failover.toml|\
    scenarios/capacity.toml|scenarios/groups.toml|scenarios/presence.toml)
      runs+=("$f --seed 4 --set scenario.duration_s=15") ;;
    scenarios/offline.toml) runs+=("$f --seed 4") ;;
    *) runs+=("$f") ;;
  esac
done
for fw in direct buffered queue; do
  for wp in direct batched; do
    runs+=("scenarios/faults.toml --seed 7 --set protocol.forwarding=$fw --set protocol.write_path=$wp")
  done
done
runs+=("scenarios/service-crashes.toml --seed 3 --set protocol.group_delivery=hybrid")
runs+=("scenarios/faults.toml --seed 9 --set protocol.id_scheme=timestamp --set protocol.presence_fanout=all")

normalize() {  # results.json -> sorted JSON without the fields that may differ between builds
  python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
for k in ("chatlab_version", "repro", "wall_time_s", "wall_time_load_s", "peak_rss_bytes"): d.pop(k, None)
print(json.dumps(d, sort_keys=True, indent=1))' "$1"
}

differ=0
i=0
for r in "${runs[@]}"; do
  i=$((i + 1))
  for side in old new; do
    bin=$old; [[ $side == new ]] && bin=$new
    # A run may end with violations (timestamp ids are broken on purpose): compare it anyway.
    # shellcheck disable=SC2086
    "$bin" run $r ${SAME_BEHAVIOUR_ARGS:-} --quiet --out "$work/$side-$i" >"$work/$side-$i.log" 2>&1 || true
    if [[ -f $work/$side-$i/results.json ]]; then
      normalize "$work/$side-$i/results.json" >"$work/$side-$i.json"
    else
      echo "no results: $(tail -1 "$work/$side-$i.log")" >"$work/$side-$i.json"
    fi
  done
  if ! cmp -s "$work/old-$i.json" "$work/new-$i.json"; then
    differ=1
    echo "DIFFERENT: chatlab run $r"
    diff "$work/old-$i.json" "$work/new-$i.json" | head -8 | sed 's/^/    /'
  fi
done
if [[ $differ -eq 0 ]]; then
  echo "same behaviour: ${#runs[@]} runs give identical results.json"
fi
exit $differ
