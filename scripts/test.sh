#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test —
# the release build's unit and integration tests and a smoke run of the benchmarks
# (scripts/bench_smoke.sh: they run and allocate nothing; no speed is checked), then the same
# suite under ASan+UBSan, then each fuzz target for FUZZ_SECONDS (default 60) under ASan+UBSan,
# then the tests that run the daemon's threads under ThreadSanitizer. Each stage prints how
# long it took.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
# stage NAME: ends the previous stage (its time goes into the summary at the end), starts NAME.
current="" last=$start summary=""
stage() {
  local now
  now=$(date +%s)
  if [ -n "$current" ]; then summary+="   $(( now - last )) s  $current"$'\n'; fi
  current=$1 last=$now
  echo "== $1"
}

scripts/deps.sh

stage "release build"
scripts/build.sh release
stage "release tests"
# --timeout 300 in every stage: the longest test takes 89 s under ASan (ScenarioRules, a
# fresh-clone run of 1ef390f), and a test that hangs then costs 5 minutes, not 10.
(cd build/release && ctest --output-on-failure -j 2 --timeout 300)

stage "benchmark smoke (release): fusion_bench, ring_bench, e2e --quick"
scripts/bench_smoke.sh build/release

stage "asan+ubsan build"
scripts/build.sh asan
stage "asan+ubsan tests"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j 2 --timeout 300)

stage "fuzz build (clang: libFuzzer + ASan + UBSan)"
scripts/build.sh fuzz
stage "fuzz: each target ${FUZZ_SECONDS:-60} s"
scripts/fuzz.sh

stage "tsan build"
scripts/build.sh tsan
stage "tsan tests"
# The daemon's threads: the integration and fault tests (real kneeloadd processes, built with
# TSan too), the ring's two-thread unit test, the worker's hand-off to a sleeping consumer
# (daemon_worker_test) and the publishing right passed between workers
# (daemon_publisher_test). Not daemon_pipeline_alloc_test: it replaces the
# global operator new to count allocations, which puts libzmq's own allocations into
# instrumented code, and TSan then reports libzmq's internal hand-offs through stacks that end
# in libstdc++ before reaching libzmq, so no narrow suppression matches; the same pipeline runs
# under TSan in every kneeloadd the other tests start. Every process writes its reports under
# build/tsan/reports as it finds them, and that directory must stay empty. (Not halt_on_error: a
# test binary halted by a report would leave its kneeloadd running.) A test binary with a report
# also exits 66. tests/tsan.supp says why each suppression is there.
rm -rf build/tsan/reports && mkdir -p build/tsan/reports
(cd build/tsan && TSAN_OPTIONS="exitcode=66 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp log_path=$root/build/tsan/reports/tsan" \
  ctest --output-on-failure -j 2 --timeout 300 -R '^(integration_|faults_|daemon_spsc_ring_test|daemon_worker_test|daemon_publisher_test)')
if compgen -G "build/tsan/reports/tsan*" > /dev/null; then
  cat build/tsan/reports/tsan* >&2
  echo "ThreadSanitizer reported the races above" >&2
  exit 1
fi

stage "all tests passed in $(( $(date +%s) - start )) s; by stage:"
printf '%s' "$summary"
