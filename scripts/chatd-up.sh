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

# --store postgres: a PostgreSQL server of this deployment's own, in $root/postgres. As root it
# runs as the postgres user (initdb refuses root).
store_flags=()
pg_stop=()
if [ "$store" = postgres ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "$0: --store postgres needs PostgreSQL's initdb (apt-get install postgresql)" >&2
    exit 1
  fi
  pg_dir="$(pwd)/$root/postgres"
  pg_port=$((base_port + 100))
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    mkdir -p "$pg_dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pg_dir"; fi
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U chatd -E UTF8 --locale=C \
      >"$pg_dir/initdb.log" 2>&1 || { echo "$0: initdb failed; see $pg_dir/initdb.log" >&2; exit 1; }
  fi
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null ||
    { echo "$0: PostgreSQL did not start; see $pg_dir/server.log" >&2; exit 1; }
  pg_stop=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop)
  "${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U chatd -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'chat'" | grep -q 1 ||
    "${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U chatd chat
  store_flags=(--store postgres --store_postgres "host=127.0.0.1 port=$pg_port user=chatd dbname=chat")
  echo "PostgreSQL on 127.0.0.1:$pg_port (data in $pg_dir/data) holds the store's tables"
fi

pids=()
stop() {
  trap - INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  if [ ${#pg_stop[@]} -gt 0 ]; then "${pg_stop[@]}" >/dev/null 2>&1 || true; fi
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
