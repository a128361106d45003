#!/usr/bin/env bash
# The deployment's topology as separate local processes, as docker-compose.yml runs it: ingest,
# two analyze replicas, store, alert and serve, each its own `citypulse <stage>` process with its
# own /metrics and /healthz, against the Kafka and ClickHouse the environment names (e.g. the test
# services of scripts/services.sh). Used by tests/topology.rs; handy to try a deployment locally.
#
# Usage: scripts/topology.sh start|stop|status
# Environment:
#   CITYPULSE_BIN            the binary [target/debug/citypulse]
#   CITYPULSE_CONFIG         config folder [config]
#   CITYPULSE_TOPOLOGY_DIR   pid files and logs [.local/topology]
#   CITYPULSE_TOPOLOGY_PORT  first of 7 consecutive ports: ingest, analyze-1, analyze-2, store,
#                            alert metrics, then serve's listen port [19300]
#   CITYPULSE__*             configuration overrides passed to every process (brokers, ClickHouse…)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CITYPULSE_BIN:-$root/target/debug/citypulse}"
config="${CITYPULSE_CONFIG:-$root/config}"
dir="${CITYPULSE_TOPOLOGY_DIR:-$root/.local/topology}"
port="${CITYPULSE_TOPOLOGY_PORT:-19300}"
# name stage metrics-override-key port
processes=(
  "ingest ingest CITYPULSE__INGEST__METRICS_PORT $port"
  "analyze-1 analyze CITYPULSE__ANALYZE__METRICS_PORT $((port + 1))"
  "analyze-2 analyze CITYPULSE__ANALYZE__METRICS_PORT $((port + 2))"
  "store store CITYPULSE__STORE__METRICS_PORT $((port + 3))"
  "alert alert CITYPULSE__ALERT__METRICS_PORT $((port + 4))"
  "serve serve CITYPULSE__SERVE__LISTEN 127.0.0.1:$((port + 5))"
)

healthz_port() { # the port a process answers /healthz on
  local p=$4; echo "${p##*:}"
}

start() {
  mkdir -p "$dir"
  for spec in "${processes[@]}"; do
    read -r name stage key value <<<"$spec"
    if [[ -s $dir/$name.pid ]] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      echo "$name: already running (pid $(cat "$dir/$name.pid"))"
      continue
    fi
    env "$key=$value" "$bin" --config "$config" "$stage" >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    echo "$name: started (pid $!, log $dir/$name.log)"
  done
  local deadline=$((SECONDS + ${CITYPULSE_TOPOLOGY_START_TIMEOUT_S:-180}))
  for spec in "${processes[@]}"; do
    read -r name stage key value <<<"$spec"
    local hp; hp=$(healthz_port "$name" "$stage" "$key" "$value")
    until curl -fsS -m 2 "http://127.0.0.1:$hp/healthz" >/dev/null 2>&1; do
      if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
        echo "error: $name exited; last lines of $dir/$name.log:" >&2
        tail -5 "$dir/$name.log" >&2
        exit 1
      fi
      if ((SECONDS > deadline)); then
        echo "error: $name not healthy on :$hp/healthz in time; see $dir/$name.log" >&2
        exit 1
      fi
      sleep 0.5
    done
    echo "$name: healthy on :$hp"
  done
}

stop() {
  # Pipeline order, as the process runner drains: ingest stops producing first, the store last.
  local failed=0
  for spec in "${processes[@]}"; do
    read -r name _ <<<"$spec"
    [[ -s $dir/$name.pid ]] || continue
    local pid; pid=$(cat "$dir/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      local waited=0
      while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do sleep 0.1; waited=$((waited + 1)); done
      if kill -0 "$pid" 2>/dev/null; then
        echo "$name: still running after 30 s; killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
        failed=1
      else
        echo "$name: stopped"
      fi
    else
      # A replay-only ingest ends at the end of its files and its process exits.
      echo "$name: had already exited"
    fi
    rm -f "$dir/$name.pid"
  done
  return $failed
}

status() {
  for spec in "${processes[@]}"; do
    read -r name _ <<<"$spec"
    if [[ -s $dir/$name.pid ]] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$dir/$name.pid"))"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
