#!/usr/bin/env bash
# Installs the Debian packages ChatLab needs, only those that are missing, then the web client
# tests' npm packages (web/tests/package-lock.json, through `npm ci` from the npm registry; no
# browser is downloaded: the tests drive Debian's Chromium). Idempotent: a second run installs
# nothing. Runs apt-get as root (directly, or through sudo when available).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config    # toolchain
  libabsl-dev                         # core: Status, StatusOr, btree containers, StrCat
  libgtest-dev libgmock-dev           # tests
  libbenchmark-dev                    # benchmarks
  libsimgrid-dev                      # sim/: the network, hosts and clock (pkg-config)
  libtomlplusplus-dev                 # sim/: scenario files
  nlohmann-json3-dev                  # sim/: results.json; tests read it
  libcli11-dev                        # sim/: the chatlab command line
  libboost-dev                        # real-transport/: Asio and Beast (headers)
  libsqlite3-dev                      # real-transport/: chatd's durable storage (embedded)
  libpq-dev                           # real-transport/: the PostgreSQL storage engine (libpq)
  libhiredis-dev                      # real-transport/engines/: the user mapping on Redis
  redis-server                        # tests and chatd-up.sh --redis: redis-server
  librabbitmq-dev                     # real-transport/engines/: the queue broker on RabbitMQ
  rabbitmq-server                     # tests and chatd-up.sh --rabbitmq: rabbitmq-server
  postgresql                          # tests and chatd-up.sh --store postgres: initdb, pg_ctl
  libssl-dev                          # real-transport/: PBKDF2, HMAC-SHA256 tokens, TLS
  openssl                             # tests: the TLS tests make their certificates
  gnuplot-nox                         # sim/lab/: the reports' plots (SVG)
  slurm-client slurmctld slurmd munge # chatlab sweep --executor slurm; tests start a Slurm
  mosquitto libmosquitto-dev          # real-transport/bench.sh: the MQTT peer and mqttload
  libjemalloc-dev                     # chatd: malloc (real-transport/CMakeLists.txt says why)
  heaptrack                           # benchmarks/sim_memory.sh: the heap by owner at its peak
  chromium                            # tests: the report and the web client in headless Chromium
  clang libclang-rt-14-dev            # fuzz/: clang 14 and its libFuzzer, ASan, UBSan runtimes
)

# Node.js and npm for the web client's browser tests (web/tests/). A machine that already has
# node and npm (Debian's, or another vendor's nodejs that bundles npm) keeps them: Debian's npm
# package would conflict with a nodejs that bundles its own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

# npm ci in web/tests unless node_modules already matches package-lock.json.
install_web_test_packages() {
  local dir=web/tests
  if cmp -s "$dir/package-lock.json" "$dir/node_modules/.chatlab-lock.json" 2>/dev/null; then
    echo "install-deps: web/tests npm packages already installed"
    return
  fi
  echo "install-deps: npm ci in $dir"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$dir/node_modules/.chatlab-lock.json"
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  install_web_test_packages
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
install_web_test_packages
