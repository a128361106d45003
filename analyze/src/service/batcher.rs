//! The pending window between the Kafka consumer and the model thread.
//!
//! Posts from every partition gather in a window of up to `window_tokens` tokens. Batches are cut
//! on demand: only when the model thread can take one (the batch channel has room) and the window
//! holds a full budget of tokens, or its oldest post has waited `max_wait`. While the model is busy
//! the window keeps filling, so on a steady stream each batch is cut from many posts sorted by
//! length — padding dominates short posts, and a window of one batch would pad almost as badly as
//! arrival order. The batch cut is the length-sorted run that holds the oldest post, so no post
//! waits behind more than a window's worth of newer ones.

use crate::encoder::plan_batches;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Anything with a token count.
pub trait Tokens {
    fn token_count(&self) -> usize;
}

/// How the window is cut.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most padded tokens (rows × longest) in one batch.
    pub batch_tokens: usize,
    /// Most tokens waiting in the window; the consumer is paused (back-pressure) above it.
    pub window_tokens: usize,
    /// Longest a post waits for a full batch when the stream is slow.
    pub max_wait: Duration,
}

/// Removes and returns one batch from `pending` (kept in arrival order): among the batches that
/// the length-sorted window cuts into, the one holding the oldest post.
pub fn take_batch<T: Tokens>(pending: &mut Vec<T>, budget: usize) -> Vec<T> {
    let lens: Vec<usize> = pending.iter().map(Tokens::token_count).collect();
    let mut order: Vec<usize> = (0..pending.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let chosen = plan_batches(&order, |i| lens[i], budget).into_iter().find(|b| b.contains(&0)).unwrap_or_default();
    let mut take = vec![false; pending.len()];
    chosen.iter().for_each(|&i| take[i] = true);
    let mut batch = Vec::with_capacity(chosen.len());
    let mut rest = Vec::with_capacity(pending.len() - chosen.len());
    for (item, taken) in std::mem::take(pending).into_iter().zip(take) {
        if taken {
            batch.push(item)
        } else {
            rest.push(item)
        }
    }
    *pending = rest;
    batch
}

/// A pending item and when it arrived.
struct Arrived<T> {
    at: Instant,
    item: T,
}

impl<T: Tokens> Tokens for Arrived<T> {
    fn token_count(&self) -> usize {
        self.item.token_count()
    }
}

/// The window: pending posts in arrival order.
struct Window<T> {
    pending: Vec<Arrived<T>>,
    tokens: usize,
}

impl<T: Tokens> Window<T> {
    fn push(&mut self, item: T) {
        self.tokens += item.token_count();
        self.pending.push(Arrived { at: Instant::now(), item });
        metrics::gauge!("citypulse_analyze_pending_posts").set(self.pending.len() as f64);
    }

    /// When the oldest pending post has waited long enough for a partial batch.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        self.pending.first().map(|a| a.at + limits.max_wait)
    }

    fn ready(&self, limits: &Limits, input_closed: bool) -> bool {
        !self.pending.is_empty()
            && (input_closed
                || self.tokens >= limits.batch_tokens
                || self.deadline(limits).is_some_and(|d| d <= Instant::now()))
    }

    fn take(&mut self, limits: &Limits) -> Vec<T> {
        let batch = take_batch(&mut self.pending, limits.batch_tokens);
        self.tokens -= batch.iter().map(Tokens::token_count).sum::<usize>();
        metrics::gauge!("citypulse_analyze_pending_posts").set(self.pending.len() as f64);
        batch.into_iter().map(|a| a.item).collect()
    }
}

