#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs kneeloadd with the
# example configuration plus the reference subscriber printing what it publishes.
# Ctrl-C stops both; the daemon drains and prints its totals.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh release --target kneeloadd kneeload_proto_python

config=deploy/config/kneeloadd.example.toml
build/release/daemon/kneeloadd --config "$config" &
daemon=$!
cleanup() {
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "kneeloadd running (pid $daemon) with $config"
echo "  ingest:  tcp://127.0.0.1:5600  (devices push kneeload.v1.Frame messages here)"
echo "  publish: tcp://127.0.0.1:5601  (topics state/ step/ risk/ session/ status)"
echo "Printing published messages; Ctrl-C to stop."
/usr/bin/python3 tools/python/kneeload_sub.py --endpoint tcp://127.0.0.1:5601 \
  --pythonpath build/release/python || true
