#!/usr/bin/env bash
# Tools the tests of the analysts' surfaces need (idempotent; quick when present): Debian's
# chromium and chromium-driver (the dashboard is tested in a real headless browser) and a venv with
# openapi-spec-validator (the API's /openapi.json is validated by it). Prints the environment the
# tests read, for `eval`:
#   CITYPULSE_CHROMIUM=/usr/bin/chromium  CITYPULSE_OPENAPI_VALIDATOR=<venv python>
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.local/venv-testtools"
validator_version="0.7.1"
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing chromium (headless browser tests)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to apt-get install chromium chromium-driver" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
fi
if ! "$venv/bin/python" -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "==> venv with openapi-spec-validator $validator_version" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openapi-spec-validator==$validator_version" >&2
fi
echo "export CITYPULSE_CHROMIUM=$(command -v chromium) CITYPULSE_OPENAPI_VALIDATOR=$venv/bin/python"
