#!/usr/bin/env bash
# A PostgreSQL server of one deployment's own, in a directory (for chatd-up.sh --store postgres
# and benchmarks/store_engines.sh):
#
#   scripts/pg-local.sh start DIR PORT   initdb DIR/data if it has none, start it on 127.0.0.1:PORT
#                                        (socket in DIR), create the database "chat"; prints the
#                                        libpq connection string chatd's --store_postgres takes
#   scripts/pg-local.sh stop DIR         stop it (fast: a clean checkpoint)
#
# Run as root, the server runs as the postgres user (initdb refuses root). Needs the postgresql
# package (scripts/install-deps.sh). Durability stays at PostgreSQL's defaults.
set -euo pipefail
usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "$0: no PostgreSQL initdb under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi
as=()
if [ "$(id -u)" -eq 0 ]; then
  as=(runuser -u postgres --)
  chown postgres: "$dir"
  if ! "${as[@]}" test -x "$dir"; then
    blocked="$dir"  # the highest directory above $dir the postgres user cannot enter
    for d in $(p="$dir"; while [ "$p" != / ]; do p=$(dirname "$p"); echo "$p"; done); do
      "${as[@]}" test -x "$d" || blocked="$d"
    done
    echo "$0: the postgres user cannot reach $dir: $blocked is not searchable by others" \
      "(chmod o+x $blocked, or choose another place)" >&2
    exit 1
  fi
fi
case "$cmd" in
  start)
    [ $# -eq 3 ] || usage
    port="$3"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U chatd -E UTF8 --locale=C \
        >"$dir/initdb.log" 2>&1 || { echo "$0: initdb failed; see $dir/initdb.log" >&2; exit 1; }
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
      { echo "$0: PostgreSQL did not start; the end of $dir/server.log:" >&2
        tail -n 5 "$dir/server.log" >&2; exit 1; }
    if ! "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U chatd -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = 'chat'" | grep -q 1; then
      "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U chatd chat
    fi
    echo "host=127.0.0.1 port=$port user=chatd dbname=chat"
    ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *) usage ;;
esac
