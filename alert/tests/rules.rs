//! The rules on real ClickHouse against a scripted month of a city's rhythm: each rule fires once
//! for the right key with the right evidence when a flood comes; the weekday rush hour is silent
//! under weekly seasonality and an alert without it; a quiet night's handful of posts is silent.

mod common;

use common::*;

const FLOOD_RULES: &str = r#"
[[rule]]
name = "flood_negative"
kind = "negative_share"
topic = "flooding"
threshold = 0.6
min_posts = 30
notify = ["log"]

[[rule]]
name = "flood_volume"
kind = "volume_spike"
topic = "flooding"
threshold = 3.0
min_posts = 30
notify = ["log"]

[[rule]]
name = "net_drop"
kind = "net_sentiment_drop"
threshold = 0.3
min_posts = 20
notify = ["log"]

[[rule]]
name = "flood_terms"
kind = "watch_terms"
terms = ["ngập", "triều cường"]
per_place = true
threshold = 10
notify = ["log"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_after_an_ordinary_month_fires_each_rule_once_for_its_key_with_evidence() {
    let Some(t) = TestDb::new("cp_alert_flood").await else { return };
    // Monday 2026-11-30, 09:00 in Ho Chi Minh City: the window 08:00–09:00 is also rush hour.
    let at = local(2026, 11, 30, 9, 0);
    t.write(ordinary_month(at)).await;
    let rules = format!("{FLOOD_RULES}{LOG}");
    assert!(t.once(&rules, at, true).await.is_empty(), "an ordinary Monday morning alerts nobody");

    t.write(flood(at, 60, 60, "a")).await;
    let events = t.once(&rules, at + chrono::Duration::seconds(30), false).await;
    let mut keys: Vec<(&str, &str, &str, &str)> =
        events.iter().map(|e| (e.rule.as_str(), e.event.as_str(), e.topic.as_str(), e.place.as_str())).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("flood_negative", "fired", "flooding", "*"),
            ("flood_terms", "fired", "flooding", "district_7"),
            ("flood_volume", "fired", "flooding", "*"),
            ("net_drop", "fired", "flooding", "*"),
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e.window.end.to_rfc3339(), "2026-11-30T09:00:00+07:00", "T floored to the minute");
        assert_eq!(e.window.start.to_rfc3339(), "2026-11-30T08:00:00+07:00");
        assert_eq!(e.evidence.len(), 5, "{}", e.rule);
        assert!(e.evidence.iter().all(|p| p.key.starts_with("mastodon_test:flood-a-")), "{}: {:?}", e.rule, e.evidence);
        assert!(e.evidence.iter().all(|p| p.sentiment == "negative"), "most negative first");
        assert!(e.dashboard_url.as_deref().unwrap().contains("topic=flooding"));
    }
    let terms = events.iter().find(|e| e.rule == "flood_terms").unwrap();
    assert_eq!((terms.observed, terms.terms.clone(), terms.baseline.clone()), (60.0, vec!["ngập".to_owned()], None));
    let share = events.iter().find(|e| e.rule == "flood_negative").unwrap();
    let baseline = share.baseline.clone().unwrap();
    assert_eq!(baseline.samples, 4, "four Mondays at 08:00");
    assert!(share.observed > 0.7 && baseline.median.unwrap() < 0.3, "{share:?}");
    let volume = events.iter().find(|e| e.rule == "flood_volume").unwrap();
    assert_eq!(volume.posts, 64, "60 flood posts and the hour's 4 ordinary flooding posts");

    // A minute later, still firing: nothing new (the cooldown holds, and it is read back from
    // ClickHouse by a fresh engine, as after a restart).
    assert!(t.once(&rules, at + chrono::Duration::minutes(1), false).await.is_empty());
    assert_eq!(t.count("SELECT count() FROM DB.alert_events FINAL").await, 4);
    t.drop_db().await;
}

const RUSH: &str = r#"
[[rule]]
name = "traffic_negative"
kind = "negative_share"
topic = "traffic"
threshold = 0.5
min_posts = 30
notify = ["log"]
SEASON

