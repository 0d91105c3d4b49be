#!/bin/sh
# run_or_skip.sh TOOL COMMAND...: runs COMMAND, or exits 77 (ctest SKIP_RETURN_CODE) with a
# message when TOOL is not installed, so a machine without promtool or systemd-analyze reports
# the test as skipped instead of passed or failed.
tool="$1"
shift
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "SKIP: $tool is not installed (Debian: $(case "$tool" in promtool) echo prometheus;; *) echo systemd;; esac))"
  exit 77
fi
exec "$@"
