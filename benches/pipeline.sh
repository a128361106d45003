#!/usr/bin/env bash
# The whole pipeline, two figures (release build, 2 model threads, everything on 127.0.0.1):
#
# 1. Throughput: `citypulse run` (ingest, analyze, store and alert in one process) on tansu and
#    ClickHouse, the posts replayed from uit-vsfc dev, against `citypulse eval` on the same posts
#    (target: run ≥ 0.9× the classifier alone). Rate = posts between the first and the last post's
#    analysis time (`posts.analyzed_at`, read back from ClickHouse once every post is stored there)
#    / elapsed (model load and group join excluded, as eval excludes model load). The rate by the
#    polled count of stored posts is printed beside it: it moves with where the store's 2 s flush
#    falls (up to ±25% of a ~8 s run). Its peak RSS too.
# 2. Crawl-to-queryable latency at a steady 50 posts/s: a Mastodon hashtag timeline on 127.0.0.1
#    (testkit/fake_mastodon.py) publishes statuses at that rate; ingest, analyze, store and alert run
#    as separate processes; ClickHouse is polled every 200 ms for new posts. Latency = first poll
#    that sees a post − its publication time (so it includes the crawler's 1 s poll interval, the
#    store's 2 s batch period and up to 200 ms of polling). The first 5 s are warm-up. Peak RSS of
#    each process.
#
# ClickHouse: BENCH_CH_URL if it answers (make bench starts one), else one of its own in the work
# folder. Env: QUICK=1 (1,000 posts; 10 s of stream), BENCH_SKIP_BUILD=1, BENCH_RATE [50],
# BENCH_LATENCY=0 (the throughput figure only).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source benches/lib.sh
BIN=$root/target/release/citypulse
DATA=../shared/data/uit-vsfc/dev.tsv
QUICK=${QUICK:-0}
RATE=${BENCH_RATE:-50}
STREAM_SECONDS=$([[ $QUICK == 1 ]] && echo 10 || echo 60)
work=$root/target/bench/pipeline
rm -rf "$work"; mkdir -p "$work/config"
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || cargo build --release --features onnx --bin citypulse
export ORT_DYLIB_PATH=$root/models/onnxruntime/libonnxruntime.so RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
export CITYPULSE_SERVICES_DIR=$work/services CITYPULSE_TANSU_PORT=${BENCH_KAFKA_PORT:-29193}
export CITYPULSE_CH_HTTP_PORT=${BENCH_OWN_CH_HTTP_PORT:-29124} CITYPULSE_CH_TCP_PORT=${BENCH_OWN_CH_TCP_PORT:-29125}
export CITYPULSE__KAFKA__BROKERS=127.0.0.1:$CITYPULSE_TANSU_PORT CITYPULSE__KAFKA__PARTITIONS=2
export CITYPULSE__INGEST__STATE_DIR=$work/state CITYPULSE_AUTHOR_KEY=benchmark-author-key-not-secret
export CITYPULSE__ALERT__EVALUATE_EVERY_MS=5000
export CITYPULSE__RUN__METRICS_PORT=29130 CITYPULSE__INGEST__METRICS_PORT=29131 \
  CITYPULSE__ANALYZE__METRICS_PORT=29132 CITYPULSE__STORE__METRICS_PORT=29133 CITYPULSE__ALERT__METRICS_PORT=29134

bench_cleanup_on_exit all

ch_url=${BENCH_CH_URL:-http://127.0.0.1:38123}
if ! curl -sf "$ch_url/ping" >/dev/null 2>&1; then
  scripts/services.sh start clickhouse >/dev/null
  ch_url=http://127.0.0.1:$CITYPULSE_CH_HTTP_PORT
fi
export CITYPULSE__CLICKHOUSE__URL=$ch_url
ch() { curl -sf "$ch_url/" --data-binary "$1"; }
fresh_db() {
  ch "DROP DATABASE IF EXISTS $1" && ch "CREATE DATABASE $1"
  CITYPULSE__CLICKHOUSE__DATABASE=$1 "$BIN" --config "$work/config" migrate > "$work/migrate.log" 2>&1 \
    || { cat "$work/migrate.log" >&2; exit 1; }
}
# Peak resident memory of a running process (VmHWM), in MB.
peak_rss() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
wait_for_line() { # file, text, seconds
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    (( SECONDS < deadline )) || { echo "no '$2' in $1 after $3 s" >&2; tail -5 "$1" >&2; exit 1; }
    sleep 0.2
  done
}

# ---- 1. Throughput under `citypulse run` ----
# The shipped config replaying the posts, its alert rules notifying only the log (no webhook here).
n=$([[ $QUICK == 1 ]] && echo 1000 || wc -l < <(tail -n +2 "$DATA"))
bench_replay_config "$work" "$DATA" "$n"
sed -i 's/notify = \["comms_log", "comms_webhook"\]/notify = ["comms_log"]/' "$work/config/alerts.toml"
shipped_defaults=$(sed -n '/^\[defaults\]/,/^$/p' config/sources.toml)
eval_json=$("$BIN" --config "$work/config" eval --data "$work/posts.tsv" --json --threads 2 2>/dev/null)
eval_rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["posts_per_second"])' "$eval_json")

