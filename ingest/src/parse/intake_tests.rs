use super::*;
use crate::parse::test_ctx::{HASHER, LIMITS};
use proptest::prelude::*;
use schema::SourceId;
use std::sync::LazyLock;

static CHANNEL: LazyLock<SourceId> = LazyLock::new(|| SourceId::new("hotline_1022").unwrap());
static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/places.toml")).unwrap();
    Gazetteer::new(&toml::from_str(&text).unwrap())
});

fn ctx() -> IntakeCtx<'static> {
    IntakeCtx { parse: ParseCtx { source: &CHANNEL, ..crate::parse::test_ctx::ctx() }, gazetteer: &GAZETTEER }
}

fn all(reader: &mut RecordReader<&[u8]>) -> Vec<ReadRecord> {
    std::iter::from_fn(|| reader.next_record()).map(|r| r.unwrap()).collect()
}

#[test]
fn formats_by_content_type_and_file_name() {
    assert_eq!(Format::from_content_type("application/json; charset=utf-8"), Some(Format::Json));
    assert_eq!(Format::from_content_type("application/x-ndjson"), Some(Format::Ndjson));
    assert_eq!(Format::from_content_type("Text/CSV"), Some(Format::Csv));
    assert_eq!(Format::from_content_type("text/plain"), None);
    assert_eq!(Format::from_path("a/b.JSONL".as_ref()), Some(Format::Ndjson));
    assert_eq!(Format::from_path("b.csv".as_ref()), Some(Format::Csv));
    assert_eq!(Format::from_path("b.json".as_ref()), None);
}

#[test]
fn a_json_array_is_read_record_by_record() {
    let body = r#"[{"id": 102245, "text": "Ngập ở Quận 7", "created_at": "2026-12-01 08:30", "place": "district_7",
                     "category": "Ngập nước", "author": "0903123456", "channel_field": 1},
                    {"id": "x", "created_at": "2026-12-01T08:30:00+07:00"},
                    "not an object"]"#
        .as_bytes();
    let records = read_json_array(body).unwrap();
    assert_eq!(records.len(), 3);
    let first = records[0].clone().unwrap();
    assert_eq!((first.id.as_str(), first.category.as_deref()), ("102245", Some("Ngập nước")));
    assert_eq!(records[1], Err(RecordError::Missing("text")));
    assert!(matches!(records[2], Err(RecordError::Malformed(_))));
    assert!(matches!(read_json_array(b"{\"id\":1}"), Err(BodyError::NotAnArray(_))));
}

#[test]
fn ndjson_skips_blank_lines_and_counts_bytes() {
    let body: &[u8] = b"{\"id\":\"1\",\"text\":\"a\",\"created_at\":\"2026-12-01 08:00\"}\n\n{oops\n";
    let mut reader = RecordReader::new(body, Format::Ndjson, 1000).unwrap();
    let records = all(&mut reader);
    assert_eq!(records.len(), 2);
    assert!(records[0].is_ok());
    assert_eq!(records[1].as_ref().unwrap_err().kind(), "malformed");
    assert_eq!(reader.position(), body.len() as u64);
}

#[test]
fn csv_by_header_with_quoted_text_and_bad_rows() {
    let body: &[u8] = "created_at,id,text,place\n\
        2026-12-01 07:00,a1,\"Cống bể, nước tràn ra đường\",Bình Thạnh\n\
        2026-12-01 07:05,a2\n\
        2026-12-01 07:10,a3,Đèn đường hỏng,\n"
        .as_bytes();
    let mut reader = RecordReader::new(body, Format::Csv, 1000).unwrap();
    let records = all(&mut reader);
    assert_eq!(records.len(), 3);
    let a1 = records[0].clone().unwrap();
    assert_eq!((a1.text.as_str(), a1.place.as_deref()), ("Cống bể, nước tràn ra đường", Some("Bình Thạnh")));
    assert_eq!(records[1].as_ref().unwrap_err().kind(), "malformed");
    assert_eq!(records[2].as_ref().unwrap().place, None, "an empty cell is no place");
    let wrong = RecordReader::new(&b"ID,body\n1,x\n"[..], Format::Csv, 1000).err().unwrap();
    assert_eq!(wrong, BodyError::CsvHeader("ID,body".into()));
}

#[test]
fn ids_stay_as_written_and_numbers_are_text() {
    let csv: &[u8] = b"id,text,created_at,author,category\n00123,a,2026-12-01,0903123456,07\n1e3,b,2026-12-01,,\n";
    let records = all(&mut RecordReader::new(csv, Format::Csv, 1000).unwrap());
    let first = records[0].clone().unwrap();
    assert_eq!(
        (first.id.as_str(), first.author.as_deref(), first.category.as_deref()),
        ("00123", Some("0903123456"), Some("07"))
    );
    assert_eq!(records[1].as_ref().unwrap().id, "1e3");
    let json = read_json_array(br#"[{"id": 7, "text": "a", "created_at": "2026-12-01", "author": 903123456},
                                     {"id": "8", "text": "a", "created_at": "2026-12-01", "author": {"phone": "0903"}}]"#)
    .unwrap();
    assert_eq!(json[0].as_ref().unwrap().author.as_deref(), Some("903123456"));
    let why = json[1].as_ref().unwrap_err().to_string();
    assert!(why.contains("author must be") && !why.contains("0903"), "the value is not echoed: {why}");
}

