//! The check after every fault: every post counted exactly once (posts, both trend tables), the DLQ
//! holding exactly the poisoned messages with their kinds, nothing stuck (every consumer group
//! committed to the end of its topic), no process dead that nobody killed.

use super::pipeline::Pipeline;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the pipeline must hold after a cycle.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Distinct posts replayed so far.
    pub posts: u64,
    /// DLQ records by (stage, error kind).
    pub dlq: BTreeMap<(String, String), usize>,
}

/// One statement to ClickHouse over HTTP; a SELECT's TSV rows.
pub fn clickhouse(url: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let body = if sql.starts_with("SELECT") { format!("{sql} FORMAT TabSeparated") } else { sql.to_owned() };
    let response = reqwest::blocking::Client::new()
        .post(url)
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("ClickHouse {status}: {body}"));
    }
    Ok(body.lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect())
}

fn number(url: &str, sql: &str) -> Result<i64, String> {
    let rows = clickhouse(url, sql)?;
    rows.first().and_then(|r| r.first()).and_then(|v| v.parse().ok()).ok_or_else(|| format!("no number from {sql}"))
}

/// Waits (up to `within`) for the pipeline to settle, then checks it against `expected`.
pub fn settle_and_check(p: &mut Pipeline, expected: &Expected, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let (url, db) = (p.services.clickhouse.clone(), p.name.clone());
    let live = format!("SELECT count() FROM {db}.posts FINAL WHERE sign = 1");
    loop {
        let stored = number(&url, &live).unwrap_or(-1);
        // Only once every post is in: reading the topics' ends takes a second or two.
        let settled = stored == expected.posts as i64 && nothing_stuck(p).is_ok();
        if settled {
            break;
        }
        let crashed = p.crashed();
        if !crashed.is_empty() {
            return Err(format!("died unasked: {crashed:?} ({stored} of {} posts stored)", expected.posts));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not settled in {within:?}: {stored} of {} posts stored; {}",
                expected.posts,
                nothing_stuck(p).err().unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let counted = counted_once(p)?;
    if counted != expected.posts as i64 {
        return Err(format!("{counted} posts counted, want {}", expected.posts));
    }
    let dlq = dlq_kinds(p)?;
    if dlq != expected.dlq {
        return Err(format!("DLQ holds {dlq:?}, want {:?}", expected.dlq));
    }
    let crashed = p.crashed();
    if !crashed.is_empty() {
        return Err(format!("died unasked: {crashed:?}"));
    }
    Ok(())
}

/// The posts stored, after checking each is counted once: live rows, distinct keys, the sum of
/// signs and both trend tables agree.
pub fn counted_once(p: &Pipeline) -> Result<i64, String> {
    let (url, db) = (&p.services.clickhouse, &p.name);
    let live = number(url, &format!("SELECT count() FROM {db}.posts FINAL WHERE sign = 1"))?;
    let checks = [
        ("distinct keys stored", format!("SELECT uniqExact(key) FROM {db}.posts FINAL WHERE sign = 1")),
        ("sum(sign) over every row", format!("SELECT sum(sign) FROM {db}.posts")),
        (
            "posts in trends_hourly",
            format!("SELECT sum(posts) FROM {db}.trends_hourly WHERE topic = '*' AND place = '*'"),
        ),
        (
            "posts in trends_daily",
            format!("SELECT sum(posts) FROM {db}.trends_daily WHERE topic = '*' AND place = '*'"),
        ),
    ];
    for (what, sql) in checks {
        let got = number(url, &sql)?;
        if got != live {
            return Err(format!("{what}: {got}, but {live} posts stored"));
        }
    }
    Ok(live)
}

/// Waits until the number of stored posts has not changed for `quiet` (at most `within`).
pub fn wait_quiet(p: &Pipeline, quiet: Duration, within: Duration) -> i64 {
    let (deadline, mut last, mut since) = (Instant::now() + within, -1, Instant::now());
    let sql = format!("SELECT count() FROM {}.posts FINAL WHERE sign = 1", p.name);
    while Instant::now() < deadline {
        let now = number(&p.services.clickhouse, &sql).unwrap_or(-1);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

fn consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "chaos-check-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("check consumer")
}

fn partitions(c: &BaseConsumer, topic: &str) -> Vec<i32> {
    c.fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|m| m.topics().first().map(|t| t.partitions().iter().map(|p| p.id()).collect()))
        .unwrap_or_default()
}

/// Every group committed to the end of the topic it reads.
fn nothing_stuck(p: &Pipeline) -> Result<(), String> {
    let c = consumer(&p.services.brokers);
    for (group, topic) in [("analyze", "raw"), ("store", "analyzed")] {
        let (group, topic) = (format!("{}-{group}", p.name), format!("{}.{topic}", p.name));
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &p.services.brokers)
            .set("group.id", &group)
            .create()
            .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        for part in partitions(&c, &topic) {
            tpl.add_partition(&topic, part);
        }
        let committed = reader.committed_offsets(tpl, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        let ends = ends(&p.services.brokers, &topic)?;
        for e in committed.elements() {
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            let end = ends.get(&e.partition()).copied().unwrap_or(0);
            if at != end {
                return Err(format!("{group} at {at} of {end} on {topic}[{}]", e.partition()));
            }
        }
    }
    Ok(())
}

/// Each partition's end (last offset + 1), read from the messages themselves: tansu's ListOffsets
/// answers the last *batch's* base offset + 1 (a high watermark short of the end by the size of the
/// last batch - 1), so its watermarks cannot say where a partition ends.
fn ends(brokers: &str, topic: &str) -> Result<BTreeMap<i32, i64>, String> {
    let c = consumer(brokers);
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for part in partitions(&c, topic) {
        let (_, high) = c.fetch_watermarks(topic, part, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        tpl.add_partition_offset(topic, part, Offset::Offset((high - 1000).max(0))).map_err(|e| e.to_string())?;
        ends.insert(part, high);
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    // Read until a second passes without a message: what is there has been seen.
    while let Some(msg) = c.poll(Duration::from_secs(1)) {
        let msg = msg.map_err(|e| e.to_string())?;
        let end = ends.entry(msg.partition()).or_insert(0);
        *end = (*end).max(msg.offset() + 1);
    }
    Ok(ends)
}

/// The DLQ's messages by (stage, kind), read from the beginning. A message is known by where it
/// was read from (topic, partition, offset): a stage killed after dead-lettering a message but
/// before committing past it dead-letters it again when the message is redelivered (at-least-once),
/// so the same message may have more than one record. Counted once; one message with two kinds is
/// an error.
fn dlq_kinds(p: &Pipeline) -> Result<BTreeMap<(String, String), usize>, String> {
    let kafka = schema::config::services::KafkaConfig {
        brokers: p.services.brokers.clone(),
        topic_dlq: format!("{}.dlq", p.name),
        ..Default::default()
    };
    let entries = store::dlq::read_all(&kafka, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    let mut messages: BTreeMap<(String, i32, i64), (String, String)> = BTreeMap::new();
    for entry in entries {
        let r = entry.record.map_err(|e| format!("a DLQ record that is not one: {e}"))?;
        let kind = (r.stage.as_str().to_owned(), r.error_kind);
        if let Some(before) = messages.insert((r.topic.clone(), r.partition, r.offset), kind.clone()) {
            if before != kind {
                return Err(format!(
                    "{}[{}]@{} dead-lettered as {before:?} and as {kind:?}",
                    r.topic, r.partition, r.offset
                ));
            }
        }
    }
    let mut kinds = BTreeMap::new();
    for kind in messages.into_values() {
        *kinds.entry(kind).or_insert(0) += 1;
    }
    Ok(kinds)
}
