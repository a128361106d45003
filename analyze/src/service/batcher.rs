//! The pending window between the Kafka consumer and the model thread: posts from every partition
//! gather until their tokens reach the budget or the oldest has waited `max_wait`; then the window is
//! sorted by length (padding dominates short posts) and cut into batches under the token budget.

use crate::encoder::plan_batches;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Anything with a token count.
pub trait Tokens {
    fn token_count(&self) -> usize;
}

/// Sorts `pending` by length and cuts it into batches of at most `budget` padded tokens.
pub fn cut<T: Tokens>(pending: Vec<T>, budget: usize) -> Vec<Vec<T>> {
    let mut slots: Vec<Option<T>> = pending.into_iter().map(Some).collect();
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| slots[i].as_ref().map_or(0, Tokens::token_count));
    let lens: Vec<usize> = slots.iter().map(|s| s.as_ref().map_or(0, Tokens::token_count)).collect();
    plan_batches(&order, |i| lens[i], budget)
        .into_iter()
        .map(|idx| idx.into_iter().filter_map(|i| slots[i].take()).collect())
        .collect()
}

/// Runs until `input` closes, then flushes what is pending and returns.
pub async fn run<T: Tokens + Send>(
    mut input: mpsc::Receiver<T>,
    output: mpsc::Sender<Vec<T>>,
    budget: usize,
    max_wait: Duration,
) {
    let mut pending: Vec<T> = Vec::new();
    let mut tokens = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = input.recv() => match item {
                Some(item) => {
                    if pending.is_empty() {
                        deadline = Some(Instant::now() + max_wait);
                    }
                    tokens += item.token_count();
                    pending.push(item);
                    metrics::gauge!("citypulse_analyze_pending_posts").set(pending.len() as f64);
                    if tokens < budget {
                        continue;
                    }
                }
                None => {
                    flush(&mut pending, &output, budget).await;
                    return;
                }
            },
            () = timer => {}
        }
        flush(&mut pending, &output, budget).await;
        tokens = 0;
        deadline = None;
    }
}

async fn flush<T: Tokens>(pending: &mut Vec<T>, output: &mpsc::Sender<Vec<T>>, budget: usize) {
    metrics::gauge!("citypulse_analyze_pending_posts").set(0.0);
    for batch in cut(std::mem::take(pending), budget) {
        if output.send(batch).await.is_err() {
            return; // the model thread is gone; shutdown is under way
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl Tokens for usize {
        fn token_count(&self) -> usize {
            *self
        }
    }

    proptest! {
        #[test]
        fn cut_keeps_every_item_once_within_budget(lens in proptest::collection::vec(1usize..130, 0..200), budget in 128usize..4096) {
            let batches = cut(lens.clone(), budget);
            let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
            let mut expected = lens.clone();
            all.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(all, expected);
            for b in &batches {
                prop_assert!(b.len() == 1 || b.iter().max().unwrap() * b.len() <= budget);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_flushed_after_max_wait_and_a_flood_by_budget() {
        let (in_tx, in_rx) = mpsc::channel(100);
        let (out_tx, mut out_rx) = mpsc::channel(100);
        let task = tokio::spawn(run(in_rx, out_tx, 100, Duration::from_millis(20)));
        in_tx.send(10usize).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(out_rx.try_recv().is_err(), "not before max_wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(out_rx.recv().await.unwrap(), vec![10]);
        for _ in 0..10 {
            in_tx.send(10usize).await.unwrap();
        }
        let first = out_rx.recv().await.unwrap();
        assert_eq!(first.len(), 10, "budget reached without waiting");
        drop(in_tx);
        task.await.unwrap();
    }
}
