#!/usr/bin/env bash
# Saved searches on the big table (target: a search's 90-day series in ≤ 1 s on 10M posts over
# 90 days). A benchmark, not a test. Five searches of different shapes are saved through the API
# (an accented word, an unaccented word, a phrase, OR/NOT with parentheses, a word in two places);
# for each, BENCH_N rounds of:
#   cold    the series over the last 90 days, by day, with the search cache emptied first
#           (TRUNCATE search_cache): the scan of the posts' search columns;
#   warm    the same request again BENCH_N times: the cache answers, and today is recomputed;
#   posts   the first page (50) of the posts behind it;
# and the saves themselves (POST, which computes the last 90 days before answering).
# Side by side, in the same run (the baseline): what one writes without the search columns,
# positionCaseInsensitiveUTF8 on text_redacted for each word, straight to ClickHouse (no whole
# words, no diacritic rules, no NOT: other matches, so only its time is comparable).
# Latency is client-side, request sent to body read; p50/p95 over all searches.
#
# The big table comes from alert/benches/evaluate.rs (benches/all.py builds it). A table written
# before migration 008 is re-indexed first (`citypulse searches reindex`, timed).
#
# Environment (defaults in brackets):
#   BENCH_CH_URL   reuse this ClickHouse [unset: start the bench one via scripts/services.sh]
#   BENCH_SERVICES_DIR [/tmp/cp-bench-services]  BENCH_CH_HTTP_PORT [38123]  BENCH_CH_TCP_PORT [39000]
#   BENCH_DB       [cp_bench_alert_10m]     BENCH_BIN [target/debug/citypulse; built if missing]
#   BENCH_N        rounds per search [3]    BENCH_SERVE_PORT [38181]   BENCH_TARGET_MS [1000]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${BENCH_BIN:-target/debug/citypulse}
DB=${BENCH_DB:-cp_bench_alert_10m}
work=${BENCH_WORK:-$root/target/bench/search_api}
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

[[ -x $BIN ]] || cargo build --bin citypulse
if [[ -n ${BENCH_CH_URL:-} ]]; then
  CH_URL=${BENCH_CH_URL%/}
else
  CH_URL=http://127.0.0.1:$CITYPULSE_CH_HTTP_PORT
  if ! scripts/services.sh status clickhouse >/dev/null 2>&1; then started_ch=1; fi
  scripts/services.sh start clickhouse
fi
export CITYPULSE__CLICKHOUSE__URL=$CH_URL CITYPULSE__CLICKHOUSE__DATABASE=$DB
chq() { curl -fsS "$CH_URL/" --data-binary "$1"; }
echo "ClickHouse $(chq 'SELECT version()') at $CH_URL, $DB: $(chq "SELECT sum(sign) FROM $DB.posts") posts"
"$BIN" migrate > "$work/migrate.log" 2>&1 || { echo "citypulse migrate failed; see $work/migrate.log" >&2; exit 1; }
unindexed=$(chq "SELECT greatest(sum(sign), 0) FROM $DB.posts WHERE search_index = 0")
if [[ $unindexed != 0 ]]; then
  echo "$unindexed posts predate the search columns: citypulse searches reindex"
  /usr/bin/time -f "reindex: %e s wall, %M kB peak RSS" "$BIN" searches reindex 2> "$work/reindex.log" | tail -1
  tail -1 "$work/reindex.log"
fi

port=${BENCH_SERVE_PORT:-38181}
SERVE_URL=http://127.0.0.1:$port
CITYPULSE__SERVE__LISTEN=127.0.0.1:$port "$BIN" serve > "$work/serve.log" 2>&1 & serve_pid=$!
for i in $(seq 150); do
  curl -fsS -m 2 "$SERVE_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "serve exited; see $work/serve.log" >&2; exit 1; }
  (( i < 150 )) || { echo "serve not healthy after 30 s" >&2; exit 1; }
  sleep 0.2
done
# serve warms the configured searches' series at start: measure after, not against it.
for i in $(seq 600); do
  grep -q "saved searches warmed" "$work/serve.log" && break
  (( i < 600 )) || { echo "serve did not finish warming in 120 s" >&2; exit 1; }
  sleep 0.2
done
echo "serve at $SERVE_URL ($BIN, pid $serve_pid); $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
grep -o 'saved searches warmed.*' "$work/serve.log" | head -1 | sed 's/\x1b\[[0-9;]*m//g'

BENCH_CH=$CH_URL BENCH_SERVE=$SERVE_URL BENCH_DB=$DB python3 - <<'PY'
import datetime as dt, http.client, json, os, sys, time, urllib.parse

E = os.environ
CH, SERVE, DB = E["BENCH_CH"], E["BENCH_SERVE"], E["BENCH_DB"]
N = int(E.get("BENCH_N", "3"))
TARGET = float(E.get("BENCH_TARGET_MS", "1000"))

