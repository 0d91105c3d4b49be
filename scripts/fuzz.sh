#!/usr/bin/env bash
# Runs each libFuzzer target (tests/fuzz, built by `scripts/build.sh fuzz`) for a bounded time
# under ASan+UBSan, starting from its committed seed corpus plus the inputs it once crashed on.
# Fails on the first crash, leak, timeout or broken invariant, keeping the input that did it:
#   build/fuzz/artifacts/<target>/crash-*   (copy it to tests/fuzz/regressions/<target>/, where
#                                            the unit tests replay it, and fix the bug)
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh decoder         one target
# New inputs that reach new coverage stay in build/fuzz/corpus/<target> between runs (not
# committed); the committed seeds are never written to.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decoder config)
build="$root/build/fuzz"

for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/${t}_fuzz"
  [ -x "$bin" ] || { echo "fuzz.sh: $bin is missing: run scripts/build.sh fuzz" >&2; exit 2; }
  work="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  extra=()
  [ -f "$root/tests/fuzz/$t.dict" ] && extra+=(-dict="$root/tests/fuzz/$t.dict")
  echo "== fuzz $t: ${seconds} s"
  # -timeout: one input taking 10 s is a hang worth a report. -rss_limit_mb: the decoder's arena
  # and the config's name tables are bounded far below it. The committed corpus dirs come after
  # the working one, so libFuzzer reads them but writes new inputs only to the first.
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
       -artifact_prefix="$artifacts/" "$work" "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t" \
       > "$build/fuzz-$t.log" 2>&1; then
    tail -n 60 "$build/fuzz-$t.log"
    echo "fuzz.sh: $t failed; the input is in $artifacts:" >&2
    ls -1 "$artifacts" >&2
    exit 1
  fi
  # libFuzzer's last status line and final stats: executions, speed, coverage.
  grep -E '^#[0-9]+.*(DONE|pulse)|cov:' "$build/fuzz-$t.log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$build/fuzz-$t.log"
done
