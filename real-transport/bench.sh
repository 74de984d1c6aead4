#!/usr/bin/env bash
# Prints chatd's benchmark figures, side by side with a bare Beast WebSocket echo server (the
# ceiling), all in one run on this machine (load generator on the same cores). Never asserted.
#
#   real-transport/bench.sh [BUILD_DIR]     (default build/release)
#
# 1. echo ceiling: round trips/s of `chatload echo-server` with the same connections and window;
# 2. sustained 1:1 messages/s with durable storage (SQLite, synchronous=FULL, group commit),
#    closed loop;
# 3. end-to-end latency (send -> Deliver at the peer) at half that rate, open loop;
# 4. RSS per idle WebSocket connection at 10,000 connections;
# and the CPU (user + system, from /proc) each server process spent per round trip (1) and per
# acked message (2): sources of the simulator's per-request costs (docs/cost-model.md).
# Tunables: CONNECTIONS (100), WINDOW (16), DURATION (8 s), IDLE (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
bin="$build/real-transport"
connections="${CONNECTIONS:-100}"
window="${WINDOW:-16}"
duration="${DURATION:-8}"
idle="${IDLE:-10000}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((idle + 1000)) ]; then
  echo "bench: ulimit -n is $(ulimit -n); the idle test needs $((idle + 1000))" >&2
  idle=$(( $(ulimit -n) - 1000 ))
fi
work="$(mktemp -d "$build/bench-XXXXXX")"  # on the build disk: fsync must be real
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port="${BENCH_PORT:-7600}"  # the processes below use port, port+1, port+2
# GET over bash's /dev/tcp (no curl needed); prints the body.
http_get() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  tr -d '\r' <&3 | sed '1,/^$/d'
)
metric() { http_get "$1" /metrics | awk -v m="$2" '$1 == m {print $2}'; }
wait_healthy() { for _ in $(seq 1 200); do http_get "$1" /healthz 2>/dev/null | grep -q ok && return 0; sleep 0.05; done; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

echo "# chatd benchmarks, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

# 1. The ceiling.
"$bin/chatload" echo-server --listen "127.0.0.1:$port" 2>/dev/null & echo_pid=$!; pids+=($echo_pid)
sleep 0.2
echo_cpu0=$(cpu_s "$echo_pid")
echo_line=$("$bin/chatload" --echo --server "127.0.0.1:$port" --connections "$connections" \
  --window "$window" --duration "$duration" --warmup 1 --body_bytes 64 2>/dev/null)
echo "$echo_line"
echo_rate=$(sed -E 's/.*delivered\/s=([0-9]+).*/\1/' <<<"$echo_line")
# Round trips over warm-up and measurement, at the measured rate (the echo server counts none).
echo_cpu_us=$(awk "BEGIN {print 1e6 * ($(cpu_s "$echo_pid") - $echo_cpu0) / ($echo_rate * ($duration + 1))}")

# 2. Sustained durable 1:1 throughput, closed loop.
"$bin/chatd" adduser --data_dir "$work/d" --password load --pbkdf2_iterations 1000 \
  --count "$connections" load >/dev/null
port=$((port + 1))
"$bin/chatd" --data_dir "$work/d" --listen "127.0.0.1:$port" --log_level warn \
  --user_rate_per_s 1e9 --user_burst 1e9 2>"$work/chatd.log" & chatd_pid=$!; pids+=($chatd_pid)
wait_healthy "$port"
chatd_cpu0=$(cpu_s "$chatd_pid")
records0=$(metric "$port" chatd_storage_records_total)
max_line=$("$bin/chatload" --server "127.0.0.1:$port" --users load --password load \
  --connections "$connections" --mode pairs --window "$window" --duration "$duration" \
  --warmup 1 --body_bytes 64 2>/dev/null)
echo "$max_line"
max_rate=$(sed -E 's/.*acked\/s=([0-9]+).*/\1/' <<<"$max_line")
commits=$(metric "$port" chatd_storage_commits_total)
records=$(metric "$port" chatd_storage_records_total)
chatd_cpu_us=$(awk "BEGIN {print 1e6 * ($(cpu_s "$chatd_pid") - $chatd_cpu0) / ($records - ${records0:-0})}")

# 3. Latency at half that rate, open loop.
half=$((max_rate / 2))
half_line=$("$bin/chatload" --server "127.0.0.1:$port" --users load --password load \
  --connections "$connections" --mode pairs --rate "$half" --duration "$duration" --warmup 1 \
  --body_bytes 64 2>/dev/null)
echo "$half_line"

# 4. RSS per idle connection.
"$bin/chatd" adduser --data_dir "$work/i" --password load --pbkdf2_iterations 1000 \
  --count 1000 idle >/dev/null
port=$((port + 1))
"$bin/chatd" --data_dir "$work/i" --listen "127.0.0.1:$port" --log_level warn \
  --connections_max $((idle + 100)) --user_rate_per_s 1e9 --user_burst 1e9 \
  2>"$work/idle.log" & chatd_pid=$!; pids+=($chatd_pid)
wait_healthy "$port"
before=$(rss_kb "$chatd_pid")
"$bin/chatload" --idle --server "127.0.0.1:$port" --users idle --password load \
  --users_count 1000 --connections "$idle" --duration 600 >/dev/null 2>&1 & load_pid=$!; pids+=($load_pid)
for _ in $(seq 1 1200); do
  n=$(metric "$port" chatd_connections)
  [ "${n:-0}" -ge "$idle" ] && break
  sleep 0.1
done
sleep 1
after=$(rss_kb "$chatd_pid")
kill -TERM "$load_pid" 2>/dev/null || true

echo
printf 'echo ceiling (round trips/s, %s connections, window %s):  %s\n' "$connections" "$window" "$echo_rate"
printf 'chatd sustained 1:1 durable (acked msgs/s):              %s  (%.1f%% of the ceiling; %s records in %s fsync commits)\n' \
  "$max_rate" "$(awk "BEGIN {print 100 * $max_rate / $echo_rate}")" "$records" "$commits"
printf 'chatd latency at %s msgs/s (half):                       %s\n' "$half" \
  "$(grep -oE 'e2e_ms p50=[0-9.]+ p99=[0-9.]+ p99.9=[0-9.]+' <<<"$half_line")"
printf 'echo server CPU per round trip:                          %.1f us\n' "$echo_cpu_us"
printf 'chatd CPU per stored message (every node, SQLite, JSON):  %.1f us  (closed loop; both threads)\n' "$chatd_cpu_us"
printf 'chatd RSS: %s kB before, %s kB with %s idle connections: %.1f kB per connection\n' \
  "$before" "$after" "${n:-0}" "$(awk "BEGIN {print ($after - $before) / ${n:-1}}")"
