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
#
# It builds chatd, chatcli and chatload if needed (BUILD_DIR, default build/release), creates
# the demo users alice, bob and carol (password: $CHATLAB_PASSWORD, default "secret") unless they
# exist, and runs until Ctrl-C, which shuts every process down gracefully (SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."

processes=1
base_port=7000
store=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) processes="$2"; shift 2 ;;
    --port) base_port="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    *) echo "usage: $0 [--cluster N] [--port BASE] [--store sqlite|postgres]" >&2; exit 2 ;;
  esac
done
case "$store" in
  sqlite|postgres) ;;
  *) echo "$0: --store is sqlite or postgres, not '$store'" >&2; exit 2 ;;
esac
build_dir="${BUILD_DIR:-build/release}"
password="${CHATLAB_PASSWORD:-secret}"

if [ ! -x "$build_dir/real-transport/chatd" ] || [ ! -x "$build_dir/real-transport/chatcli" ]; then
  if [ "$build_dir" = build/release ]; then cmake --preset release >/dev/null; else
    cmake -S . -B "$build_dir" >/dev/null; fi
  cmake --build "$build_dir" --target chatd chatcli chatload -j "$(nproc)"
fi
chatd="$build_dir/real-transport/chatd"

if [ "$processes" -eq 1 ]; then
  root=chatd-data
  mkdir -p "$root"
  users=(--data_dir "$root")
else
  root=chatd-cluster
  mkdir -p "$root/shared"
  users=(--users_db "$root/shared/users.db")
fi
for u in alice bob carol; do
  "$chatd" adduser "${users[@]}" --password "$password" "$u" >/dev/null 2>&1 || true
done

# --store postgres: a PostgreSQL server of this deployment's own, in $root/postgres
# (scripts/pg-local.sh).
store_flags=()
pg_dir=""
if [ "$store" = postgres ]; then
  pg_dir="$root/postgres"
  pg_port=$((base_port + 100))
  conninfo=$(scripts/pg-local.sh start "$pg_dir" "$pg_port") || exit 1
  store_flags=(--store postgres --store_postgres "$conninfo")
  echo "PostgreSQL on 127.0.0.1:$pg_port (data in $pg_dir/data) holds the store's tables"
fi

pids=()
stop() {
  trap - INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  if [ -n "$pg_dir" ]; then scripts/pg-local.sh stop "$pg_dir" 2>/dev/null || true; fi
  exit 0
}
trap stop INT TERM
set +e  # from here on, a child's exit status must not skip the shutdown

if [ "$processes" -eq 1 ]; then
  echo "chatd on 127.0.0.1:$base_port (users alice, bob, carol; password \"$password\"); Ctrl-C stops"
  "$chatd" --data_dir "$root" --listen "127.0.0.1:$base_port" "${store_flags[@]}" &
  pids+=($!)
else
  cluster=""
  for i in $(seq 1 "$processes"); do
    cluster+="${cluster:+,}127.0.0.1:$((base_port + i))"
  done
  for i in $(seq 1 "$processes"); do
    mkdir -p "$root/$i"
    "$chatd" --data_dir "$root/$i" --listen "127.0.0.1:$((base_port + i))" --cluster "$cluster" \
      --index "$i" --users_db "$root/shared/users.db" --key_file "$root/shared/token.key" \
      "${store_flags[@]}" 2>"$root/$i/chatd.log" &
    pids+=($!)
  done
  echo "chatd cluster: $cluster (process 1 hosts the services; logs in $root/N/chatd.log);" \
       "users alice, bob, carol; password \"$password\"; Ctrl-C stops"
fi
wait
stop
