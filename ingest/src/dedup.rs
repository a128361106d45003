//! The exact-duplicate window: recently produced post keys, bounded.
//!
//! Keys enter the window only after Kafka acknowledged the post: a post whose produce failed must
//! not be dropped as a "duplicate" when its page is fetched again. The window catches overlaps
//! between pages and polls; what it misses (a restart, an old post reappearing), the store
//! collapses by key.

use std::collections::{HashSet, VecDeque};

/// Remembers the last `capacity` keys; the oldest is forgotten first.
#[derive(Debug, Clone)]
pub struct DedupWindow {
    capacity: usize,
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl DedupWindow {
    pub fn new(capacity: usize) -> Self {
        DedupWindow { capacity: capacity.max(1), keys: HashSet::new(), order: VecDeque::new() }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Remembers `key`; returns false when it was already there.
    pub fn insert(&mut self, key: String) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.keys.insert(key.clone());
        self.order.push_back(key);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forgets_oldest_first() {
        let mut w = DedupWindow::new(2);
        assert!(w.insert("a".into()));
        assert!(!w.insert("a".into()));
        assert!(w.insert("b".into()));
        assert!(w.insert("c".into()));
        assert!(!w.contains("a"));
        assert!(w.contains("b") && w.contains("c"));
    }

    proptest! {
        /// Never over capacity; the last `capacity` distinct keys are always remembered.
        #[test]
        fn bounded_and_remembers_recent(keys in proptest::collection::vec(0u16..50, 0..300), cap in 1usize..20) {
            let mut w = DedupWindow::new(cap);
            let mut distinct_recent: Vec<u16> = Vec::new();
            for k in keys {
                let fresh = w.insert(k.to_string());
                prop_assert_eq!(fresh, !distinct_recent.contains(&k));
                if fresh {
                    distinct_recent.push(k);
                    if distinct_recent.len() > cap {
                        distinct_recent.remove(0);
                    }
                }
                prop_assert!(w.len() <= cap);
                for r in &distinct_recent {
                    prop_assert!(w.contains(&r.to_string()));
                }
            }
        }
    }
}
