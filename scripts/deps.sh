#!/usr/bin/env bash
# Installs the Debian 12 packages kneeload builds and tests with, if any is missing.
# prometheus gives the tests promtool and a real server to scrape the daemon; sqlite3 is the
# CLI the store tests use to inspect and damage database files. libclang-rt-14-dev holds libFuzzer
# and clang's sanitizer runtimes (scripts/build.sh fuzz).
# Idempotent and quiet when everything is present (no apt-get update then).
set -euo pipefail

packages=(
  g++ clang libclang-rt-14-dev cmake make pkg-config
  libzmq3-dev cppzmq-dev libeigen3-dev prometheus-cpp-dev libboost-dev
  libprotobuf-dev protobuf-compiler libtomlplusplus-dev libsqlite3-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-zmq python3-protobuf
  prometheus sqlite3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
