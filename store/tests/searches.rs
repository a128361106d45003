//! Saved searches in ClickHouse: the SQL a query becomes finds exactly the posts the Rust matcher
//! finds (many generated texts and queries, the tricky cases of the term rules among them); the
//! series counts signs and buckets in the city's zone; API-saved searches round-trip; re-indexing
//! posts stored before migration 008 makes them searchable and leaves the trend cubes alone.

mod common;
mod support;

use schema::config::searches::SavedSearch;
use schema::search_query::{Query, QueryMatcher};
use std::collections::BTreeSet;
use store::{Granularity, Queries, Writer, WriterConfig};
use support::*;
use tokio_util::sync::CancellationToken;
use unicode_normalization::UnicodeNormalization;

/// Words with the spellings that matter: with and without diacritics, near-misses by one mark
/// (ngập/ngáp), upper case, words that contain others (ngậpngừng), English, digits.
const WORDS: &[&str] = &[
    "ngập",
    "ngap",
    "NGẬP",
    "ngáp",
    "ngậpngừng",
    "kẹt",
    "ket",
    "KẸT",
    "xe",
    "Xe",
    "đường",
    "duong",
    "mưa",
    "mua",
    "quận",
    "quan",
    "1",
    "12",
    "tp",
    "hcm",
    "flood",
    "flooding",
    "Flood",
    "don't",
    "don’t",
    "triều",
    "cường",
    "trieu",
    "cuong",
    "cầu",
    "cau",
    "sập",
    "sap",
];
/// What may stand between two words: plain and odd spaces, hyphens, clause breaks, a line break.
const GAPS: &[&str] = &[" ", " ", " ", "  ", "-", ". ", ", ", "\n", " 🚗 ", ".", "_", " \"", "… "];
/// Query terms: words and phrases, accented or not, a clause-punctuated phrase.
const TERMS: &[&str] = &[
    "ngập",
    "ngap",
    "kẹt xe",
    "ket xe",
    "\"kẹt xe\"",
    "mưa",
    "mua",
    "\"quận 1\"",
    "tp.hcm",
    "flood",
    "don't",
    "\"triều cường\"",
    "trieu",
    "cầu",
    "\"cầu sập\"",
    "sap",
    "xe",
    "đường",
];

fn text(rng: &mut Lcg) -> String {
    let n = 1 + rng.below(9) as usize;
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push_str(GAPS[rng.below(GAPS.len() as u64) as usize]);
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    // Some texts decomposed (NFD), as some phones send them.
    if rng.below(4) == 0 {
        s.nfd().collect()
    } else {
        s
    }
}

fn query(rng: &mut Lcg, depth: u32) -> String {
    let term = |rng: &mut Lcg| TERMS[rng.below(TERMS.len() as u64) as usize].to_owned();
    if depth == 0 || rng.below(3) == 0 {
        return term(rng);
    }
    let a = query(rng, depth - 1);
    let b = query(rng, depth - 1);
    match rng.below(4) {
        0 => format!("({a}) OR ({b})"),
        1 => format!("({a}) ({b})"),
        2 => format!("({a}) NOT ({b})"),
        _ => format!("{} AND ({b})", term(rng)),
    }
}

