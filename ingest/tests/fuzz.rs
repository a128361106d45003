//! Fuzzing the source parsers on mutated real-shaped responses: arbitrary bytes (the parsers' own
//! proptests) mostly die at the first byte; a mutated valid response reaches deep into each parser.
//! Each case takes a fixture (Mastodon timeline, Reddit listing, RSS, Atom, a Jetstream event, a
//! replay line) and applies random byte flips, cuts, duplications and insertions of characters that
//! matter to the formats (quotes, brackets, `<`, `&`, multi-byte UTF-8, NUL); the parser must return,
//! never panic. `make chaos` runs these with PROPTEST_CASES=200000; `make test` with the default 256.

use chrono::TimeZone;
use ingest::parse::{feed, jetstream, mastodon, reddit, replay, ParseCtx};
use proptest::prelude::*;
use schema::author::AuthorHasher;
use schema::{Limits, SourceId};
use std::sync::LazyLock;

static HASHER: LazyLock<AuthorHasher> =
    LazyLock::new(|| AuthorHasher::new(b"fuzz-test-key-not-secret-0123456789").expect("key"));
static SOURCE: LazyLock<SourceId> = LazyLock::new(|| SourceId::new("fuzz").expect("source id"));
static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);

fn ctx() -> ParseCtx<'static> {
    ParseCtx {
        source: &SOURCE,
        hasher: &HASHER,
        limits: &LIMITS,
        fetched_at: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
        zone: chrono_tz::Asia::Ho_Chi_Minh,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).expect("fixture")
}

const JETSTREAM: &str = r#"{"did":"did:plc:abc","time_us":1732090443456789,"kind":"commit","commit":{"rev":"3l","operation":"create","collection":"app.bsky.feed.post","rkey":"3lb","record":{"$type":"app.bsky.feed.post","createdAt":"2024-11-20T09:14:03.456Z","langs":["vi"],"text":"Kẹt xe ở Quận 1 #saigon"},"cid":"bafy"}}"#;
const REPLAY: &str = r#"{"schema_version":"1.1","id":"r1","source":"replay","author":"7dbd843f6399ec66f5c350a96bc8ae78","text":"Ngập ở Thủ Đức","created_at":"2026-11-16T17:51:51Z","fetched_at":"2026-11-16T17:51:59Z"}"#;

/// Bytes that matter to JSON, XML and UTF-8.
const SPICE: [&[u8]; 12] = [b"\"", b"\\", b"{", b"}", b"[", b"]", b"<", b">", b"&", b"\0", "ệ".as_bytes(), b"\xe1\xbb"];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Cut { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Insert { at: usize, spice: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Cut { at, len }),
        (any::<usize>(), 1..256usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), 0..SPICE.len()).prop_map(|(at, spice)| Mutation::Insert { at, spice }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip { at, byte } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b = byte;
                }
            }
            Mutation::Cut { at, len } => {
                let start = (at % n).min(bytes.len());
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Duplicate { at, len } => {
                let start = (at % n).min(bytes.len());
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Insert { at, spice } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, SPICE[spice].iter().copied());
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..8)
}

proptest! {
    #[test]
    fn mutated_mastodon_timelines_never_panic(m in mutations()) {
        let _ = mastodon::parse_statuses(&mutate(fixture("mastodon_tag_timeline.json"), &m), &ctx());
    }

    #[test]
    fn mutated_reddit_listings_never_panic(m in mutations()) {
        let _ = reddit::parse_listing(&mutate(fixture("reddit_new.json"), &m), "https://www.reddit.com", &ctx());
    }

    #[test]
    fn mutated_rss_feeds_never_panic(m in mutations(), charset in prop_oneof![Just(None), Just(Some("windows-1258")), Just(Some("gb2312"))]) {
        let _ = feed::parse_feed(&mutate(fixture("vnexpress.rss"), &m), charset, &ctx());
    }

    #[test]
    fn mutated_atom_feeds_never_panic(m in mutations()) {
        let _ = feed::parse_feed(&mutate(fixture("youtube.atom"), &m), None, &ctx());
    }

    #[test]
    fn mutated_jetstream_events_never_panic(m in mutations()) {
        let _ = jetstream::parse_event(&mutate(JETSTREAM.as_bytes().to_vec(), &m), &ctx());
    }

    #[test]
    fn mutated_replay_lines_never_panic(m in mutations()) {
        let _ = replay::parse_line(&mutate(REPLAY.as_bytes().to_vec(), &m), &LIMITS);
    }
}

#[test]
fn the_unmutated_fixtures_parse() {
    // Without this the fuzzing could be feeding parsers inputs that never got past the first byte.
    assert!(!mastodon::parse_statuses(&fixture("mastodon_tag_timeline.json"), &ctx()).unwrap().items.posts.is_empty());
    assert!(!feed::parse_feed(&fixture("vnexpress.rss"), None, &ctx()).unwrap().posts.is_empty());
    assert!(!feed::parse_feed(&fixture("youtube.atom"), None, &ctx()).unwrap().posts.is_empty());
    assert!(replay::parse_line(REPLAY.as_bytes(), &LIMITS).unwrap().is_some());
    assert!(jetstream::parse_event(JETSTREAM.as_bytes(), &ctx()).is_ok());
}
