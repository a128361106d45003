#!/usr/bin/env python3
"""Polls a count until it reaches N, from one process on one kept-alive connection.

The throughput benches used to poll from a bash loop, forking curl, date, awk and sleep 4-5 times
a second: the bench script and its children used 0.67 s of CPU over a ~12 s `citypulse run`, on
the two cores the model threads run on; with this poller, 0.22 s (the interpreter's start included).

    poll_count.py --url URL (--sql QUERY | --metric NAME) --until N [--pid PID] [--every S] [--timeout S]

--sql POSTs QUERY to a ClickHouse HTTP URL and reads one number; --metric GETs a Prometheus
/metrics page and sums the samples of NAME. Until the server answers the count reads as 0.
Prints "<first non-zero count> <its time> <time N was reached>" (Unix seconds); exits 1 with a
message if --timeout passes or process --pid ends first.
"""
import argparse
import http.client
import os
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql")
    what.add_argument("--metric")
    ap.add_argument("--until", type=int, required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--every", type=float, default=0.25)
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    url = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    def count():
        nonlocal conn
        try:
            if a.sql:
                conn.request("POST", url.path or "/", body=a.sql)
                return int(conn.getresponse().read() or 0)
            conn.request("GET", url.path or "/metrics")
            body = conn.getresponse().read().decode()
            return int(sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith(a.metric)))
        except (OSError, ValueError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            return 0

    first = t0 = None
    deadline = time.time() + a.timeout
    while (c := count()) < a.until:
        if first is None and c > 0:
            first, t0 = c, time.time()
        if time.time() > deadline:
            sys.exit(f"timed out at {c}/{a.until}")
        if a.pid:
            try:
                os.kill(a.pid, 0)
            except ProcessLookupError:
                sys.exit(f"process {a.pid} exited at {c}/{a.until}")
        time.sleep(a.every)
    now = time.time()
    print(first if first is not None else c, t0 if t0 is not None else now, now)


if __name__ == "__main__":
    main()