/// The tricky cases of schema::terms' tests, as texts.
const FIXED: &[&str] = &[
    "Đường Nguyễn Hữu Cảnh NGẬP sâu",
    "duong ngap qua troi",
    "tôi ngáp ngủ ở quận 1",
    "đường ngap quá",
    "Kẹt-xe ở vòng xoay",
    "Đường bị kẹt. Xe cứu thương không qua được",
    "TP.HCM ngập",
    "tp. hcm mưa",
    "kẹt xe ở Quận 12",
    "I DON’T know, flooding everywhere",
    "#kẹt_xe sáng nay",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_of_a_query_finds_what_the_matcher_finds() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_search_sql").await;
    let mut rng = Lcg(7);
    let mut texts: Vec<String> = FIXED.iter().map(|s| (*s).to_owned()).collect();
    texts.extend((0..600).map(|_| text(&mut rng)));
    let posts: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut p = post(
                "mastodon_social",
                &i.to_string(),
                "a",
                ts(1_763_990_000),
                ts(1_763_990_100),
                (20, 20, 24),
                &["other"],
                &[],
                "v1",
            );
            p.text_redacted = text.clone();
            p
        })
        .collect();
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    writer.write(posts, &CancellationToken::new()).await.expect("write");

    let mut queries: Vec<String> = TERMS.iter().map(|s| (*s).to_owned()).collect();
    queries.extend(["(ngập OR \"kẹt xe\") NOT \"tin giả\"", "ngap NOT ngập", "xe NOT (kẹt OR ket)"].map(String::from));
    queries.extend((0..150).map(|_| query(&mut rng, 3)));
    let (mut nonempty, mut compared) = (0, 0);
    for q in &queries {
        let Ok(parsed) = Query::parse(q) else { continue };
        let matcher = QueryMatcher::new(parsed.clone()).expect("matcher");
        let want: BTreeSet<String> = texts
            .iter()
            .enumerate()
            .filter(|(_, text)| matcher.is_match(text))
            .map(|(i, _)| format!("mastodon_social:{i}"))
            .collect();
        let sql = format!("SELECT key FROM {}.posts WHERE sign = 1 AND ({})", t.db, parsed.to_sql().expect("sql"));
        let got: BTreeSet<String> = t.client.query(&sql).fetch_all::<String>().await.expect(&sql).into_iter().collect();
        assert_eq!(got, want, "query {q:?} → {sql}");
        compared += 1;
        nonempty += usize::from(!want.is_empty() && want.len() < texts.len());
    }
    // The comparison means something only if the queries split the posts.
    assert!(compared >= 150 && nonempty >= compared / 2, "{nonempty} of {compared} queries matched some posts");
    t.drop_db().await;
}

