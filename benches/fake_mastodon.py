#!/usr/bin/env python3
"""A Mastodon hashtag timeline on 127.0.0.1 that publishes statuses at a steady rate, for the
crawl-to-queryable latency bench (benches/pipeline.sh).

Usage: fake_mastodon.py PORT TEXTS.tsv RATE SECONDS

Status i is published at t0 + i / RATE, where t0 is the first request (status 0 is published then,
so the crawler has a cursor from its first page and never starts past a backlog). Its `created_at`
is that moment (ms precision): the bench reads latency as the time the post is queryable minus
`created_at`. Paging as the real API does it: `min_id` returns the statuses right after it, newest
first, `limit` at most 40; a `Link` header with `prev` (min_id) and `next` (max_id). The JSON has
the fields of a real status (see ingest/tests/fixtures/mastodon_tag_timeline.json). After SECONDS
nothing more is published; the server keeps answering until killed.
"""

import datetime
import http.server
import json
import sys
import threading
import time
import urllib.parse

PORT, TEXTS, RATE, SECONDS = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
BASE_ID = 113_000_000_000_000_000
lines = open(TEXTS, encoding="utf-8").read().splitlines()
text_col = lines[0].split("\t").index("text")
texts = [line.split("\t")[text_col] for line in lines[1:]]
TOTAL = int(RATE * SECONDS) + 1
t0 = None
lock = threading.Lock()


def published_count(now):
    return min(TOTAL, int((now - t0) * RATE) + 1)


def status(i):
    at = t0 + i / RATE
    created = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sid = str(BASE_ID + i)
    user = f"user{i % 997}"
    return {
        "id": sid, "created_at": created, "in_reply_to_id": None, "in_reply_to_account_id": None,
        "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "vi",
        "uri": f"https://mastodon.bench.invalid/users/{user}/statuses/{sid}",
        "url": f"https://mastodon.bench.invalid/@{user}/{sid}",
        "replies_count": 0, "reblogs_count": 0, "favourites_count": i % 7, "edited_at": None,
        "content": f"<p>{texts[i % len(texts)]} #saigon</p>", "reblog": None,
        "application": {"name": "Web", "website": None},
        "account": {"id": str(100_000 + i % 997), "username": user, "acct": user, "display_name": user,
                    "locked": False, "bot": False, "discoverable": True, "group": False,
                    "created_at": "2022-11-14T00:00:00.000Z", "note": "", "url": f"https://mastodon.bench.invalid/@{user}",
                    "avatar": "", "followers_count": 1, "following_count": 1, "statuses_count": 1,
                    "last_status_at": "2026-12-01", "emojis": [], "fields": []},
        "media_attachments": [], "mentions": [], "emojis": [], "card": None, "poll": None,
        "tags": [{"name": "saigon", "url": "https://mastodon.bench.invalid/tags/saigon"}],
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global t0
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith("/api/v1/timelines/tag/"):
            self.send_error(404)
            return
        q = urllib.parse.parse_qs(url.query)
        limit = min(40, int(q.get("limit", ["20"])[0]))
        with lock:
            if t0 is None:
                t0 = time.time()
        n = published_count(time.time())
        if "min_id" in q:
            first = int(q["min_id"][0]) - BASE_ID + 1
            ids = list(range(max(first, 0), min(first + limit, n)))
        else:
            ids = list(range(max(0, n - limit), n))
        page = [status(i) for i in reversed(ids)]
        body = json.dumps(page, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if ids:
            base = f"http://127.0.0.1:{PORT}{url.path}"
            self.send_header("Link", f'<{base}?max_id={BASE_ID + ids[0]}>; rel="next", '
                                     f'<{base}?min_id={BASE_ID + ids[-1]}>; rel="prev"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
