//! Analysts' corrections of the classifier (`corrections`, migration 009): an analyst marks a
//! post's sentiment or topic as wrong and gives the right one. Each correction keeps who, when,
//! the post, the model version that was wrong, the old and new label and the redacted text, so it
//! can train a head (`citypulse labels export`, then `train-head`). One live correction per post
//! and field: correcting again replaces it, revoking takes it back; both are rows of a higher
//! version (ReplacingMergeTree), and reads take the latest row of each id whether merged or not.

use crate::error::{ClickHouseError, StoreError};
use crate::ident::Database;
use chrono::{DateTime, Utc};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

/// What a correction corrects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Sentiment,
    /// The primary topic.
    Topic,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Sentiment => "sentiment",
            Field::Topic => "topic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sentiment" => Some(Field::Sentiment),
            "topic" => Some(Field::Topic),
            _ => None,
        }
    }
}

/// The id of the correction of `field` on `post_key`: 16 hex digits of xxh3 over both, so that a
/// second correction of the same post and field replaces the first.
pub fn correction_id(post_key: &str, field: Field) -> String {
    let mut h = twox_hash::XxHash3_64::with_seed(0);
    std::hash::Hasher::write(&mut h, post_key.as_bytes());
    std::hash::Hasher::write(&mut h, &[0]);
    std::hash::Hasher::write(&mut h, field.as_str().as_bytes());
    format!("{:016x}", std::hash::Hasher::finish(&h))
}

/// What the classifier said about a stored post: what a correction starts from.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct PostLabels {
    pub key: String,
    pub text_redacted: String,
    pub sentiment: String,
    pub primary_topic: String,
    pub model_id: String,
    pub model_version: String,
}

impl PostLabels {
    /// The label the classifier gave for `field`.
    pub fn label(&self, field: Field) -> &str {
        match field {
            Field::Sentiment => &self.sentiment,
            Field::Topic => &self.primary_topic,
        }
    }
}

/// The live labels of the post `key`, if it is stored.
pub async fn post_labels(client: &Client, db: &Database, key: &str) -> Result<Option<PostLabels>, StoreError> {
    // The latest analysis of the post that is still live (a cancelled version has sum(sign) 0).
    let sql = format!(
        "SELECT key, argMax(text_redacted, version) AS t, argMax(sentiment, version) AS s, \
         argMax(primary_topic, version) AS p, argMax(model_id, version) AS mi, \
         argMax(model_version, version) AS mv FROM {db}.posts WHERE key = ? \
         GROUP BY key HAVING sum(sign) > 0"
    );
    let rows: Vec<PostLabels> = client
        .query(&sql)
        .bind(key)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::new("reading the post to correct", e))?;
    Ok(rows.into_iter().next())
}

/// One correction, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correction {
    pub id: String,
    pub post_key: String,
    pub field: Field,
    /// What the model said.
    pub old_label: String,
    /// What the analyst says it is.
    pub new_label: String,
    pub model_id: String,
    pub model_version: String,
    pub text_redacted: String,
    pub corrected_by: String,
    pub corrected_at: DateTime<Utc>,
    pub revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The version of the row this was read from: the next action on the id is written above it.
    #[serde(skip)]
    pub version: u64,
}

/// One row of `corrections`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct CorrectionRow {
    id: String,
    post_key: String,
    field: String,
    old_label: String,
    new_label: String,
    model_id: String,
    model_version: String,
    text_redacted: String,
    corrected_by: String,
    corrected_at: u32,
    revoked: u8,
    revoked_by: String,
    revoked_at: u32,
    version: u64,
}

fn secs(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX)
}

fn time(s: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(s), 0).unwrap_or_default()
}

impl CorrectionRow {
    fn into_correction(self) -> Option<Correction> {
        let revoked = self.revoked == 1;
        Some(Correction {
            field: Field::parse(&self.field)?,
            id: self.id,
            post_key: self.post_key,
            old_label: self.old_label,
            new_label: self.new_label,
            model_id: self.model_id,
            model_version: self.model_version,
            text_redacted: self.text_redacted,
            corrected_by: self.corrected_by,
            corrected_at: time(self.corrected_at),
            revoked,
            revoked_by: revoked.then_some(self.revoked_by),
            revoked_at: revoked.then(|| time(self.revoked_at)),
            version: self.version,
        })
    }

    fn of(c: &Correction, version: u64) -> Self {
        CorrectionRow {
            id: c.id.clone(),
            post_key: c.post_key.clone(),
            field: c.field.as_str().to_owned(),
            old_label: c.old_label.clone(),
            new_label: c.new_label.clone(),
            model_id: c.model_id.clone(),
            model_version: c.model_version.clone(),
            text_redacted: c.text_redacted.clone(),
            corrected_by: c.corrected_by.clone(),
            corrected_at: secs(c.corrected_at),
            revoked: u8::from(c.revoked),
            revoked_by: c.revoked_by.clone().unwrap_or_default(),
            revoked_at: c.revoked_at.map_or(0, secs),
            version,
        }
    }
}