db=cp_bench_pipeline
fresh_db $db
scripts/services.sh start tansu >/dev/null
CITYPULSE__CLICKHOUSE__DATABASE=$db "$BIN" --config "$work/config" run 2> "$work/run.log" & run_pid=$!
pids+=("$run_pid")
read -r first t0 now < <(python3 benches/poll_count.py --url "$ch_url" --sql "SELECT count() FROM $db.posts" \
  --until "$n" --pid "$run_pid") || { tail -20 "$work/run.log" >&2; exit 1; }
run_rss=$(peak_rss "$run_pid")
kill -INT "$run_pid"; wait "$run_pid" || true
# When each stored post was analysed (ms): the flow's rate without the store's batch period. The
# count above is polled every 0.25 s and the store flushes every 2 s, so the stored-count rate
# over a ~8 s run moves by up to a flush period (±25%) with where the last flush falls.
ch "SELECT toUInt64(analyzed_at) * 1000 + analyzed_ms FROM $db.posts FORMAT TSV" > "$work/analyzed_ms.tsv"
python3 - "$n" "$first" "$t0" "$now" "$eval_rate" "$run_rss" "$work/analyzed_ms.tsv" <<'PY'
import sys
n, first, t0, t1, ev, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
stored_rate = (n - first) / (t1 - t0)
times = sorted(int(line) for line in open(sys.argv[7]) if line.strip())
assert len(times) == n, f"{len(times)} analysed times for {n} posts"
# Posts of the first batch carry (nearly) the same time: rate over the rest, from that batch on.
first_batch = sum(1 for t in times if t <= times[0] + 5)
rate = (n - first_batch) / ((times[-1] - times[0]) / 1000)
print(f"pipeline run: {n} posts stored, {rate:.1f} posts/s; eval {ev:.1f} posts/s; run / eval = {rate / ev:.2f}x (target >= 0.9x)")
print(f"pipeline run, by stored count (polled; moves with the store's 2 s flush): {stored_rate:.1f} posts/s = {stored_rate / ev:.2f}x")
print(f"peak RSS run: {rss} MB")
PY
scripts/services.sh stop tansu >/dev/null
[[ ${BENCH_LATENCY:-1} == 1 ]] || exit 0

# ---- 2. Crawl-to-queryable latency at a steady rate, separate processes ----
db=cp_bench_latency
fresh_db $db
export CITYPULSE__CLICKHOUSE__DATABASE=$db
scripts/services.sh start tansu >/dev/null
port=${BENCH_FAKE_PORT:-29180}
cat > "$work/config/sources.toml" <<TOML
$shipped_defaults

[[host_quota]]
host = "127.0.0.1"
requests_per_second = 20.0
burst = 5

[[mastodon]]
name = "benchlat"
base_url = "http://127.0.0.1:$port"
hashtags = ["saigon"]
poll_interval_ms = 1000
require_place = false
TOML
rm -rf "$work/state"
python3 testkit/fake_mastodon.py "$port" --texts "$DATA" --rate "$RATE" --seconds "$STREAM_SECONDS" & pids+=("$!")
declare -A stage_pid
for stage in store alert analyze; do
  "$BIN" --config "$work/config" "$stage" 2> "$work/$stage.log" & stage_pid[$stage]=$!; pids+=("$!")
done
wait_for_line "$work/analyze.log" "analyze consuming" 180
"$BIN" --config "$work/config" ingest 2> "$work/ingest.log" & stage_pid[ingest]=$!; pids+=("$!")
total=$(python3 -c "print(int($RATE * $STREAM_SECONDS) + 1)")
python3 - "$ch_url" "$db" "$total" "$RATE" "$STREAM_SECONDS" <<'PY'
import statistics, sys, time, urllib.request
url, db, total, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
query = f"SELECT id, toUInt64(created_at) * 1000 + created_ms FROM {db}.posts FORMAT TabSeparated".encode()
seen, published = {}, {}
deadline = time.time() + seconds + 120
while len(seen) < total and time.time() < deadline:
    now = time.time()
    try:
        rows = urllib.request.urlopen(url, data=query, timeout=10).read().decode().splitlines()
    except OSError:
        rows = []
    for row in rows:
        pid, ms = row.split("\t")
        if pid not in seen:
            seen[pid], published[pid] = now, int(ms) / 1000
    time.sleep(0.2)
start = min(published.values()) if published else 0
lat = sorted((seen[p] - published[p]) * 1000 for p in seen if published[p] >= start + 5)
if not lat:
    sys.exit(f"latency: no post reached ClickHouse ({len(seen)} of {total})")
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"latency at {rate:g} posts/s: p50 {p(0.5):.0f} ms p99 {p(0.99):.0f} ms max {lat[-1]:.0f} ms "
      f"({len(lat)} posts after 5 s of warm-up; {len(seen)} of {total} published posts stored)")
PY
for stage in ingest store alert; do
  name=$stage; [[ $stage == ingest ]] && name=ingest-crawl
  echo "peak RSS $name: $(peak_rss "${stage_pid[$stage]}") MB"
done
