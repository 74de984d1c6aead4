#!/usr/bin/env bash
# Installs the Debian packages ChatLab needs, only those that are missing. Idempotent: a second
# run installs nothing. Runs apt-get as root (directly, or through sudo when available).
set -euo pipefail

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
  libsqlite3-dev                      # real-transport/: chatd's durable storage
  libssl-dev                          # real-transport/: PBKDF2, HMAC-SHA256 tokens
  gnuplot-nox                         # sim/lab/: the reports' plots (SVG)
  chromium                            # tests: the report opens in headless Chromium
  clang libclang-rt-14-dev            # fuzz/: clang 14 and its libFuzzer, ASan, UBSan runtimes
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
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
