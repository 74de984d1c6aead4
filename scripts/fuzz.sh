#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ (built by `cmake --build --preset fuzz`) for SECONDS each,
# one after the other, and fails when any of them finds a crash, a hang or a leak.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      (make fuzz / make fuzz-ci run it)
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 1500  (the long run of docs/testing.md: each target stops
#                                             at 10 million inputs or 25 minutes, if sooner)
#
# Each target starts from its seed corpus in fuzz/corpus/TARGET/ (read only) and from what earlier
# runs found, in out/fuzz/TARGET/corpus/, where new inputs go: the repository's corpus stays as
# committed. Crashing inputs are written to out/fuzz/TARGET/ (crash-*, timeout-*, leak-*), the
# log to out/fuzz/TARGET.log. Reproduce one with: build/fuzz/fuzz/TARGET out/fuzz/TARGET/crash-...
set -uo pipefail
cd "$(dirname "$0")/.."

# An input that runs longer than this is a hang (chatd would spin or stall on it): a failure.
readonly kInputSecondsMax=10

if [ $# -lt 1 ]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(codec_fuzz json_codec_fuzz scenario_fuzz chatd_request_fuzz)
fi

# The dictionary each target uses (none for the binary codec: its bytes have no keywords).
dictionary() {
  case "$1" in
    json_codec_fuzz) echo fuzz/dict/json.dict ;;
    scenario_fuzz) echo fuzz/dict/toml.dict ;;
    chatd_request_fuzz) echo fuzz/dict/http.dict ;;
  esac
}

# Extra seed directories read as they are: the scenario loader also starts from scenarios/.
extra_seeds() {
  case "$1" in
    scenario_fuzz) echo scenarios ;;
  esac
}

passed=0
failed=0
for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/$t
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing: run 'cmake --preset fuzz && cmake --build --preset fuzz'" >&2
    failed=$((failed + 1))
    continue
  fi
  out=out/fuzz/$t
  mkdir -p "$out/corpus"
  args=(-max_total_time="$seconds" -timeout="$kInputSecondsMax" -print_final_stats=1
        -artifact_prefix="$out/")
  [ -n "${FUZZ_RUNS:-}" ] && args+=(-runs="$FUZZ_RUNS")
  dict=$(dictionary "$t")
  [ -n "$dict" ] && args+=(-dict="$dict")
  start=$(date +%s)
  # shellcheck disable=SC2046  # extra_seeds prints zero or one directory name
  "$bin" "${args[@]}" "$out/corpus" "fuzz/corpus/$t" $(extra_seeds "$t") >"out/fuzz/$t.log" 2>&1
  status=$?
  wall=$(($(date +%s) - start))
  # libFuzzer's last status line ("#N DONE cov: C ft: F corp: ...") and its run count.
  last=$(grep -E '^#[0-9]+' "out/fuzz/$t.log" | tail -1)
  runs=$(grep -E '^stat::number_of_executed_units' "out/fuzz/$t.log" | awk '{print $2}')
  if [ $status -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $t: ok, ${runs:-?} runs in ${wall} s ($((${runs:-0} / (wall > 0 ? wall : 1))) exec/s): $last"
  else
    failed=$((failed + 1))
    echo "fuzz: $t: FAILED (exit $status); the end of out/fuzz/$t.log:"
    tail -40 "out/fuzz/$t.log"
    ls "$out"/crash-* "$out"/timeout-* "$out"/leak-* "$out"/oom-* 2>/dev/null
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
