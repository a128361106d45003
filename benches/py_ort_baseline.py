#!/usr/bin/env python3
"""Python onnxruntime baseline for the classifier speed benchmark (benches/classifier_speed.sh).

Does the same per-post work as citypulse's onnx backend: NFC, "query: " prefix, tokenizers with
truncation at 128 tokens, fixed batches of --batch posts padded to the longest post in the batch
(pad id 1, mask 0), the encoder, mean pooling over the mask and L2 normalisation in numpy.

Timed: tokenisation + ordering + inference + pooling, after the tokenizer and the session are
loaded (load time excluded, as in `citypulse eval`).

  --order arrival  batches in file order
  --order sorted   the whole file sorted by token length first (fewer pad tokens)

Prints one JSON line: {"engine", "order", "rows", "posts_per_second", "seconds", ...}.
Run it with the model venv: .local/venv-model/bin/python benches/py_ort_baseline.py ...
"""

import argparse
import csv
import json
import os
import sys
import time
import unicodedata


def read_texts(path):
    """Texts of a TSV with a header row; the column named `text` (case-insensitive)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None:
            sys.exit(f"{path}: empty file")
        names = [h.strip().lower() for h in header]
        if "text" not in names:
            sys.exit(f"{path}: no `text` column in header {header}")
        col = names.index("text")
        texts = []
        for lineno, row in enumerate(rows, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if col >= len(row):
                sys.exit(f"{path}:{lineno}: {len(row)} columns, `text` is column {col + 1}")
            texts.append(row[col])
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="TSV with a header containing a `text` column")
    ap.add_argument("--model-dir", required=True, help="folder with tokenizer.json and the .onnx file")
    ap.add_argument("--model-file", default="model.onnx", help="ONNX file inside --model-dir (default model.onnx)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--batch", type=int, default=32, help="posts per batch (default 32)")
    ap.add_argument("--order", choices=["arrival", "sorted"], default="arrival")
    ap.add_argument("--max-tokens", type=int, default=128, help="truncation length incl. <s> and </s> (default 128)")
    args = ap.parse_args()

    # Keep every thread pool in the process at the requested size (tokenizers uses rayon).
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    texts = read_texts(args.data)
    if not texts:
        sys.exit(f"{args.data}: no rows")

    # --- load (not timed) ---
    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=args.max_tokens)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(
        os.path.join(args.model_dir, args.model_file), sess_options=so, providers=["CPUExecutionProvider"]
    )
    out_name = sess.get_outputs()[0].name
    pad_id = 1

    # --- timed: tokenisation, ordering, inference, pooling ---
    start = time.perf_counter()
    encs = tok.encode_batch(["query: " + unicodedata.normalize("NFC", t) for t in texts], add_special_tokens=True)
    ids = [e.ids for e in encs]
    order = list(range(len(ids)))
    if args.order == "sorted":
        order.sort(key=lambda i: len(ids[i]))
    embeddings = np.empty((len(ids), 0), dtype=np.float32)
    real_tokens = 0
    padded_tokens = 0
    for b in range(0, len(order), args.batch):
        idx = order[b : b + args.batch]
        width = max(len(ids[i]) for i in idx)
        input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            n = len(ids[i])
            input_ids[r, :n] = ids[i]
            mask[r, :n] = 1
            real_tokens += n
        padded_tokens += len(idx) * width
        hidden = sess.run([out_name], {"input_ids": input_ids, "attention_mask": mask})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        if embeddings.shape[1] == 0:
            embeddings = np.empty((len(ids), pooled.shape[1]), dtype=np.float32)
        embeddings[idx] = pooled
    seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "engine": "python-ort",
                "order": args.order,
                "rows": len(texts),
                "posts_per_second": len(texts) / max(seconds, 1e-9),
                "seconds": round(seconds, 4),
                "threads": args.threads,
                "batch": args.batch,
                "model_file": args.model_file,
                "real_tokens": real_tokens,
                "padded_tokens": padded_tokens,
                "onnxruntime": ort.__version__,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
