//! Noticing a broker that lost data: a consumer group's committed offsets only ever move forward
//! (a stage commits an offset after its output is acknowledged; a member that takes a partition
//! over resumes from the last commit). When one goes back, or the group's offsets vanish and it
//! starts again from a smaller one, the broker lost the partition's log or the group's offsets
//! (restarted without its data, a topic deleted and recreated, or offsets reset by hand). librdkafka
//! then quietly starts from the earliest message of what is left; this says so, loudly: an error
//! in the log with what was lost, and `citypulse_<stage>_offsets_went_back_total{topic}`.
//!
//! Fed by each stage's consumer statistics (every `kafka.statistics_interval_ms`), alongside the
//! lag gauges; the highest committed offset of every partition is remembered for the process's life.

use crate::StageName;
use rdkafka::Statistics;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// (stage, topic, partition) → the highest committed offset seen.
type Seen = HashMap<(StageName, String, i32), i64>;

static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Mutex::default);

/// A committed offset that went back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WentBack {
    pub topic: String,
    pub partition: i32,
    pub was: i64,
    pub now: i64,
}

/// Checks the committed offsets in `statistics` against the highest seen before; logs and counts
/// every one that went back.
pub fn watch(stage: StageName, statistics: &Statistics) {
    let committed = statistics
        .topics
        .iter()
        .flat_map(|(topic, t)| t.partitions.iter().map(move |(&p, s)| (topic.as_str(), p, s.committed_offset)));
    let went_back = match SEEN.lock() {
        Ok(mut seen) => compare(&mut seen, stage, committed),
        Err(_) => return,
    };
    for w in went_back {
        metrics::counter!(stage.metric("offsets_went_back_total"), "topic" => w.topic.clone()).increment(1);
        tracing::error!(
            %stage, topic = %w.topic, partition = w.partition, was = w.was, now = w.now,
            "the group's committed offset went back: the broker lost this partition's data or the \
             group's offsets (restarted without its log? topic recreated? offsets reset by hand?). \
             Messages it held that were not yet read are lost; any read again are counted once"
        );
    }
}

/// Updates `seen` with `committed` (topic, partition, offset; negative = none yet) and returns the
/// offsets that went back. A partition that went back is followed from its new offset on.
fn compare<'a>(
    seen: &mut Seen,
    stage: StageName,
    committed: impl Iterator<Item = (&'a str, i32, i64)>,
) -> Vec<WentBack> {
    let mut went_back = Vec::new();
    for (topic, partition, now) in committed {
        if partition < 0 || now < 0 {
            continue;
        }
        let was = seen.entry((stage, topic.to_owned(), partition)).or_insert(now);
        if now < *was {
            went_back.push(WentBack { topic: topic.to_owned(), partition, was: *was, now });
        }
        *was = now;
    }
    went_back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_offset_that_goes_back_is_reported_and_then_followed() {
        let mut seen = Seen::new();
        let s = StageName::Analyze;
        assert!(compare(&mut seen, s, [("raw", 0, 10), ("raw", 1, -1001), ("raw", -1, 3)].into_iter()).is_empty());
        assert!(compare(&mut seen, s, [("raw", 0, 25), ("raw", 1, 4)].into_iter()).is_empty(), "forward is normal");
        // The broker restarted empty: the group's offsets are gone (-1001), then it commits afresh.
        assert!(compare(&mut seen, s, [("raw", 0, -1001)].into_iter()).is_empty(), "none yet: wait for one");
        let back = compare(&mut seen, s, [("raw", 0, 3), ("raw", 1, 4)].into_iter());
        assert_eq!(back, vec![WentBack { topic: "raw".into(), partition: 0, was: 25, now: 3 }]);
        assert!(compare(&mut seen, s, [("raw", 0, 9)].into_iter()).is_empty(), "followed from the new offset");
        // Another stage's group on the same topic is its own.
        assert!(compare(&mut seen, StageName::Store, [("raw", 0, 1)].into_iter()).is_empty());
    }
}
