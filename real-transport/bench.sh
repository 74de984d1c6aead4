#!/usr/bin/env bash
# Prints chatd's benchmark figures beside its peers, all in one run on this machine (the load
# generators on the same cores). Figures, never assertions.
#
#   real-transport/bench.sh [BUILD_DIR]     (default build/release)
#
# Three servers, started here and kept up for the whole run, each on 127.0.0.1:
# - echo: `chatload echo-server`, a bare Beast WebSocket echo server (the transport's ceiling);
# - mosquitto: Debian's MQTT broker (QoS 1, Nagle off, no persistence: it never writes a message
#   to disk before its PUBACK, whatever its configuration), loaded by benchmarks/peers/mqttload,
#   which mirrors chatload's pairs, window, body and latency definition;
# - chatd: durable 1:1 (SQLite, synchronous = FULL, group commit: an ack means on disk).
# ROUNDS rounds (3), interleaved so that the machine's drift falls on every server alike; in each:
# 1. saturation, closed loop: CONNECTIONS (100) connections in pairs, WINDOW (16) unacknowledged
#    messages per connection, 64-byte bodies, DURATION (8 s) measured after 1 s of warm-up; the
#    servers' order rotates from round to round;
# 2. an equal offered rate, open loop: RATE (5000) messages/s to mosquitto and to chatd, for the
#    latency (send to receipt at the peer) at the same load.
# Each server's CPU (user + system, from /proc) over each load, divided by the messages it
# acknowledged in it (the echo server's round trips are estimated from its measured rate), is its
# CPU per message. Then, once: chatd's RSS per idle WebSocket at IDLE (10000) connections.
# Without mosquitto or mqttload (scripts/install-deps.sh installs both) its columns say n/a.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
bin="$build/real-transport"
mqttload="$build/benchmarks/mqttload"
connections="${CONNECTIONS:-100}"
window="${WINDOW:-16}"
duration="${DURATION:-8}"
rounds="${ROUNDS:-3}"
rate="${RATE:-5000}"
idle="${IDLE:-10000}"
mosquitto_bin="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((idle + 1000)) ]; then
  echo "bench: ulimit -n is $(ulimit -n); the idle test needs $((idle + 1000))" >&2
  idle=$(( $(ulimit -n) - 1000 ))
