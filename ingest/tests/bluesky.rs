//! Bluesky Jetstream over a local WebSocket server: posts arrive once, non-post events and bad
//! frames only move the cursor, and after the server drops the connection the crawler reconnects
//! with `cursor=<time_us>` of the last acknowledged event.

// The handshake callback's signature (a large error response) is tungstenite's, not ours.
#![allow(clippy::result_large_err)]

mod common;

use common::*;
use futures_util::SinkExt;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_732_000_000_000_000;
const EVENTS: i64 = 30;
/// The first connection is dropped after this many events. The last of them is replayed by the
/// reconnect (Jetstream resumes at the cursor inclusive), so it must be a post that passes the place
/// filter: an identity event or a filtered post there would make "arrives once" unfalsifiable.
const FIRST_CONNECTION: i64 = 16;

fn event(i: i64) -> String {
    let time_us = T0 + i;
    if i % 5 == 0 {
        return format!(
            r#"{{"did":"did:plc:u{i}","time_us":{time_us},"kind":"identity","identity":{{"did":"did:plc:u{i}","handle":"u.bsky.social","seq":{i},"time":"2024-11-19T07:06:40.000Z"}}}}"#
        );
    }
    if i % 7 == 0 {
        return "{not json".into();
    }
    let text = if i % 3 == 0 { format!("hello world {i}") } else { format!("Ngập ở Quận 1, lần {i}") };
    format!(
        r#"{{"did":"did:plc:u{u}","time_us":{time_us},"kind":"commit","commit":{{"rev":"r{i}","operation":"create","collection":"app.bsky.feed.post","rkey":"k{i}","record":{{"$type":"app.bsky.feed.post","createdAt":"2024-11-19T07:06:40.000Z","langs":["vi"],"text":"{text}"}},"cid":"c{i}"}}}}"#,
        u = i % 4
    )
}

fn expected_keys() -> BTreeSet<String> {
    (1..=EVENTS)
        .filter(|i| i % 5 != 0 && i % 7 != 0 && i % 3 != 0)
        .map(|i| format!("bluesky_test:did:plc:u{}/k{i}", i % 4))
        .collect()
}

async fn jetstream_server(uris: Arc<Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let uris = uris.clone();
            tokio::spawn(async move {
                let mut uri = String::new();
                let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
                    uri = req.uri().to_string();
                    Ok(resp)
                })
                .await
                .unwrap();
                uris.lock().unwrap().push(uri.clone());
                let cursor: Option<i64> = uri.split("cursor=").nth(1).and_then(|c| c.split('&').next()?.parse().ok());
                let first = uris.lock().unwrap().len() == 1;
                let mut ws = ws;
                for i in 1..=EVENTS {
                    // Jetstream replays from the cursor inclusive: one overlapping event.
                    if cursor.is_some_and(|c| T0 + i < c) {
                        continue;
                    }
                    if first && i > FIRST_CONNECTION {
                        return; // dropped without a close frame
                    }
                    if ws.send(Message::text(event(i))).await.is_err() {
                        return;
                    }
                }
                // Stay connected and idle, as Jetstream does between posts.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    format!("ws://{addr}/subscribe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_posts_arrive_once_across_a_dropped_connection() {
    let uris = Arc::new(Mutex::new(Vec::new()));
    let url = jetstream_server(uris.clone()).await;
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[defaults]\nbackoff_initial_ms = 20\n\n[[bluesky]]\nname = \"bluesky_test\"\nurl = \"{url}\"\nrequire_place = true\n"
    );
    let settings = settings(&toml, &kafka, dir.path());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run_with(settings.sources.clone(), shared(&settings), shutdown.clone()));
    let expected = expected_keys();
    let posts = read_posts(&kafka, expected.len(), Duration::from_millis(1500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    let keys: Vec<String> = posts.iter().map(|p| p.key()).collect();
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(keys.len(), expected.len(), "a post arrived twice");
    assert!(posts.iter().all(|p| p.places == [schema::PlaceId::new("district_1").unwrap()]));
    let uris = uris.lock().unwrap().clone();
    assert!(uris[0].contains("wantedCollections=app.bsky.feed.post"), "{uris:?}");
    assert!(!uris[0].contains("cursor="), "{uris:?}");
    assert!(expected.contains(&format!("bluesky_test:did:plc:u{}/k{FIRST_CONNECTION}", FIRST_CONNECTION % 4)));
    assert!(
        uris[1].contains(&format!("cursor={}", T0 + FIRST_CONNECTION)),
        "resumed at event {FIRST_CONNECTION}: {uris:?}"
    );
    let saved = ingest::checkpoint::Checkpoints::open(dir.path())
        .unwrap()
        .load(&schema::SourceId::new("bluesky_test").unwrap(), "jetstream")
        .unwrap();
    assert_eq!(saved, Some((T0 + EVENTS).to_string()));
}
