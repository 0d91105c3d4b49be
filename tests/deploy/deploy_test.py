#!/usr/bin/python3
"""Deployment checks run by ctest (tests/deploy/CMakeLists.txt), one check per invocation:

  deploy_test.py BUILD_DIR install           `cmake --install` layout, prefix rewriting, config kept
  deploy_test.py BUILD_DIR systemd_verify    systemd-analyze verify on the installed unit
  deploy_test.py BUILD_DIR systemd_security  systemd-analyze security --offline: exposure <= 2.0
  deploy_test.py BUILD_DIR systemd_sysusers  systemd-sysusers creates the unit's User= and Group=
  deploy_test.py BUILD_DIR systemd_syscalls  every system call and socket family kneeloadd uses
                                             (strace: start with CURVE, ingest, scrape, reload,
                                             drain) is allowed by the unit's SystemCallFilter=
                                             and RestrictAddressFamilies=

Each check installs the build into its own temporary DESTDIR (removed afterwards, also on
failure), so none touches the real /etc or /usr. `cmake --install` writes its rewritten files
into BUILD_DIR/install/ first, so ctest runs these checks one at a time (RESOURCE_LOCK).
Exit codes: 0 pass, 1 fail (with expected/got on stderr), 77 skipped (a tool is missing).
Debian's python3, standard library only.
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
MAX_EXPOSURE = 2.0
UNIT = "usr/lib/systemd/system/kneeloadd.service"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def install(build, destdir, prefix):
    env = dict(os.environ, DESTDIR=destdir)
    r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], env=env,
                       capture_output=True, text=True)
    check(r.returncode == 0, f"cmake --install --prefix {prefix} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def unit_value(text, key):
    values = re.findall(rf"^{key}=(.*)$", text, re.M)
    check(len(values) == 1, f"{key}=: expected exactly one line, got {values}")
    return values[0]


def need(tool):
    if shutil.which(tool) is None:
        print(f"SKIP: {tool} is not installed (Debian package {'strace' if tool == 'strace' else 'systemd'})")
        sys.exit(SKIP)


def check_install(build, tmp):
    root = os.path.join(tmp, "usr-prefix")
    install(build, root, "/usr")
    expected_files = [
        "usr/bin/kneeloadd", "usr/bin/kneeloadctl", UNIT, "usr/lib/sysusers.d/kneeload.conf",
        "etc/kneeload/kneeloadd.toml", "etc/kneeload/kneeloadd.toml.example",
        "usr/share/doc/kneeload/README.md", "usr/share/doc/kneeload/kneeloadd.example.toml",
        "usr/share/kneeload/prometheus/prometheus.yml", "usr/share/kneeload/prometheus/rules.yml",
        "usr/share/kneeload/grafana/provisioning/datasources/kneeload.yml",
        "usr/share/kneeload/grafana/provisioning/dashboards/kneeload.yml",
        "usr/share/kneeload/grafana/dashboards/kneeload-operations.json",
        "usr/share/kneeload/grafana/dashboards/kneeload-floor.json",
    ]
    for rel in expected_files:
        check(os.path.isfile(os.path.join(root, rel)), f"expected {rel} in the install, it is missing")
    for exe in ("usr/bin/kneeloadd", "usr/bin/kneeloadctl"):
        mode = os.stat(os.path.join(root, exe)).st_mode
        check(mode & stat.S_IXUSR and mode & stat.S_IXOTH, f"{exe}: expected executable, got mode {oct(mode)}")
    # Only the two programs: no test binaries, no kneeloadd_faultpoints (it has test hooks).
    got_bins = sorted(os.listdir(os.path.join(root, "usr/bin")))
    check(got_bins == ["kneeloadctl", "kneeloadd"], f"usr/bin: expected [kneeloadctl, kneeloadd], got {got_bins}")

    unit = read(os.path.join(root, UNIT))
    check(unit_value(unit, "ExecStart") == "/usr/bin/kneeloadd --config /etc/kneeload/kneeloadd.toml",
          f"prefix /usr: ExecStart= is {unit_value(unit, 'ExecStart')!r}")
    example = os.path.join(root, "etc/kneeload/kneeloadd.toml.example")
    source_example = os.path.join(os.path.dirname(__file__), "../../deploy/config/kneeloadd.example.toml")
    check(read(example) == read(source_example), "kneeloadd.toml.example differs from deploy/config")

    # A second install must keep an operator's config and refresh only the example.
    config = os.path.join(root, "etc/kneeload/kneeloadd.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write("# edited by the operator\n")
    with open(example, "w", encoding="utf-8") as f:
        f.write("# stale example\n")
    install(build, root, "/usr")
    check(read(config) == "# edited by the operator\n", "a re-install overwrote /etc/kneeload/kneeloadd.toml")
    check(read(example) == read(source_example), "a re-install did not refresh kneeloadd.toml.example")

    # Another prefix: the unit must start the binary that this install put there.
    other = os.path.join(tmp, "opt-prefix")
    install(build, other, "/opt/kneeload")
    check(os.path.isfile(os.path.join(other, "opt/kneeload/bin/kneeloadd")), "prefix /opt/kneeload: no bin/kneeloadd")
    unit = read(os.path.join(other, "opt/kneeload/lib/systemd/system/kneeloadd.service"))
    got = unit_value(unit, "ExecStart")
    check(got == "/opt/kneeload/bin/kneeloadd --config /etc/kneeload/kneeloadd.toml",
          f"prefix /opt/kneeload: expected ExecStart=/opt/kneeload/bin/kneeloadd ..., got {got!r}")
    got = unit_value(unit, "Documentation")
    check(got == "file:///opt/kneeload/share/doc/kneeload/README.md",
          f"prefix /opt/kneeload: Documentation= is {got!r}")
    check(os.path.isfile(os.path.join(other, "opt/kneeload/share/doc/kneeload/README.md")),
          "prefix /opt/kneeload: the README that Documentation= names is missing")
    provider = read(os.path.join(other, "opt/kneeload/share/kneeload/grafana/provisioning/dashboards/kneeload.yml"))
    got = re.findall(r"^\s*path:\s*(\S+)", provider, re.M)
    check(got == ["/opt/kneeload/share/kneeload/grafana/dashboards"],
          f"prefix /opt/kneeload: Grafana provider path expected /opt/kneeload/share/kneeload/grafana/dashboards, got {got}")
    check(os.path.isfile(os.path.join(other, "opt/kneeload/share/kneeload/grafana/dashboards/kneeload-floor.json")),
          "prefix /opt/kneeload: the dashboards are not where the Grafana provider looks")
    print(f"install layout OK: {len(expected_files)} files; prefix /usr and /opt/kneeload; operator config kept")


def check_verify(build, tmp):
    need("systemd-analyze")
    install(build, tmp, "/usr")
    # systemd-analyze verify insists that ExecStart's binary exists. The installed unit names
    # /usr/bin/kneeloadd, which is inside DESTDIR here, and --root= would need a whole systemd
    # tree (sysinit.target, /bin/kill) inside DESTDIR. So verify a copy whose only change is
    # ExecStart pointing at the binary this install produced; every other line is as shipped.
    unit = read(os.path.join(tmp, UNIT))
    exe = os.path.join(tmp, "usr/bin/kneeloadd")
    copy_dir = os.path.join(tmp, "verify")
    os.mkdir(copy_dir)
    copy = os.path.join(copy_dir, "kneeloadd.service")
    with open(copy, "w", encoding="utf-8") as f:
        f.write(unit.replace("ExecStart=/usr/bin/kneeloadd ", f"ExecStart={exe} ", 1))
    r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and out == "", f"systemd-analyze verify: expected exit 0 and no output, got {r.returncode}:\n{out}")
    print("systemd-analyze verify: OK, no warnings")


def check_security(build, tmp):
    need("systemd-analyze")
    install(build, tmp, "/usr")
    unit = os.path.join(tmp, UNIT)
    # --threshold is in tenths (20 = 2.0): systemd-analyze itself fails above it; the score is
    # also parsed so the log states it.
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
                        "--no-pager", unit], capture_output=True, text=True)
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for kneeloadd\.service: ([0-9.]+)", out)
    check(m is not None, f"no exposure level in the output:\n{out}")
    score = float(m.group(1))
    print(f"systemd-analyze security --offline=true: exposure {score} (limit {MAX_EXPOSURE})")
    for line in out.splitlines():
        if line.startswith("✗"):
            print("  " + re.sub(r"\s{2,}", "  ", line))
    check(score <= MAX_EXPOSURE and r.returncode == 0,
          f"exposure: expected <= {MAX_EXPOSURE}, got {score} (systemd-analyze exit {r.returncode})")


def check_sysusers(build, tmp):
    need("systemd-sysusers")
    install(build, tmp, "/usr")
    os.makedirs(os.path.join(tmp, "etc"), exist_ok=True)
    r = subprocess.run(["systemd-sysusers", f"--root={tmp}"], capture_output=True, text=True)
    check(r.returncode == 0, f"systemd-sysusers --root: exit {r.returncode}:\n{r.stdout}{r.stderr}")
    unit = read(os.path.join(tmp, UNIT))
    user, group = unit_value(unit, "User"), unit_value(unit, "Group")
    passwd = [l.split(":") for l in read(os.path.join(tmp, "etc/passwd")).splitlines()]
    groups = [l.split(":") for l in read(os.path.join(tmp, "etc/group")).splitlines()]
    entry = next((p for p in passwd if p[0] == user), None)
    check(entry is not None, f"User={user}: expected in etc/passwd after systemd-sysusers, got {passwd}")
    check(any(g[0] == group for g in groups), f"Group={group}: expected in etc/group, got {groups}")
    check(entry[6] in ("/usr/sbin/nologin", "/sbin/nologin"), f"{user}: expected no login shell, got {entry[6]}")
    check(int(entry[2]) < 1000, f"{user}: expected a system uid (< 1000), got {entry[2]}")
    print(f"systemd-sysusers: {':'.join(entry)}")


def syscall_groups():
    """{"@group": [members, "@nested", ...]} from `systemd-analyze syscall-filter`."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True,
                         check=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(name, groups):
    if not name.startswith("@"):
        return {name}
    out = set()
    for member in groups.get(name, []):
        out |= expand(member, groups)
    return out


