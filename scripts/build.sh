#!/usr/bin/env bash
# Configures and builds one flavour of the tree into build/<flavour>. Incremental.
#   scripts/build.sh release            optimised, warnings as errors
#   scripts/build.sh asan               AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh fuzz               clang, libFuzzer + ASan + UBSan: the tests/fuzz targets only
# Extra arguments go to cmake --build (e.g. --target kneeloadd). The fuzz flavour builds
# only what their CI stage runs unless told otherwise, to keep CI time down.
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
  # The libraries get fuzzer-no-link (coverage instrumentation without libFuzzer's main); the
  # targets add -fsanitize=fuzzer themselves (tests/fuzz/CMakeLists.txt). No -Werror: clang's
  # warnings differ from g++'s, which is the compiler the release gate uses.
  fuzz) flags=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1"
               -DKNEELOAD_SANITIZE=fuzzer-no-link,address,undefined -DKNEELOAD_FUZZ=ON
               -DKNEELOAD_BUILD_BENCH=OFF)
        default_targets=(decoder_fuzz config_fuzz) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan or fuzz)" >&2; exit 2 ;;
esac
if [ $# -eq 0 ] && [ -n "${default_targets+x}" ]; then
  set -- --target "${default_targets[@]}"
fi
dir="$root/build/$flavour"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "${KNEELOAD_JOBS:-2}" "$@"
