//! The job against the test ClickHouse: posts written by store's Writer, as the store stage writes
//! them. A post re-analysed since (and claimed now) leaves the group; retention drops the
//! embeddings and the reports with the posts.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use emerging::Job;
use schema::config::emerging::EmergingConfig;
use schema::{
    AnalyzedPost, Int8Embedding, Lang, ModelInfo, Sentiment, SentimentProbabilities, SourceId, TopicId, TopicScore,
};
use store::{CityZone, Database, Writer};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// 12 posts about one thing (directions close together) and 40 about anything, on `date`.
fn posts(date: NaiveDate) -> Vec<AnalyzedPost> {
    let mut rng = testkit::Xorshift(0x2545_f491_4f6c_dd1d);
    let topic = rng.vector(384);
    (0..52)
        .map(|i| {
            let at = TZ.from_local_datetime(&date.and_hms_opt(10, i as u32, 0).unwrap()).unwrap().to_utc();
            let (text, v): (String, Vec<f32>) = if i < 12 {
                (
                    format!("Cầu Chữ Y đóng cửa sửa chữa, lần {i}"),
                    topic.iter().map(|t| t + 0.25 * rng.next_f32()).collect(),
                )
            } else {
                (format!("chuyện thường ngày số {i}"), rng.vector(384))
            };
            analysed(&format!("p{i}"), at, "other", text, Some(Int8Embedding::quantise(&v)), at)
        })
        .collect()
}

fn analysed(
    id: &str,
    at: chrono::DateTime<Utc>,
    topic: &str,
    text: String,
    embedding: Option<Int8Embedding>,
    analyzed_at: chrono::DateTime<Utc>,
) -> AnalyzedPost {
    AnalyzedPost {
        id: id.into(),
        source: SourceId::new("replay").unwrap(),
        url: None,
        author: "b".repeat(32),
        lang_declared: None,
        created_at: at,
        fetched_at: at,
        places: vec![],
        engagement: Default::default(),
        created_at_estimated: false,
        text_redacted: text,
        lang: Lang::Vi,
        sentiment: Sentiment::from_probabilities(SentimentProbabilities { negative: 0.6, neutral: 0.3, positive: 0.1 }),
        topics: vec![TopicScore { id: TopicId::new(topic).unwrap(), score: 0.7 }],
        model: ModelInfo { id: "e5".into(), version: "v1".into() },
        analyzed_at,
        embedding,
        search: None,
    }
}

#[tokio::test]
async fn a_post_claimed_since_leaves_its_group_and_retention_drops_what_the_job_keeps() {
    let Some(url) = testkit::clickhouse_url() else { return };
    let name = testkit::unique_name("emerging_job");
    let client = clickhouse::Client::default().with_url(&url).with_validation(false);
    let db = Database::new(&name).unwrap();
    store::migrate(&client, &db, CityZone::new("Asia/Ho_Chi_Minh").unwrap()).await.unwrap();
    let writer = Writer::new(client.clone(), db.clone(), Default::default());
    let day = Utc::now().with_timezone(&TZ).date_naive() - Duration::days(3);
    let report = writer.write(posts(day), &Default::default()).await.unwrap();
    assert!(report.rejected.is_empty());
    let job = Job::new(client.clone(), db.clone(), TZ, EmergingConfig::default());

    let first = job.compute(day).await.unwrap();
    assert_eq!((first.unclaimed_posts, first.posts_grouped), (52, 52));
    assert_eq!(first.groups.iter().map(|g| g.posts).collect::<Vec<_>>(), vec![12], "{first:?}");
    assert!(first.is_final, "three days ago");

    // Three of them analysed again, now claimed by a topic (no embedding): they leave the group.
    let again: Vec<AnalyzedPost> = posts(day)
        .into_iter()
        .take(3)
        .map(|p| {
            let later = p.analyzed_at + Duration::hours(1);
            analysed(&p.id, p.created_at, "traffic", p.text_redacted, None, later)
        })
        .collect();
    let report = writer.write(again, &Default::default()).await.unwrap();
    assert_eq!(report.replaced, 3, "{report:?}");
    let second = job.compute(day).await.unwrap();
    assert_eq!(second.posts_grouped, 49, "the claimed ones are not read");
    assert_eq!(second.groups.iter().map(|g| g.posts).collect::<Vec<_>>(), vec![9], "{second:?}");
    job.save(&second).await.unwrap();
    assert_eq!(job.latest(day).await.unwrap().map(|r| r.computed_at), Some(second.computed_at.clone()));

    // Retention: 40 days on, with 30 days of posts kept, the embeddings and reports go too.
    let count = |table: &'static str| {
        let sql = format!("SELECT toUInt64(count()) FROM {name}.{table}");
        let client = client.clone();
        async move { client.query(&sql).fetch_one::<u64>().await.unwrap() }
    };
    assert_eq!(count("post_embeddings").await, 52);
    store::apply_retention(&client, &db, day + Duration::days(70), 30, 400).await.unwrap();
    assert_eq!((count("post_embeddings").await, count("emerging_reports").await), (0, 0));
    assert!(job.latest(day).await.unwrap().is_none());
    client.query(&format!("DROP DATABASE IF EXISTS {name}")).execute().await.ok();
}
