#!/usr/bin/env bash
# `GET /api/v1/trends` latency on the stored posts (target: p95 ≤ 100 ms on 10M posts over 90 days).
# A benchmark, not a test. The request mix is the dashboard's (src/serve/assets/app.js `load` and
# `renderPlaces`, for the 24h/7d/30d periods, plus a custom 90-day range): by=topic hour over 24h,
# by=topic day over 7d/30d/90d, the previous-period requests, the by=source / by=topic&topic= series,
# by=place, with and without topic/place/source/sentiment filters. One client, sequential requests
# on a keep-alive connection (the page awaits its requests one by one); latency is measured
# client-side, request sent to body read. Each kind gets BENCH_N requests after one warm-up pass,
# in a shuffled order (fixed seed), filter values rotating over the stored topics/places/sources.
#
# Side by side (the baseline): the very SQL `Queries::trends` sends (store/src/query.rs; the client
# substitutes binds, so the text is fixed), POSTed straight to ClickHouse's HTTP interface with
# `default_format=RowBinary` as clickhouse-rs does; the difference is serve's own share (axum,
# params, clickhouse-rs decode, JSON). The warm-up pass checks that both give the same rows.
# Plus ClickHouse CPU (system.events User+SystemTimeMicroseconds delta, as store/benches/store.rs)
# and serve's process CPU (/proc/<pid>/stat) over each phase.
#
# Times are absolute, anchored at the end of the stored data (BENCH_UNTIL, RFC 3339, overrides), so
# a rerun on the same data asks the same questions whatever today's date is.
#
# Environment (defaults in brackets):
#   BENCH_CH_URL        reuse this ClickHouse [unset: start the bench one via scripts/services.sh with
#                       CITYPULSE_SERVICES_DIR=BENCH_SERVICES_DIR, HTTP BENCH_CH_HTTP_PORT, TCP
#                       BENCH_CH_TCP_PORT; stopped on exit unless it was already running]
#   BENCH_SERVICES_DIR  [/tmp/cp-bench-services]   BENCH_CH_HTTP_PORT [38123]   BENCH_CH_TCP_PORT [39000]
#   BENCH_DB            database with the posts and trend tables [cp_bench_alert_10m]
#   BENCH_SERVE_URL     reuse a running `citypulse serve` (must point at BENCH_DB) [unset: start one]
#   BENCH_SERVE_PORT    port of the serve started here [38180]
#   BENCH_BIN           citypulse binary [target/debug/citypulse; built if missing]
#   BENCH_SKIP_MIGRATE  1: do not run `citypulse migrate` on BENCH_DB first [0]
#   BENCH_N             measured requests per kind [9: 23 dashboard kinds ≈ 200 requests]
#   BENCH_EXTRA         1: also hourly 7d/30d by=topic (the API allows hourly up to 31 days; the page never asks;
#                       reported apart, not in the headline) [1]
#   BENCH_UNTIL         end of every range [end of the stored data]
#   BENCH_TOKEN         bearer token, when serve.token is configured
#   BENCH_TARGET_MS     [100]   BENCH_SEED [1]
# Example: benches/api_trends.sh      (or BENCH_N=30 BENCH_EXTRA=0 benches/api_trends.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${BENCH_BIN:-target/debug/citypulse}
DB=${BENCH_DB:-cp_bench_alert_10m}
work=${BENCH_WORK:-$root/target/bench/api_trends}
mkdir -p "$work"

export CITYPULSE_SERVICES_DIR=${BENCH_SERVICES_DIR:-/tmp/cp-bench-services}
export CITYPULSE_CH_HTTP_PORT=${BENCH_CH_HTTP_PORT:-38123} CITYPULSE_CH_TCP_PORT=${BENCH_CH_TCP_PORT:-39000}

started_ch=0 serve_pid=""
cleanup() {
  if [[ -n $serve_pid ]] && kill -0 "$serve_pid" 2>/dev/null; then
    kill "$serve_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$serve_pid" 2>/dev/null || true
  fi
  if [[ $started_ch == 1 ]]; then scripts/services.sh stop clickhouse >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ! -x $BIN ]]; then
  [[ ${BENCH_SKIP_BUILD:-0} == 1 ]] && { echo "no $BIN (BENCH_SKIP_BUILD=1)" >&2; exit 1; }
  cargo build --bin citypulse
