#!/usr/bin/env bash
# Instructions per fused sample, per stream (issue 8): stable where timings are not. Builds
# nothing: runs an already built fusion_count under valgrind --tool=callgrind twice per stream,
# warm-up only (n = 0) and warm-up + N samples, and prints (Ir(N) − Ir(0)) / N. Everything but
# the N samples (rendering the recording, the session, the warm-up) is the same in both runs.
#
#   bench/callgrind.sh [build dir (default build/release)] [N (default 20000)]
#
# The knee stream is the knee IMU pairs plus the treadmill, the insole stream the insoles plus
# the treadmill, the runner stream every device (bench/recording.hpp). Takes about a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
n=${2:-20000}
driver=$build/bench/fusion_count
if [ ! -x "$driver" ]; then
  echo "callgrind.sh: $driver not built (cmake --build $build --target fusion_count)" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not installed" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Total Ir of one run: callgrind's "Collected" line.
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$driver" "$@" >/dev/null 2>"$tmp/log"
  sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$tmp/log"
}

printf '%-7s %12s %14s %14s %12s\n' stream samples Ir_warmup Ir_warmup+N Ir/sample
for kind in knee insole runner; do
  ir0=$(ir "$kind" 0)
  ir1=$(ir "$kind" "$n")
  if [ -z "$ir0" ] || [ -z "$ir1" ]; then
    echo "callgrind.sh: no instruction count for $kind (see valgrind's output)" >&2
    cat "$tmp/log" >&2
    exit 1
  fi
  awk -v k="$kind" -v n="$n" -v a="$ir0" -v b="$ir1" \
    'BEGIN { printf "%-7s %12s %14s %14s %12.1f\n", k, n, a, b, (b - a) / n }'
done
