#!/usr/bin/env bash
# A replicated ClickHouse on this machine, for clickhouse.cluster mode and its tests: Debian's
# ZooKeeper and two ClickHouse 18.16 servers, one shard of two replicas, all on 127.0.0.1, each in a
# folder and on ports of its own (scripts/services.sh runs each of them).
#
# Usage: scripts/cluster.sh start|stop|status|env
#   start   starts whatever is not running (so it also brings back a replica that was killed)
#   stop    stops the replicas, then ZooKeeper
#   status  one line per process; exit 0 when all three run
#   env     prints the `export` lines the tests read (CITYPULSE_TEST_CLUSTER*)
#
# Environment (defaults in brackets):
#   CITYPULSE_CLUSTER_DIR          the folders zookeeper/, r1/, r2/ [<repo>/.local/cluster]
#   CITYPULSE_CLUSTER_PORT_OFFSET  added to every port below [0], a multiple of 1000: a second cluster
#                                  beside this one (make test's own, say) without sharing a port
# Ports: ZooKeeper 12181; replica r1 http 18131, native 19031, interserver 19131; r2 18132, 19032, 19132.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CITYPULSE_CLUSTER_DIR:-$root/.local/cluster}"
mkdir -p "$dir" && dir="$(cd "$dir" && pwd)" # absolute: the pid paths `env` prints are read elsewhere
[[ $dir != *[[:space:]]* ]] || { echo "error: CITYPULSE_CLUSTER_DIR='$dir' has a space; env lists paths by spaces" >&2; exit 2; }
offset="${CITYPULSE_CLUSTER_PORT_OFFSET:-0}"
if ! [[ $offset =~ ^[0-9]+$ ]] || ((offset % 1000 != 0 || offset > 40000)); then
  echo "error: CITYPULSE_CLUSTER_PORT_OFFSET='$offset' is not a multiple of 1000 up to 40000" >&2
  exit 2
fi
name=citypulse_cluster
zk_port=$((12181 + offset))
replicas=(r1 r2)
http_port() { echo $((18130 + ${1#r} + offset)); }
tcp_port() { echo $((19030 + ${1#r} + offset)); }
interserver_port() { echo $((19130 + ${1#r} + offset)); }

zookeeper() { # ACTION
  CITYPULSE_SERVICES_DIR="$dir" CITYPULSE_ZK_PORT=$zk_port "$root/scripts/services.sh" "$1" zookeeper
}

replica() { # ACTION NAME
  local r=$2
  CITYPULSE_SERVICES_DIR="$dir/$r" CITYPULSE_CH_HTTP_PORT="$(http_port "$r")" CITYPULSE_CH_TCP_PORT="$(tcp_port "$r")" \
    CITYPULSE_CH_INTERSERVER_PORT="$(interserver_port "$r")" CITYPULSE_ZK_PORT=$zk_port \
    CITYPULSE_CH_CLUSTER=$name CITYPULSE_CH_REPLICA="$r" \
    CITYPULSE_CH_CLUSTER_TCP_PORTS="$(tcp_port r1) $(tcp_port r2)" \
    "$root/scripts/services.sh" "$1" clickhouse | sed "s/^clickhouse/clickhouse $r/"
  return "${PIPESTATUS[0]}"
}

case ${1:-} in
  start)
    zookeeper start
    for r in "${replicas[@]}"; do replica start "$r"; done ;;
  stop) # every part, even when stopping one fails
    rc=0
    for r in "${replicas[@]}"; do replica stop "$r" || rc=$?; done
    zookeeper stop || rc=$?
    exit "$rc" ;;
  status)
    rc=0
    zookeeper status || rc=$?
    for r in "${replicas[@]}"; do replica status "$r" || rc=$?; done
    exit "$rc" ;;
  env)
    printf 'export CITYPULSE_TEST_CLUSTER=%s\n' "$name"
    printf 'export CITYPULSE_TEST_CLUSTER_URLS=%q\n' "http://127.0.0.1:$(http_port r1) http://127.0.0.1:$(http_port r2)"
    printf 'export CITYPULSE_TEST_CLUSTER_PIDS=%q\n' "$dir/r1/clickhouse/clickhouse.pid $dir/r2/clickhouse/clickhouse.pid"
    printf 'export CITYPULSE_TEST_CLUSTER_START=%q\n' "$root/scripts/cluster.sh start" ;;
  *)
    sed -n '/^# Usage:/,/^#   env/p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
    exit 2 ;;
esac