fn search(name: &str, query: &str) -> SavedSearch {
    SavedSearch { name: name.into(), query: query.into(), places: vec![], sources: vec![], description: String::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_series_counts_current_labels_in_local_buckets() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_search_series").await;
    // 2025-11-24 16:30 UTC is 23:30 in Ho Chi Minh City; +1 h is the next local day.
    let t0 = 1_764_001_800;
    let p = |id: &str, dt: i64, probs, places: &[&str], text: &str| {
        let mut p = post("mastodon_social", id, "a", ts(t0 + dt), ts(t0 + dt + 60), probs, &["flooding"], places, "v1");
        p.text_redacted = text.to_owned();
        p
    };
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    let mut first = vec![
        p("1", 0, (60, 2, 2), &["quan_1"], "Đường ngập sâu"),
        p("2", 60, (2, 2, 60), &[], "duong ngap qua"),
        p("3", 3600, (60, 2, 2), &["quan_1"], "ngập lại rồi"),
        p("4", 3660, (60, 2, 2), &[], "tôi ngáp ngủ"),
        p("5", 3720, (60, 2, 2), &["quan_1"], "trời đẹp"),
    ];
    // As the analyzer sends them: with the index (1, 3), without (2, 4: an older analyzer), and
    // with an index of another encoding (5), which the writer must not store.
    for i in [0, 2] {
        first[i].search = Some(schema::WireSearchIndex::of(&first[i].text_redacted));
    }
    first[4].search = Some(schema::WireSearchIndex {
        version: schema::terms::SEARCH_INDEX_VERSION + 1,
        words: " bogus ".into(),
        folded: None,
        accented: false,
    });
    let texts: Vec<(String, String)> = first.iter().map(|p| (p.key(), p.text_redacted.clone())).collect();
    writer.write(first, &CancellationToken::new()).await.expect("write");
    for (key, text) in texts {
        let sql = format!(
            "SELECT search_words, search_folded, search_accented, search_index FROM DB.posts WHERE key = '{key}'"
        );
        let stored: (String, String, u8, u8) = t.scalar(&sql).await;
        let want = schema::terms::search_index(&text);
        let want = (want.words, want.folded, u8::from(want.accented), schema::terms::SEARCH_INDEX_VERSION);
        assert_eq!(stored, want, "{key}: {text}");
    }
    // Post 2 re-analysed as negative: the series must count it once, with the new label.
    let mut again = p("2", 60, (60, 2, 2), &[], "duong ngap qua");
    again.analyzed_at = ts(t0 + 500);
    writer.write(vec![again], &CancellationToken::new()).await.expect("rewrite");

    let q = Queries::new(t.client.clone(), t.db.clone(), t.zone);
    let cond = search("s", "ngập").sql().expect("sql");
    let days = q.search_trends(&cond, ts(t0 - 86_400), ts(t0 + 86_400), Granularity::Day).await.expect("days");
    let got: Vec<(String, i64, i64, i64)> =
        days.iter().map(|r| (r.bucket.format("%F %H:%M").to_string(), r.posts, r.negative, r.positive)).collect();
    assert_eq!(got, [("2025-11-24 00:00".into(), 2, 2, 0), ("2025-11-25 00:00".into(), 1, 1, 0)]);
    let hours = q.search_trends(&cond, ts(t0), ts(t0 + 7200), Granularity::Hour).await.expect("hours");
    let got: Vec<(String, i64)> = hours.iter().map(|r| (r.bucket.format("%d %H:%M").to_string(), r.posts)).collect();
    assert_eq!(got, [("24 23:00".into(), 2), ("25 00:00".into(), 1)]);

    let mut in_q1 = search("s", "ngap");
    in_q1.places = vec!["quan_1".into()];
    let cond = in_q1.sql().expect("sql");
    let all = q.search_trends(&cond, ts(t0 - 86_400), ts(t0 + 86_400), Granularity::Day).await.expect("q1");
    assert_eq!(all.iter().map(|r| r.posts).sum::<i64>(), 2, "ngap folded: posts 1 and 3 name quan_1; 4 does not");
    let filter = store::PostFilter {
        since: ts(t0 - 86_400),
        until: ts(t0 + 86_400),
        topic: None,
        place: None,
        source: None,
        sentiment: None,
        search: Some(search("s", "ngap").sql().expect("sql")),
    };
    let page = q.posts_page(&filter, None, 10).await.expect("page");
    let keys: Vec<&str> = page.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mastodon_social:4", "mastodon_social:3", "mastodon_social:2", "mastodon_social:1"]);
    assert_eq!(q.unindexed_posts(ts(t0 - 86_400), ts(t0 + 86_400)).await.expect("unindexed"), 0);
    t.drop_db().await;
}

/// The writer stores the analyzer's index as sent when its version is current (here a marker no
/// tokeniser would make), and leaves a row without one, or with another version, to be indexed.
#[test]
fn a_row_takes_the_analyzers_index_of_the_current_version_only() {
    let mut p =
        post("mastodon_social", "1", "a", ts(1_764_001_800), ts(1_764_001_860), (60, 2, 2), &["flooding"], &[], "v1");
    let marker = schema::WireSearchIndex {
        version: schema::terms::SEARCH_INDEX_VERSION,
        words: " marker ".into(),
        folded: Some(" folded ".into()),
        accented: true,
    };
    p.search = Some(marker.clone());
    let row = store::rows::PostRow::from_post(p.clone(), 1).expect("row");
    assert_eq!(
        (row.search_words.as_str(), row.search_folded.as_str(), row.search_accented, row.search_index),
        (" marker ", " folded ", 1, schema::terms::SEARCH_INDEX_VERSION)
    );
    p.search = Some(schema::WireSearchIndex { version: schema::terms::SEARCH_INDEX_VERSION + 1, ..marker });
    let row = store::rows::PostRow::from_post(p.clone(), 1).expect("row");
    assert_eq!((row.search_words.as_str(), row.search_index), ("", 0), "another version: the writer indexes it");
    p.search = None;
    assert_eq!(store::rows::PostRow::from_post(p, 1).expect("row").search_index, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_saved_through_the_api_round_trip() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_search_saved").await;
    let at = |s: i64| ts(1_764_000_000 + s);
    let mut a = search("flooding", "ngập OR \"triều cường\"");
    a.places = vec!["quan_1".into()];
    store::searches::save(&t.client, &t.db, &a, "lan", at(0)).await.expect("save a");
    store::searches::save(&t.client, &t.db, &search("bridge", "cầu sập"), "lan", at(1)).await.expect("save b");
    let changed = search("flooding", "ngập");
    store::searches::save(&t.client, &t.db, &changed, "minh", at(2)).await.expect("replace a");
    store::searches::delete(&t.client, &t.db, "bridge", "minh", at(3)).await.expect("delete b");
    let listed = store::searches::list(&t.client, &t.db).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((&listed[0].search, listed[0].saved_by.as_str(), listed[0].saved_at), (&changed, "minh", at(2)));
    // Saved again after its deletion, a name is back.
    store::searches::save(&t.client, &t.db, &search("bridge", "cầu"), "lan", at(4)).await.expect("save b again");
    let names: Vec<String> =
        store::searches::list(&t.client, &t.db).await.expect("list").into_iter().map(|s| s.search.name).collect();
    assert_eq!(names, ["bridge", "flooding"]);
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_makes_old_posts_searchable_and_leaves_the_cubes_alone() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_search_reindex").await;
    let t0 = 1_763_990_000;
    let (posts, latest) = stream(300, 11);
    // Every version of a post has the same text; two of four texts have "ngap" in some spelling.
    let texts = ["Đường ngập sâu", "duong ngap qua", "kẹt xe", "trời ngáp"];
    let text_of = |id: &str| texts[id.parse::<usize>().expect("numeric id") % texts.len()];
    let posts: Vec<_> = posts
        .into_iter()
        .map(|mut p| {
            p.text_redacted = text_of(&p.id).to_owned();
            p
        })
        .collect();
    // Rows as a store before migration 008 wrote them: written, then their index taken away.
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    writer.write(posts, &CancellationToken::new()).await.expect("write");
    let clear =
        format!("ALTER TABLE {}.posts UPDATE search_words = '', search_folded = '', search_index = 0 WHERE 1", t.db);
    t.client.query(&clear).execute().await.expect(&clear);
    let mutations =
        format!("SELECT toUInt64(count()) FROM system.mutations WHERE database = '{}' AND is_done = 0", t.db);
    for _ in 0..300 {
        if t.client.query(&mutations).fetch_one::<u64>().await.expect("mutations") == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let live: u64 = t.scalar("SELECT toUInt64(sum(sign)) FROM DB.posts").await;
    let q = Queries::new(t.client.clone(), t.db.clone(), t.zone);
    let (since, until) = (ts(t0 - 30 * 86_400), ts(t0 + 30 * 86_400));
    assert_eq!(q.unindexed_posts(since, until).await.expect("unindexed"), live);
    let cond = search("s", "ngap").sql().expect("sql");
    let found = |rows: Vec<store::TrendRow>| rows.iter().map(|r| r.posts).sum::<i64>();
    assert_eq!(found(q.search_trends(&cond, since, until, Granularity::Day).await.expect("before")), 0);
    let cubes_before = actual_cells(&t, false).await;

    // What a run cut short leaves behind for 5 posts: the indexed row written, the old one not
    // yet cancelled (live twice). The run must cancel the old one, not index it a second time.
    let sql = format!("SELECT ?fields FROM {}.posts FINAL WHERE sign = 1 ORDER BY key LIMIT 5", t.db);
    let half_done: Vec<store::rows::PostRow> = t.client.query(&sql).fetch_all().await.expect("rows");
    let mut insert =
        t.client.clone().with_database(t.db.as_str()).insert::<store::rows::PostRow>("posts").await.expect("insert");
    for row in &half_done {
        let mut row = store::rows::PostRow { version: row.version + 1, ..row.clone() };
        row.index_for_search();
        insert.write(&row).await.expect("write");
    }
    insert.end().await.expect("end");

    let mut days_seen = Vec::new();
    let report = store::searches::reindex(&t.client, &t.db, |day, _| days_seen.push(day)).await.expect("reindex");
    assert_eq!((report.posts, report.healed), (live - 5, 5));
    assert!(report.days > 1 && report.days == days_seen.len(), "{report:?} over {days_seen:?}");
    assert_eq!(q.unindexed_posts(since, until).await.expect("unindexed"), 0);
    let rows = q.search_trends(&cond, since, until, Granularity::Day).await.expect("after");
    let want: Vec<_> = latest.values().filter(|p| text_of(&p.id) != "kẹt xe").collect();
    let want_negative = want.iter().filter(|p| p.sentiment.label == schema::SentimentLabel::Negative).count() as i64;
    assert!(!want.is_empty() && want_negative > 0);
    assert_eq!(found(rows.clone()), want.len() as i64, "every live post with ngập, ngap or ngáp");
    assert_eq!(rows.iter().map(|r| r.negative).sum::<i64>(), want_negative, "with its current label");
    assert_eq!(t.scalar::<u64>("SELECT toUInt64(sum(sign)) FROM DB.posts").await, live, "no post gained or lost");
    assert_eq!(actual_cells(&t, false).await, cubes_before, "the cubes did not move");
    let again = store::searches::reindex(&t.client, &t.db, |_, _| {}).await.expect("again");
    assert_eq!(again, store::searches::ReindexReport::default(), "nothing left to do");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_series_equals_the_scan_and_recomputes_only_changed_days() {
    let Some(url) = common::clickhouse_url() else { return };
    let t = TestDb::new(&url, "cp_search_cache").await;
    let (posts, _) = stream(400, 5);
    let texts = ["Đường ngập sâu", "duong ngap qua", "kẹt xe", "trời ngáp"];
    let with_text = |mut p: schema::AnalyzedPost| {
        p.text_redacted = texts[p.id.parse::<usize>().expect("id") % texts.len()].to_owned();
        p
    };
    let writer = Writer::new(t.client.clone(), t.db.clone(), WriterConfig::default());
    writer.write(posts.into_iter().map(with_text).collect(), &CancellationToken::new()).await.expect("write");
    let q = Queries::new(t.client.clone(), t.db.clone(), t.zone);
    let cond = search("s", "ngập OR \"kẹt xe\"").sql().expect("sql");
    // The stream spans 2025-11-24 23:00 to 2025-11-27 23:00 local; a range cut inside days.
    let (since, until) = (ts(1_763_990_000), ts(1_764_250_000));
    let check = |g| {
        let (q, cond) = (&q, &cond);
        async move {
            let scan = q.search_trends(cond, since, until, g).await.expect("scan");
            let (cached, stats) = q.search_series(cond, since, until, g).await.expect("series");
            assert_eq!(cached, scan, "{g:?}");
            assert!(!scan.is_empty());
            stats
        }
    };
    let first = check(Granularity::Day).await;
    assert_eq!((first.days, first.computed), (4, 4), "a cold cache computes every day");
    assert_eq!(check(Granularity::Day).await.computed, 0, "then none");
    assert_eq!(check(Granularity::Hour).await.computed, 0, "hours come from the same cache");

    // One post re-analysed as positive: only its day is computed again, with the new label.
    let (mut again, _) = stream(400, 5);
    let post = again.remove(8);
    let mut post = with_text(post);
    post.analyzed_at += chrono::Duration::hours(5);
    post.sentiment = schema::Sentiment::from_probabilities(schema::SentimentProbabilities {
        negative: 0.0,
        neutral: 0.0,
        positive: 1.0,
    });
    writer.write(vec![post], &CancellationToken::new()).await.expect("rewrite");
    assert_eq!(check(Granularity::Day).await.computed, 1);
    // Merging the cancelled pair away changes nothing the cache can see.
    t.optimize("posts").await;
    assert_eq!(check(Granularity::Hour).await.computed, 0, "the checksum survives merges");

    // A later computation of a day cut short (an hour row written, the day's own row not): it is
    // not trusted, the day is computed again, and the answer is still the scan's.
    let day: u16 = t.scalar("SELECT toUInt16(max(day)) FROM DB.search_cache").await;
    let fake = format!(
        "INSERT INTO {}.search_cache SELECT fingerprint, day, checksum, computed_ms + 1, bucket, 999, 0, 0, 0, 999          FROM {}.search_cache WHERE toUInt16(day) = {day} AND bucket != 0 LIMIT 1",
        t.db, t.db
    );
    t.client.query(&fake).execute().await.expect(&fake);
    assert_eq!(check(Granularity::Day).await.computed, 1, "the cut-short day is computed again");
    t.optimize("search_cache").await;
    assert_eq!(check(Granularity::Hour).await.computed, 0, "and merges keep the latest computation");
    t.drop_db().await;
}
