#!/usr/bin/python3
"""Checks the Grafana dashboards and the alert rules against the metrics kneeloadd exports.

  check_dashboards.py static
      Every dashboard parses; every data panel has the provisioned Prometheus datasource and
      at least one target with a PromQL expression; panel ids are unique; every $variable used
      is defined; the floor board repeats one row per station. Every metric name in the
      dashboards' and rules.yml's expressions is in CONTRACT (the names issue 5 specifies).
  check_dashboards.py exported KNEELOADD KNEELOADCTL
      Starts the real kneeloadd with a one-station config, CURVE on (its metrics exist only
      then) and --metrics 127.0.0.1:0 (the port it chose is in its --endpoints-file), streams
      30 simulated seconds into it with `kneeloadctl sim` as a gateway, scrapes /metrics and
      requires every metric name used by the dashboards and rules.yml, and every name in
      CONTRACT, to be exported.

Debian's python3, standard library only. Exit 0 pass, 1 fail (the missing names are listed).
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.normpath(os.path.join(HERE, "../../deploy"))
DASHBOARDS = sorted(glob.glob(os.path.join(DEPLOY, "grafana/dashboards/*.json")))
DATASOURCES = os.path.join(DEPLOY, "grafana/provisioning/datasources/kneeload.yml")
RULES = os.path.join(DEPLOY, "prometheus/rules.yml")

# The exported names (issue 5 and README "Metrics"); histograms as their _bucket/_sum/_count
# series.
CONTRACT = {
    "kneeload_frames_received_total", "kneeload_frames_rejected_total", "kneeload_samples_ingested_total",
    "kneeload_samples_rejected_total", "kneeload_dropped_total", "kneeload_outputs_published_total",
    "kneeload_risk_events_total", "kneeload_filter_gated_total", "kneeload_clock_jumps_total",
    "kneeload_outputs_timer_released_total", "kneeload_step_metric_withheld_total",
    "kneeload_reloads_total", "kneeload_curve_connections_total", "kneeload_ring_depth", "kneeload_ring_capacity", "kneeload_active_devices",
    "kneeload_active_runners", "kneeload_active_stations", "kneeload_stale_devices", "kneeload_configured_devices",
    "kneeload_config_generation", "kneeload_build_info", "kneeload_start_time_seconds",
    "process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total",
    "kneeload_station_cadence_steps_per_minute", "kneeload_station_contact_time_seconds",
    "kneeload_station_peak_knee_flexion_degrees", "kneeload_station_pfj_stress_pascals",
    "kneeload_station_stress_time_integral_pascal_seconds", "kneeload_station_damage_index",
    "kneeload_station_risk_level", "kneeload_station_session_distance_meters",
    # Not in issue 5: the overload signal with fusion on the ingest thread (README "Metrics").
    "kneeload_ingest_full_batches_total",
    # Not in issue 5: a reorder buffer too small for its devices' rates (README "Metrics").
    "kneeload_reorder_released_early_total",
} | {f"{h}_{s}" for h in ("kneeload_publish_latency_seconds", "kneeload_worker_handoff_latency_seconds",
                            "kneeload_output_age_seconds", "kneeload_fusion_duration_seconds")
     for s in ("bucket", "sum", "count")}
# Series Prometheus makes itself for every target; never exported by the daemon.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__all"}
NON_DATA_PANELS = {"row", "text", "news", "dashlist"}

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
            "unless", "inf", "nan", "atan2"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def metric_names(expr):
    """The metric names a PromQL expression selects. Not a full parser: strings, label
    matchers, ranges, numbers and durations are removed; what remains is an identifier that
    is a metric unless it is a keyword, is called as a function or aggregation (`sum(`,
    `sum by (`), or lists labels after by/without/on/ignoring/group_left/group_right."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    tokens = re.findall(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?\b|[A-Za-z_:][A-Za-z0-9_:]*|\S", e)
    names = set()
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t in LABEL_LISTS and nxt == "(":
            i = tokens.index(")", i)  # skip the label list
        elif re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", t) and t not in KEYWORDS and nxt not in ("(", "by", "without"):
            names.add(t)
        i += 1
    return names


def self_test():
    cases = {
        'sum by (stage, reason) (rate(kneeload_dropped_total{stage="x y", instance=~"$instance"}[$__rate_interval]))':
            {"kneeload_dropped_total"},
        "max(kneeload_station_pfj_stress_pascals{station=\"$station\"}) / 1e6": {"kneeload_station_pfj_stress_pascals"},
        "time() - kneeload_start_time_seconds": {"kneeload_start_time_seconds"},
        "histogram_quantile(0.99, sum by (job, le) (rate(x_bucket[5m]))) > 0.002": {"x_bucket"},
        "a > 0 unless on (job, instance) b offset 5m and bool c": {"a", "b", "c"},
        "sum(rate(a[5m])) without (kind) / ignoring(kind) group_left(foo) d": {"a", "d"},
        "up{job=\"kneeload\"} == 0": {"up"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            raise SystemExit(f"FAIL metric_names self-test: {expr!r}: expected {sorted(want)}, got {sorted(got)}")


def rule_exprs():
    """expr: values of rules.yml (one line, or a `|` block), without a YAML library."""
    out, lines, i = [], open(RULES, encoding="utf-8").read().splitlines(), 0
    while i < len(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        if m.group(2) not in ("|", ">", "|-", ">-"):
            out.append(m.group(2))
            continue
        block, indent = [], len(m.group(1))
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i].strip())
            i += 1
        out.append(" ".join(block))
    return out


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))  # collapsed rows hold their panels


