#!/usr/bin/env bash
# fetch-libtorch.sh - a CPU libtorch 2.4.0 folder for the `torch` backend, from PyPI wheels.
#
# Why: rust-bert 0.23 pins tch 0.17, which needs libtorch 2.4.0 exactly. libtorch's own archive
# cannot be downloaded here; PyPI's torch==2.4.0 wheel (the CUDA build: PyPI has no CPU-only one)
# carries the same C++ libraries. Only the CPU ones are kept:
#   lib/libtorch_cpu.so, lib/libc10.so, lib/libgomp-a34b3233.so.1     from torch-2.4.0 (cp311 wheel)
#   lib/libcudart.so.12                                                from nvidia-cuda-runtime-cu12
#   lib/libcupti.so.12                                                 from nvidia-cuda-cupti-cu12
#   include/                                                           from torch-2.4.0
#   lib/libtorch.so       built here: an empty library that needs libtorch_cpu.so, as in libtorch's
#                         CPU archive. The wheel's own libtorch.so also needs libtorch_cuda.so
#                         (860 MB), and torch-sys links -ltorch.
#   build-version         "2.4.0+cu121", which torch-sys checks against the version tch expects.
# libtorch_cpu.so names libcudart and libcupti as needed libraries (the profiler, kineto, is built
# with CUPTI): both load without a GPU and are only called when CUDA is used, which nothing here does.
#
# Output: models/libtorch/ (LIBTORCH for the build; binaries find lib/ through their rpath).
# Build with: LIBTORCH=models/libtorch LIBTORCH_CXX11_ABI=0 cargo build --features torch
# (the wheels are built with the pre-C++11 ABI, and torch-sys assumes the other one unless told).
# Idempotent: a second run with a current folder returns at once; --force rebuilds it. The wheels
# (~812 MB) are downloaded with pinned sha256 into .local/torch-wheels/ and deleted once unpacked.
set -euo pipefail

TORCH_VERSION=2.4.0
TORCH_WHEEL=torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl
TORCH_SHA256=e743adadd8c8152bb8373543964551a7cb7cc20ba898dc8f9c0cdbe47c283de0
CUDART_WHEEL=nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl
CUDART_SHA256=6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40
CUPTI_WHEEL=nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl
CUPTI_SHA256=e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/models/libtorch"
WHEELS="$ROOT/.local/torch-wheels"
STAMP_VALUE="$TORCH_SHA256 $CUDART_SHA256 $CUPTI_SHA256 $(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch-libtorch: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { echo "[fetch-libtorch] $*"; }
die() { echo "[fetch-libtorch] ERROR: $*" >&2; exit 1; }

if [ "$FORCE" = 0 ] && [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP_VALUE" ]; then
    say "models/libtorch is current ($(du -sh "$OUT" | cut -f1)); --force rebuilds it"
    exit 0
fi

# pip picks the wheel by name; --python-version and --platform make it the cp311 one on any host.
fetch() { # fetch SPEC WHEEL SHA256
    local spec=$1 wheel=$2 want=$3
    if [ ! -f "$WHEELS/$wheel" ] || [ "$(sha256sum "$WHEELS/$wheel" | cut -d' ' -f1)" != "$want" ]; then
        rm -f "$WHEELS/$wheel"
        say "downloading $spec (pip)"
        python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
            --platform manylinux1_x86_64 -d "$WHEELS" "$spec" || die "pip download $spec failed"
    fi
    [ -f "$WHEELS/$wheel" ] || die "pip download $spec did not produce $wheel"
    local got
    got=$(sha256sum "$WHEELS/$wheel" | cut -d' ' -f1)
    [ "$got" = "$want" ] || die "$wheel: sha256 $got, expected $want"
}

mkdir -p "$WHEELS"
T0=$(date +%s)
fetch "torch==$TORCH_VERSION" "$TORCH_WHEEL" "$TORCH_SHA256"
fetch "nvidia-cuda-runtime-cu12==12.1.105" "$CUDART_WHEEL" "$CUDART_SHA256"
fetch "nvidia-cuda-cupti-cu12==12.1.105" "$CUPTI_WHEEL" "$CUPTI_SHA256"
say "wheels verified ($(( $(date +%s) - T0 )) s)"

STAGE="$OUT.partial"
rm -rf "$STAGE" && mkdir -p "$STAGE/lib" "$STAGE/unzip"
unzip -q "$WHEELS/$TORCH_WHEEL" 'torch/lib/libtorch_cpu.so' 'torch/lib/libc10.so' \
    'torch/lib/libgomp-a34b3233.so.1' 'torch/include/*' -d "$STAGE/unzip"
unzip -q -j "$WHEELS/$CUDART_WHEEL" 'nvidia/cuda_runtime/lib/libcudart.so.12' -d "$STAGE/lib"
unzip -q -j "$WHEELS/$CUPTI_WHEEL" 'nvidia/cuda_cupti/lib/libcupti.so.12' -d "$STAGE/lib"
mv "$STAGE/unzip/torch/lib/"* "$STAGE/lib/"
mv "$STAGE/unzip/torch/include" "$STAGE/include"
rm -rf "$STAGE/unzip"
echo "" | gcc -shared -x c - -o "$STAGE/lib/libtorch.so" -L"$STAGE/lib" -Wl,--no-as-needed -ltorch_cpu -lc10 \
    -Wl,-rpath,'$ORIGIN' || die "building the CPU libtorch.so failed"
echo "$TORCH_VERSION+cu121" > "$STAGE/build-version"
# Every library the CPU ones need must resolve inside the folder or from the system.
missing=$(LD_LIBRARY_PATH="$STAGE/lib" ldd "$STAGE/lib/libtorch.so" | grep 'not found' || true)
[ -z "$missing" ] || die "unresolved libraries: $missing"
echo "$STAMP_VALUE" > "$STAGE/.stamp"
rm -rf "$OUT" && mv "$STAGE" "$OUT"
rm -f "$WHEELS/$TORCH_WHEEL" "$WHEELS/$CUDART_WHEEL" "$WHEELS/$CUPTI_WHEEL"
say "models/libtorch ready: $(du -sh "$OUT" | cut -f1) (lib $(du -sh "$OUT/lib" | cut -f1)," \
    "include $(du -sh "$OUT/include" | cut -f1)) in $(( $(date +%s) - T0 )) s"