def unit_syscall_filter(unit, groups):
    """The allowed set, applying SystemCallFilter= lines in order as systemd does: the first
    (not inverted) line starts an allow list (with @default); later lines add, ~lines remove."""
    allowed = None
    for line in re.findall(r"^SystemCallFilter=(.*)$", unit, re.M):
        invert = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= expand(word, groups)
        check(allowed is not None or not invert, "SystemCallFilter=: expected an allow list first")
        if allowed is None:
            allowed = expand("@default", groups)
        allowed = allowed - names if invert else allowed | names
    check(allowed is not None, "no SystemCallFilter= in the unit")
    return allowed


def check_syscalls(build, tmp):
    need("systemd-analyze")
    need("strace")
    install(build, tmp, "/usr")
    unit = read(os.path.join(tmp, UNIT))
    allowed = unit_syscall_filter(unit, syscall_groups())
    families = set(unit_value(unit, "RestrictAddressFamilies").split())
    kneeloadd = os.path.join(build, "daemon/kneeloadd")
    ctl = os.path.join(build, "tools/ctl/kneeloadctl")
    config, endpoints, trace = (os.path.join(tmp, n) for n in ("kneeloadd.toml", "endpoints", "trace"))
    # CURVE on, as a LAN deployment must run: the ZAP handler thread and libsodium are traced
    # too. The simulator sends as a gateway.
    for who in ("daemon", "gateway"):
        subprocess.run([ctl, "keygen", "--out", os.path.join(tmp, who)], check=True, capture_output=True)
    gateway_public = re.search(r'public_key = "([^"]+)"', read(os.path.join(tmp, "gateway.key"))).group(1)
    with open(config, "w", encoding="utf-8") as f:
        subprocess.run([ctl, "sim", "--print-config", "--stations", "2"], stdout=f, check=True)
        f.write(f'\n[security]\ncurve = true\nsecret_key_file = "{os.path.join(tmp, "daemon.key_secret")}"\n'
                f'gateway_keys = ["{gateway_public}"]\n')
    log = open(os.path.join(tmp, "kneeloadd.log"), "w+", encoding="utf-8")
    daemon = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, kneeloadd, "--config", config,
                               "--ingest", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                               "--metrics", "127.0.0.1:0", "--endpoints-file", endpoints,
                               # The runner store on, in the test's own directory: SQLite's calls
                               # (pwrite, fdatasync, fcntl locks, the WAL's shared memory) are traced.
                               "--state-dir", os.path.join(tmp, "state")],
                              stderr=log,
                              # LeakSanitizer cannot run under ptrace and aborts the ASan build's
                              # daemon at exit; leaks are checked by every other ASan test.
                              env=dict(os.environ, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") +
                                                                 ":detect_leaks=0").lstrip(":")))
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(endpoints) and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(endpoints):
            log.seek(0)
            head = log.read()
            if "ptrace" in head or "Operation not permitted" in head:
                print(f"SKIP: strace cannot trace here:\n{head}")
                sys.exit(SKIP)
            raise Failure(f"kneeloadd did not start under strace (exit {daemon.poll()}):\n{head}")
        # Signals go to kneeloadd itself, strace's child: strace does not forward them.
        children = read(f"/proc/{daemon.pid}/task/{daemon.pid}/children").split()
        check(len(children) == 1, f"expected strace to have one child, kneeloadd; got {children}")
        pid = int(children[0])
        eps = dict(l.split("=", 1) for l in read(endpoints).split())
        ingest = eps["ingest"]
        subprocess.run([ctl, "sim", "--endpoint", ingest, "--stations", "2", "--duration", "20", "--rate", "max",
                        "--server-key", os.path.join(tmp, "daemon.key"),
                        "--key-file", os.path.join(tmp, "gateway.key_secret")],
                       check=True, stderr=subprocess.DEVNULL, timeout=60)
        check("metrics" in eps, f"no metrics= in the endpoints file: {eps}")
        scraped = urllib.request.urlopen(f"http://{eps['metrics']}/metrics", timeout=5).read()
        ingested = sum(float(v) for v in re.findall(rb"^kneeload_samples_ingested_total\{[^}]*\} (\S+)$", scraped, re.M))
        check(ingested > 0, "expected the simulator's samples to get through CURVE, got none ingested")
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.5)
        os.kill(pid, signal.SIGTERM)
        code = daemon.wait(15)  # strace exits with its tracee's exit code
    finally:
        if daemon.poll() is None:
            try:
                for child in read(f"/proc/{daemon.pid}/task/{daemon.pid}/children").split():
                    os.kill(int(child), signal.SIGKILL)
            except OSError:
                pass
            daemon.kill()
            daemon.wait()
        log.close()
    check(code == 0, f"kneeloadd under strace: expected exit 0 after SIGTERM, got {code}:\n{read(log.name)}")
    used, used_families = {}, set()
    for line in read(trace).splitlines():
        m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if m:
            used[m.group(1)] = used.get(m.group(1), 0) + 1
        used_families |= set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", line))
    check(len(used) > 20, f"expected a trace of the whole run, got {len(used)} distinct calls")
    # execve runs before the filter applies (systemd installs it on the way to exec).
    exempt = {"execve"}
    # SQLite (the runner store) fchowns its -wal and -shm files to the database's owner only
    # when it runs as root; the unit runs kneeloadd as User=kneeload, where it never calls it.
    if os.geteuid() == 0:
        exempt.add("fchown")
    refused = sorted(n for n in used if n not in allowed and n not in exempt)
    print(f"strace: {len(used)} distinct system calls, socket families {sorted(used_families)}")
    check(not refused, "calls that SystemCallFilter= refuses (EPERM): "
          + ", ".join(f"{n} ({used[n]}x)" for n in refused))
    check(used_families <= families, f"socket families outside RestrictAddressFamilies={' '.join(sorted(families))}: "
          f"{sorted(used_families - families)}")
    print("all allowed by the unit")


CHECKS = {"install": check_install, "systemd_verify": check_verify, "systemd_security": check_security,
          "systemd_sysusers": check_sysusers, "systemd_syscalls": check_syscalls}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    build, name = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix=f"kneeload-deploy-{name}-")
    try:
        CHECKS[name](build, tmp)
    except Failure as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