def dashboard_exprs(errors):
    uid = re.search(r"^\s*uid:\s*(\S+)", open(DATASOURCES, encoding="utf-8").read(), re.M).group(1)
    exprs = []
    if len(DASHBOARDS) < 2:
        errors.append(f"expected the operations and floor dashboards, found {DASHBOARDS}")
    for path in DASHBOARDS:
        name = os.path.basename(path)
        try:
            d = json.load(open(path, encoding="utf-8"))
        except ValueError as e:
            errors.append(f"{name}: not valid JSON: {e}")
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in d:
                errors.append(f"{name}: missing top-level {key!r}")
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        for v in variables.values():
            if v.get("type") == "query":
                if v.get("datasource", {}).get("uid") != uid:
                    errors.append(f"{name}: variable {v['name']}: datasource uid is not {uid!r}")
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
                exprs.append((f"{name}: variable {v['name']}", m.group(1) if m else q))
        ids = []
        for p in all_panels(d.get("panels", [])):
            ids.append(p.get("id"))
            where = f"{name}: panel {p.get('id')} {p.get('title')!r}"
            if "gridPos" not in p:
                errors.append(f"{where}: no gridPos")
            if p.get("repeat") and p["repeat"] not in variables:
                errors.append(f"{where}: repeats over undefined variable ${p['repeat']}")
            if p.get("type") in NON_DATA_PANELS:
                continue
            ds = p.get("datasource") or {}
            if ds.get("type") != "prometheus" or ds.get("uid") != uid:
                errors.append(f"{where}: datasource expected prometheus/{uid}, got {ds}")
            targets = p.get("targets") or []
            if not targets:
                errors.append(f"{where}: no targets")
            refs = [t.get("refId") for t in targets]
            if len(set(refs)) != len(refs):
                errors.append(f"{where}: duplicate refIds {refs}")
            for t in targets:
                if not t.get("expr", "").strip():
                    errors.append(f"{where}: target {t.get('refId')} has no expr")
                    continue
                for var in re.findall(r"\$\{?(\w+)", t["expr"]):
                    if var not in variables and var not in GRAFANA_BUILTINS:
                        errors.append(f"{where}: uses undefined variable ${var}")
                exprs.append((where, t["expr"]))
        if len(set(ids)) != len(ids):
            errors.append(f"{name}: duplicate panel ids")
        if name == "kneeload-floor.json":
            rows = [p for p in d["panels"] if p.get("type") == "row" and p.get("repeat") == "station"]
            st = variables.get("station", {})
            if len(rows) != 1 or not st.get("multi") or not st.get("includeAll"):
                errors.append(f"{name}: expected one row repeated over a multi-value $station with All")
            else:
                per_station = [t["expr"] for p in d["panels"] if p["type"] != "row" for t in p["targets"]]
                unfiltered = [e for e in per_station if 'station="$station"' not in e]
                if unfiltered:
                    errors.append(f"{name}: per-station panels not filtered by station=\"$station\": {unfiltered}")
    return exprs


