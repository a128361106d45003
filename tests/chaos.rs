//! Faults in a row with nothing lost and nothing counted twice. The pipeline runs as separate
//! processes (ingest replaying a stream of known posts, analyze ×2, store, alert) on ClickHouse and
//! a Kafka-protocol broker (tansu); each cycle streams 150 new posts, faults hit it, and then the
//! check of `chaos_kit::check` runs: every post counted exactly once in posts and both trend tables,
//! the DLQ holding exactly the poisoned messages with their kinds, every consumer group committed to
//! the end of its topic, no process dead that nobody killed.
//!
//! - `faults_in_a_row_lose_and_double_nothing` (make test, the short form): on the test services,
//!   the faults that hurt no other test: SIGKILLs, poison, a detached table, and a cycle of crawled
//!   posts (a Mastodon timeline on 127.0.0.1) hit by a 429/503 storm and a server that hangs.
//! - `every_fault_once` (make chaos): on a ClickHouse and a Kafka broker of its own (librdkafka's
//!   mock cluster in this process, reached over TCP), each fault once, ClickHouse SIGKILLed and down
//!   for 15 s and the broker down for 15 s (back with its data) included.
//! - `randomized_cycles` (make chaos CYCLES=N SEED=S FROM=K): N cycles of one or two random faults
//!   each, reproducible from the printed seed; FROM re-runs a failed cycle's sequence from it.

mod chaos_kit;
mod common;

use chaos_kit::check::{clickhouse, Expected};
use chaos_kit::faults::Fault;
use chaos_kit::pipeline::{Pipeline, Services};
use chaos_kit::{random_faults, Broker, OwnServices, Run};
use std::time::Duration;

fn model_ready() -> bool {
    let ok = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/heads/sentiment/head.json").exists()
        && std::env::var_os("ORT_DYLIB_PATH").is_some();
    if !ok {
        assert!(std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(), "model, heads or ORT_DYLIB_PATH missing");
        eprintln!("skipped: model not fetched (make test fetches it)");
    }
    ok
}

fn sec(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn kill(process: &'static str) -> Fault {
    Fault::Kill { process, after: sec(1) }
}

/// A pipeline on a ClickHouse and a broker of its own.
fn own_run(broker: Broker) -> Run {
    let name = common::unique_name("chaos");
    let own = OwnServices::start(std::env::temp_dir().join(format!("{name}_services")), &name, broker);
    let services = Services { brokers: own.brokers.clone(), clickhouse: own.clickhouse_url.clone() };
    Run::start(Pipeline::new(&name, services), Expected::default(), Some(own))
}

fn drop_run(run: Run) {
    let (url, name) = (run.pipeline.services.clickhouse.clone(), run.pipeline.name.clone());
    drop(run);
    let _ = clickhouse(&url, &format!("DROP DATABASE IF EXISTS {name}"));
}

#[test]
fn faults_in_a_row_lose_and_double_nothing() {
    let (Some(ch), Some(brokers)) = (common::clickhouse_url(), common::kafka_brokers()) else { return };
    if !model_ready() {
        return;
    }
    let name = common::unique_name("chaos");
    let pipeline = Pipeline::new(&name, Services { brokers, clickhouse: ch });
    let mut run = Run::start(pipeline, Expected::default(), None);
    let cycles: [&[(Duration, Fault)]; 3] = [
        &[(sec(3), kill("analyze-1")), (sec(6), kill("store"))],
        &[(sec(2), Fault::Poison), (sec(4), kill("ingest")), (sec(7), kill("alert"))],
        &[(sec(3), Fault::DetachPosts { for_: sec(10) })],
    ];
    for (i, faults) in cycles.iter().enumerate() {
        if let Err(e) = run.cycle(i + 1, faults) {
            panic!("{e}");
        }
    }
    // Crawled, not replayed: a storm of 429/503, then a server that never answers.
    let crawler = [(sec(2), Fault::CrawlerStorm { for_: sec(5) }), (sec(9), Fault::CrawlerHang { for_: sec(6) })];
    if let Err(e) = run.crawl_cycle(cycles.len() + 1, &crawler) {
        panic!("{e}");
    }
    let store_log = run.pipeline.log("store");
    assert!(store_log.contains("nothing is dropped"), "the writer said why it waited:\n{}", run.pipeline.tail("store"));
    drop_run(run);
}

#[test]
#[ignore = "make chaos: each fault once on services of its own (~7 min)"]
fn every_fault_once() {
    if !model_ready() {
        return;
    }
    let mut run = own_run(Broker::Mock);
    let cycles: Vec<Vec<(Duration, Fault)>> = vec![
        vec![(sec(3), kill("analyze-1"))],
        vec![(sec(3), kill("analyze-2"))],
        vec![(sec(3), kill("store"))],
        vec![(sec(3), kill("ingest"))],
        vec![(sec(3), kill("alert"))],
        vec![(sec(2), Fault::Poison)],
        vec![(sec(3), Fault::DetachPosts { for_: sec(20) })],
        vec![(sec(3), Fault::ClickHouseDown { for_: sec(15) })],
        vec![(sec(3), Fault::BrokerDown { for_: sec(15) })],
    ];
    for (i, faults) in cycles.iter().enumerate() {
        if let Err(e) = run.cycle(i + 1, faults) {
            panic!("{e}");
        }
    }
    let crawled =
        [vec![(sec(3), Fault::CrawlerStorm { for_: sec(10) })], vec![(sec(3), Fault::CrawlerHang { for_: sec(10) })]];
    for (i, faults) in crawled.iter().enumerate() {
        if let Err(e) = run.crawl_cycle(cycles.len() + i + 1, faults) {
            panic!("{e}");
        }
    }
    drop_run(run);
}

fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{var}={v}: not a number")))
}

