//! The cursor of sources that only list "the newest N" (Reddit `new.json`, RSS/Atom): the newest
//! publication time seen, with the ids published at that exact time (so two posts in one second
//! are not mistaken for one). A post is new when it is newer than the mark, or as new and unseen.

use chrono::{DateTime, Utc};
use schema::Post;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    /// Unix microseconds of the newest post seen.
    pub at_us: i64,
    /// Ids of the posts published at exactly `at_us`.
    pub ids: Vec<String>,
}

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
        let t = micros(post.created_at);
        t > self.at_us || (t == self.at_us && !self.ids.contains(&post.id))
    }

    /// The mark after `posts` were delivered.
    pub fn advanced(&self, posts: &[Post]) -> Watermark {
        let mut next = self.clone();
        for post in posts {
            let t = micros(post.created_at);
            if t > next.at_us {
                next = Watermark { at_us: t, ids: vec![post.id.clone()] };
            } else if t == next.at_us && !next.ids.contains(&post.id) {
                next.ids.push(post.id.clone());
            }
        }
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
        }
    }

    #[test]
    fn same_second_posts_are_kept_apart() {
        let w = Watermark::default().advanced(&[post("a", 100), post("b", 100), post("c", 90)]);
        assert_eq!(w, Watermark { at_us: 100_000_000, ids: vec!["a".into(), "b".into()] });
        assert!(!w.is_new(&post("a", 100)));
        assert!(w.is_new(&post("d", 100)));
        assert!(!w.is_new(&post("e", 99)));
        assert!(w.is_new(&post("f", 101)));
        assert_eq!(Watermark::parse(Some(&w.encode())), Some(w));
        assert_eq!(Watermark::parse(Some("garbage")), None);
    }
}
