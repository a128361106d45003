//! Bluesky Jetstream: one WebSocket text frame (a JSON event) to a post.
//!
//! Jetstream sends `{"did":..,"time_us":..,"kind":"commit","commit":{"operation":"create",
//! "collection":"app.bsky.feed.post","rkey":..,"record":{"text":..,"createdAt":..,"langs":[..]}}}`
//! and other kinds (`identity`, `account`, deletes, other collections) that carry no post. Every
//! event's `time_us` is the resume cursor, whether or not it was a post.

use super::{cut, finish, parse_rfc3339, ItemError, ParseCtx, ParseError};
use schema::{Engagement, Post};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Event {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    operation: String,
    collection: String,
    rkey: String,
    /// Read as a post only for post creations: likes, follows, reposts and other collections'
    /// records have other fields, and must only move the cursor.
    #[serde(default)]
    record: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Record {
    text: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(default)]
    langs: Vec<String>,
}

/// One event: its cursor, and the post if it is the creation of one.
#[derive(Debug)]
pub struct JetstreamEvent {
    pub time_us: i64,
    pub post: Option<Result<Post, ItemError>>,
}

/// Parses one frame. A frame that is not an event at all is a [`ParseError`].
pub fn parse_event(frame: &[u8], ctx: &ParseCtx<'_>) -> Result<JetstreamEvent, ParseError> {
    if frame.len() > ctx.limits.max_message_bytes {
        return Err(ParseError::TooLarge { bytes: frame.len(), max: ctx.limits.max_message_bytes });
    }
    let event: Event = serde_json::from_slice(frame).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ParseError::Shape(cut(&e.to_string())),
        _ => ParseError::Json(cut(&e.to_string())),
    })?;
    let post = match event.commit {
        Some(c) if event.kind == "commit" && c.operation == "create" && c.collection == "app.bsky.feed.post" => {
            Some(record_to_post(&event.did, c.rkey, c.record, ctx))
        }
        _ => None,
    };
    Ok(JetstreamEvent { time_us: event.time_us, post })
}

fn record_to_post(
    did: &str,
    rkey: String,
    record: Option<serde_json::Value>,
    ctx: &ParseCtx<'_>,
) -> Result<Post, ItemError> {
    let record = record.ok_or(ItemError::Missing("record"))?;
    let record: Record = serde_json::from_value(record).map_err(|e| ItemError::Shape(cut(&e.to_string())))?;
    let created_at = parse_rfc3339(&record.created_at)?;
    let url = format!("https://bsky.app/profile/{did}/post/{rkey}");
    // did + rkey is the post's identity; the did alone is the author's and is pseudonymised.
    let id = format!("{did}/{rkey}");
    let lang = record.langs.into_iter().next();
    finish(ctx, id, Some(url), did, record.text, lang, created_at, Engagement::default())
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::ctx;
    use super::*;
    use proptest::prelude::*;

    const POST: &str = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1732093200123456,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.post","createdAt":"2024-11-20T09:00:00.102Z","langs":["vi"],"reply":null,"text":"Ngập ở Thảo Điền rồi"},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}"#;

    #[test]
    fn a_created_post() {
        let e = parse_event(POST.as_bytes(), &ctx()).unwrap();
        assert_eq!(e.time_us, 1_732_093_200_123_456);
        let p = e.post.unwrap().unwrap();
        assert_eq!(p.id, "did:plc:eygmaihciaxprqvxpfvl6flk/3l3qo2vuowo2b");
        assert_eq!(p.text, "Ngập ở Thảo Điền rồi");
        assert_eq!(p.lang.as_deref(), Some("vi"));
        assert_eq!(
            p.url.as_deref(),
            Some("https://bsky.app/profile/did:plc:eygmaihciaxprqvxpfvl6flk/post/3l3qo2vuowo2b")
        );
        assert!(!p.author.contains("did:"));
    }

    #[test]
    fn other_events_only_move_the_cursor() {
        let identity = r#"{"did":"did:plc:x","time_us":5,"kind":"identity","identity":{"did":"did:plc:x","handle":"a.bsky.social","seq":1,"time":"2024-09-05T06:11:04.870Z"}}"#;
        let e = parse_event(identity.as_bytes(), &ctx()).unwrap();
        assert_eq!((e.time_us, e.post.is_none()), (5, true));
        let delete = POST.replace("\"create\"", "\"delete\"");
        assert!(parse_event(delete.as_bytes(), &ctx()).unwrap().post.is_none());
        let like = POST.replace("app.bsky.feed.post\",\"rkey", "app.bsky.feed.like\",\"rkey");
        assert!(parse_event(like.as_bytes(), &ctx()).unwrap().post.is_none());
        assert!(matches!(parse_event(b"{\"kind\":1}", &ctx()), Err(ParseError::Shape(_))));
        // Other collections' records have no text: an event, not a malformed one.
        let follow = r#"{"did":"did:plc:x","time_us":7,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.graph.follow","rkey":"k","record":{"$type":"app.bsky.graph.follow","createdAt":"2026-07-04T14:38:07.706Z","subject":"did:plc:y"},"cid":"c"}}"#;
        let e = parse_event(follow.as_bytes(), &ctx()).unwrap();
        assert_eq!((e.time_us, e.post.is_none()), (7, true));
        // A post record without text is a dropped item, not a malformed event.
        let no_text = POST.replace(r#","text":"Ngập ở Thảo Điền rồi""#, "");
        let e = parse_event(no_text.as_bytes(), &ctx()).unwrap();
        assert!(matches!(e.post, Some(Err(ItemError::Shape(_)))), "{e:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_event(&bytes, &ctx());
        }
    }
}
