#!/usr/bin/env python3
"""A Mastodon hashtag timeline on 127.0.0.1 for benchmarks and chaos tests.

  fake_mastodon.py PORT --texts TEXTS.tsv --rate R --seconds S
      (benches/pipeline.sh) publishes R statuses a second for S seconds, starting at the first
      request (status 0 is published then, so the crawler has a cursor from its first page).
  fake_mastodon.py PORT --control
      (tests/chaos.rs) publishes what it is given: POST /_chaos/add with {"texts": [...], "rate": R}
      publishes those statuses at R a second from then; POST /_chaos/mode?m=normal|storm|hang turns
      the timeline into a 429/503 storm (7 requests in 10 fail, with Retry-After: 1) or a server
      that accepts requests and never answers, until the mode is normal again.

A status's `created_at` is the moment it is published (ms precision), so latency can be read as
the time a post is queryable minus `created_at`. Paging as the real API does it: `min_id` returns
the statuses right after it, newest first, `limit` at most 40, a `Link` header with `prev`
(min_id) and `next` (max_id). The JSON has the fields of a real status
(ingest/tests/fixtures/mastodon_tag_timeline.json).
"""

import argparse
import datetime
import http.server
import json
import random
import threading
import time
import urllib.parse

BASE_ID = 113_000_000_000_000_000


class Timeline:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = []  # (visible_at, text), in id order
        self.mode = "normal"
        self.bench = None  # (texts, rate, total) until the first request starts the bench stream

    def add(self, texts, rate, start=None):
        with self.lock:
            start = time.time() if start is None else start
            self.statuses += [(start + i / rate, t) for i, t in enumerate(texts)]

    def visible(self, now):
        with self.lock:
            if self.bench:
                texts, rate, total = self.bench
                self.bench = None
                self.statuses += [(now + i / rate, texts[i % len(texts)]) for i in range(total)]
            n = 0
            while n < len(self.statuses) and self.statuses[n][0] <= now:
                n += 1
            return n


def status(i, at, text):
    created = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sid = str(BASE_ID + i)
    user = f"user{i % 997}"
    return {
        "id": sid, "created_at": created, "in_reply_to_id": None, "in_reply_to_account_id": None,
        "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "vi",
        "uri": f"https://mastodon.bench.invalid/users/{user}/statuses/{sid}",
        "url": f"https://mastodon.bench.invalid/@{user}/{sid}",
        "replies_count": 0, "reblogs_count": 0, "favourites_count": i % 7, "edited_at": None,
        "content": f"<p>{text} #saigon</p>", "reblog": None,
        "application": {"name": "Web", "website": None},
        "account": {"id": str(100_000 + i % 997), "username": user, "acct": user, "display_name": user,
                    "locked": False, "bot": False, "discoverable": True, "group": False,
                    "created_at": "2022-11-14T00:00:00.000Z", "note": "", "url": f"https://mastodon.bench.invalid/@{user}",
                    "avatar": "", "followers_count": 1, "following_count": 1, "statuses_count": 1,
                    "last_status_at": "2026-12-01", "emojis": [], "fields": []},
        "media_attachments": [], "mentions": [], "emojis": [], "card": None, "poll": None,
        "tags": [{"name": "saigon", "url": "https://mastodon.bench.invalid/tags/saigon"}],
    }


def handler(timeline, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, body=b"", headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if url.path == "/_chaos/add":
                req = json.loads(body)
                timeline.add(req["texts"], float(req.get("rate", 15)))
            elif url.path == "/_chaos/mode":
                timeline.mode = urllib.parse.parse_qs(url.query)["m"][0]
            else:
                return self.reply(404)
            self.reply(204)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if not url.path.startswith("/api/v1/timelines/tag/"):
                return self.reply(404)
            if timeline.mode == "hang":
                while timeline.mode == "hang":
                    time.sleep(0.1)
                self.close_connection = True
                return
            if timeline.mode == "storm" and random.random() < 0.7:
                code = random.choice([429, 503])
                return self.reply(code, b'{"error":"Too many requests"}', [("Retry-After", "1")])
            q = urllib.parse.parse_qs(url.query)
            limit = min(40, int(q.get("limit", ["20"])[0]))
            n = timeline.visible(time.time())
            if "min_id" in q:
                first = int(q["min_id"][0]) - BASE_ID + 1
                ids = list(range(max(first, 0), min(first + limit, n)))
            else:
                ids = list(range(max(0, n - limit), n))
            with timeline.lock:
                page = [status(i, *timeline.statuses[i]) for i in reversed(ids)]
            headers = [("Content-Type", "application/json; charset=utf-8")]
            if ids:
                base = f"http://127.0.0.1:{port}{url.path}"
                headers.append(("Link", f'<{base}?max_id={BASE_ID + ids[0]}>; rel="next", '
                                        f'<{base}?min_id={BASE_ID + ids[-1]}>; rel="prev"'))
            self.reply(200, json.dumps(page, ensure_ascii=False).encode(), headers)

        def log_message(self, *args):
            pass

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--texts", help="TSV with a text column (bench mode)")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--control", action="store_true", help="chaos mode: statuses and faults by POST")
    args = ap.parse_args()
    timeline = Timeline()
    if args.texts:
        lines = open(args.texts, encoding="utf-8").read().splitlines()
        col = lines[0].split("\t").index("text")
        texts = [line.split("\t")[col] for line in lines[1:]]
        timeline.bench = (texts, args.rate, int(args.rate * args.seconds) + 1)
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(timeline, args.port)).serve_forever()


if __name__ == "__main__":
    main()
