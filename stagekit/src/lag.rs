//! What a stage's consumer reports: lag from librdkafka's statistics (emitted every
//! `kafka.statistics_interval_ms`), as `citypulse_<stage>_consumer_lag_messages{topic, partition}`
//! (each stage's consumer context calls [`record`] from its `ClientContext::stats`), and receive
//! errors, as `citypulse_<stage>_consume_errors_total` ([`receive_error`]).

use crate::StageName;
use rdkafka::Statistics;

/// Sets the lag gauge of every partition this consumer owns. librdkafka reports -1 (unknown) for
/// partitions it does not consume (e.g. assigned to another group member): those are skipped, as
/// is the internal partition -1.
pub fn record(stage: StageName, statistics: &Statistics) {
    let reported = statistics
        .topics
        .iter()
        .flat_map(|(topic, t)| t.partitions.iter().map(move |(&p, stats)| (topic.as_str(), p, stats.consumer_lag)));
    for ((topic, partition), lag) in known(reported) {
        let name = stage.metric("consumer_lag_messages");
        metrics::gauge!(name, "topic" => topic, "partition" => partition.to_string()).set(lag as f64);
    }
}

/// Logs and counts an error from the consumer's `recv()`. librdkafka reports broker trouble this
/// way and keeps retrying on its own: the stage goes on receiving.
pub fn receive_error(stage: StageName, error: &rdkafka::error::KafkaError) {
    metrics::counter!(stage.metric("consume_errors_total")).increment(1);
    tracing::warn!(%error, %stage, "Kafka receive error; the consumer retries");
}

/// ((topic, partition), lag) of the real partitions with a known lag, sorted.
fn known<'a>(reported: impl Iterator<Item = (&'a str, i32, i64)>) -> Vec<((String, i32), i64)> {
    let mut out: Vec<_> = reported
        .filter(|&(_, partition, lag)| partition >= 0 && lag >= 0)
        .map(|(topic, partition, lag)| ((topic.to_owned(), partition), lag))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_lags_of_real_partitions_are_reported() {
        let reported = [("posts.raw", 1, -1), ("posts.raw", 0, 7), ("posts.raw", -1, 3), ("posts.analyzed", 2, 0)];
        assert_eq!(
            known(reported.into_iter()),
            vec![(("posts.analyzed".to_owned(), 2), 0), (("posts.raw".to_owned(), 0), 7)]
        );
    }
}