fi

if [[ -n ${BENCH_CH_URL:-} ]]; then
  CH_URL=${BENCH_CH_URL%/}
else
  CH_URL=http://127.0.0.1:$CITYPULSE_CH_HTTP_PORT
  if ! scripts/services.sh status clickhouse >/dev/null 2>&1; then started_ch=1; fi
  scripts/services.sh start clickhouse
fi
export CITYPULSE__CLICKHOUSE__URL=$CH_URL CITYPULSE__CLICKHOUSE__DATABASE=$DB
chq() { curl -fsS "$CH_URL/" --data-binary "$1"; }
posts=$(chq "SELECT count() FROM $DB.posts")
cube=$(chq "SELECT sum(posts) FROM $DB.trends_daily WHERE topic = '*' AND place = '*'")
echo "ClickHouse $(chq 'SELECT version()') at $CH_URL, $DB: $posts posts, trends_daily total $cube"
[[ ${BENCH_SKIP_MIGRATE:-0} == 1 ]] || "$BIN" migrate > "$work/migrate.log" 2>&1 \
  || { echo "citypulse migrate failed; see $work/migrate.log" >&2; exit 1; }

if [[ -n ${BENCH_SERVE_URL:-} ]]; then
  SERVE_URL=${BENCH_SERVE_URL%/}
else
  port=${BENCH_SERVE_PORT:-38180}
  SERVE_URL=http://127.0.0.1:$port
  CITYPULSE__SERVE__LISTEN=127.0.0.1:$port "$BIN" serve > "$work/serve.log" 2>&1 & serve_pid=$!
fi
for i in $(seq 150); do
  curl -fsS -m 2 "$SERVE_URL/healthz" >/dev/null 2>&1 && break
  if [[ -n $serve_pid ]] && ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "serve exited; see $work/serve.log" >&2; tail -20 "$work/serve.log" >&2; exit 1
  fi
  (( i < 150 )) || { echo "serve at $SERVE_URL not healthy after 30 s" >&2; exit 1; }
  sleep 0.2
done
echo "serve at $SERVE_URL ($BIN${serve_pid:+, pid $serve_pid}); loadavg $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

BENCH_CH=$CH_URL BENCH_SERVE=$SERVE_URL BENCH_DB=$DB BENCH_SERVE_PID=$serve_pid BENCH_CONFIG=${CITYPULSE_CONFIG:-config} \
  python3 - <<'PY'
import datetime as dt, http.client, json, os, random, struct, sys, time, tomllib, urllib.parse
from zoneinfo import ZoneInfo

E = os.environ
CH, SERVE, DB = E["BENCH_CH"], E["BENCH_SERVE"], E["BENCH_DB"]
N = int(E.get("BENCH_N", "9"))
EXTRA = E.get("BENCH_EXTRA", "1") == "1"
TARGET = float(E.get("BENCH_TARGET_MS", "100"))
SERVE_PID = E.get("BENCH_SERVE_PID") or None
TOKEN = E.get("BENCH_TOKEN")
with open(os.path.join(E["BENCH_CONFIG"], "citypulse.toml"), "rb") as f:
    TZ = ZoneInfo(E.get("CITYPULSE__CITY__TIME_ZONE") or tomllib.load(f)["city"]["time_zone"])
UTC = dt.timezone.utc


class Conn:
    """One keep-alive HTTP connection; reconnects once if the server closed it."""
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.c.request(method, path, body, headers or {})
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                self.c.close(); self.c = None
                if attempt:
                    raise


ch_admin = Conn(CH)
def chq(sql):
    status, body = ch_admin.request("POST", "/", sql.encode())
    if status != 200:
        sys.exit(f"ClickHouse said {status}: {body[:500]!r}")
    return body.decode().strip()

def ch_cpu():
    return float(chq("SELECT toFloat64(sum(value)) / 1e6 FROM system.events "
                     "WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')") or 0)