def used_names(errors):
    used = {}
    for where, expr in dashboard_exprs(errors) + [("rules.yml", e) for e in rule_exprs()]:
        for n in metric_names(expr):
            used.setdefault(n, []).append(where)
    return used


def report(errors):
    for e in errors:
        print("FAIL " + e, file=sys.stderr)
    return 1 if errors else 0


def check_static():
    self_test()
    errors = []
    used = used_names(errors)
    for n, places in sorted(used.items()):
        if n not in CONTRACT and n not in SYNTHETIC:
            errors.append(f"metric {n!r} is not one kneeloadd exports (issue 5 names); used in {places[0]}")
    unused = sorted(n for n in CONTRACT if n not in used)
    print(f"{len(DASHBOARDS)} dashboards and rules.yml use {len(used)} metric names; "
          f"issue 5 names not shown anywhere: {', '.join(unused) or 'none'}")
    return report(errors)


def check_exported(kneeloadd, kneeloadctl):
    errors = []
    used = used_names(errors)
    tmp = tempfile.mkdtemp(prefix="kneeload-metrics-")
    config = os.path.join(tmp, "kneeloadd.toml")
    endpoints = os.path.join(tmp, "endpoints")
    for who in ("daemon", "gateway"):
        subprocess.run([kneeloadctl, "keygen", "--out", os.path.join(tmp, who)], check=True, capture_output=True)
    gateway_public = re.search(r'public_key = "([^"]+)"',
                               open(os.path.join(tmp, "gateway.key"), encoding="utf-8").read()).group(1)
    with open(config, "w", encoding="utf-8") as f:
        subprocess.run([kneeloadctl, "sim", "--print-config", "--stations", "1"], stdout=f, check=True)
        f.write(f'\n[security]\ncurve = true\nsecret_key_file = "{os.path.join(tmp, "daemon.key_secret")}"\n'
                f'gateway_keys = ["{gateway_public}"]\n')
    log = open(os.path.join(tmp, "kneeloadd.log"), "w+", encoding="utf-8")
    daemon = subprocess.Popen([kneeloadd, "--config", config, "--ingest", "tcp://127.0.0.1:*",
                               "--publish", "tcp://127.0.0.1:*", "--metrics", "127.0.0.1:0",
                               "--endpoints-file", endpoints, "--state-dir", os.path.join(tmp, "state")],
                              stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(endpoints) and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(endpoints):
            log.seek(0)
            return report([f"kneeloadd did not start (exit {daemon.poll()}); its log:\n{log.read()}"])
        eps = dict(l.split("=", 1) for l in open(endpoints, encoding="utf-8").read().split())
        if "metrics" not in eps:
            return report([f"no metrics= line in the endpoints file (is the metrics endpoint in this build?): {eps}"])
        url = f"http://{eps['metrics']}/metrics"
        subprocess.run([kneeloadctl, "sim", "--endpoint", eps["ingest"], "--stations", "1", "--duration", "30",
                        "--rate", "max", "--server-key", os.path.join(tmp, "daemon.key"),
                        "--key-file", os.path.join(tmp, "gateway.key_secret")],
                       check=True, stderr=subprocess.DEVNULL, timeout=60)
        time.sleep(1.0)  # let the workers fuse what is queued and the gauges update
        text, last_error, scrape_deadline = None, None, time.monotonic() + 3
        while text is None and time.monotonic() < scrape_deadline:
            try:
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError as e:
                last_error = e
                time.sleep(0.1)
        if text is None:
            return report([f"no /metrics at {url}: {last_error}"])
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        subprocess.run(["rm", "-rf", tmp])
    exported = {re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", l).group(0) for l in text.splitlines()
                if l and not l.startswith("#")}
    missing = {n: p for n, p in used.items() if n not in exported and n not in SYNTHETIC}
    for n, places in sorted(missing.items()):
        errors.append(f"metric {n!r} is used ({places[0]}) but not exported by kneeloadd at {url}")
    not_in_contract = sorted(n for n in CONTRACT if n not in exported)
    if not_in_contract:
        errors.append(f"issue 5 names not exported: {', '.join(not_in_contract)}")
    print(f"{url}: {len(exported)} series names exported; {len(used)} used by dashboards and rules")
    return report(errors)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "static":
        return check_static()
    if len(sys.argv) == 4 and sys.argv[1] == "exported":
        return check_exported(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
