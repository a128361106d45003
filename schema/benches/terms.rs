//! The term matcher's cost per post (criterion): the search index the store writes for every new
//! post (`search_index`), and matching a post against alert terms in Rust (`TermMatcher`), on a
//! ~300-byte Vietnamese post with diacritics and on the same post typed without them.

use criterion::{criterion_group, criterion_main, Criterion};
use schema::terms::{fold_diacritics, search_index, TermMatcher};
use std::hint::black_box;

const POST: &str = "Sáng nay đường Nguyễn Hữu Cảnh lại ngập sâu sau cơn mưa lớn, xe máy chết máy hàng loạt, \
    người dân phải dắt bộ qua đoạn ngập. Mong thành phố sớm có giải pháp chống ngập lâu dài cho khu vực này.";

fn terms(c: &mut Criterion) {
    let plain = fold_diacritics(POST);
    c.bench_function("search_index, accented post", |b| b.iter(|| search_index(black_box(POST))));
    c.bench_function("search_index, unaccented post", |b| b.iter(|| search_index(black_box(&plain))));
    let matcher = TermMatcher::new(&["ngập", "triều cường", "kẹt xe"]).expect("terms");
    c.bench_function("TermMatcher::matched, 3 terms", |b| b.iter(|| matcher.matched(black_box(POST))));
}

criterion_group!(benches, terms);
criterion_main!(benches);
