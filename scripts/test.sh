#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test —
# the release build's unit and integration tests, then the same suite under ASan+UBSan.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)

scripts/deps.sh

echo "== release build"
scripts/build.sh release
echo "== release tests"
(cd build/release && ctest --output-on-failure -j 2 --timeout 300)

echo "== asan+ubsan build"
scripts/build.sh asan
echo "== asan+ubsan tests"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j 2 --timeout 600)

echo "== all tests passed in $(( $(date +%s) - start )) s"
