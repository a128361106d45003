#!/usr/bin/env bash
# Warn before a build when the disk holding the cargo target folder is short of space: a build that
# runs out of it dies deep in a linker ("Bus error", "No space left on device") after minutes.
# Usage: check-disk.sh TARGET_DIR NEED_GB. Warns only: the need is an estimate (see README).
set -euo pipefail
dir="$1" need_gb="$2"
while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
free_gb=$(( free_kb / 1024 / 1024 ))
if [ "$free_gb" -lt "$need_gb" ]; then
  echo "==> WARNING: $free_gb GB free on the disk of $dir; a clean build of the tests needs about $need_gb GB." >&2
  echo "    Free space (e.g. cargo clean) if the build stops with 'No space left on device'." >&2
else
  echo "==> disk: $free_gb GB free for the build (about $need_gb GB needed)"
fi
