//! The cursor of sources that only list "the newest N" (Reddit `new.json`, RSS/Atom): the newest
//! publication time seen, with the ids published at that exact time (so two posts in one second
//! are not mistaken for one). A post is new when it is newer than the mark, or as new and unseen.
//!
//! Undated feed items carry the fetch time (`created_at_estimated`), which is "newer" on every poll;
//! they are remembered by id instead, up to [`MAX_UNDATED`] of them, and never move the mark.

use chrono::{DateTime, Utc};
use schema::Post;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    /// Unix microseconds of the newest post seen.
    pub at_us: i64,
    /// Ids of the posts published at exactly `at_us`.
    pub ids: Vec<String>,
    /// Ids of undated items already published, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undated: Vec<String>,
}

/// How many undated ids a cursor remembers: several pages of a feed that dates nothing. Beyond it
/// the oldest are forgotten; should such an item reappear it is published again and the store's
/// dedup key absorbs it.
pub const MAX_UNDATED: usize = 2000;

impl Watermark {
    /// Reads a saved cursor; an unreadable one counts as none (the dedup window and the store's
    /// key absorb the re-sent page).
    pub fn parse(cursor: Option<&str>) -> Option<Watermark> {
        serde_json::from_str(cursor?).ok()
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn is_new(&self, post: &Post) -> bool {
        if post.created_at_estimated {
            return !self.undated.contains(&post.id);
        }
        let t = micros(post.created_at);
        t > self.at_us || (t == self.at_us && !self.ids.contains(&post.id))
    }

    /// The mark after `posts` were delivered.
    pub fn advanced(&self, posts: &[Post]) -> Watermark {
        let mut next = self.clone();
        for post in posts {
            if post.created_at_estimated {
                if !next.undated.contains(&post.id) {
                    next.undated.push(post.id.clone());
                }
                continue;
            }
            let t = micros(post.created_at);
            if t > next.at_us {
                next.at_us = t;
                next.ids = vec![post.id.clone()];
            } else if t == next.at_us && !next.ids.contains(&post.id) {
                next.ids.push(post.id.clone());
            }
        }
        let excess = next.undated.len().saturating_sub(MAX_UNDATED);
        next.undated.drain(..excess);
        next
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, secs: i64) -> Post {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        Post {
            id: id.into(),
            source: schema::SourceId::new("s").unwrap(),
            url: None,
            author: "a".into(),
            text: "t".into(),
            lang: None,
            created_at: t,
            fetched_at: t,
            places: vec![],
            engagement: Default::default(),
            created_at_estimated: false,
        }
    }

    #[test]
    fn same_second_posts_are_kept_apart() {
        let w = Watermark::default().advanced(&[post("a", 100), post("b", 100), post("c", 90)]);
        assert_eq!(w, Watermark { at_us: 100_000_000, ids: vec!["a".into(), "b".into()], undated: vec![] });
        assert!(!w.is_new(&post("a", 100)));
        assert!(w.is_new(&post("d", 100)));
        assert!(!w.is_new(&post("e", 99)));
        assert!(w.is_new(&post("f", 101)));
        assert_eq!(Watermark::parse(Some(&w.encode())), Some(w));
        assert_eq!(Watermark::parse(Some("garbage")), None);
    }

    #[test]
    fn undated_items_are_new_once_and_do_not_move_the_mark() {
        let mut undated = post("u", 5_000);
        undated.created_at_estimated = true;
        let w = Watermark::default().advanced(&[post("a", 100), undated.clone()]);
        assert_eq!(w.at_us, 100_000_000, "an estimated time must not move the mark");
        assert!(!w.is_new(&undated));
        // The next poll fetches it again at a later fetch time: still not new.
        undated.created_at = DateTime::from_timestamp(6_000, 0).unwrap();
        assert!(!w.is_new(&undated));
        assert!(w.is_new(&post("b", 101)));
        assert_eq!(Watermark::parse(Some(&w.encode())), Some(w.clone()));
        // A cursor saved before undated ids existed still reads.
        assert_eq!(Watermark::parse(Some(r#"{"at_us":1,"ids":["x"]}"#)).unwrap().undated, Vec::<String>::new());
    }

    #[test]
    fn undated_memory_is_bounded_oldest_first() {
        let items: Vec<Post> = (0..MAX_UNDATED + 5)
            .map(|i| {
                let mut p = post(&format!("u{i}"), 1);
                p.created_at_estimated = true;
                p
            })
            .collect();
        let w = Watermark::default().advanced(&items);
        assert_eq!(w.undated.len(), MAX_UNDATED);
        assert_eq!(w.undated[0], "u5");
        assert!(w.is_new(&items[0]));
        assert!(!w.is_new(&items[MAX_UNDATED + 4]));
    }
}
