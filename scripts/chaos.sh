#!/usr/bin/env bash
# `make chaos`: the pipeline under faults (tests/chaos.rs) and the parsers under fuzzed input.
#
#   make chaos                       each fault once, on a ClickHouse and a broker of its own (~7 min)
#   make chaos CYCLES=N [SEED=S] [FROM=K]
#                                    N randomized cycles (seed printed; FROM re-runs from cycle K)
#   FUZZ_CASES=N                     proptest cases per fuzz target [200000]; 0 skips the fuzzing
#
# The fuzzing: every source parser and the message decoder over arbitrary bytes and over mutated
# real responses (proptest; no nightly toolchain here for cargo-fuzz), bounded to 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
timed() { "$root/scripts/timed.sh" "$@"; }

timed "models" scripts/fetch-model.sh
eval "$(scripts/test-tools.sh)"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$root/models/onnxruntime/libonnxruntime.so}"
export CITYPULSE_REQUIRE_MODEL=1 CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
features="${CARGO_FEATURES:-onnx}"

if [[ -n ${CYCLES:-} ]]; then
  export CHAOS_CYCLES=$CYCLES CHAOS_SEED=${SEED:-} CHAOS_FROM=${FROM:-1}
  timed "chaos cycles" cargo test --features "$features" --test chaos -- --ignored --nocapture --exact randomized_cycles
else
  # Each fault once. (a_broker_that_loses_everything is left out: see its comment in tests/chaos.rs.)
  timed "chaos, each fault once" cargo test --features "$features" --test chaos -- \
    --ignored --nocapture --exact every_fault_once
fi

cases=${FUZZ_CASES:-200000}
if [[ $cases != 0 ]]; then
  # The same build as make test's (features unified over the workspace): nothing to rebuild.
  timed "fuzz build" cargo test -q --workspace --features "$features" --no-run
  PROPTEST_CASES=$cases timed "fuzz (${cases} cases a target)" timeout 300 \
    cargo test -q --workspace --features "$features" -- never_panic
fi
