#!/usr/bin/env bash
# Starts chatd on this machine, with one command (the README's "Deploy chatd").
#
#   scripts/chatd-up.sh              one chatd on 127.0.0.1:7000 (data in chatd-data/)
#   scripts/chatd-up.sh --cluster 3  three chatd processes on 127.0.0.1:7001..7003; process 1
#                                    hosts the services (data in chatd-cluster/)
#   ... --store postgres             the store's tables on a PostgreSQL server of its own, created
#                                    in <data>/postgres (initdb) and started on 127.0.0.1 at
#                                    BASE+100 (pg_ctl), stopped again on Ctrl-C; needs the
#                                    postgresql package (scripts/install-deps.sh)
#   ... --shards S                   the messages in S store shards by conversation (S <= the
#                                    cluster's processes; process k hosts shard k-1); with
#                                    --store postgres, S PostgreSQL servers, shard k's at
#                                    BASE+100+k in <data>/postgres (shard 0) or postgres-k
#   ... --standby                    with --store postgres: a standby chatd for each process that
#                                    hosts a shard, at BASE+50+i; it takes the shard (and the
#                                    process's place) over when the owner stops renewing its lease
#   ... --redis                      the mapping, presence and notification on a Redis of its own
#                                    (redis-server, no persistence) on 127.0.0.1 at BASE+200, data
#                                    in <data>/redis, stopped on Ctrl-C; every process uses it, so
#                                    process 1 is no longer their single point of failure
#                                    (docs/engines.md)
#   ... --rabbitmq                   forwarding=queue with the queue broker on a RabbitMQ of its
#                                    own (rabbitmq-server, no plugins) on 127.0.0.1 at BASE+300
#                                    (Erlang distribution at BASE+301), data and logs in
#                                    <data>/rabbitmq, stopped on Ctrl-C (docs/engines.md)
#   ... --engines                    the three engines at once: --redis --rabbitmq --store postgres
#                                    (no chatd process hosts a service; add --standby so that
#                                    a shard's owner is not its single point of failure either)
#   ... --data DIR                   the data directory (default chatd-data/, or chatd-cluster/
#                                    with --cluster; a relative DIR is from the checkout's root)
#   ... -- FLAG...                   more flags for every chatd (chatd --help lists them), e.g.
#                                    -- --store_lease_ms 3000
#
# It builds chatd, chatcli and chatload if needed (BUILD_DIR, default build/release), creates
# the demo users alice, bob and carol (password: $CHATLAB_PASSWORD, default "secret") unless they
# exist, and runs until Ctrl-C, which shuts every process down gracefully (SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."

processes=1
base_port=7000
store=sqlite
shards=1
standby=0
redis=0
rabbitmq=0
usage="usage: $0 [--cluster N] [--port BASE] [--store sqlite|postgres] [--shards S] [--standby]"
usage+=" [--redis] [--rabbitmq] [--engines] [--data DIR] [-- CHATD_FLAG...]"
root=""
more=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) processes="$2"; shift 2 ;;
    --port) base_port="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --standby) standby=1; shift ;;
    --redis) redis=1; shift ;;
    --rabbitmq) rabbitmq=1; shift ;;
    --engines) redis=1; rabbitmq=1; store=postgres; shift ;;
    --data) root="$2"; shift 2 ;;
    --) shift; more=("$@"); break ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case "$store" in
  sqlite|postgres) ;;
  *) echo "$0: --store is sqlite or postgres, not '$store'" >&2; exit 2 ;;
esac
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]] || [ "$shards" -gt "$processes" ]; then
  echo "$0: --shards $shards: expected 1 to the cluster's $processes processes" >&2; exit 2
fi
if [ "$standby" = 1 ] && { [ "$store" != postgres ] || [ "$processes" -eq 1 ]; }; then
  echo "$0: --standby needs --store postgres and --cluster N (a standby takes a shard's lease)" >&2
  exit 2
fi
build_dir="${BUILD_DIR:-build/release}"
password="${CHATLAB_PASSWORD:-secret}"

if [ ! -x "$build_dir/real-transport/chatd" ] || [ ! -x "$build_dir/real-transport/chatcli" ]; then
  if [ "$build_dir" = build/release ]; then cmake --preset release >/dev/null; else
    cmake -S . -B "$build_dir" >/dev/null; fi
  cmake --build "$build_dir" --target chatd chatcli chatload -j "$(nproc)"
fi
chatd="$build_dir/real-transport/chatd"

if [ "$processes" -eq 1 ]; then
  root="${root:-chatd-data}"
  mkdir -p "$root"
  users=(--data_dir "$root")
else
  root="${root:-chatd-cluster}"
  mkdir -p "$root/shared"
  users=(--users_db "$root/shared/users.db")
