#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the whole system on
# this machine: kneeloadd with a config for four simulated treadmill stations, the simulator
# streaming them into it (kneeloadctl sim, in the background), and the live station table
# (kneeloadctl tap) in the foreground. Ctrl-C stops the simulator, drains the daemon and prints
# both summaries. Everything the demo writes goes to build/demo/.
#
# Each run starts with no runner history (build/demo/state is emptied), so what it shows does
# not depend on earlier runs: the history rules compare a session with the runner's earlier
# ones (MODEL.md R4, R5), and a run more than 10 % farther than the longest before raised R4
# session_spike for every runner (HIGH at over twice as far). --keep-history keeps it, to
# watch those rules at work.
set -euo pipefail
keep_history=0
for arg in "$@"; do
  case "$arg" in
    --keep-history) keep_history=1 ;;
    -h | --help)
      echo "usage: scripts/demo.sh [--keep-history]   (the runner history of earlier runs: kept, or not by default)"
      exit 0
      ;;
    *)
      echo "demo: unknown argument \"$arg\"; usage: scripts/demo.sh [--keep-history]" >&2
      exit 2
      ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh release --target kneeloadd kneeloadctl

stations=4
ingest=tcp://127.0.0.1:5600
publish=tcp://127.0.0.1:5601
daemon_bin=build/release/daemon/kneeloadd
ctl=build/release/tools/ctl/kneeloadctl
dir=build/demo
mkdir -p "$dir"
config=$dir/kneeloadd.toml
endpoints=$dir/endpoints
daemon_log=$dir/kneeloadd.log
sim_log=$dir/sim.log

"$ctl" sim --print-config --stations "$stations" --demo-timing >"$config"
rm -f "$endpoints" "$daemon_log" "$sim_log"

daemon=""
sim=""
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not cut the drain short
  trap - EXIT
  if [ -n "$sim" ]; then
    kill -INT "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
  fi
  if [ -n "$daemon" ]; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  echo
  if [ -n "$sim" ] && [ -s "$sim_log" ]; then
    echo "--- simulator ($sim_log):"
    grep -v " s simulated, " "$sim_log" || true  # all but the progress lines
  fi
  if [ -s "$daemon_log" ]; then
    echo "--- kneeloadd ($daemon_log):"
    grep -E "drain|dropped at|ERROR" "$daemon_log" || tail -n 5 "$daemon_log"
  fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# The runner history stays under build/demo/ too (kneeloadctl runners --state-dir build/demo/state).
# Not while another demo runs: its daemon has that history open.
for port in 5600 5601; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: something already listens on 127.0.0.1:$port (another demo?); stop it first" >&2
    exit 1
  fi
done
if [ "$keep_history" = 0 ]; then
  rm -rf "$dir/state"
fi
"$daemon_bin" --config "$config" --ingest "$ingest" --publish "$publish" --endpoints-file "$endpoints" \
  --state-dir "$dir/state" 2>"$daemon_log" &
daemon=$!
for _ in $(seq 100); do
  [ -f "$endpoints" ] && break
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "demo: kneeloadd did not start (is another one running on $ingest or $publish?)" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -f "$endpoints" ]; then
  echo "demo: kneeloadd is not ready after 10 s; its log: $daemon_log" >&2
  exit 1
fi

metrics=$(sed -n 's/^metrics=//p' "$endpoints")

"$ctl" sim --endpoint "$ingest" --stations "$stations" --scenario mixed --demo-timing --duration 1800 \
  2>"$sim_log" &
sim=$!

if [ "$keep_history" = 1 ]; then
  history="kept from earlier runs (--keep-history): R4/R5 compare with them"
else
  history="new for this run (scripts/demo.sh --keep-history keeps it)"
fi
cat <<EOF
kneeloadd is running (pid $daemon) with $config, log in $daemon_log
  ingest:  $ingest   kneeload.v1.Frame messages from devices; here the simulator
  publish: $publish   topics state/ step/ risk/ session/ status
  metrics: http://$metrics/metrics   Prometheus text (curl it, or scrape it: deploy/prometheus)
kneeloadctl sim (pid $sim) streams $stations treadmill stations in real time, log in $sim_log:
  st01 mixed (fatigue, worn shoes, a lateral knee pain report, a knee sensor dropout),
  st02 fatigue, st03 asymmetry, st04 overstride. The runners drift from 1.5 min in;
  risk events appear in the table from about 2.5 min.
Runner history in $dir/state: $history
Ctrl-C stops the simulator and drains the daemon.

EOF
"$ctl" tap --endpoint "$publish" || true
