#!/usr/bin/env bash
# Runs the benchmarks once, briefly, so that CI notices when one stops running: a harness
# that rots between two measuring sessions costs a session. fusion_bench, ring_bench and
# `e2e --quick` run; fusion_count (callgrind's driver) and soak.sh (hours) do not. It checks
# what a benchmark reports exactly (allocations per sample and per step, the JSON fields
# RESULTS.md is built from), never a speed: speeds are measured on a quiet machine and
# reported as ratios (bench/README.md). Drops in e2e's latency runs depend on the machine's
# load, so they are printed, not judged; e2e itself exits non-zero when no rate held.
#
# usage: scripts/bench_smoke.sh BUILD_DIR   (a release build with the bench targets built)
set -euo pipefail
build=${1:?usage: scripts/bench_smoke.sh BUILD_DIR}
out="$build/bench-smoke"
mkdir -p "$out"

# Micro-benchmarks: a few iterations each. Every fused sample, step and decode must allocate
# nothing (issue 8), whatever the speed.
"$build/bench/fusion_bench" --benchmark_min_time=0.01 --benchmark_format=json > "$out/fusion_bench.json"
"$build/bench/ring_bench" --benchmark_min_time=0.01 --benchmark_format=json > "$out/ring_bench.json"
# End to end, the README's spot check (< 45 s): real kneeloadd and kneeloadctl processes.
"$build/bench/e2e" --quick --json > "$out/e2e.json" 2> "$out/e2e.log" || {
  tail -n 30 "$out/e2e.log" >&2
  echo "bench smoke: e2e --quick failed (log above)" >&2
  exit 1
}

python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
problems = []

def benchmarks(name):
    with open(f"{out}/{name}.json") as f:
        rows = json.load(f)["benchmarks"]
    if not rows:
        problems.append(f"{name}: no benchmark ran")
    return rows

fusion = benchmarks("fusion_bench")
for row in fusion:
    if row.get("error_occurred"):
        problems.append(f"fusion_bench {row['name']}: {row.get('error_message')}")
    for key in ("allocs_per_sample", "allocs_per_step"):
        if key in row and row[key] != 0:
            problems.append(f"fusion_bench {row['name']}: {key} = {row[key]}, expected 0")
counted = [r["name"] for r in fusion if "allocs_per_sample" in r or "allocs_per_step" in r]
if len(counted) < 5:
    problems.append(f"fusion_bench: allocations counted in {len(counted)} benchmarks, expected the fused "
                    "samples, the per-step work and the decoder")
for row in benchmarks("ring_bench"):
    if row.get("error_occurred"):
        problems.append(f"ring_bench {row['name']}: {row.get('error_message')}")

with open(f"{out}/e2e.json") as f:
    e2e = json.load(f)
missing = [k for k in ("samples_per_s", "baseline_samples_per_s", "ratio_vs_baseline", "fused_baseline_samples_per_s",
                      "ratio_vs_fused_baseline", "p50_us", "p99_us", "drops")
           if k not in e2e]
problems += [f"e2e --json: no {k}" for k in missing]
if not missing:
    if not (e2e["samples_per_s"] > 0 and e2e["baseline_samples_per_s"] > 0 and e2e["fused_baseline_samples_per_s"] > 0
            and e2e["p50_us"] > 0):
        problems.append(f"e2e: nothing measured: {e2e}")

if problems:
    print("\n".join("bench smoke: " + p for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"bench smoke: fusion_bench {len(counted)} benchmarks with 0 allocations; e2e --quick sustained "
      f"{e2e['samples_per_s']:.0f} samples/s, ratio {e2e['ratio_vs_baseline']:.3f} "
      f"({e2e['ratio_vs_fused_baseline']:.3f} of decode-and-fuse), p50 {e2e['p50_us']} us, "
      f"drops {e2e['drops']} in its latency runs (figures for the log only: nothing here is a speed check)")
EOF