[[rule]]
name = "traffic_volume"
kind = "volume_spike"
topic = "traffic"
threshold = 2.0
min_posts = 30
notify = ["log"]
SEASON
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_hour_is_usual_with_weekly_seasonality_and_alerts_without_it() {
    let Some(t) = TestDb::new("cp_alert_rush").await else { return };
    let at = local(2026, 11, 30, 9, 0);
    t.write(ordinary_month(at + chrono::Duration::minutes(1))).await;
    let weekly = format!("{}{LOG}", RUSH.replace("SEASON", ""));
    assert_eq!(t.once(&weekly, at, true).await, vec![], "this Monday's rush hour is like the last four");
    let unseasonal = format!("{}{LOG}", RUSH.replace("SEASON", "seasonality = \"none\""));
    let events = t.once(&unseasonal, at, true).await;
    let mut fired: Vec<&str> = events.iter().map(|e| e.rule.as_str()).collect();
    fired.sort();
    assert_eq!(fired, ["traffic_negative", "traffic_volume"], "against every earlier hour the rush stands out");
    assert!(events.iter().all(|e| e.baseline.as_ref().unwrap().samples > 600));

    // 03:00–04:00: the night's 2 posts and a handful of angry ones is not an alert.
    let night = local(2026, 11, 30, 4, 0);
    let handful: Vec<_> = (0..5)
        .map(|i| {
            post(
                &format!("night-{i}"),
                night - chrono::Duration::minutes(10 + i),
                "traffic",
                None,
                Mood::Negative,
                "ồn quá",
            )
        })
        .collect();
    t.write(handful).await;
    assert_eq!(t.once(&unseasonal, night, true).await, vec![]);
    assert_eq!(t.count("SELECT count() FROM DB.alert_events").await, 0, "dry runs write nothing");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_over_the_scripted_history_lists_exactly_its_incident() {
    let Some(t) = TestDb::new("cp_alert_backtest").await else { return };
    let at = local(2026, 11, 30, 9, 0);
    t.write(ordinary_month(at)).await;
    t.write(flood(at, 60, 60, "a")).await;
    let settings = t.settings(&format!("{FLOOD_RULES}{LOG}"));
    let mut evaluations = 0;
    let events = alert::backtest::backtest(
        &settings,
        t.client.clone(),
        at - chrono::Duration::days(2),
        at,
        chrono::Duration::minutes(30),
        &mut |_| evaluations += 1,
    )
    .await
    .expect("backtest");
    assert_eq!(evaluations, 97);
    let pages = alert::backtest::pages_per_rule(&settings, &events);
    assert_eq!(
        pages,
        [("flood_negative", 1, 0), ("flood_volume", 1, 0), ("net_drop", 1, 0), ("flood_terms", 1, 0)],
        "{events:#?}"
    );
    for e in &events {
        let end = e.window.end.to_utc();
        assert!(end > at - chrono::Duration::minutes(60) && end <= at, "{} fired at {end}, outside the flood", e.rule);
    }
    assert_eq!(t.count("SELECT count() FROM DB.alert_events").await, 0, "a backtest writes nothing");
    t.drop_db().await;
}

/// A rule scoped by a saved search counts only the posts its query matches, whatever their topic,
/// and shows them as evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_scoped_by_a_saved_search_counts_what_the_search_matches() {
    let Some(t) = TestDb::new("cp_alert_search").await else { return };
    let at = local(2026, 11, 30, 9, 0);
    t.write(ordinary_month(at)).await;
    let rules = format!(
        "{LOG}{}",
        r#"
[[rule]]
name = "flood_words_volume"
kind = "volume_spike"
search = "flood_words"
threshold = 3.0
min_posts = 30
notify = ["log"]

[[rule]]
name = "fire_words_volume"
kind = "volume_spike"
search = "fire_words"
threshold = 3.0
min_posts = 30
notify = ["log"]
"#
    );
    let mut settings = t.settings(&rules);
    settings.searches = toml::from_str(
        r#"
[[search]]
name = "flood_words"
query = '(ngập OR ngap) NOT "tin giả"'
[[search]]
name = "fire_words"
query = '"cháy nhà"'
"#,
    )
    .expect("searches");
    let log: Vec<schema::config::alerts::Notifier> =
        toml::from_str::<schema::config::AlertsConfig>(LOG).expect("log").notifier;
    let once = |at| alert::evaluate_once(&settings, t.deps(&log, None), at, false);
    assert!(once(at).await.expect("evaluate").is_empty(), "an ordinary morning has no flood words");

    // 60 flood posts, plus 8 saying ngập under another topic (counted: the search is the scope,
    // not a topic) and 8 flood posts that are "tin giả" (fake news: the query's NOT leaves them out).
    let mut posts = flood(at, 60, 60, "s");
    for i in 0..8 {
        let t = at - chrono::Duration::minutes(50) + chrono::Duration::minutes(i);
        posts.push(post(
            &format!("other-{i}"),
            t,
            "traffic",
            Some("district_1"),
            Mood::Negative,
            "Kẹt xe vì đường ngập",
        ));
        posts.push(post(
            &format!("fake-{i}"),
            t,
            "flooding",
            Some("district_7"),
            Mood::Negative,
            "tin giả: cả quận ngập",
        ));
    }
    t.write(posts).await;
    let events = once(at + chrono::Duration::seconds(30)).await.expect("evaluate");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (e.rule.as_str(), e.search.as_deref(), e.topic.as_str(), e.place.as_str()),
        ("flood_words_volume", Some("flood_words"), "*", "*")
    );
    // 60 flood posts and the 8 traffic posts; the hour's ordinary posts tagged flooding do not say
    // the words, and the fake-news ones are excluded.
    assert_eq!(e.posts, 68);
    assert!(
        e.evidence
            .iter()
            .all(|p| p.key.starts_with("mastodon_test:flood-s-") || p.key.starts_with("mastodon_test:other-")),
        "{:?}",
        e.evidence
    );
    assert!(alert::message::headline(e).contains("search flood_words"), "{}", alert::message::headline(e));
    assert!(e.dashboard_url.as_deref().unwrap().ends_with("&search=flood_words"), "{:?}", e.dashboard_url);

    // A rule naming a search that does not exist does not start.
    let mut broken = settings.clone();
    broken.searches.search.retain(|s| s.name != "fire_words");
    let err = alert::evaluate_once(&broken, t.deps(&log, None), at, true).await.unwrap_err();
    assert!(err.to_string().contains("fire_words_volume: unknown search \"fire_words\""), "{err}");
    t.drop_db().await;
}
