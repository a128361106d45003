#!/usr/bin/env bash
# The analyze service's steady-state throughput against `citypulse eval` on the same posts
# (target: ≥ 0.9×). Posts: uit-vsfc dev as Post JSONL, replayed into a tansu broker by
# `citypulse ingest`; then `citypulse analyze` consumes them, and its /metrics counter is polled:
# rate = posts analysed between the first and the last counted post / elapsed (group join and model
# load excluded, as eval excludes model load). Release build; 2 threads; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=target/release/citypulse
DATA=${BENCH_DATA:-../shared/data/uit-vsfc/dev.tsv}
work=$root/target/bench/analyze
rm -rf "$work"; mkdir -p "$work/config"
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || cargo build --release --features onnx --bin citypulse
export ORT_DYLIB_PATH=$root/models/onnxruntime/libonnxruntime.so RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2

# Posts from the TSV's text column.
python3 benches/tsv_to_posts.py "$DATA" "$work/posts.jsonl"
n=$(wc -l < "$work/posts.jsonl")

# A config of our own: only the replay source, its own broker and ports.
cp config/*.toml "$work/config/"
cat > "$work/config/sources.toml" <<TOML
[[replay]]
name = "bench"
path = "$work/posts.jsonl"
posts_per_second = 0
TOML
export CITYPULSE_SERVICES_DIR=$work/services CITYPULSE_TANSU_PORT=${BENCH_KAFKA_PORT:-29192}
export CITYPULSE__KAFKA__BROKERS=127.0.0.1:$CITYPULSE_TANSU_PORT CITYPULSE__KAFKA__PARTITIONS=2
export CITYPULSE__INGEST__STATE_DIR=$work/state CITYPULSE__INGEST__METRICS_PORT=0
export CITYPULSE__ANALYZE__METRICS_PORT=${BENCH_METRICS_PORT:-29102} CITYPULSE__ANALYZE__THREADS=2
export CITYPULSE_AUTHOR_KEY=benchmark-author-key-not-secret
trap 'kill $apid 2>/dev/null || true; scripts/services.sh stop tansu >/dev/null 2>&1 || true' EXIT
scripts/services.sh start tansu
# ingest's peak resident memory: the child's ru_maxrss (KB), read by its parent.
python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stderr=open(sys.argv[1], "w"))
print(f"peak RSS ingest: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
sys.exit(r.returncode)' "$work/ingest.log" "$BIN" --config "$work/config" ingest
echo "replayed $n posts into tansu"

eval_json=$($BIN --config "$work/config" eval --data "$DATA" --json --threads 2 2>/dev/null)
eval_rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["posts_per_second"])' "$eval_json")

$BIN --config "$work/config" analyze --threads 2 2> "$work/analyze.log" & apid=$!
read -r first t0 now < <(python3 benches/poll_count.py --metric citypulse_analyze_posts_total \
  --url "http://127.0.0.1:$CITYPULSE__ANALYZE__METRICS_PORT/metrics" --until "$n" --pid "$apid" --every 0.2) \
  || { tail -20 "$work/analyze.log" >&2; exit 1; }
rate=$(python3 -c "print(($n - $first) / ($now - $t0))")
echo "peak RSS analyze: $(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$apid/status") MB"
python3 - "$rate" "$eval_rate" <<'PY'
import sys
rate, ev = float(sys.argv[1]), float(sys.argv[2])
print(f"| engine | posts/s |\n|---|---:|\n| citypulse eval (onnx fp32) | {ev:.1f} |\n| citypulse analyze via tansu | {rate:.1f} |")
print(f"analyze / eval = {rate / ev:.2f}x (target >= 0.9x): {'PASS' if rate / ev >= 0.9 else 'FAIL'}")
PY
