#!/usr/bin/env bash
# Configures and builds one flavour of the tree into build/<flavour>. Incremental.
#   scripts/build.sh release            optimised, warnings as errors
#   scripts/build.sh asan               AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh fuzz               clang, libFuzzer + ASan + UBSan: the tests/fuzz targets only
#   scripts/build.sh tsan               ThreadSanitizer: the daemon and the tests that run its threads
# Extra arguments go to cmake --build (e.g. --target kneeloadd). The fuzz and tsan flavours build
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
  # -O1 as for asan: TSan slows code 5-15x. libzmq, protobuf and prometheus-cpp are Debian's
  # uninstrumented builds; tests/tsan.supp says what that costs. -Wno-tsan: g++ warns that TSan
  # does not model std::atomic_thread_fence, which only Doorbell uses, for its sleep/wake
  # handshake on an atomic word: TSan still sees every data hand-off (the rings' release and
  # acquire); a lost wake-up would show as a stall, which the tests' time limits catch.
  tsan) flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" -DCMAKE_CXX_FLAGS=-Wno-tsan
               -DKNEELOAD_WERROR=ON
               -DKNEELOAD_SANITIZE=thread -DKNEELOAD_BUILD_BENCH=OFF)
        default_targets=(kneeloadd daemon_spsc_ring_test daemon_worker_test daemon_publisher_test) ;;  # + every integration_/faults_ test, below
  *) echo "build.sh: unknown flavour '$flavour' (release, asan, fuzz or tsan)" >&2; exit 2 ;;
esac
dir="$root/build/$flavour"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" "${flags[@]}" >/dev/null
fi
if [ $# -eq 0 ] && [ -n "${default_targets+x}" ]; then
  if [ "$flavour" = tsan ]; then
    # Whatever integration and fault test binaries the tree has, so a new one is not missed.
    mapfile -t -O "${#default_targets[@]}" default_targets < <(cmake --build "$dir" --target help |
      sed -n 's/^\.\.\. \(\(integration\|faults\)_[a-z0-9_]*_test\)$/\1/p')
  fi
  set -- --target "${default_targets[@]}"
fi
cmake --build "$dir" -j "${KNEELOAD_JOBS:-2}" "$@"
