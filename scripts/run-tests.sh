#!/usr/bin/env bash
# `make test`: the whole suite from a clean checkout. Fetches the model, starts ClickHouse, tansu and
# a two-replica ClickHouse cluster (stopped again on any exit, failure included), runs fmt + clippy,
# then every test of the workspace with the onnx backend built, and prints how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite_start=$(date +%s)
timed() { "$root/scripts/timed.sh" "$@"; }

# Test services live in their own folder and ports so they never touch a developer's running ones.
export CITYPULSE_SERVICES_DIR="${CITYPULSE_SERVICES_DIR:-$root/.local/test-services}"
export CITYPULSE_CLUSTER_DIR="${CITYPULSE_CLUSTER_DIR:-$root/.local/test-cluster}"
stop_services() {
  "$root/scripts/services.sh" stop all >/dev/null 2>&1 || true
  "$root/scripts/cluster.sh" stop >/dev/null 2>&1 || true
}
trap stop_services EXIT

if [ -x scripts/fetch-model.sh ]; then
  timed "models" scripts/fetch-model.sh
fi
timed "services" scripts/services.sh start all
# The store's exactness suite runs again on a replicated ClickHouse (ZooKeeper + two replicas).
timed "cluster" scripts/cluster.sh start
eval "$(scripts/services-env.sh)"
eval "$(scripts/cluster.sh env)"
eval "$(scripts/test-tools.sh)"
export CITYPULSE_REQUIRE_SERVICES=1 CITYPULSE_REQUIRE_MODEL=1
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$root/models/onnxruntime/libonnxruntime.so}"

features="${CARGO_FEATURES:-onnx}"
# The suite is one build from a clean clone: incremental caches would only cost disk (GBs on CI,
# which once ran out of it), never time. A developer's own cargo runs keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
scripts/check-disk.sh "${CARGO_TARGET_DIR:-$root/target}" 5
timed "fmt" cargo fmt --all --check
timed "clippy" cargo clippy --workspace --all-targets --features "$features" -- -D warnings
if command -v cargo-nextest >/dev/null 2>&1; then
  timed "tests" cargo nextest run --workspace --features "$features" --no-fail-fast
else
  timed "tests" cargo test --workspace --features "$features" --no-fail-fast
fi
echo "==> make test: all phases passed in $(( $(date +%s) - suite_start )) s"
