#!/usr/bin/env bash
# chatd's services on Redis against the embedded default, side by side in one run on this
# machine (never asserted; docs/engines.md).
#
#   benchmarks/engines.sh [BUILD_DIR]     (default build/release)
#
# Two 3-process clusters on SQLite, three store shards (one per process), started afresh each
# round: "embedded" (the user mapping, presence and notification in process 1's memory, reached
# over the peer links) and "redis" (--redis: every process asks a redis-server of the run's own).
# Each round runs chatload against both, interleaved (embedded first on odd rounds, redis first
# on even ones): CONNECTIONS connections in pairs spread over the three processes, 64-byte bodies,
# DURATION seconds after a 1 s warm-up; first open loop at RATE messages/s in all (below
# saturation: end-to-end latency, send to Deliver at the peer on another process), then closed
# loop with WINDOW unacknowledged messages per connection (saturation: acknowledged and
# delivered per second; past about 3,000/s on 2 cores the peer links between processes, one HTTP
# request per forwarded message, fall behind, forwards time out and become notifications, so
# delivered/s collapses in both modes: docs/engines.md). Printed per round, then the medians.
# Tunables: ROUNDS (3), CONNECTIONS (60), RATE (2000), WINDOW (16), DURATION (6).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
bin="$build/real-transport"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-60}"
window="${WINDOW:-16}"
duration="${DURATION:-6}"
rate="${RATE:-2000}"
port="${BENCH_PORT:-7800}"
command -v redis-server >/dev/null || { echo "$0: needs redis-server" >&2; exit 1; }
work="$(mktemp -d "$build/engines-bench-XXXXXX")"  # on the build disk: fsync must be real
work="$(cd "$work" && pwd)"  # redis-server changes to --dir before it opens its log
pids=()
redis_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then kill -TERM "$redis_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
http_get() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  tr -d '\r' <&3 | sed '1,/^$/d'
)
healthy() { http_get "$1" /healthz 2>/dev/null | grep -q ok; }

redis_port=$((port + 90))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" & redis_pid=$!
for _ in $(seq 1 300); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.01; done
redis-cli -p "$redis_port" ping | grep -q PONG || { echo "$0: redis-server did not start" >&2; exit 1; }
mkdir -p "$work/shared"
"$bin/chatd" adduser --users_db "$work/shared/users.db" --password load --count "$connections" \
  --pbkdf2_iterations 1000 load >/dev/null

# run_mode MODE: a fresh 3-process cluster, the open-loop run then the closed-loop one; prints
# chatload's two lines.
run_mode() {
  local mode="$1" cluster="" servers="" flags=(--store_shards 3)
  if [ "$mode" = redis ]; then
    flags+=(--redis "127.0.0.1:$redis_port" --redis_prefix "r$RANDOM:")
  fi
  for i in 1 2 3; do
    cluster+="${cluster:+,}127.0.0.1:$((port + i))"
  done
  pids=()
  for i in 1 2 3; do
    local data="$work/$mode-$i"
    rm -rf "$data"; mkdir -p "$data"
    "$bin/chatd" --data_dir "$data" --listen "127.0.0.1:$((port + i))" --cluster "$cluster" \
      --index "$i" --users_db "$work/shared/users.db" --key_file "$work/shared/token.key" \
      --log_level warn --user_rate_per_s 1e9 --user_burst 1e9 "${flags[@]}" \
      2>>"$data/chatd.log" & pids+=($!)
  done
  for i in 1 2 3; do
    for _ in $(seq 1 3000); do healthy $((port + i)) && break; sleep 0.01; done
    healthy $((port + i)) || { echo "chatd $i ($mode) did not start" >&2; exit 1; }
  done
  "$bin/chatload" --server "$cluster" --users load --password load \
    --connections "$connections" --mode pairs --rate "$rate" --duration "$duration" \
    --warmup 1 --body_bytes 64 2>/dev/null
  "$bin/chatload" --server "$cluster" --users load --password load \
    --connections "$connections" --mode pairs --window "$window" --duration "$duration" \
    --warmup 1 --body_bytes 64 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  wait "${pids[@]}" || true
  pids=()
}

echo "# chatd services: embedded vs redis, 3 processes, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
declare -A p50 p99 acked delivered
field() { sed -E "s|.*[ ]$1=([0-9.]+).*|\1|" <<<"$2"; }
for r in $(seq 1 "$rounds"); do
  order="embedded redis"; [ $((r % 2)) -eq 0 ] && order="redis embedded"
  for mode in $order; do
    out=$(run_mode "$mode")
    open=$(sed -n 1p <<<"$out"); closed=$(sed -n 2p <<<"$out")
    p50[$mode,$r]=$(field p50 "$open"); p99[$mode,$r]=$(field p99 "$open")
    acked[$mode,$r]=$(field 'acked/s' "$closed"); delivered[$mode,$r]=$(field 'delivered/s' "$closed")
    echo "round $r $mode open:   $open"
    echo "round $r $mode closed: $closed"
  done
done
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '\n%-9s %26s %22s\n' "" "open loop $rate/s: e2e p50/p99 ms" "closed: acked/delivered/s"
for mode in embedded redis; do
  a50=(); a99=(); aa=(); ad=()
  for r in $(seq 1 "$rounds"); do
    a50+=("${p50[$mode,$r]}"); a99+=("${p99[$mode,$r]}")
    aa+=("${acked[$mode,$r]}"); ad+=("${delivered[$mode,$r]}")
  done
  printf 'median %-8s %12s / %-12s %10s / %-10s\n' "$mode" \
    "$(printf '%s\n' "${a50[@]}" | median)" "$(printf '%s\n' "${a99[@]}" | median)" \
    "$(printf '%s\n' "${aa[@]}" | median)" "$(printf '%s\n' "${ad[@]}" | median)"
done
