#!/usr/bin/env bash
# int8-other-cpu.sh - run model.int8.onnx on another x86-64 CPU's kernels, emulated, and compare.
#
# Why: onnxruntime picks its int8 GEMM kernel from CPUID (AVX2 u8s8 with saturating VPMADDUBSW,
# AVX-512 VNNI, AMX), so an int8 model can be accurate on one CPU and not on another. qemu-x86_64
# (Debian's qemu-user, TCG: AVX2 yes, AVX-512 no) reports the CPUID of the model named here, so
# onnxruntime takes that CPU's kernels. This embeds the check batch of scripts/check_model.py with
# model.int8.onnx natively and under emulation and prints both against model.onnx: with a recipe
# no kernel can saturate (check (e)) the two agree to ~1e-7. Slow (about 7 min on 2 cores); a
# developer's tool, not part of `make test`, which runs check (e) instead.
#
#   scripts/int8-other-cpu.sh [QEMU_CPU_MODEL]     (default EPYC-v1: AMD Zen 1, AVX2+FMA, no VNNI)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU_MODEL="${1:-EPYC-v1}"
PY="$ROOT/.local/venv-model/bin/python"
MD="$ROOT/models/multilingual-e5-small"
[ -x "$PY" ] && [ -f "$MD/model.int8.onnx" ] || { echo "run scripts/fetch-model.sh first" >&2; exit 2; }
if ! command -v qemu-x86_64 >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "needs qemu-user (apt-get install qemu-user)" >&2; exit 2; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
embed() {  # embed MODEL OUT.npy [runner...]: the check batch's pooled embeddings
    local model=$1 out=$2; shift 2
    "$@" "$PY" - "$ROOT" "$model" "$out" <<'PYEOF'
import os, sys
root, model, out = sys.argv[1:4]
sys.path.insert(0, os.path.join(root, "scripts"))
import numpy as np
import check_model as cm
from tokenizers import Tokenizer
tok = Tokenizer.from_file(os.path.join(root, "models", "multilingual-e5-small", "tokenizer.json"))
texts = cm.embed_texts(tok, *cm.read_data(os.path.join(root, "..", "shared", "data")), 50)
ids, mask = cm.batch_ids(tok, texts)
np.save(out, cm.pool(cm.onnx_embed(model, ids, mask), mask))
PYEOF
}
echo "[int8-other-cpu] embedding natively ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
embed "$MD/model.onnx" "$work/fp32.npy"
embed "$MD/model.int8.onnx" "$work/native.npy"
echo "[int8-other-cpu] embedding under qemu-x86_64 -cpu $CPU_MODEL (slow)"
embed "$MD/model.int8.onnx" "$work/emulated.npy" qemu-x86_64 -cpu "$CPU_MODEL" 2> >(grep -v "TCG doesn't support" >&2)
"$PY" - "$work" "$CPU_MODEL" <<'PYEOF'
import sys, numpy as np
work, cpu = sys.argv[1:3]
fp32, nat, emu = (np.load(f"{work}/{n}.npy") for n in ("fp32", "native", "emulated"))
for name, e in (("this CPU", nat), (f"qemu {cpu}", emu)):
    c = (fp32 * e).sum(1)
    print(f"[int8-other-cpu] int8 vs fp32 on {name}: cosine min {c.min():.5f} mean {c.mean():.5f}")
print(f"[int8-other-cpu] int8 on this CPU vs on {cpu}: cosine min {(nat * emu).sum(1).min():.7f}")
PYEOF