def serve_cpu():
    if not SERVE_PID:
        return None
    with open(f"/proc/{SERVE_PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

# What is stored: the anchor and the ids to filter by.
if E.get("BENCH_UNTIL"):
    UNTIL = dt.datetime.fromisoformat(E["BENCH_UNTIL"].replace("Z", "+00:00")).astimezone(UTC)
else:
    end = int(chq(f"SELECT toUInt32(max(bucket)) + 3600 FROM {DB}.trends_hourly WHERE topic = '*' AND place = '*'"))
    UNTIL = dt.datetime.fromtimestamp(end, UTC)
def ids(col):
    return chq(f"SELECT DISTINCT {col} FROM {DB}.trends_daily WHERE {col} != '*' ORDER BY {col}").split("\n")
TOPICS, PLACES, SOURCES = ids("topic"), ids("place"), ids("source")
random.Random(7).shuffle(PLACES)

HOURS = {"24h": 24, "7d": 168, "30d": 720, "90d": 2160}

# (name, period, previous period?, by, granularity, filters(i) -> dict, extra?)
def f_none(i): return {}
def f_place(i): return {"place": PLACES[i % len(PLACES)]}
def f_source(i): return {"source": SOURCES[i % len(SOURCES)]}
def f_topic(i): return {"topic": TOPICS[i % len(TOPICS)]}
def f_topic_source(i): return {**f_topic(i), **f_source(i + 2)}
def f_place_source(i): return {**f_place(i), **f_source(i + 1)}
def f_neg(i): return {"sentiment": "negative"}
def f_topic_neg(i): return {**f_topic(i), "sentiment": ["negative", "positive"][i % 2]}
def f_place_neg(i): return {**f_place(i), "sentiment": "negative"}
KINDS = [
    ("24h topic/hour", "24h", False, "topic", "hour", f_none, False),
    ("24h topic/hour prev", "24h", True, "topic", "hour", f_none, False),
    ("24h topic/hour place", "24h", False, "topic", "hour", f_place, False),
    ("24h source/hour", "24h", False, "source", "hour", f_none, False),
    ("24h topic/hour topic=", "24h", False, "topic", "hour", f_topic, False),
    ("24h place/day", "24h", False, "place", "day", f_none, False),
    ("24h place/day prev", "24h", True, "place", "day", f_none, False),
    ("24h topic/hour place+sent", "24h", False, "topic", "hour", f_place_neg, False),
    ("7d topic/day", "7d", False, "topic", "day", f_none, False),
    ("7d topic/day prev", "7d", True, "topic", "day", f_none, False),
    ("7d topic/day source", "7d", False, "topic", "day", f_source, False),
    ("7d source/day", "7d", False, "source", "day", f_none, False),
    ("7d place/day topic", "7d", False, "place", "day", f_topic, False),
    ("7d place/day prev topic", "7d", True, "place", "day", f_topic, False),
    ("30d topic/day", "30d", False, "topic", "day", f_none, False),
    ("30d topic/day prev", "30d", True, "topic", "day", f_none, False),
    ("30d topic/day place+src", "30d", False, "topic", "day", f_place_source, False),
    ("30d source/day", "30d", False, "source", "day", f_none, False),
    ("30d place/day topic+src", "30d", False, "place", "day", f_topic_source, False),
    ("30d topic/day sent", "30d", False, "topic", "day", f_neg, False),
    ("90d topic/day", "90d", False, "topic", "day", f_none, False),
    ("90d place/day", "90d", False, "place", "day", f_none, False),
    ("90d topic/day topic+sent", "90d", False, "topic", "day", f_topic_neg, False),
]
if EXTRA:
    KINDS += [
        ("7d topic/hour", "7d", False, "topic", "hour", f_none, True),
        # Hourly buckets are refused past 31 days (serve.params), so the longest is 30 days.
        ("30d topic/hour", "30d", False, "topic", "hour", f_none, True),
    ]


def window(period, prev):
    span = dt.timedelta(hours=HOURS[period])
    until = UNTIL - span if prev else UNTIL
    return until - span, until

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

def sql_for(since, until, by, gran, flt):
    """The text Queries::trends (store/src/query.rs) sends, binds substituted as clickhouse-rs does."""
    q = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if gran == "hour":
        bucket, table = "toUInt32(bucket)", "trends_hourly"
        s_local = since.astimezone(TZ).replace(minute=0, second=0, microsecond=0)
        rng = f"bucket >= toDateTime({int(s_local.timestamp())}) AND bucket < toDateTime({int(until.timestamp())})"
    else:
        bucket, table = "toUInt32(toUInt16(day))", "trends_daily"
        u_local = until.astimezone(TZ)
        last = u_local.date() if u_local.time() == dt.time(0) else u_local.date() + dt.timedelta(days=1)
        rng = f"day >= toDate({q(since.astimezone(TZ).date().isoformat())}) AND day < toDate({q(last.isoformat())})"
    where = [rng]
    if by == "topic": where.append("topic != '*'")
    if by == "place": where.append("place != '*'")
    if by != "topic" or "topic" in flt: where.append(f"topic = {q(flt.get('topic', '*'))}")
    if by != "place" or "place" in flt: where.append(f"place = {q(flt.get('place', '*'))}")
    if "source" in flt: where.append(f"source = {q(flt['source'])}")
    if "sentiment" in flt: where.append(f"sentiment = {q(flt['sentiment'])}")
    return (f"SELECT {bucket} AS b, {by} AS k, sum(posts) AS n, sum(score_sum) AS s, "
            "sumIf(posts, sentiment = 'positive') AS pos, sumIf(posts, sentiment = 'neutral') AS neu, "
            f"sumIf(posts, sentiment = 'negative') AS neg FROM {DB}.{table} WHERE {' AND '.join(where)} "
            "GROUP BY b, k HAVING n != 0 ORDER BY b, k")

def request(kind, i):
    name, period, prev, by, gran, flt_of, extra = kind
    since, until = window(period, prev)
    flt = flt_of(i)
    params = {"since": iso(since), "until": iso(until), "by": by, "granularity": gran, **flt}
    return {"kind": name, "extra": extra, "path": "/api/v1/trends?" + urllib.parse.urlencode(params),
            "sql": sql_for(since, until, by, gran, flt)}

def rowbinary(body):
    """(rows, total posts) of RowBinary (u32, String, i64, f64, i64, i64, i64) rows."""
    rows = total = 0
    p = 0
    while p < len(body):
        p += 4
        n = shift = 0
        while True:
            b = body[p]; p += 1
            n |= (b & 0x7F) << shift; shift += 7
            if b < 0x80: break
        p += n
        total += struct.unpack_from("<q", body, p)[0]
        p += 8 * 5
        rows += 1
    return rows, total

serve_conn, ch_conn = Conn(SERVE), Conn(CH)
serve_headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}

