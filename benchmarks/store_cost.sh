#!/usr/bin/env bash
# Prints the store's per-request and per-item CPU costs (docs/cost-model.md): runs
# store_cost_bench (chatd's SQLite storage in tmpfs) with repetitions, takes the median CPU time
# of each request size, and fits time = request + item x N by least squares weighted by 1/time^2
# (each point's relative error counts alike, so N = 1000 does not swamp the intercept). Never
# asserted.
#
#   benchmarks/store_cost.sh [BUILD_DIR]     (default build/release; REPETITIONS=5)
#
# Run it alone on the machine (inside the build lock on a shared one): other jobs inflate it.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
reps="${REPETITIONS:-5}"
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
echo "# store_cost_bench, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $reps repetitions, medians"
"$build/benchmarks/store_cost_bench" --benchmark_repetitions="$reps" \
  --benchmark_report_aggregates_only=true --benchmark_format=json --benchmark_out="$json" \
  --benchmark_out_format=json >/dev/null
python3 - "$json" <<'EOF'
import json, sys
from collections import defaultdict
runs = json.load(open(sys.argv[1]))["benchmarks"]
points = defaultdict(list)  # family -> [(N, median cpu us per request)]
for r in runs:
    if r.get("aggregate_name") != "median":
        continue
    family, n = r["run_name"].split("/")[:2]
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[r["time_unit"]]
    points[family].append((int(n), r["cpu_time"] * scale))
what = {
    "BM_CommitMessages": "message rows per transaction",
    "BM_CommitMemberships": "joins per transaction (2 rows each)",
    "BM_CommitWatermarks": "receipt watermarks per transaction",
    "BM_ReadLast": "messages read (last K of a conversation)",
}
print(f"{'benchmark':24} {'N':>6} {'us/request':>11} {'us/item':>9}")
for family, pts in points.items():
    pts.sort()
    for n, t in pts:
        print(f"{family:24} {n:6d} {t:11.2f} {t / n:9.3f}")
print()
print(f"{'fit: time = r + i N':40} {'r (us)':>8} {'i (us)':>8}")
for family, pts in points.items():
    xs = [n for n, _ in pts]
    ys = [t for _, t in pts]
    ws = [1 / (y * y) for y in ys]
    sw = sum(ws)
    mx = sum(w * x for w, x in zip(ws, xs)) / sw
    my = sum(w * y for w, y in zip(ws, ys)) / sw
    i = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys)) / \
        sum(w * (x - mx) ** 2 for w, x in zip(ws, xs))
    r = my - i * mx
    print(f"{what.get(family, family):40} {r:8.2f} {i:8.3f}")
EOF
