//! `make chaos` and its short form in `make test` (tests/chaos.rs): the pipeline as separate
//! processes, a stream of known posts per cycle, faults during the stream, and after every cycle
//! the check of [`check::settle_and_check`].

pub mod check;
pub mod faults;
pub mod pipeline;
pub mod services;

use check::Expected;
use faults::{apply, stream_file, Fault, ServiceControl};
use pipeline::Pipeline;
pub use services::{Broker, FakeMastodon, OwnServices};
use std::process::Command;
use std::time::{Duration, Instant};

/// Posts per cycle and their replay rate: a 10 s stream the faults land in.
pub const POSTS_PER_CYCLE: usize = 150;
pub const POSTS_PER_SECOND: f64 = 15.0;
/// Model load, group joins and a rebalance after a SIGKILL (session timeout 6 s), on a slow machine.
pub const SETTLE: Duration = Duration::from_secs(180);

/// A chaos run: the pipeline and what it must hold.
pub struct Run {
    pub pipeline: Pipeline,
    pub expected: Expected,
    /// The run's own services, when it has them (the faults that take services down need them).
    pub own: Option<OwnServices>,
}

impl Run {
    pub fn start(pipeline: Pipeline, expected: Expected, own: Option<OwnServices>) -> Run {
        let mut run = Run { pipeline, expected, own };
        let p = &mut run.pipeline;
        let migrate = Command::new(env!("CARGO_BIN_EXE_citypulse"))
            .arg("--config")
            .arg(p.dir.join("config"))
            .arg("migrate")
            .env("CITYPULSE__CLICKHOUSE__URL", &p.services.clickhouse)
            .env("CITYPULSE__CLICKHOUSE__DATABASE", &p.name)
            .output()
            .expect("citypulse migrate");
        assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));
        // ingest starts with each cycle's stream; the consumers now, and wait until they serve.
        for process in ["store", "alert", "analyze-1", "analyze-2"] {
            p.start(process);
        }
        for process in ["store", "alert", "analyze-1", "analyze-2"] {
            p.wait_healthy(process, SETTLE);
        }
        run
    }

    /// One cycle: a fresh stream of known posts replayed from a file, `faults` at their offsets
    /// into it, then the check.
    pub fn cycle(&mut self, cycle: usize, faults: &[(Duration, Fault)]) -> Result<(), String> {
        let p = &mut self.pipeline;
        let file = stream_file(&p.dir, cycle, POSTS_PER_CYCLE);
        p.replay(&format!("chaos_{cycle}"), &file, POSTS_PER_SECOND);
        self.faults_then_check(cycle, faults)
    }

    /// A cycle whose posts are crawled: a Mastodon timeline on 127.0.0.1 publishes them (the same
    /// rate), ingest polls it, and `faults` hit it (a storm, a hang) or the stages.
    pub fn crawl_cycle(&mut self, cycle: usize, faults: &[(Duration, Fault)]) -> Result<(), String> {
        let p = &mut self.pipeline;
        let port = p.mastodon.get_or_insert_with(FakeMastodon::start).port;
        p.crawl(port);
        let texts: Vec<String> =
            (0..POSTS_PER_CYCLE).map(|i| format!("{} ({cycle}.{i})", faults::TEXTS[i % faults::TEXTS.len()])).collect();
        p.mastodon.as_ref().expect("started").add(&texts, POSTS_PER_SECOND);
        self.faults_then_check(cycle, faults)
    }

    fn faults_then_check(&mut self, cycle: usize, faults: &[(Duration, Fault)]) -> Result<(), String> {
        let started = Instant::now();
        let p = &mut self.pipeline;
        p.restart("ingest");
        for (at, fault) in faults {
            std::thread::sleep(at.saturating_sub(started.elapsed()));
            eprintln!("chaos: cycle {cycle}: {fault} (at {:.1} s)", started.elapsed().as_secs_f64());
            let own = self.own.as_ref().map(|c| c as &dyn ServiceControl);
            apply(*fault, p, &mut self.expected, own);
        }
        self.expected.posts += POSTS_PER_CYCLE as u64;
        let result = check::settle_and_check(p, &self.expected, SETTLE);
        eprintln!(
            "chaos: cycle {cycle}: {} in {:.1} s",
            if result.is_ok() { "clean" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        result.map_err(|e| format!("cycle {cycle}: {e}\n{}", p.tails()))
    }

    /// A cycle whose broker restarts without its data `at` into the stream. The posts it held
    /// unread are lost, so there is no exact total: the pipeline must go on with the recreated
    /// topics and count no post twice. Returns how many posts are stored in all.
    pub fn lose_everything_mid_cycle(&mut self, cycle: usize, at: Duration) -> u64 {
        let p = &mut self.pipeline;
        let file = stream_file(&p.dir, cycle, POSTS_PER_CYCLE);
        p.replay(&format!("chaos_{cycle}"), &file, POSTS_PER_SECOND);
        p.restart("ingest");
        std::thread::sleep(at);
        eprintln!("chaos: cycle {cycle}: {} (at {:.1} s)", Fault::BrokerLosesEverything, at.as_secs_f64());
        let own = self.own.as_ref().map(|c| c as &dyn ServiceControl);
        apply(Fault::BrokerLosesEverything, p, &mut self.expected, own);
        let stored = check::wait_quiet(p, Duration::from_secs(20), SETTLE);
        let counted = check::counted_once(p).unwrap_or_else(|e| panic!("cycle {cycle}: {e}\n{}", p.tails()));
        let before = self.expected.posts as i64;
        assert!(
            counted == stored && counted > before && counted <= before + POSTS_PER_CYCLE as i64,
            "cycle {cycle}: {counted} posts counted; before it {before}, it streamed {POSTS_PER_CYCLE}\n{}",
            p.tails()
        );
        let crashed = p.crashed();
        assert!(crashed.is_empty(), "died unasked: {crashed:?}\n{}", p.tails());
        counted as u64
    }
}

/// The cycles' random choices (analyze's seeded splitmix64), reproducible from the printed seed.
struct Rng(analyze::heads::train::SeededRng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
}

/// Randomized cycle `cycle` of run `seed`: crawled (one in three) or replayed, and its faults: one
/// or two, at 1–8 s into the stream (ClickHouse and the broker going down only on services of the
/// run's own; a storm or a hang at the crawled server only in a crawled cycle). At most one outage
/// (ClickHouse or the broker down, the table detached) a cycle: two of up to 30 s each made a cycle
/// of 91 s (SEED=1203, cycle 2), over the minute a cycle may take; a second one becomes a SIGKILL.
pub fn random_faults(seed: u64, cycle: usize, own_services: bool) -> (bool, Vec<(Duration, Fault)>) {
    let mut rng = Rng(analyze::heads::train::SeededRng::new(seed ^ (cycle as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)));
    let crawled = rng.below(3) == 0;
    let count = 1 + rng.below(2);
    let mut outages = 0;
    let mut faults: Vec<(Duration, Fault)> = (0..count)
        .map(|_| {
            let at = Duration::from_millis(1000 + rng.below(7000));
            let after = Duration::from_millis(500 + rng.below(3000));
            let kill = |process| Fault::Kill { process, after };
            let kinds = 7 + if own_services { 2 } else { 0 } + if crawled { 2 } else { 0 };
            let mut pick = rng.below(kinds);
            let outage = pick == 6 || pick >= 9 || (pick >= 7 && !crawled);
            if outage {
                outages += 1;
                if outages > 1 {
                    pick %= 5; // one of the five SIGKILLs
                }
            }
            let fault = match pick {
                0 => kill("analyze-1"),
                1 => kill("analyze-2"),
                2 => kill("store"),
                3 => kill("ingest"),
                4 => kill("alert"),
                5 => Fault::Poison,
                6 => Fault::DetachPosts { for_: Duration::from_secs(5 + rng.below(16)) },
                7 if crawled => Fault::CrawlerStorm { for_: Duration::from_secs(3 + rng.below(10)) },
                8 if crawled => Fault::CrawlerHang { for_: Duration::from_secs(3 + rng.below(10)) },
                n if n % 2 == 1 => Fault::ClickHouseDown { for_: Duration::from_secs(10 + rng.below(21)) },
                _ => Fault::BrokerDown { for_: Duration::from_secs(10 + rng.below(21)) },
            };
            (at, fault)
        })
        .collect();
    faults.sort_by_key(|(at, _)| *at);
    (crawled, faults)
}
