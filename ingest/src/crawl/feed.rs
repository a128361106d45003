//! RSS/Atom feeds as streams: one stream per feed, cursor a [`super::watermark::Watermark`].
//!
//! Polls are conditional GETs (`If-None-Match` / `If-Modified-Since`): a news site answers 304
//! without a body when nothing changed, which is most polls. The validators are adopted only once
//! the page they came with is in Kafka, or a failed delivery would later look "not modified".

use super::reddit::watermark_page;
use super::{Page, Shared, StepError, Stream};
use crate::parse::feed::parse_feed;
use schema::config::sources::FeedSource;
use schema::SourceId;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FeedStream {
    source: SourceId,
    url: url::Url,
    require_place: bool,
    poll_interval: Duration,
    /// `ETag` and `Last-Modified` of the last delivered response.
    validators: Validators,
    /// Those of the last fetched response, adopted by `delivered()`.
    pending: Validators,
}

#[derive(Debug, Clone, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl FeedStream {
    pub fn from_config(config: &FeedSource) -> FeedStream {
        FeedStream {
            source: config.name.clone(),
            url: config.url.clone(),
            require_place: config.require_place,
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            validators: Validators::default(),
            pending: Validators::default(),
        }
    }
}

impl Stream for FeedStream {
    fn source(&self) -> &SourceId {
        &self.source
    }
    fn name(&self) -> &str {
        "feed"
    }
    fn require_place(&self) -> bool {
        self.require_place
    }
    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    async fn fetch(&mut self, shared: &Shared, cursor: Option<&str>) -> Result<Page, StepError> {
        let mut headers = Vec::new();
        if let Some(etag) = &self.validators.etag {
            headers.push(("if-none-match", etag.clone()));
        }
        if let Some(date) = &self.validators.last_modified {
            headers.push(("if-modified-since", date.clone()));
        }
        let response = shared.fetcher.get(&self.url, &headers).await?;
        if response.status == 304 {
            self.pending = self.validators.clone();
            return Ok(Page::default());
        }
        let header = |name: &str| {
            let value = response.headers.get(name)?.to_str().ok()?;
            (value.len() <= 256).then(|| value.to_owned())
        };
        let charset = header("content-type").and_then(|t| charset_of(&t));
        let items = parse_feed(&response.body, charset.as_deref(), &shared.ctx(&self.source))?;
        self.pending = Validators { etag: header("etag"), last_modified: header("last-modified") };
        Ok(watermark_page(cursor, items))
    }

    fn delivered(&mut self) {
        self.validators = self.pending.clone();
    }
}

/// The `charset` parameter of a `Content-Type` value.
fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_owned())
    })
}
