//! Which offset may be stored, per partition, when messages finish out of order.
//!
//! Posts are batched across partitions and sorted by length, so they finish out of order. Kafka
//! offsets mean "everything before this is done", so for each partition we may only store the
//! smallest offset still in flight (or one past the highest seen when nothing is in flight).

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct PartitionState {
    in_flight: BTreeSet<i64>,
    highest_seen: Option<i64>,
    stored: Option<i64>,
}

/// Tracks in-flight offsets of every partition of one topic, and each partition's assignment
/// epoch: how many times it was revoked from this instance.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
    epochs: HashMap<i32, u64>,
}

impl OffsetTracker {
    /// A message was received and is now in flight. Returns the partition's epoch, which tells
    /// later whether the message still belongs to this instance ([`Self::is_current`]).
    pub fn start(&mut self, partition: i32, offset: i64) -> u64 {
        let epoch = self.epoch(partition);
        let p = self.partitions.entry(partition).or_default();
        // The position we start from counts as stored: finishing a later message first must not
        // "store" this same position again.
        p.stored.get_or_insert(offset);
        p.in_flight.insert(offset);
        p.highest_seen = Some(p.highest_seen.map_or(offset, |h| h.max(offset)));
        epoch
    }

    fn epoch(&self, partition: i32) -> u64 {
        self.epochs.get(&partition).copied().unwrap_or(0)
    }

    /// False once the partition of a message started in `epoch` has been revoked: its new owner
    /// analyses it again, so finishing it here would only publish a duplicate.
    pub fn is_current(&self, partition: i32, epoch: u64) -> bool {
        self.epoch(partition) == epoch
    }

    /// A message is done (its output acknowledged, or it went to the DLQ). Returns the offset to
    /// store for the partition when it advanced: the next offset to consume.
    pub fn finish(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&partition)?;
        if !p.in_flight.remove(&offset) {
            return None;
        }
        let next = match p.in_flight.first() {
            Some(&lowest) => lowest,
            None => p.highest_seen? + 1,
        };
        if p.stored.is_none_or(|s| next > s) {
            p.stored = Some(next);
            Some(next)
        } else {
            None
        }
    }

    /// Messages still in flight, all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    /// Forgets a partition (revoked in a rebalance): its in-flight messages will be redelivered to
    /// the new owner, so nothing of it is stored any more, and its epoch moves on so they are
    /// dropped rather than published. If the partition comes back, a post of the old assignment
    /// that was already being published can only remove its own offset from the new state — safe,
    /// since `finish` is called after its output was acknowledged.
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        *self.epochs.entry(partition).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stores_only_below_the_oldest_in_flight() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.start(0, o);
        }
        assert_eq!(t.finish(0, 12), None);
        assert_eq!(t.finish(0, 10), Some(11));
        assert_eq!(t.finish(0, 11), Some(13));
        assert_eq!(t.finish(0, 14), None);
        assert_eq!(t.finish(0, 13), Some(15));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.finish(0, 13), None, "finishing twice changes nothing");
    }

    #[test]
    fn a_revoke_makes_the_partitions_in_flight_messages_stale() {
        let mut t = OffsetTracker::default();
        let old = t.start(0, 10);
        let other = t.start(1, 5);
        t.forget(0);
        assert!(!t.is_current(0, old), "revoked");
        assert!(t.is_current(1, other), "another partition is untouched");
        assert_eq!(t.finish(0, 10), None, "nothing of a revoked partition is stored");
        // The partition comes back (the new assignment re-reads from the committed offset).
        let new = t.start(0, 10);
        assert!(t.is_current(0, new) && !t.is_current(0, old));
        assert_eq!(t.finish(0, 10), Some(11));
    }

    proptest! {
        #[test]
        fn any_completion_order_is_safe_and_ends_past_the_last(
            counts in proptest::collection::vec(1usize..40, 1..4),
            seed in any::<u64>(),
        ) {
            let mut t = OffsetTracker::default();
            let mut pending: Vec<(i32, i64)> = Vec::new();
            for (p, &n) in counts.iter().enumerate() {
                for o in 0..n as i64 {
                    t.start(p as i32, o);
                    pending.push((p as i32, o));
                }
            }
            let mut rng = seed;
            let mut last: HashMap<i32, i64> = HashMap::new();
            while !pending.is_empty() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (p, o) = pending.swap_remove((rng >> 33) as usize % pending.len());
                if let Some(stored) = t.finish(p, o) {
                    // Never past a message that is still in flight in that partition.
                    let oldest = pending.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).min();
                    prop_assert!(oldest.is_none_or(|m| stored <= m));
                    prop_assert!(last.get(&p).is_none_or(|&l| stored > l));
                    last.insert(p, stored);
                }
            }
            for (p, &n) in counts.iter().enumerate() {
                prop_assert_eq!(last.get(&(p as i32)).copied(), Some(n as i64));
            }
        }
    }
}
