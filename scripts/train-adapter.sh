#!/usr/bin/env bash
# train-adapter.sh - fine-tune the low-rank adapter of the tuned encoder (issue #22).
#
#   scripts/train-adapter.sh [--out DIR] [extra options of scripts/train_adapter.py]
#
# 1. .local/venv-train from scripts/requirements-train.txt (torch, transformers; ~5.6 GB, once);
# 2. `citypulse training-tokens`: uit-vsfc train, AIVIVN train and the written city posts as token
#    ids, through the classifier's own text path, with train-head's held-out tenth marked (never
#    city_posts_dev.tsv: the command refuses it);
# 3. scripts/train_adapter.py: seeded, resumable (rerun the same command after an interruption: it
#    continues from DIR/run/checkpoint.pt), a progress line with ETA, held-out scores twice an
#    epoch (the learning curve in DIR/training.json); the best evaluation's adapter is kept.
# Then copy DIR/adapter.safetensors and training.json to models/adapter/, run
# scripts/fetch-model.sh (merges it into models/multilingual-e5-small-tuned) and retrain the heads
# on the tuned encoder (models/adapter/README.md has the commands).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CITYPULSE_TRAIN_VENV:-$ROOT/.local/venv-train}"
OUT="$ROOT/.local/adapter/run"  # fixed, so rerunning the same command resumes
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
say() { echo "[train-adapter] $*"; }
REQ="$ROOT/scripts/requirements-train.txt"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$(sha256sum "$REQ" | cut -d' ' -f1)" ]; then
    say "creating $VENV (torch and its CUDA wheels: ~3 GB download, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
    sha256sum "$REQ" | cut -d' ' -f1 > "$VENV/.requirements.sha256"
fi
"$ROOT/scripts/fetch-model.sh"
mkdir -p "$OUT"
say "token ids of the training files -> $OUT/tokens.jsonl"
( cd "$ROOT" && cargo run --quiet --release --bin citypulse -- training-tokens \
    --data ../shared/data/uit-vsfc/train.tsv --data ../shared/data/aivivn/train.tsv \
    --data models/heads/training/city_posts_train.tsv --out "$OUT/tokens.jsonl" )
say "training (CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads)"
"$VENV/bin/python" "$ROOT/scripts/train_adapter.py" --tokens "$OUT/tokens.jsonl" \
    --model-dir "$ROOT/models/multilingual-e5-small" --out "$OUT" "${ARGS[@]}"
say "adapter: $OUT/adapter.safetensors; learning curve: $OUT/training.json"