/// The planner keeps a cycle under a minute: never two outages (each up to 30 s) in one cycle.
#[test]
fn randomized_cycles_hold_at_most_one_outage() {
    let outage =
        |f: &Fault| matches!(f, Fault::ClickHouseDown { .. } | Fault::BrokerDown { .. } | Fault::DetachPosts { .. });
    let mut seen = 0;
    for seed in 0..50 {
        for cycle in 1..=100 {
            let (_, faults) = random_faults(seed, cycle, true);
            let n = faults.iter().filter(|(_, f)| outage(f)).count();
            assert!(n <= 1, "seed {seed} cycle {cycle}: {n} outages");
            seen += n;
        }
    }
    assert!(seen > 1000, "outages are still drawn: {seen} in 5,000 cycles");
}

#[test]
#[ignore = "make chaos CYCLES=N SEED=S FROM=K: randomized cycles, each under a minute"]
fn randomized_cycles() {
    if !model_ready() {
        return;
    }
    let cycles = env_u64("CHAOS_CYCLES").unwrap_or(10) as usize;
    let seed = env_u64("CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let from = env_u64("CHAOS_FROM").unwrap_or(1).max(1) as usize;
    eprintln!(
        "chaos: seed {seed}, cycles {from}..={cycles} (again: make chaos CYCLES={cycles} SEED={seed} FROM={from})"
    );
    let mut run = own_run(Broker::Mock);
    let mut clean = 0;
    for cycle in from..=cycles {
        let (crawled, faults) = random_faults(seed, cycle, true);
        let result = if crawled { run.crawl_cycle(cycle, &faults) } else { run.cycle(cycle, &faults) };
        if let Err(e) = result {
            panic!(
                "{clean} clean cycles, then: {e}\nagain from here: make chaos CYCLES={cycles} SEED={seed} FROM={cycle}"
            );
        }
        clean += 1;
    }
    eprintln!("chaos: {clean} of {clean} cycles clean (seed {seed})");
    drop_run(run);
}

/// A broker restarted without its data (tansu). Fails today, and is left out of `make chaos`:
/// every consumer of the pipeline dies with SIGSEGV inside librdkafka 2.12.1 (rdkafka-sys 4.10)
/// when the restarted tansu answers its Metadata request: `rd_kafka_metadata_cache_find` compares
/// a NULL topic name (`strcmp` under `rd_kafka_metadata_update_op`, on librdkafka's own main
/// thread, not in our code; upstream confluentinc/librdkafka#4964 and #5280 look alike: a topic
/// recreated under its name with a new topic id). Run it by name to reproduce:
/// `cargo test --features onnx --test chaos -- --ignored a_broker_that_loses_everything`.
#[test]
#[ignore = "fails: librdkafka segfaults on a restarted tansu's Metadata (see the comment)"]
fn a_broker_that_loses_everything_is_noticed_and_nothing_is_counted_twice() {
    if !model_ready() {
        return;
    }
    let mut run = own_run(Broker::Tansu);
    if let Err(e) = run.cycle(1, &[]) {
        panic!("{e}");
    }
    let stored = run.lose_everything_mid_cycle(2, sec(4));
    let p = &run.pipeline;
    let logs: String = ["analyze-1", "analyze-2", "store"].iter().map(|s| p.log(s)).collect();
    assert!(logs.contains("committed offset went back"), "nobody said the broker lost its data:\n{}", p.tails());
    eprintln!("chaos: after the broker lost everything: {stored} posts stored, each once; the loss said loudly");
    drop_run(run);
}
