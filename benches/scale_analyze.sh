#!/usr/bin/env bash
# Analyzers scaled as processes in one consumer group (release build, onnx fp32, on tansu):
# `posts.raw` is filled first (4,000 AIVIVN reviews), then N `citypulse analyze` processes of the
# same group are started together and their `citypulse_analyze_posts_total` counters (each its own
# /metrics) are polled. Rate = posts analysed between 10% and 90% of the total / that time, so
# model load and the group's first join are left out. Configurations, run one after another on the
# same posts, each on fresh topics:
#   1 process  × 2 workers (one thread each)     2 partitions   (the shipped default)
#   2 processes × 1 worker (one thread each)     2 partitions
#   2 processes × 1 worker                       1 partition    (the second process gets nothing)
#   2 processes × 1 worker                       4 partitions
# Env: QUICK=1 (1,000 posts), BENCH_SKIP_BUILD=1, BENCH_KAFKA_PORT [29293].
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source benches/lib.sh
BIN=$root/target/release/citypulse
DATA=../shared/data/aivivn/train.tsv
n=$([[ ${QUICK:-0} == 1 ]] && echo 1000 || echo 4000)
work=$root/target/bench/scale
rm -rf "$work"; mkdir -p "$work/config"
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || cargo build --release --features onnx --bin citypulse
export ORT_DYLIB_PATH=$root/models/onnxruntime/libonnxruntime.so
export CITYPULSE_SERVICES_DIR=$work/services CITYPULSE_TANSU_PORT=${BENCH_KAFKA_PORT:-29293}
export CITYPULSE__KAFKA__BROKERS=127.0.0.1:$CITYPULSE_TANSU_PORT CITYPULSE_AUTHOR_KEY=benchmark-author-key-not-secret

bench_cleanup_on_exit tansu
bench_replay_config "$work" "$DATA" "$n"

one_run() { # PROCESSES WORKERS PARTITIONS
  local procs=$1 workers=$2 parts=$3 i
  scripts/services.sh stop tansu >/dev/null 2>&1 || true
  scripts/services.sh start tansu >/dev/null # in memory: fresh topics every run
  export CITYPULSE__KAFKA__PARTITIONS=$parts CITYPULSE__INGEST__STATE_DIR=$work/state-$procs-$parts
  export CITYPULSE__KAFKA__ANALYZE_GROUP=scale-$procs-$workers-$parts
  # A replay-only ingest exits once its file is published.
  CITYPULSE__INGEST__METRICS_PORT=29290 "$BIN" --config "$work/config" ingest 2> "$work/ingest.log" ||
    { tail -5 "$work/ingest.log" >&2; exit 1; }
  grep -q "produced: $n }" "$work/ingest.log" || { echo "ingest did not produce $n posts" >&2; exit 1; }
  local ports=()
  for ((i = 0; i < procs; i++)); do
    ports+=($((29300 + i)))
    CITYPULSE__ANALYZE__METRICS_PORT=${ports[i]} "$BIN" --config "$work/config" analyze \
      --workers "$workers" --threads "$workers" 2> "$work/analyze-$i.log" &
    pids+=("$!")
  done
  python3 - "$n" "$procs" "$workers" "$parts" "${ports[@]}" <<'PY'
import sys, time, urllib.request
n, procs, workers, parts, ports = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
def done():
    total = 0
    for port in ports:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            continue
        total += sum(int(float(l.split()[-1])) for l in body.splitlines() if l.startswith("citypulse_analyze_posts_total"))
    return total
marks, deadline = {}, time.time() + 600
while time.time() < deadline:
    c, now = done(), time.time()
    for q in (0.1, 0.9):
        if q not in marks and c >= q * n:
            marks[q] = (c, now)
    if c >= n:
        break
    time.sleep(0.1)
if len(marks) < 2:
    sys.exit(f"analysed {done()} of {n} within 600 s")
(c0, t0), (c1, t1) = marks[0.1], marks[0.9]
print(f"analyze scale: {procs} process(es) x {workers} worker(s), {parts} partition(s): {(c1 - c0) / (t1 - t0):.1f} posts/s")
PY
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

one_run 1 2 2
one_run 2 1 2
one_run 2 1 1
one_run 2 1 4