def call_serve(r):
    t = time.perf_counter()
    status, body = serve_conn.request("GET", r["path"], headers=serve_headers)
    ms = (time.perf_counter() - t) * 1e3
    if status != 200:
        sys.exit(f"serve said {status} to {r['path']}: {body[:300]!r}")
    return ms, body

def call_ch(r):
    t = time.perf_counter()
    status, body = ch_conn.request("POST", "/?default_format=RowBinary", r["sql"].encode(),
                                   {"Content-Type": "text/plain"})
    ms = (time.perf_counter() - t) * 1e3
    if status != 200:
        sys.exit(f"ClickHouse said {status} to {r['sql']}: {body[:300]!r}")
    return ms, body

print(f"until {iso(UNTIL)} ({UNTIL.astimezone(TZ).isoformat()}), {len(TOPICS)} topics, {len(PLACES)} places, "
      f"{len(SOURCES)} sources; {len(KINDS)} kinds x {N} requests (+1 warm-up each)")

# Warm-up, and the check that the baseline asks what serve asks: same rows, same totals.
info = {}
for k in KINDS:
    r = request(k, 0)
    _, sbody = call_serve(r)
    _, cbody = call_ch(r)
    srows = json.loads(sbody)["rows"]
    s = (len(srows), sum(x["posts"] for x in srows))
    c = rowbinary(cbody)
    if s != c:
        sys.exit(f"{k[0]}: serve gave {s} (rows, posts), the reconstructed SQL {c}\n{r['path']}\n{r['sql']}")
    info[k[0]] = {"rows": s[0], "posts": s[1], "json_kb": len(sbody) / 1024, "rb_kb": len(cbody) / 1024}

