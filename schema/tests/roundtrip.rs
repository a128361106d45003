//! Property tests of the Kafka envelope: valid posts survive encode/decode unchanged, arbitrary bytes
//! never panic, and every kind of bad input gets its typed error.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use schema::{decode, encode, AnalyzedPost, DecodeError, Engagement, Limits, PlaceId, Post, SourceId};

fn id_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,20}"
}

fn time_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    // 2001..2025, whole milliseconds (what the sources give).
    (978_307_200_000i64..1_735_689_600_000).prop_map(|ms| Utc.timestamp_millis_opt(ms).unwrap())
}

prop_compose! {
    fn post_strategy()(
        id in "[A-Za-z0-9:_-]{1,40}",
        source in id_strategy(),
        url in proptest::option::of("https://[a-z]{1,10}\\.vn/[a-z0-9/]{0,20}"),
        author in "[0-9a-f]{32}",
        text in "\\PC{0,300}",
        lang in proptest::option::of("[a-z]{2}"),
        created_at in time_strategy(),
        fetched_at in time_strategy(),
        places in proptest::collection::vec(id_strategy(), 0..4),
        likes in proptest::option::of(0u64..1_000_000),
        created_at_estimated in any::<bool>(),
    ) -> Post {
        Post {
            id, source: SourceId::new(source).unwrap(), url, author, text, lang, created_at, fetched_at,
            places: places.into_iter().map(|p| PlaceId::new(p).unwrap()).collect(),
            engagement: Engagement { likes, shares: None, replies: likes.map(|l| l / 2) },
            created_at_estimated,
        }
    }
}

proptest! {
    #[test]
    fn any_valid_post_survives_encode_decode(post in post_strategy()) {
        let bytes = encode(&post);
        let back: Post = decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(back, post);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Post>(&bytes, &Limits::default());
        let _ = decode::<AnalyzedPost>(&bytes, &Limits::default());
    }

    #[test]
    fn arbitrary_json_objects_never_panic(fields in proptest::collection::btree_map("[a-z_]{1,12}", any::<i64>(), 0..8)) {
        let mut obj: serde_json::Map<String, serde_json::Value> = fields.into_iter().map(|(k, v)| (k, v.into())).collect();
        obj.insert("schema_version".into(), "1.0".into());
        let _ = decode::<Post>(serde_json::to_vec(&obj).unwrap().as_slice(), &Limits::default());
    }
}

fn sample() -> serde_json::Value {
    serde_json::json!({
        "schema_version": "1.3",
        "id": "109",
        "source": "mastodon_social",
        "author": "00ff",
        "text": "Ngập ở Thủ Đức",
        "created_at": "2026-11-20T08:00:00Z",
        "fetched_at": "2026-11-20T08:01:00Z",
        "future_field_of_a_minor_version": true
    })
}

fn decode_json(value: &serde_json::Value) -> Result<Post, DecodeError> {
    decode(&serde_json::to_vec(value).unwrap(), &Limits::default())
}

#[test]
fn a_newer_minor_version_is_read_and_unknown_fields_ignored() {
    let post = decode_json(&sample()).unwrap();
    assert_eq!(post.key(), "mastodon_social:109");
}

#[test]
fn created_at_estimated_is_optional_and_written_only_when_true() {
    // A 1.0 message has no such field: its time is the source's own.
    assert!(!decode_json(&sample()).unwrap().created_at_estimated);
    let mut post = decode_json(&sample()).unwrap();
    assert!(!String::from_utf8(encode(&post)).unwrap().contains("created_at_estimated"));
    post.created_at_estimated = true;
    let bytes = encode(&post);
    assert!(String::from_utf8(bytes.clone())
        .unwrap()
        .starts_with(&format!("{{\"schema_version\":\"{}\"", schema::SCHEMA_VERSION)));
    assert!(decode::<Post>(&bytes, &Limits::default()).unwrap().created_at_estimated);
}

#[test]
fn bad_input_gets_its_typed_error() {
    let mut v = sample();
    v["schema_version"] = "2.0".into();
    assert!(matches!(decode_json(&v), Err(DecodeError::UnsupportedVersion { major: 2, .. })));

    let mut v = sample();
    v.as_object_mut().unwrap().remove("schema_version");
    assert_eq!(decode_json(&v).unwrap_err(), DecodeError::MissingVersion);

    let mut v = sample();
    v.as_object_mut().unwrap().remove("author");
    let err = decode_json(&v).unwrap_err();
    assert!(matches!(&err, DecodeError::Invalid { message, .. } if message.contains("author")), "{err}");

    let mut v = sample();
    v["places"] = serde_json::json!(["Quận 1"]);
    assert!(matches!(decode_json(&v), Err(DecodeError::Invalid { path, .. }) if path.starts_with("places")));

    let mut v = sample();
    v["created_at"] = "yesterday".into();
    assert!(matches!(decode_json(&v), Err(DecodeError::Invalid { path, .. }) if path == "created_at"));

    let mut v = sample();
    v["created_at"] = "1970-01-01T00:00:00Z".into();
    assert!(matches!(decode_json(&v), Err(DecodeError::Rejected(_))));

    let mut v = sample();
    v["text"] = "x".repeat(30_000).into();
    assert!(matches!(decode_json(&v), Err(DecodeError::Rejected(_))));

    let huge = vec![b' '; 300_000];
    assert!(matches!(decode::<Post>(&huge, &Limits::default()), Err(DecodeError::TooLarge { .. })));
    assert!(matches!(decode::<Post>(b"\xff\xfe{", &Limits::default()), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode::<Post>(b"[1,2]", &Limits::default()), Err(DecodeError::Malformed(_))));
}