fi
work="$(mktemp -d "$build/bench-XXXXXX")"  # on the build disk: fsync must be real
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port="${BENCH_PORT:-7600}"  # echo, chatd, mosquitto and the idle chatd use port .. port+3
echo_port=$port chatd_port=$((port + 1)) mqtt_port=$((port + 2)) idle_port=$((port + 3))
# GET over bash's /dev/tcp (no curl needed); prints the body.
http_get() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  tr -d '\r' <&3 | sed '1,/^$/d'
)
# A metric's value as an integer (the exposition prints large counters as 1.2e+06).
metric() { http_get "$1" /metrics | awk -v m="$2" '$1 == m {printf "%.0f\n", $2}'; }
wait_healthy() { for _ in $(seq 1 200); do http_get "$1" /healthz 2>/dev/null | grep -q ok && return 0; sleep 0.05; done; return 1; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# Bytes a process has caused to be written to storage so far.
disk_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
field() { sed -nE "s|.* $2=([0-9.]+).*|\1|p" <<<"$1"; }
# us of CPU per message: cpu_us_per CPU_BEFORE CPU_AFTER MESSAGES
cpu_us_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * (b - a) / n; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { tr ' ' '\n' | grep -v '^$' | grep -v n/a | sort -g | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep -v '^$' | grep -v n/a | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END { if (NR) print lo "-" hi; else print "n/a" }'; }

echo "# chatd beside its peers, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); $rounds rounds;" \
  "$connections connections in pairs, window $window, 64-byte bodies, ${duration} s each after 1 s warm-up"

# The servers.
"$bin/chatload" echo-server --listen "127.0.0.1:$echo_port" 2>/dev/null & echo_pid=$!; pids+=($echo_pid)
"$bin/chatd" adduser --data_dir "$work/d" --password load --pbkdf2_iterations 1000 \
  --count "$connections" load >/dev/null
"$bin/chatd" --data_dir "$work/d" --listen "127.0.0.1:$chatd_port" --log_level warn \
  --user_rate_per_s 1e9 --user_burst 1e9 2>"$work/chatd.log" & chatd_pid=$!; pids+=($chatd_pid)
wait_healthy "$chatd_port"
allocator=$(grep -qE 'lib(jemalloc|tcmalloc)' "/proc/$chatd_pid/maps" && \
  grep -oE 'lib(jemalloc|tcmalloc)[a-z_]*' "/proc/$chatd_pid/maps" | head -1 || echo "glibc malloc")
echo "# chatd's allocator: $allocator"
mqtt_pid=""
if [ -x "$mosquitto_bin" ] && [ -x "$mqttload" ]; then
  cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_inflight_messages 100
max_queued_messages 1000000
log_dest stderr
log_type error
log_type warning
EOF
  "$mosquitto_bin" -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" & mqtt_pid=$!; pids+=($mqtt_pid)
  wait_port "$mqtt_port"
else
  echo "bench: no mosquitto ($mosquitto_bin) or no $mqttload: the mosquitto columns are n/a" >&2
fi
wait_port "$echo_port"

# One load against one server; sets line, rate (acked/s; round trips/s for echo), cpu_us.
run_echo() {
  local c0; c0=$(cpu_s "$echo_pid")
  line=$("$bin/chatload" --echo --server "127.0.0.1:$echo_port" --connections "$connections" \
    --window "$window" --duration "$duration" --warmup 1 --body_bytes 64 2>/dev/null)
  rate_=$(field "$line" 'delivered/s')
  # Round trips over warm-up and measurement, at the measured rate (the echo server counts none).
  cpu_us=$(cpu_us_per "$c0" "$(cpu_s "$echo_pid")" "$(awk -v r="$rate_" -v d="$duration" 'BEGIN {print r * (d + 1)}')")
}
run_mqtt() {  # $1: --window W or --rate R
  if [ -z "$mqtt_pid" ]; then line="mosquitto n/a"; rate_=n/a; cpu_us=n/a; return; fi
  local c0; c0=$(cpu_s "$mqtt_pid")
  line=$("$mqttload" --server "127.0.0.1:$mqtt_port" --connections "$connections" "$1" "$2" \
    --duration "$duration" --warmup 1 --body_bytes 64 2>/dev/null) || true
  rate_=$(field "$line" 'acked/s')
  cpu_us=$(cpu_us_per "$c0" "$(cpu_s "$mqtt_pid")" "$(field "$line" total_acked)")
}
run_chatd() {  # $1: --window W or --rate R
  local c0 r0; c0=$(cpu_s "$chatd_pid"); r0=$(metric "$chatd_port" chatd_storage_records_total)
  local f0; f0=$(metric "$chatd_port" chatd_storage_commits_total)
  local w0; w0=$(disk_bytes "$chatd_pid")
  line=$("$bin/chatload" --server "127.0.0.1:$chatd_port" --users load --password load \
    --connections "$connections" --mode pairs "$1" "$2" --duration "$duration" --warmup 1 \
    --body_bytes 64 2>/dev/null)
  rate_=$(field "$line" 'acked/s')
  local r1; r1=$(metric "$chatd_port" chatd_storage_records_total)
  cpu_us=$(cpu_us_per "$c0" "$(cpu_s "$chatd_pid")" $((r1 - r0)))
  disk_per=$(awk -v w=$(( $(disk_bytes "$chatd_pid") - w0 )) -v r=$((r1 - r0)) \
    'BEGIN { if (r > 0) printf "%.0f", w / r; else print "n/a" }')
  per_commit=$(awk -v r=$((r1 - r0)) -v f=$(( $(metric "$chatd_port" chatd_storage_commits_total) - f0 )) \
    'BEGIN { if (f > 0) printf "%.0f", r / f; else print "n/a" }')
}
latency() { grep -oE 'e2e_ms p50=[0-9.]+ p99=[0-9.]+' <<<"$1" | sed 's/e2e_ms //' || echo n/a; }

declare -a E_RATE E_CPU M_RATE M_CPU C_RATE C_CPU C_BATCH C_DISK RATIO CPU_RATIO M_LAT C_LAT
printf '\n%-5s | %-9s %-7s | %-9s %-7s | %-9s %-7s %-6s %-6s | %-11s %-11s | at %s msgs/s: mosquitto / chatd e2e ms\n' \
  round 'echo rt/s' 'us/rt' 'mosq /s' 'us/msg' 'chatd /s' 'us/msg' rec/fs 'B/msg' 'chatd/mosq' 'cpu c/m' "$rate"
for r in $(seq 1 "$rounds"); do
  # Saturation, the servers' order rotated by the round.
  order=(echo mqtt chatd)
  for k in $(seq 1 $(( (r - 1) % 3 ))); do order=("${order[@]:1}" "${order[0]}"); done
  for s in "${order[@]}"; do
    case $s in
      echo) run_echo; E_RATE[r]=$rate_; E_CPU[r]=$cpu_us ;;
      mqtt) run_mqtt --window "$window"; M_RATE[r]=$rate_; M_CPU[r]=$cpu_us ;;
      chatd) run_chatd --window "$window"; C_RATE[r]=$rate_; C_CPU[r]=$cpu_us; C_BATCH[r]=$per_commit; C_DISK[r]=$disk_per ;;
    esac
    echo "$line" >>"$work/lines"
  done
  # The equal offered rate.
  run_mqtt --rate "$rate"; M_LAT[r]=$(latency "$line"); echo "$line" >>"$work/lines"
  run_chatd --rate "$rate"; C_LAT[r]=$(latency "$line"); echo "$line" >>"$work/lines"
  RATIO[r]=$(ratio "${C_RATE[r]}" "${M_RATE[r]}")
  CPU_RATIO[r]=$(ratio "${C_CPU[r]}" "${M_CPU[r]}")
  printf '%-5s | %-9s %-7s | %-9s %-7s | %-9s %-7s %-6s %-6s | %-11s %-11s | %s / %s\n' "$r" \
    "${E_RATE[r]}" "${E_CPU[r]}" "${M_RATE[r]}" "${M_CPU[r]}" "${C_RATE[r]}" "${C_CPU[r]}" \
    "${C_BATCH[r]}" "${C_DISK[r]}" "${RATIO[r]}x" "${CPU_RATIO[r]}x" "${M_LAT[r]}" "${C_LAT[r]}"