schedule = [request(k, i) for i in range(1, N + 1) for k in KINDS]
random.Random(int(E.get("BENCH_SEED", "1"))).shuffle(schedule)

def phase(call):
    cpu0, scpu0, t0 = ch_cpu(), serve_cpu(), time.perf_counter()
    lat = {}
    for r in schedule:
        ms, _ = call(r)
        lat.setdefault(r["kind"], []).append(ms)
    wall = time.perf_counter() - t0
    cpu1, scpu1 = ch_cpu(), serve_cpu()
    return lat, wall, cpu1 - cpu0, (scpu1 - scpu0 if scpu0 is not None else None)

serve_lat, serve_wall, serve_ch_cpu, serve_own_cpu = phase(call_serve)
ch_lat, ch_wall, ch_ch_cpu, _ = phase(call_ch)

def pct(v, q):
    v = sorted(v)
    return v[round((len(v) - 1) * q)]

hdr = (f"{'kind':27} {'rows':>6} {'JSON kB':>8} | {'serve p50':>9} {'p95':>6} {'p99':>6} {'max':>6} "
       f"| {'CH p50':>6} {'p95':>6} {'max':>6} | {'serve-CH p50':>12}")
print("\nlatency in ms, client-side (serve: GET /api/v1/trends; CH: the same SQL over HTTP, RowBinary)")
print(hdr); print("-" * len(hdr))
for k in KINDS:
    n = k[0]; s, c, m = serve_lat[n], ch_lat[n], info[n]
    print(f"{n + (' *' if k[6] else ''):27} {m['rows']:6d} {m['json_kb']:8.1f} | {pct(s, .5):9.1f} {pct(s, .95):6.1f} "
          f"{pct(s, .99):6.1f} {max(s):6.1f} | {pct(c, .5):6.1f} {pct(c, .95):6.1f} {max(c):6.1f} "
          f"| {pct(s, .5) - pct(c, .5):12.1f}")
if EXTRA:
    print("* not asked by the dashboard (hourly over more than 48 h); outside the headline numbers")

def overall(lat, extra):
    return [x for k in KINDS if k[6] == extra for x in lat[k[0]]]
print()
for label, lat in (("serve /api/v1/trends", serve_lat), ("ClickHouse direct   ", ch_lat)):
    v = overall(lat, False)
    p95 = pct(v, .95)
    print(f"{label} dashboard mix, {len(v)} requests: p50 {pct(v, .5):.1f}  p95 {p95:.1f}  p99 {pct(v, .99):.1f}  "
          f"max {max(v):.1f} ms; p95 / {TARGET:.0f} ms target = {p95 / TARGET:.2f}x"
          + (f": {'PASS' if p95 <= TARGET else 'FAIL'}" if lat is serve_lat else ""))
    if EXTRA:
        v = overall(lat, True)
        print(f"{'':21} extra kinds, {len(v):4d} requests: p50 {pct(v, .5):.1f}  p95 {pct(v, .95):.1f}  max {max(v):.1f} ms")
nreq = len(schedule)
print(f"\nserve phase: {nreq} requests in {serve_wall:.1f} s; ClickHouse CPU {serve_ch_cpu:.2f} s "
      f"({serve_ch_cpu / nreq * 1e3:.1f} ms/request, {serve_ch_cpu / serve_wall * 100:.0f}% of a core)"
      + (f"; serve process CPU {serve_own_cpu:.2f} s ({serve_own_cpu / nreq * 1e3:.1f} ms/request)"
         if serve_own_cpu is not None else ""))
print(f"direct phase: {nreq} requests in {ch_wall:.1f} s; ClickHouse CPU {ch_ch_cpu:.2f} s "
      f"({ch_ch_cpu / nreq * 1e3:.1f} ms/request, {ch_ch_cpu / ch_wall * 100:.0f}% of a core)")
PY
# Peak resident memory of the serve started here (VmHWM), before the trap stops it.
if [[ -n $serve_pid ]] && [[ -r /proc/$serve_pid/status ]]; then
  echo "peak RSS serve: $(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$serve_pid/status") MB"
fi
