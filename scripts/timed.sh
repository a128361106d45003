#!/usr/bin/env bash
# Runs a command and prints how long it took: `timed.sh LABEL CMD...`. Keeps make's output readable.
set -uo pipefail
label=$1; shift
start=$(date +%s.%N)
echo "==> $label: $*"
"$@"
status=$?
end=$(date +%s.%N)
printf '==> %s: %s in %.1f s\n' "$label" "$([ $status -eq 0 ] && echo ok || echo "FAILED (exit $status)")" "$(echo "$end - $start" | bc)"
exit $status
