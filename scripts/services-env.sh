#!/usr/bin/env bash
# Prints `export` lines that point the tests at the services of scripts/services.sh, honouring the
# same port overrides (CITYPULSE_CH_HTTP_PORT, CITYPULSE_TANSU_PORT). Usage:
#   eval "$(scripts/services-env.sh)"
set -euo pipefail

ch_http_port="${CITYPULSE_CH_HTTP_PORT:-18123}"
tansu_port="${CITYPULSE_TANSU_PORT:-19092}"
for p in "$ch_http_port" "$tansu_port"; do
  [[ $p =~ ^[0-9]+$ ]] || { echo "error: '$p' is not a port number" >&2; exit 1; }
done

printf 'export CITYPULSE_TEST_CLICKHOUSE_URL=%s\n' "http://127.0.0.1:$ch_http_port"
printf 'export CITYPULSE_TEST_KAFKA_BROKERS=%s\n' "127.0.0.1:$tansu_port"