/// The version of an action at `at` on a correction whose latest row has `current` (0: none):
/// milliseconds, so that actions in the same second still order, and always above `current`, so
/// that a later action wins even if it comes from a host whose clock is behind.
fn next_version(at: DateTime<Utc>, current: Option<u64>) -> u64 {
    let ms = u64::try_from(at.timestamp_millis().max(0)).unwrap_or(0);
    current.map_or(ms, |v| ms.max(v + 1))
}

async fn write(client: &Client, db: &Database, row: &CorrectionRow) -> Result<(), StoreError> {
    let fail = |e| ClickHouseError::new("saving a correction", e);
    let client = client.clone().with_database(db.as_str());
    let mut insert = client.insert::<CorrectionRow>("corrections").await.map_err(fail)?;
    insert.write(row).await.map_err(fail)?;
    insert.end().await.map_err(fail)?;
    Ok(())
}

/// Records that `post`'s `field` is `new_label`, by `by` at `at`, replacing any earlier
/// correction of the same post and field.
pub async fn record(
    client: &Client,
    db: &Database,
    post: &PostLabels,
    field: Field,
    new_label: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Correction, StoreError> {
    let id = correction_id(&post.key, field);
    let current = read(client, db, Some(&id), true).await?.first().map(|c| c.version);
    let mut c = Correction {
        id,
        post_key: post.key.clone(),
        field,
        old_label: post.label(field).to_owned(),
        new_label: new_label.to_owned(),
        model_id: post.model_id.clone(),
        model_version: post.model_version.clone(),
        text_redacted: post.text_redacted.clone(),
        corrected_by: by.to_owned(),
        corrected_at: at,
        revoked: false,
        revoked_by: None,
        revoked_at: None,
        version: 0,
    };
    c.version = next_version(at, current);
    write(client, db, &CorrectionRow::of(&c, c.version)).await?;
    Ok(c)
}

/// Every correction, most recently changed first; revoked ones only with `include_revoked`.
pub async fn list(client: &Client, db: &Database, include_revoked: bool) -> Result<Vec<Correction>, StoreError> {
    read(client, db, None, include_revoked).await
}

/// The latest state of every correction, or of the one `id`.
async fn read(
    client: &Client,
    db: &Database,
    id: Option<&str>,
    include_revoked: bool,
) -> Result<Vec<Correction>, StoreError> {
    // argMax over the whole row: the latest action on each id wins, merged or not. (Aliases
    // differ from the columns: 18.16 would read `version` in argMax as the alias.)
    let having = if include_revoked { "" } else { "HAVING r = 0" };
    let only = if id.is_some() { "WHERE id = ?" } else { "" };
    let sql = format!(
        "SELECT id, argMax(post_key, version) AS k, argMax(field, version) AS f, \
         argMax(old_label, version) AS ol, argMax(new_label, version) AS nl, \
         argMax(model_id, version) AS mi, argMax(model_version, version) AS mv, \
         argMax(text_redacted, version) AS t, argMax(corrected_by, version) AS cb, \
         argMax(corrected_at, version) AS ca, argMax(revoked, version) AS r, \
         argMax(revoked_by, version) AS rb, argMax(revoked_at, version) AS ra, max(version) AS v \
         FROM {db}.corrections {only} GROUP BY id {having} ORDER BY v DESC, id"
    );
    let mut query = client.query(&sql);
    if let Some(id) = id {
        query = query.bind(id);
    }
    let rows: Vec<CorrectionRow> =
        query.fetch_all().await.map_err(|e| ClickHouseError::new("reading corrections", e))?;
    Ok(rows.into_iter().filter_map(CorrectionRow::into_correction).collect())
}

/// Takes back the live correction `id` as `by`: None when there is none (unknown or already
/// revoked). The revoked correction stays listed with `include_revoked`, with who and when, but
/// without its text. (Two analysts acting on one id at the same instant: the later write wins.)
pub async fn revoke(
    client: &Client,
    db: &Database,
    id: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Option<Correction>, StoreError> {
    let Some(mut c) = read(client, db, Some(id), false).await?.into_iter().next() else {
        return Ok(None);
    };
    c.revoked = true;
    c.revoked_by = Some(by.to_owned());
    c.revoked_at = Some(at);
    // The text goes with the revocation: a revoked correction trains nothing, and its post's
    // text is otherwise kept only as long as the posts' retention keeps it.
    c.text_redacted.clear();
    c.version = next_version(at, Some(c.version));
    write(client, db, &CorrectionRow::of(&c, c.version)).await?;
    Ok(Some(c))
}
