#!/usr/bin/env bash
# Scale benchmark of the simulator: the seed's load (12,000 messages/s from 1M online users,
# 100 chat servers; every message acked and delivery-receipted) scaled by the number of online
# users, against the raw SimGrid ping-pong rate on the same machine in the same run.
#
# Users connect over a ramp (USERS/20000 s, at least 2 s), then send for 60 simulated seconds;
# the wall time covers both.
#
# Usage: benchmarks/sim_scale.sh [USERS ...]      (default: 10000 100000 1000000)
# Needs a release build (make build). Prints one line per size; figures, never assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/sim
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000 1000000)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin/simgrid_pingpong" 200000 | tee "$tmp/pingpong.txt"
raw=$(sed -E 's/.*= ([0-9]+) communications\/s/\1/' "$tmp/pingpong.txt")

printf '%-9s %-9s %-10s %-10s %-12s %-12s %-11s %-10s %-9s\n' users msgs sim_s wall_s \
  msgs/wall_s comms/wall_s of_raw/hop rss_MB B/user
for n in "${sizes[@]}"; do
  ramp=$(( n / 20000 )); [ "$ramp" -lt 2 ] && ramp=2
  hubs=$(( n / 1000 )); [ "$hubs" -lt 4 ] && hubs=4
  cat > "$tmp/scale.toml" <<TOML
[scenario]
name = "scale-$n"
duration_s = $(( ramp + 60 ))
quiet_s = 5
[topology]
servers_per_region = 100
client_hosts_per_region = $hubs
[workload]
users = $n
online_fraction = 1.0
connect_ramp_s = $ramp
send_start_s = $ramp
session_mean_s = 0
send_rate_hz = 0.012
inter_send = "exponential"
group_share = 0.0
groups = 0
group_size_min = 1
group_size_max = 1
typing_probability = 0
read_delay_mean_s = 0
[protocol]
client_sync_interval_us = 0
presence_poll_interval_us = 0
TOML
  "$bin/chatlab" run "$tmp/scale.toml" --out "$tmp/out-$n" --quiet --no-progress || true
  python3 - "$tmp/out-$n/results.json" "$n" "$raw" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); raw = float(sys.argv[3])
m = r["metrics"]; wall = r["wall_time_s"]
# Every SimGrid communication the run made: node-to-node plus client<->server (events).
comms = r["events"]
print(f'{n:<9} {m["messages_acked"]:<9} {r["sim_time_s"]:<10.0f} {wall:<10.1f} '
      f'{m["messages_acked"]/wall:<12.0f} {comms/wall:<12.0f} {comms/wall/raw:<11.2f} '
      f'{r["peak_rss_bytes"]/1e6:<10.0f} {r["peak_rss_bytes"]/n:<9.0f}')
PY
done