done

# RSS per idle connection.
"$bin/chatd" adduser --data_dir "$work/i" --password load --pbkdf2_iterations 1000 \
  --count 1000 idle >/dev/null
"$bin/chatd" --data_dir "$work/i" --listen "127.0.0.1:$idle_port" --log_level warn \
  --connections_max $((idle + 100)) --user_rate_per_s 1e9 --user_burst 1e9 \
  2>"$work/idle.log" & idle_pid=$!; pids+=($idle_pid)
wait_healthy "$idle_port"
before=$(rss_kb "$idle_pid")
"$bin/chatload" --idle --server "127.0.0.1:$idle_port" --users idle --password load \
  --users_count 1000 --connections "$idle" --duration 600 >/dev/null 2>&1 & load_pid=$!; pids+=($load_pid)
for _ in $(seq 1 1200); do
  n=$(metric "$idle_port" chatd_connections)
  [ "${n:-0}" -ge "$idle" ] && break
  sleep 0.1
done
sleep 1
after=$(rss_kb "$idle_pid")
kill -TERM "$load_pid" 2>/dev/null || true

echo
echo "# every load's line:"
cat "$work/lines"
echo
med() { echo "$(echo "$@" | median) ($(echo "$@" | range))"; }
echo "# medians (range) over $rounds rounds"
printf 'echo ceiling (round trips/s):                    %s\n' "$(med "${E_RATE[*]}")"
printf 'mosquitto QoS 1 (acked msgs/s):                  %s\n' "$(med "${M_RATE[*]}")"
printf 'chatd sustained 1:1 durable (acked msgs/s):      %s\n' "$(med "${C_RATE[*]}")"
printf 'chatd / mosquitto rate:                          %s\n' "$(med "${RATIO[*]}")"
printf 'echo server CPU per round trip:                  %s us\n' "$(med "${E_CPU[*]}")"
printf 'mosquitto CPU per message:                       %s us\n' "$(med "${M_CPU[*]}")"
printf 'chatd CPU per stored message (both threads):     %s us  (%s records per fsync commit)\n' \
  "$(med "${C_CPU[*]}")" "$(med "${C_BATCH[*]}")"
printf 'chatd / mosquitto CPU per message:               %s\n' "$(med "${CPU_RATIO[*]}")"
printf 'chatd bytes written to disk per message:         %s  (mosquitto: none, it keeps messages in memory)\n' \
  "$(med "${C_DISK[*]}")"
printf 'chatd RSS: %s kB before, %s kB with %s idle connections: %.1f kB per connection\n' \
  "$before" "$after" "${n:-0}" "$(awk "BEGIN {print ($after - $before) / ${n:-1}}")"