def request(base, method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    t = time.perf_counter()
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t) * 1e3
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return ms, data

def chq(sql):
    return request(CH, "POST", "/", sql.encode())[1].decode().strip()

# The end of the stored data anchors the 90 days, so reruns ask the same question.
until = dt.datetime.fromtimestamp(int(chq(f"SELECT toUInt32(max(created_at)) + 1 FROM {DB}.posts")), dt.timezone.utc)
since = until - dt.timedelta(days=90)
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
rng = f"since={iso(since)}&until={iso(until)}"

SEARCHES = [
    ("bench_accented", "ngập", []),
    ("bench_unaccented", "ket xe", []),
    ("bench_phrase", '"giải pháp lâu dài"', []),
    ("bench_boolean", '(ngập OR "kẹt xe" OR flood) NOT ("tin giả" OR cháy)', []),
    ("bench_places", "ngập OR mưa", ["district_7", "thu_duc"]),
]
# The LIKE baseline's words per search (any of them, case-insensitive substring of the text).
LIKE = {"bench_accented": ["ngập"], "bench_unaccented": ["kẹt xe"], "bench_phrase": ["giải pháp lâu dài"],
        "bench_boolean": ["ngập", "kẹt xe", "flood"], "bench_places": ["ngập", "mưa"]}
saves = []
for name, query, places in SEARCHES:
    body = json.dumps({"name": name, "query": query, "places": places}).encode()
    # A save answers once the search's last 90 days are cached: it costs the cold scan.
    saves.append(request(SERVE, "POST", "/api/v1/searches", body, {"Content-Type": "application/json"})[0])

def pct(v, q):
    v = sorted(v)
    return v[round((len(v) - 1) * q)]

cold, warm, posts, like = [], [], [], []
cold_of = {}
found = {}
for r in range(N):
    for name, _, _ in SEARCHES:
        chq(f"TRUNCATE TABLE {DB}.search_cache")
        ms, body = request(SERVE, "GET", f"/api/v1/searches/{name}/trends?{rng}&granularity=day")
        cold.append(ms)
        cold_of.setdefault(name, []).append(ms)
        rows = json.loads(body)["rows"]
        found[name] = sum(x["posts"] for x in rows)
        for _ in range(N):
            ms, body2 = request(SERVE, "GET", f"/api/v1/searches/{name}/trends?{rng}&granularity=day")
            warm.append(ms)
            if json.loads(body2)["rows"] != rows:
                sys.exit(f"{name}: the cached series differs from the computed one")
        ms, _ = request(SERVE, "GET", f"/api/v1/searches/{name}/posts?{rng}&limit=50")
        posts.append(ms)
        # The baseline: LIKE on the texts, straight to ClickHouse.
        words = " OR ".join(f"positionCaseInsensitiveUTF8(text_redacted, '{w}') > 0" for w in LIKE[name])
        sql = (f"SELECT toDate(created_at, 'Asia/Ho_Chi_Minh') AS d, sum(sign), sumIf(sign, sentiment = 'negative') "
               f"FROM {DB}.posts WHERE ({words}) AND created_at >= toDateTime({int(since.timestamp())}) "
               f"AND created_at < toDateTime({int(until.timestamp())}) AND created_at_estimated = 0 GROUP BY d FORMAT Null")
        like.append(request(CH, "POST", "/", sql.encode())[0])

print(f"\n90 days until {iso(until)}; {len(SEARCHES)} searches × {N} rounds; posts found per search: "
      + ", ".join(f"{k} {v}" for k, v in found.items()))
print("cold series by search (median ms): " + ", ".join(f"{k} {pct(v, .5):.0f}" for k, v in cold_of.items()))
print(f"{'':28} {'p50':>8} {'p95':>8} {'max':>8}  (ms, client-side)")
for label, v in (("save (computes 90 days)", saves), ("cold series (no cache)", cold), ("warm series (cached)", warm), ("posts, first page", posts),
                 ("LIKE on texts (baseline)", like)):
    if v:
        print(f"{label:28} {pct(v, .5):8.0f} {pct(v, .95):8.0f} {max(v):8.0f}")
print(f"\nsearch 90d series: warm p95 {pct(warm, .95):.0f} ms, cold p95 {pct(cold, .95):.0f} ms; "
      f"target {TARGET:.0f} ms: warm {'PASS' if pct(warm, .95) <= TARGET else 'FAIL'}, "
      f"cold {'PASS' if pct(cold, .95) <= TARGET else 'FAIL'}; "
      f"LIKE baseline p50 {pct(like, .5):.0f} ms = {pct(like, .5) / pct(warm, .95):.1f}x the warm p95, "
      f"{pct(like, .5) / pct(cold, .5):.2f}x the cold p50")
for name, _, _ in SEARCHES:
    request(SERVE, "DELETE", f"/api/v1/searches/{name}")
PY
