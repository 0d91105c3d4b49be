#!/usr/bin/env bash
# Soak run (not in CI): a real kneeloadd fed by `kneeloadctl sim` for hours, sampling the daemon's
# resident memory and open file descriptors, to show that neither grows under steady load.
#
#   bench/soak.sh [--stations N] [--minutes M] [--interval S] [--rate real|Nx] [--out FILE.csv]
#                 [--max-rss-slope-kib-per-hour K] [--build DIR]
#
# Defaults: 8 stations, 240 minutes, a sample every 60 s, live pacing (--rate real, as devices
# send), build/release. Each sample is one CSV row: elapsed seconds, RSS (KiB, /proc/PID/status
# VmRSS), open fds (/proc/PID/fd), and from the metrics endpoint the samples ingested and fused,
# the drops, and the outputs published. At the end the least-squares slope of RSS over the
# second half of the run (the first half is warm-up: sessions, trend windows and libzmq pools
# fill up) must stay under the threshold (default 1024 KiB/hour), fds must not rise over that
# half, and nothing may have been dropped for want of capacity (a full ring, the PUB's HWM);
# otherwise the exit code is 1. The mixed scenario's scripted sensor faults (dropouts, clock
# jumps) make a few late samples, counted as drops too: reported, not failed. The sim's
# sessions last the whole run, so runners, windows and sockets stay the same and any growth
# is a leak.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stations=8 minutes=240 interval=60 rate=real out="" max_slope=1024 build="$root/build/release"
while [ $# -gt 0 ]; do
  case "$1" in
    --stations) stations=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --max-rss-slope-kib-per-hour) max_slope=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "soak.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
daemon="$build/daemon/kneeloadd" ctl="$build/tools/ctl/kneeloadctl"
for b in "$daemon" "$ctl"; do
  [ -x "$b" ] || { echo "soak.sh: $b is missing: scripts/build.sh release --target kneeloadd kneeloadctl" >&2; exit 2; }
done
work=$(mktemp -d /tmp/kneeload-soak-XXXXXX)
out=${out:-$work/soak.csv}
daemon_pid="" sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The sim's own config, with staleness judged generously: at live pacing nothing should go
# stale, and a dropout event would only add noise to a memory measurement.
"$ctl" sim --print-config --stations "$stations" > "$work/kneeloadd.toml"
printf '\n[health]\nstale_after_s = 60.0\n' >> "$work/kneeloadd.toml"
"$daemon" --config "$work/kneeloadd.toml" --ingest 'tcp://127.0.0.1:*' --publish 'tcp://127.0.0.1:*' \
  --metrics 127.0.0.1:0 --endpoints-file "$work/endpoints" 2> "$work/kneeloadd.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$work/endpoints" ] && break; sleep 0.1; done
[ -f "$work/endpoints" ] || { echo "soak.sh: kneeloadd did not start:" >&2; cat "$work/kneeloadd.log" >&2; exit 1; }
ingest=$(sed -n 's/^ingest=//p' "$work/endpoints" | head -n1)
metrics=$(sed -n 's/^metrics=//p' "$work/endpoints")

duration=$(( minutes * 60 + 120 ))  # the sim outlives the sampling
"$ctl" sim --endpoint "$ingest" --stations "$stations" --duration "$duration" --rate "$rate" \
  2> "$work/sim.log" > /dev/null &
sim_pid=$!

metric() {  # sum of every series of family $2 in the exposition $1 whose labels match $3
  awk -v f="$2" -v re="${3:-}" '($1 == f || index($1, f "{") == 1) && $1 ~ re { s += $NF } END { printf "%.0f", s }' <<< "$1"
}
echo "elapsed_s,rss_kib,open_fds,samples_ingested,samples_fused,dropped,dropped_overload,outputs_published" > "$out"
echo "soak: $stations stations for $minutes min at --rate $rate; daemon pid $daemon_pid, samples in $out"
start=$(date +%s)
end=$(( start + minutes * 60 ))
while :; do
  now=$(date +%s)
  kill -0 "$daemon_pid" 2>/dev/null || { echo "soak.sh: kneeloadd died:" >&2; tail "$work/kneeloadd.log" >&2; exit 1; }
  kill -0 "$sim_pid" 2>/dev/null || { echo "soak.sh: the simulator stopped early:" >&2; tail "$work/sim.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status")
  fds=$(ls "/proc/$daemon_pid/fd" | wc -l)
  expo=$(curl -s "http://$metrics/metrics" 2>/dev/null || python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://$metrics/metrics').read().decode())")
  row="$(( now - start )),$rss,$fds,$(metric "$expo" kneeload_samples_ingested_total),$(metric "$expo" kneeload_samples_fused_total),$(metric "$expo" kneeload_dropped_total),$(metric "$expo" kneeload_dropped_total 'ring_full|hwm'),$(metric "$expo" kneeload_outputs_published_total)"
  echo "$row" >> "$out"
  echo "soak: $row"
  [ "$now" -ge "$end" ] && break
  sleep $(( interval < end - now ? interval : end - now ))
done

# Verdict over the second half: RSS slope (least squares) and fd growth; drops over the run.
awk -F, -v max_slope="$max_slope" '
  BEGIN { n = 0 }
  NR > 1 { t[n] = $1; r[n] = $2; f[n] = $3; d[n] = $6; o[n] = $7; n++ }
  END {
    if (n < 4) { print "soak: too few samples for a verdict (" n "); run longer" > "/dev/stderr"; exit 1 }
    h = int(n / 2)
    for (i = h; i < n; i++) { st += t[i]; sr += r[i]; m++ }
    mt = st / m; mr = sr / m
    for (i = h; i < n; i++) { num += (t[i] - mt) * (r[i] - mr); den += (t[i] - mt) ^ 2 }
    slope = den > 0 ? num / den * 3600 : 0
    fd_growth = f[n - 1] - f[h]
    printf "soak: RSS %d KiB at start, %d KiB at the half, %d KiB at the end; slope over the second half %.1f KiB/hour (limit %d); fds %d -> %d; dropped %d (for want of capacity %d)\n", r[0], r[h], r[n - 1], slope, max_slope, f[h], f[n - 1], d[n - 1], o[n - 1]
    bad = 0
    if (slope > max_slope) { print "soak: FAIL: RSS grows" > "/dev/stderr"; bad = 1 }
    if (fd_growth > 0) { print "soak: FAIL: open fds grow" > "/dev/stderr"; bad = 1 }
    if (o[n - 1] > 0) { print "soak: FAIL: the pipeline dropped for want of capacity" > "/dev/stderr"; bad = 1 }
    exit bad
  }' "$out"
