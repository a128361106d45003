//! Saved searches through the API of a real `citypulse serve` on ClickHouse: listing the
//! configured ones, saving (analyst role only, errors naming the field and the column), the series
//! and its posts, replacing and deleting; and the searches.toml ones cannot be changed here.

mod common;

use common::serve::{get, scripted, send, Server, ANALYST_TOKEN, TOKEN};
use serde_json::json;

#[test]
fn analysts_save_searches_and_read_them_as_series_and_posts() {
    let Some(url) = common::clickhouse_url() else { return };
    let server = Server::start(&url, scripted(), true);
    let post = |token, body| send(&server, reqwest::Method::POST, "/api/v1/searches", token, Some(body));
    let api = |path: &str| get(&server.base, path, Some(TOKEN));

    // The shipped searches.toml, as configuration.
    let (status, body) = api("/api/v1/searches");
    assert_eq!(status, 200, "{body}");
    let listed = body["searches"].as_array().unwrap();
    assert!(listed.iter().any(|s| s["name"] == "tidal_flooding" && s["origin"] == "config"), "{body}");

    // Saving needs the analyst role; mistakes name their field (and the query's column).
    let flood = json!({"name": "ngap_q7", "query": "ngập NOT mưa", "places": ["district_7"], "description": "Q7"});
    let (status, body) = post(TOKEN, flood.clone());
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = post(ANALYST_TOKEN, json!({"name": "x", "query": "ngập OR (mưa"}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("query")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("column 9:"), "{body}");
    let (status, body) = post(ANALYST_TOKEN, json!({"name": "x", "query": "ngập", "places": ["atlantis"]}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("places")), "{body}");
    let (status, body) = post(ANALYST_TOKEN, json!({"name": "Bad Name", "query": "ngập"}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("name")), "{body}");
    let (status, body) = post(ANALYST_TOKEN, json!({"name": "tidal_flooding", "query": "ngập"}));
    assert_eq!(status, 409, "a configured name: {body}");
    let (status, body) = post(ANALYST_TOKEN, json!({"name": "x", "querry": "ngập"}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("body")), "an unknown field: {body}");

    let (status, body) = post(ANALYST_TOKEN, flood.clone());
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["search"]["saved_by"].as_str(), body["search"]["origin"].as_str()),
        (Some("analyst_lan"), Some("api"))
    );
    // Saving computed the series already (serve's own warmer waits 15 s after start): the first
    // look is answered from the cache.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = clickhouse::Client::default().with_url(&server.url).with_validation(false);
    let cached: u64 = rt
        .block_on(client.query(&format!("SELECT toUInt64(count()) FROM {}.search_cache", server.db)).fetch_one())
        .unwrap();
    assert!(cached >= 90, "a day row for each of the last 90 days at least: {cached}");

    // The series: f0..f5 say ngập (f0 as "ngap", in a post without diacritics), f6..f9 say mưa;
    // all in District 7 on 2026-11-30, all negative.
    let range = "since=2026-11-29&until=2026-12-01";
    let (status, first) = api(&format!("/api/v1/searches/ngap_q7/trends?{range}"));
    assert_eq!(status, 200, "{first}");
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{first}");
    assert_eq!(rows[0]["bucket"].as_str(), Some("2026-11-30T00:00:00+07:00"));
    assert_eq!((rows[0]["posts"].as_i64(), rows[0]["negative"].as_i64()), (Some(6), Some(6)), "{first}");
    assert_eq!(first["unindexed_posts"].as_u64(), Some(0));
    let (_, again) = api(&format!("/api/v1/searches/ngap_q7/trends?{range}"));
    assert_eq!(again["rows"], first["rows"], "the cached answer is the same");
    let (_, hours) = api(&format!("/api/v1/searches/ngap_q7/trends?{range}&granularity=hour"));
    assert_eq!(hours["rows"][0]["bucket"].as_str(), Some("2026-11-30T08:00:00+07:00"), "{hours}");

    // The posts behind it, paged.
    let (status, page) = api(&format!("/api/v1/searches/ngap_q7/posts?{range}&limit=4"));
    assert_eq!(status, 200, "{page}");
    let mut keys: Vec<String> =
        page["posts"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_owned()).collect();
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, rest) = api(&format!("/api/v1/searches/ngap_q7/posts?{range}&limit=4&cursor={cursor}"));
    assert!(rest["next_cursor"].is_null(), "{rest}");
    keys.extend(rest["posts"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_owned()));
    keys.sort();
    let want: Vec<String> = (0..6).map(|i| format!("mastodon_social:f{i}")).collect();
    assert_eq!(keys, want);

    // Unknown parameters and searches are named.
    let (status, body) = api(&format!("/api/v1/searches/ngap_q7/trends?{range}&topic=flooding"));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("topic")), "{body}");
    assert_eq!(api("/api/v1/searches/nope/trends").0, 404);

    // Saved again: replaced (200); now without the NOT and the place, the mưa posts count too
    // (the day before's 2 among them).
    let (status, _) = post(ANALYST_TOKEN, json!({"name": "ngap_q7", "query": "ngập OR mưa"}));
    assert_eq!(status, 200);
    let (_, replaced) = api(&format!("/api/v1/searches/ngap_q7/trends?{range}"));
    let posts: Vec<Option<i64>> = replaced["rows"].as_array().unwrap().iter().map(|r| r["posts"].as_i64()).collect();
    assert_eq!(posts, [Some(2), Some(10)], "{replaced}");

    // Deleting: analysts only, not the configured ones.
    let delete =
        |token, name: &str| send(&server, reqwest::Method::DELETE, &format!("/api/v1/searches/{name}"), token, None).0;
    assert_eq!(delete(TOKEN, "ngap_q7"), 403);
    assert_eq!(delete(ANALYST_TOKEN, "tidal_flooding"), 409);
    assert_eq!(delete(ANALYST_TOKEN, "ngap_q7"), 204);
    assert_eq!(delete(ANALYST_TOKEN, "ngap_q7"), 404);
    assert_eq!(api(&format!("/api/v1/searches/ngap_q7/trends?{range}")).0, 404);
    let (_, body) = api("/api/v1/searches");
    assert!(!body["searches"].as_array().unwrap().iter().any(|s| s["name"] == "ngap_q7"), "{body}");

    rt.block_on(client.query(&format!("DROP DATABASE IF EXISTS {}", server.db)).execute()).unwrap();
}