#[test]
fn a_line_over_the_limit_is_rejected_and_the_next_one_read() {
    let long = format!("{{\"id\":\"1\",\"text\":\"{}\",\"created_at\":\"2026-12-01\"}}\n", "x".repeat(500));
    let body = format!("{long}{{\"id\":\"2\",\"text\":\"b\",\"created_at\":\"2026-12-01\"}}\n");
    let mut reader = RecordReader::new(body.as_bytes(), Format::Ndjson, 100);
    let records = all(reader.as_mut().unwrap());
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].as_ref().unwrap_err().kind(), "too_long");
    assert_eq!(records[1].as_ref().unwrap().id, "2");
    assert_eq!(reader.unwrap().position(), body.len() as u64);
}

fn record(id: &str, text: &str, at: &str, place: Option<&str>) -> IntakeRecord {
    IntakeRecord {
        id: id.into(),
        text: text.into(),
        created_at: at.into(),
        place: place.map(Into::into),
        category: None,
        author: Some("0903 123 456".into()),
    }
}

#[test]
fn a_record_becomes_a_post_of_its_channel() {
    let nfd = "Ngập sâu ở đường Nguyễn Hữu Thọ".nfd().collect::<String>();
    let taken = to_post(record(" 77 ", &nfd, "2026-12-01 08:30", Some("district_7")), &ctx()).unwrap();
    let post = &taken.post;
    assert_eq!(post.key(), "hotline_1022:77");
    assert_eq!(post.text, "Ngập sâu ở đường Nguyễn Hữu Thọ", "NFC");
    assert_eq!(post.created_at.to_rfc3339(), "2026-12-01T01:30:00+00:00", "a time without a zone is the city's");
    assert_eq!(post.places, vec![PlaceId::new("district_7").unwrap()]);
    assert_eq!(post.author, HASHER.pseudonym("hotline_1022", "0903 123 456"));
    assert!(!post.author.contains("0903"));
    assert_eq!(taken.warning, None);
}

#[test]
fn a_place_named_in_words_or_unknown() {
    let by_name = to_post(record("1", "Cúp nước", "2026-12-01T08:30:00Z", Some("Phường ở Gò Vấp")), &ctx()).unwrap();
    assert_eq!(by_name.post.places, vec![PlaceId::new("go_vap").unwrap()]);
    let unknown = to_post(record("2", "Kẹt xe Quận 1", "2026-12-01T08:30:00Z", Some("Hà Nội")), &ctx()).unwrap();
    assert_eq!(unknown.post.places, vec![PlaceId::new("district_1").unwrap()], "the text's place is kept");
    assert!(unknown.warning.unwrap().contains("\"Hà Nội\" is neither"));
}

#[test]
fn what_a_record_is_rejected_for() {
    let reject = |r: IntakeRecord| to_post(r, &ctx()).unwrap_err().kind();
    assert_eq!(reject(record(" ", "x", "2026-12-01", None)), "empty_id");
    assert_eq!(reject(record("1", " \u{200b} ", "2026-12-01", None)), "empty_text");
    assert_eq!(reject(record("1", "x", "yesterday", None)), "bad_time");
    assert_eq!(reject(record("1", "x", "2999-01-01T00:00:00Z", None)), "bad_time");
    assert_eq!(reject(record("1", &"x".repeat(LIMITS.max_text_bytes + 1), "2026-12-01", None)), "text_too_long");
    assert_eq!(reject(record(&"9".repeat(300), "x", "2026-12-01", None)), "bad_id");
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_json_array(&bytes);
        for format in [Format::Ndjson, Format::Csv] {
            if let Ok(mut reader) = RecordReader::new(&bytes[..], format, 64) {
                while let Some(Ok(record)) = reader.next_record() {
                    if let Ok(record) = record {
                        let _ = to_post(record, &ctx());
                    }
                }
            }
        }
    }
}

proptest! {
    /// Records of arbitrary field text: a taken one is a valid post of the channel whose author is
    /// never the raw value.
    #[test]
    fn arbitrary_records_become_valid_posts_or_reasons(
        id in ".{0,40}", text in ".{0,200}", at in prop_oneof![Just("2026-12-01 08:00".to_owned()), ".{0,30}"],
        place in proptest::option::of(".{0,30}"), author in proptest::option::of("[0-9 ]{1,15}"),
    ) {
        let r = IntakeRecord { id, text, created_at: at, place, category: None, author: author.clone() };
        if let Ok(taken) = to_post(r, &ctx()) {
            prop_assert!(taken.post.validate(&LIMITS).is_ok());
            prop_assert_eq!(taken.post.source.as_str(), "hotline_1022");
            prop_assert_eq!(taken.post.author.len(), 32);
            if let Some(a) = author { prop_assert_ne!(taken.post.author, a); }
        }
    }
}
