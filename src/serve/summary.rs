//! The daily picture (`GET /api/v1/summary`, the dashboard's tiles, `citypulse report`): per topic
//! its posts and net sentiment with the change against the day before and against the mean of the
//! same weekday of the last four weeks, the places that moved most, the day's alerts, and example
//! posts. One builder, so the page, the API and the report cannot disagree.

use super::api::PostJson;
use super::AppState;
use alert::history::AlertSummary;
use chrono::{NaiveDate, TimeZone};
use serde::Serialize;
use serde_json::{json, Value};
use store::{Dimension, Granularity, StoreError, TrendQuery, TrendRow};

/// A trend row as the API and `trends --format json` write it.
pub fn trend_json(r: &TrendRow) -> Value {
    json!({"bucket": r.bucket.to_rfc3339(), "key": r.key, "posts": r.posts, "avg_score": r.avg_score,
           "net_sentiment": r.net_sentiment, "positive": r.positive, "neutral": r.neutral, "negative": r.negative})
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub date: NaiveDate,
    pub topics: Vec<TopicDay>,
    pub places_moved: Vec<PlaceMove>,
    pub alerts: Vec<AlertSummary>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DayCounts {
    pub posts: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
    /// (positive − negative) / posts; null without posts.
    pub net_sentiment: Option<f64>,
}

impl DayCounts {
    fn add(&mut self, r: &TrendRow) {
        self.posts += r.posts;
        self.negative += r.negative;
        self.neutral += r.neutral;
        self.positive += r.positive;
        self.net_sentiment = (self.posts > 0).then(|| (self.positive - self.negative) as f64 / self.posts as f64);
    }
}

/// The change of a day against a reference: posts and net sentiment, each null when the
/// reference had no posts.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub posts: Option<f64>,
    pub net_sentiment: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicDay {
    pub topic: String,
    pub label_vi: String,
    pub label_en: String,
    #[serde(flatten)]
    pub day: DayCounts,
    pub vs_previous_day: Change,
    /// Against the mean of the same weekday of the four weeks before.
    pub vs_same_weekday: Change,
    /// Posts per day over the 14 days ending with this one (the tile's sparkline).
    pub daily_posts: Vec<i64>,
    pub examples: Vec<PostJson>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaceMove {
    pub place: String,
    pub label_vi: String,
    pub label_en: String,
    pub posts: i64,
    pub previous_day: i64,
    pub change: i64,
    pub net_sentiment: Option<f64>,
}

/// Places listed as having moved most.
const PLACES_MOVED: usize = 5;
const EXAMPLES: u32 = 3;

pub async fn build(s: &AppState, date: NaiveDate) -> Result<Summary, StoreError> {
    let start =
        |d: NaiveDate| s.tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN)).earliest().map(|t| t.to_utc());
    let (Some(day_start), Some(day_end), Some(history_start)) =
        (start(date), start(date + chrono::Duration::days(1)), start(date - chrono::Duration::days(28)))
    else {
        return Err(StoreError::Invalid(format!("{date} has no midnight in the city's zone")));
    };
    let by_topic =
        s.queries.trends(&TrendQuery::new(history_start, day_end, Dimension::Topic, Granularity::Day)).await?;
    let mut topics = Vec::new();
    for label in &s.topics {
        let days = |offset: i64| day_counts(&by_topic, &label.id, date - chrono::Duration::days(offset));
        let today = days(0);
        let weekdays: Vec<DayCounts> = (1..=4).map(|w| days(7 * w)).collect();
        let examples = s.queries.top_posts(&label.id, None, day_start, day_end, EXAMPLES).await?;
        topics.push(TopicDay {
            topic: label.id.clone(),
            label_vi: label.label_vi.clone(),
            label_en: label.label_en.clone(),
            vs_previous_day: change(&today, &[days(1)]),
            vs_same_weekday: change(&today, &weekdays),
            daily_posts: (0..14).rev().map(|o| days(o).posts).collect(),
            examples: examples.iter().map(|p| PostJson::of(p, s.tz)).collect(),
            day: today,
        });
    }
    let by_place = s
        .queries
        .trends(&TrendQuery::new(
            start(date - chrono::Duration::days(1)).unwrap_or(day_start),
            day_end,
            Dimension::Place,
            Granularity::Day,
        ))
        .await?;
    let mut places: Vec<PlaceMove> = s
        .places
        .iter()
        .map(|l| {
            let today = day_counts(&by_place, &l.id, date);
            let before = day_counts(&by_place, &l.id, date - chrono::Duration::days(1));
            PlaceMove {
                place: l.id.clone(),
                label_vi: l.label_vi.clone(),
                label_en: l.label_en.clone(),
                posts: today.posts,
                previous_day: before.posts,
                change: today.posts - before.posts,
                net_sentiment: today.net_sentiment,
            }
        })
        .filter(|m| m.posts > 0 || m.previous_day > 0)
        .collect();
    places.sort_by_key(|m| (std::cmp::Reverse(m.change.abs()), m.place.clone()));
    places.truncate(PLACES_MOVED);
    let mut alerts = s.history.list(day_start.timestamp()).await.map_err(StoreError::from)?;
    alerts.retain(|a| a.row.fired_at < day_end.timestamp());
    Ok(Summary { date, topics, places_moved: places, alerts })
}

fn day_counts(rows: &[TrendRow], key: &str, day: NaiveDate) -> DayCounts {
    let mut c = DayCounts::default();
    for r in rows.iter().filter(|r| r.key == key && r.bucket.date_naive() == day) {
        c.add(r);
    }
    c
}

/// `today` against the mean of `reference` days.
fn change(today: &DayCounts, reference: &[DayCounts]) -> Change {
    let posts: i64 = reference.iter().map(|d| d.posts).sum();
    let mean_posts = posts as f64 / reference.len().max(1) as f64;
    let nets: Vec<f64> = reference.iter().filter_map(|d| d.net_sentiment).collect();
    let mean_net = (!nets.is_empty()).then(|| nets.iter().sum::<f64>() / nets.len() as f64);
    Change {
        posts: (posts > 0).then_some(today.posts as f64 - mean_posts),
        net_sentiment: match (today.net_sentiment, mean_net) {
            (Some(t), Some(m)) => Some(t - m),
            _ => None,
        },
    }
}
