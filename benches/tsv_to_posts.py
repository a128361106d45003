#!/usr/bin/env python3
"""Posts for the benchmarks: the text column of a labelled TSV as Post JSONL (the Kafka envelope),
one post per row, all created now. Usage: tsv_to_posts.py IN.tsv OUT.jsonl"""

import datetime
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
lines = open(src, encoding="utf-8").read().splitlines()
col = lines[0].split("\t").index("text")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
with open(dst, "w", encoding="utf-8") as out:
    for i, line in enumerate(lines[1:]):
        post = {"schema_version": "1.0", "id": f"b{i}", "source": "bench", "author": f"{i:032x}",
                "text": line.split("\t")[col], "created_at": now, "fetched_at": now}
        out.write(json.dumps(post, ensure_ascii=False) + "\n")
