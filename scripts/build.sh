#!/usr/bin/env bash
# Configures and builds one flavour of the tree into build/<flavour>. Incremental.
#   scripts/build.sh release            optimised, warnings as errors
#   scripts/build.sh asan               AddressSanitizer + UndefinedBehaviorSanitizer
# Extra arguments go to cmake --build (e.g. --target kneeloadd).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
shift || true
case "$flavour" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DKNEELOAD_WERROR=ON) ;;
  # -O1: asserts stay on (Debug defines no NDEBUG), but the 30-minute simulated scenarios run
  # several times faster than at -O0 under ASan, which keeps the whole CI run in budget.
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" -DKNEELOAD_WERROR=ON
               -DKNEELOAD_SANITIZE=address,undefined -DKNEELOAD_BUILD_BENCH=OFF) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release or asan)" >&2; exit 2 ;;
esac
dir="$root/build/$flavour"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "${KNEELOAD_JOBS:-2}" "$@"
