#!/usr/bin/env bash
# Scale benchmark of the simulator: the seed's load (12,000 messages/s from 1M online users,
# 100 chat servers; every message acked and delivery-receipted) scaled by the number of online
# users, against the raw SimGrid ping-pong rate on the same machine in the same run.
#
# Users connect over a ramp (USERS/20000 s, at least 2 s), then send for 60 simulated seconds
# (the load phase), then 5 quiet seconds. load_wall is the wall time of the load phase;
# other_wall the rest (building the platform and population, the ramp, the quiet seconds, the
# oracle's final check). The message store is sharded as the seed's
# horizontally scalable database would be, one shard per 125,000 users: a single store node is
# 12.6% busy at 100,000 users and past 100% at 1M, where its queue, not the protocol, would set
# every figure (with 8 shards at 1M each is 24% busy; results.json node_load).
#
# The simulator runs with network.model = "uncontended" (docs/simulator.md, Network model):
# every packet takes its route's latencies plus its size over the route's narrowest bandwidth,
# without a SimGrid communication each; up to 100,000 users the same run with SimGrid's
# textbook model is printed beside it, with the latencies of both.
#
# SimGrid baselines come first, measured in the same run: a raw ping-pong (communications per
# second) and simgrid_wakeups twice: SimGrid's own cost per wake-up with one actor (the
# uncontended model's design: one actor runs every endpoint and waits on a semaphore, released
# by one kernel timer, once per distinct instant) and with 1,100 actors (the design before it:
# an actor per endpoint, one context switch per wake-up). The us/event column (wall time per
# event, whole run) reads against the first.
#
# Targets (issue 18): the load phase at 1M users in at most 60 wall seconds on one core, and at
# most 2,000 bytes of peak memory per online user. Each line says whether it meets them; the
# script never fails on them (figures, not assertions).
#
# Usage: benchmarks/sim_scale.sh [USERS ...]      (default: 10000 100000 1000000)
# Needs a release build (make build). The simulator runs pinned to one core (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/scale_scenario.sh
bin=build/release/sim
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000 1000000)
for n in "${sizes[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "sim_scale.sh: USERS must be positive integers, got '$n'" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pin=()
command -v taskset > /dev/null && pin=(taskset -c 0)

"${pin[@]}" "$bin/simgrid_pingpong" 200000 | tee "$tmp/pingpong.txt"
raw=$(sed -E 's/.*= ([0-9]+) communications\/s/\1/' "$tmp/pingpong.txt")
# SimGrid's own cost per wake-up: one actor woken at each distinct instant, as the uncontended
# model's scheduler is (against which the us/event column below reads), and, for the design
# before it, one actor per endpoint (1,100 actors: the endpoints at 1M users).
"${pin[@]}" "$bin/simgrid_wakeups" 1 370000 20 || echo "simgrid_wakeups failed" >&2
"${pin[@]}" "$bin/simgrid_wakeups" 1100 370000 20 || echo "simgrid_wakeups failed" >&2

printf '%-8s %-12s %-6s %-8s %-10s %-9s %-10s %-10s %-10s %-8s %-8s %-7s %-7s %-8s %-8s %s\n' \
  users model shards acked other_wall load_wall total_wall sim_s/wall events/wall of_raw \
  us/event rss_MB B/user ack_p50 ack_p99 e2e_p99
for n in "${sizes[@]}"; do
  # The uncontended model at every size; SimGrid's textbook model beside it up to 100k users
  # (same seed), to show what the fast model changes in the results.
  models=(uncontended)
  [ "$n" -le 100000 ] && models+=(textbook)
  for model in "${models[@]}"; do
  write_scale_scenario "$n" "$model" "$tmp/scale.toml"
  shards=$scale_shards
  "${pin[@]}" "$bin/chatlab" run "$tmp/scale.toml" --out "$tmp/out-$n-$model" --quiet \
    --no-progress || true
  if [ ! -f "$tmp/out-$n-$model/results.json" ]; then
    echo "$n users, $model: the run wrote no results.json" >&2
    continue
  fi
  python3 - "$tmp/out-$n-$model/results.json" "$n" "$raw" "$shards" "$model" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); raw = float(sys.argv[3])
m = r["metrics"]; wall = r["wall_time_s"]; load = r["wall_time_load_s"]
# Events: packets handled at nodes and hubs plus hub timers (results.json "events"), beside the
# raw ping-pong's communications per second (a bundle carries several packets in one).
events = max(r["events"], 1)
per_user = r["peak_rss_bytes"] / n
ack = m["ack_latency"]; e2e = m["end_to_end_latency"]
print(f'{n:<8} {sys.argv[5]:<12} {sys.argv[4]:<6} {m["messages_acked"]:<8} {wall - load:<10.1f} '
      f'{load:<9.1f} {wall:<10.1f} {60 / load:<10.2f} {events / wall:<10.0f} '
      f'{events / wall / raw:<8.2f} {wall / events * 1e6:<8.2f} '
      f'{r["peak_rss_bytes"] / 1e6:<7.0f} {per_user:<7.0f} '
      f'{ack["p50_ms"]:<8.3f} {ack["p99_ms"]:<8.3f} {e2e["p99_ms"]:.3f}')
if n >= 1000000:
    ok = lambda b: "meets" if b else "MISSES"
    print(f'  targets at {n} users: load phase {load:.1f} s wall for 60 simulated s (<= 60: '
          f'{ok(load <= 60)}); {per_user:.0f} B per user (<= 2000: {ok(per_user <= 2000)})')
PY
  done
done
