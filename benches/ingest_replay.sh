#!/usr/bin/env bash
# Replay → Kafka throughput of the ingest path (decode + validate + key + idempotent lz4 producer
# with acks=all) into librdkafka's in-process MockCluster. Target: ≥ 100,000 posts/s.
# Usage: benches/ingest_replay.sh [POSTS]   (default 200000; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p ingest --example replay_bench -- "${1:-200000}"
