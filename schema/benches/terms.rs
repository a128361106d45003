//! The term matcher's cost per post (criterion): the search index the store writes for every new
//! post (`search_index`), and matching a post against alert terms in Rust (`TermMatcher`), on a
//! ~300-byte Vietnamese post with diacritics and on the same post typed without them; and decoding
//! an analysed post with and without the index the analyzer attaches.

use criterion::{criterion_group, criterion_main, Criterion};
use schema::terms::{fold_diacritics, search_index, TermMatcher};
use schema::{
    decode, encode, AnalyzedPost, Lang, Limits, ModelInfo, PlaceId, Sentiment, SentimentProbabilities, SourceId,
    TopicId, TopicScore, WireSearchIndex,
};
use std::hint::black_box;

const POST: &str = "Sáng nay đường Nguyễn Hữu Cảnh lại ngập sâu sau cơn mưa lớn, xe máy chết máy hàng loạt, \
    người dân phải dắt bộ qua đoạn ngập. Mong thành phố sớm có giải pháp chống ngập lâu dài cho khu vực này.";

fn terms(c: &mut Criterion) {
    let plain = fold_diacritics(POST);
    c.bench_function("search_index, accented post", |b| b.iter(|| search_index(black_box(POST))));
    c.bench_function("search_index, unaccented post", |b| b.iter(|| search_index(black_box(&plain))));
    decode_with_and_without_the_index(c);
    let matcher = TermMatcher::new(&["ngập", "triều cường", "kẹt xe"]).expect("terms");
    c.bench_function("TermMatcher::matched, 3 terms", |b| b.iter(|| matcher.matched(black_box(POST))));
}

/// What the analyzer's index (schema 1.3) costs the store instead: decoding the larger message.
fn decode_with_and_without_the_index(c: &mut Criterion) {
    let t = chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z").expect("time").to_utc();
    let mut post = AnalyzedPost {
        id: "113456789012345678".into(),
        source: SourceId::new("mastodon_social").expect("source"),
        url: Some("https://mastodon.social/@x/113456789012345678".into()),
        author: format!("{:064x}", 7),
        lang_declared: Some("vi".into()),
        created_at: t,
        fetched_at: t,
        places: vec![PlaceId::new("binh_thanh").expect("place")],
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: POST.into(),
        lang: Lang::Vi,
        sentiment: Sentiment::from_probabilities(SentimentProbabilities {
            negative: 0.8,
            neutral: 0.15,
            positive: 0.05,
        }),
        topics: vec![TopicScore { id: TopicId::new("flooding").expect("topic"), score: 0.9 }],
        model: ModelInfo { id: "multilingual-e5-small".into(), version: "v1".into() },
        analyzed_at: t,
        embedding: None,
        search: None,
    };
    let limits = Limits::default();
    let without = encode(&post);
    post.search = Some(WireSearchIndex::of(POST));
    let with = encode(&post);
    c.bench_function("decode analyzed post, without search index", |b| {
        b.iter(|| decode::<AnalyzedPost>(black_box(&without), &limits).expect("decode"))
    });
    c.bench_function("decode analyzed post, with search index", |b| {
        b.iter(|| decode::<AnalyzedPost>(black_box(&with), &limits).expect("decode"))
    });
}

criterion_group!(benches, terms);
criterion_main!(benches);