fi
for u in alice bob carol; do
  "$chatd" adduser "${users[@]}" --password "$password" "$u" >/dev/null 2>&1 || true
done
root_abs="$(cd "$root" && pwd)"

# Whatever this script started stops when it exits, however it exits: Ctrl-C (SIGINT) or SIGTERM
# shut every chatd down gracefully (SIGTERM, then SIGKILL after 30 s), then the engines; so does
# an engine that fails to start, after saying which. The engines run in sessions of their own
# (setsid), so that a terminal's Ctrl-C reaches only this script, which stops them last.
pids=()
standby_pids=()
standby_logs=()
pg_dirs=()
redis_pid=""
rabbit_pid=""
cleanup() {
  trap - INT TERM EXIT
  set +e
  # A standby still waiting for its lease holds nothing (and answers signals only once it
  # serves): it goes first, with SIGKILL.
  for k in "${!standby_pids[@]}"; do
    grep -q '"event":"listening"' "${standby_logs[$k]}" 2>/dev/null \
      || kill -KILL "${standby_pids[$k]}" 2>/dev/null
  done
  for pid in "${pids[@]}" "${standby_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 1 300); do
    alive=0
    for pid in "${pids[@]}" "${standby_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}" "${standby_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  if [ -n "$redis_pid" ]; then kill -TERM "$redis_pid" 2>/dev/null; fi
  if [ -n "$rabbit_pid" ]; then kill -TERM "$rabbit_pid" 2>/dev/null; fi
  for d in "${pg_dirs[@]}"; do scripts/pg-local.sh stop "$d" 2>/dev/null; done
  wait 2>/dev/null
}
fail() {
  echo "$0: $*" >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --store postgres: a PostgreSQL server per store shard, of this deployment's own, in
# $root/postgres (shard 0) and $root/postgres-K (scripts/pg-local.sh).
conninfos=()
if [ "$store" = postgres ]; then
  for k in $(seq 0 $((shards - 1))); do
    pg_dir="$root/postgres"; [ "$k" -gt 0 ] && pg_dir="$root/postgres-$k"
    pg_port=$((base_port + 100 + k))
    pg_dirs+=("$pg_dir")
    conninfo=$(scripts/pg-local.sh start "$pg_dir" "$pg_port") \
      || fail "PostgreSQL for store shard $k did not start (see $pg_dir)"
    conninfos+=("$conninfo")
    echo "PostgreSQL on 127.0.0.1:$pg_port (data in $pg_dir/data) holds store shard $k"
  done
fi
# --redis: a redis-server of this deployment's own (no RDB, no AOF: the mapping is soft state
# that the chat servers refresh).
if [ "$redis" = 1 ]; then
  command -v redis-server >/dev/null || fail "--redis needs redis-server (scripts/install-deps.sh)"
  redis_port=$((base_port + 200))
  mkdir -p "$root/redis"
  setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$root/redis" --logfile "$root_abs/redis/redis.log" &
  redis_pid=$!
  echo "Redis on 127.0.0.1:$redis_port (log in $root/redis/redis.log) holds the user mapping"
fi
# --rabbitmq: a rabbitmq-server of this deployment's own. Its queues are soft state (chatd
# declares them non-durable): a restart loses them and clients catch up from the store.
if [ "$rabbitmq" = 1 ]; then
  rabbit_server=/usr/lib/rabbitmq/bin/rabbitmq-server
  [ -x "$rabbit_server" ] || fail "--rabbitmq needs rabbitmq-server (scripts/install-deps.sh)"
  rabbit_port=$((base_port + 300))
  rabbit_dir="$root_abs/rabbitmq"
  mkdir -p "$rabbit_dir"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$rabbit_port" \
    > "$rabbit_dir/rabbitmq.conf"
  echo '[].' > "$rabbit_dir/enabled_plugins"
  # RUNNING_UNDER_SYSTEMD: the script execs the Erlang VM instead of wrapping it in a shell.
  RABBITMQ_NODENAME="chatlab-$rabbit_port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$rabbit_port" RABBITMQ_DIST_PORT=$((base_port + 301)) \
    RABBITMQ_MNESIA_BASE="$rabbit_dir/mnesia" RABBITMQ_LOG_BASE="$rabbit_dir/log" \
    RABBITMQ_CONFIG_FILE="$rabbit_dir/rabbitmq" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$rabbit_dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$rabbit_dir/pid" HOME="$rabbit_dir" ERL_EPMD_ADDRESS=127.0.0.1 \
    RUNNING_UNDER_SYSTEMD=true setsid "$rabbit_server" > "$rabbit_dir/rabbitmq.out" 2>&1 &
  rabbit_pid=$!
  for _ in $(seq 1 600); do  # the Erlang VM boots in a few seconds
    (exec 3<>"/dev/tcp/127.0.0.1/$rabbit_port") 2>/dev/null && break
    kill -0 "$rabbit_pid" 2>/dev/null || { rabbit_pid=""; fail "rabbitmq-server exited; see" \
      "$rabbit_dir/rabbitmq.out"; }
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$rabbit_port") 2>/dev/null || echo "$0: RabbitMQ not answering" \
    "on $rabbit_port after 60 s; chatd will keep retrying (see $rabbit_dir/rabbitmq.out)" >&2
  echo "RabbitMQ on 127.0.0.1:$rabbit_port (logs in $root/rabbitmq/log) holds a queue per chat server"
fi
# The store (and engine) flags of process $1 (1-based), one per line: shard $1-1's disk, if it
# hosts one.
store_flags() {
  local i=$1
  printf '%s\n' --store_shards "$shards"
  if [ "$redis" = 1 ]; then printf '%s\n' --redis "127.0.0.1:$redis_port"; fi
  if [ "$rabbitmq" = 1 ]; then
    printf '%s\n' --forwarding queue --rabbitmq "amqp://guest:guest@127.0.0.1:$rabbit_port/"
  fi
  if [ "$store" = postgres ] && [ "$i" -le "$shards" ]; then
    printf '%s\n' --store postgres --store_postgres "${conninfos[$((i - 1))]}"
  fi
  if [ "${#more[@]}" -gt 0 ]; then printf '%s\n' "${more[@]}"; fi
}

set +e  # from here on, a child's exit status must not skip the shutdown

if [ "$processes" -eq 1 ]; then
  echo "chatd on 127.0.0.1:$base_port (users alice, bob, carol; password \"$password\"); Ctrl-C stops"
  mapfile -t flags < <(store_flags 1)
  "$chatd" --data_dir "$root" --listen "127.0.0.1:$base_port" "${flags[@]}" &
  pids+=($!)
else
  cluster=""
  for i in $(seq 1 "$processes"); do
    place="127.0.0.1:$((base_port + i))"
    if [ "$standby" = 1 ] && [ "$i" -le "$shards" ]; then place+="|127.0.0.1:$((base_port + 50 + i))"; fi
    cluster+="${cluster:+,}$place"
  done
  for i in $(seq 1 "$processes"); do
    mkdir -p "$root/$i"
    mapfile -t flags < <(store_flags "$i")
    "$chatd" --data_dir "$root/$i" --listen "127.0.0.1:$((base_port + i))" --cluster "$cluster" \
      --index "$i" --users_db "$root/shared/users.db" --key_file "$root/shared/token.key" \
      "${flags[@]}" 2>"$root/$i/chatd.log" &
    pids+=($!)
  done
  # The standbys start once every process serves: started together, a standby could take the
  # lease first and serve its process's place from the standby's address instead.
  if [ "$standby" = 1 ]; then
    for i in $(seq 1 "$shards"); do
      for _ in $(seq 1 600); do
        grep -q '"event":"listening"' "$root/$i/chatd.log" 2>/dev/null && break
        kill -0 "${pids[$((i - 1))]}" 2>/dev/null || fail "chatd $i exited; see $root/$i/chatd.log"
        sleep 0.1
      done
      grep -q '"event":"listening"' "$root/$i/chatd.log" \
        || fail "chatd $i not serving after 60 s; see $root/$i/chatd.log"
    done
    for i in $(seq 1 "$shards"); do
      mkdir -p "$root/$i-standby"
      mapfile -t flags < <(store_flags "$i")
      "$chatd" --data_dir "$root/$i-standby" --listen "127.0.0.1:$((base_port + 50 + i))" \
        --cluster "$cluster" --index "$i" --users_db "$root/shared/users.db" \
        --key_file "$root/shared/token.key" "${flags[@]}" 2>"$root/$i-standby/chatd.log" &
      standby_pids+=($!)
      standby_logs+=("$root/$i-standby/chatd.log")
    done
  fi
  services="process 1 hosts the services"
  [ "$redis" = 1 ] && services="mapping, presence, notification on Redis"
  [ "$rabbitmq" = 1 ] && services+=", queues on RabbitMQ"
  echo "chatd cluster: $cluster ($services; process k hosts store shard k-1;" \
       "logs in $root/N/chatd.log); users alice, bob, carol; password \"$password\"; Ctrl-C stops"
fi
# Until Ctrl-C, or until every chatd has exited on its own (then with status 1).
wait "${pids[@]}" "${standby_pids[@]}"
echo "$0: every chatd process exited; see $root/*/chatd.log" >&2
exit 1