/// Runs until `input` closes and every pending post was handed to `output`, or the receiving
/// model thread is gone.
pub async fn run<T: Tokens + Send>(mut input: mpsc::Receiver<T>, output: mpsc::Sender<Vec<T>>, limits: Limits) {
    let mut window = Window { pending: Vec::new(), tokens: 0 };
    let mut input_closed = false;
    loop {
        if input_closed && window.pending.is_empty() {
            return;
        }
        let ready = window.ready(&limits, input_closed);
        let can_read = !input_closed && window.tokens < limits.window_tokens;
        let deadline = window.deadline(&limits).filter(|_| !ready);
        tokio::select! {
            item = input.recv(), if can_read => match item {
                Some(item) => window.push(item),
                None => input_closed = true,
            },
            permit = output.reserve(), if ready => match permit {
                Ok(permit) => permit.send(window.take(&limits)),
                Err(_) => return, // the model thread is gone; shutdown is under way
            },
            () = sleep_until(deadline), if deadline.is_some() => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (arrival index, tokens)
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Item(usize, usize);

    impl Tokens for Item {
        fn token_count(&self) -> usize {
            self.1
        }
    }

    fn items(lens: &[usize]) -> Vec<Item> {
        lens.iter().enumerate().map(|(i, &l)| Item(i, l)).collect()
    }

    proptest! {
        #[test]
        fn batches_keep_every_item_once_within_budget_and_start_with_the_oldest(
            lens in proptest::collection::vec(1usize..130, 1..200),
            budget in 128usize..4096,
        ) {
            let mut pending = items(&lens);
            let mut seen = Vec::new();
            while !pending.is_empty() {
                let oldest = pending[0].0;
                let batch = take_batch(&mut pending, budget);
                prop_assert!(batch.iter().any(|i| i.0 == oldest), "the oldest post is in the batch");
                let longest = batch.iter().map(|i| i.1).max().unwrap();
                prop_assert!(batch.len() == 1 || longest * batch.len() <= budget);
                prop_assert!(pending.windows(2).all(|w| w[0].0 < w[1].0), "the rest stays in arrival order");
                seen.extend(batch.iter().map(|i| i.0));
            }
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_window_of_mixed_lengths_is_cut_into_batches_of_similar_length() {
        // Arrival order alternates short and long posts; a batch cut from the sorted window pads
        // the short ones to their own length, not to the long ones'.
        let lens: Vec<usize> = (0..64).map(|i| if i % 2 == 0 { 10 } else { 100 }).collect();
        let mut pending = items(&lens);
        let batch = take_batch(&mut pending, 320);
        assert_eq!(batch.iter().map(|i| i.1).collect::<Vec<_>>(), vec![10; 32]);
    }

    fn limits(batch_tokens: usize, window_tokens: usize) -> Limits {
        Limits { batch_tokens, window_tokens, max_wait: Duration::from_millis(20) }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_flushed_after_max_wait_and_a_flood_by_budget() {
        let (in_tx, in_rx) = mpsc::channel(100);
        let (out_tx, mut out_rx) = mpsc::channel(1);
        let task = tokio::spawn(run(in_rx, out_tx, limits(100, 1000)));
        in_tx.send(Item(0, 10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(out_rx.try_recv().is_err(), "not before max_wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(out_rx.recv().await.unwrap(), vec![Item(0, 10)]);
        // Under the paused clock a broken budget trigger would still cut this very batch, only at
        // max_wait (the runtime jumps the clock to the next timer when idle): so the clock must
        // not have moved while the batch was cut.
        let flood_at = Instant::now();
        for i in 1..=10 {
            in_tx.send(Item(i, 10)).await.unwrap();
        }
        let first = out_rx.recv().await.unwrap();
        assert_eq!(first.len(), 10, "the whole budget in one batch");
        assert_eq!(Instant::now(), flood_at, "budget reached without waiting");
        drop(in_tx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_model_is_busy_the_window_fills_and_then_pushes_back() {
        let (in_tx, in_rx) = mpsc::channel(1);
        let (out_tx, mut out_rx) = mpsc::channel(1);
        let task = tokio::spawn(run(in_rx, out_tx, limits(100, 300)));
        // Nobody takes batches: one fills the channel, then the window holds 300 tokens, then the
        // input channel (capacity 1) is full and a send waits.
        let mut sent = 0;
        while tokio::time::timeout(Duration::from_millis(50), in_tx.send(Item(sent, 10))).await.is_ok() {
            sent += 1;
            assert!(sent < 100, "back-pressure never came");
        }
        assert_eq!(sent, 10 + 30 + 1, "one batch queued, a full window, one item in the channel");
        let mut received = 0;
        drop(in_tx);
        while let Some(batch) = out_rx.recv().await {
            received += batch.len();
        }
        assert_eq!(received, sent, "everything pending is flushed when the input closes");
        task.await.unwrap();
    }
}
