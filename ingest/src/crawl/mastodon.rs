//! Mastodon timelines as streams: `/api/v1/timelines/tag/:tag` and `/api/v1/timelines/public`.
//!
//! The cursor is the newest status id delivered. With a cursor the stream asks `min_id=<cursor>`,
//! which returns the statuses right after it, so a backlog is read forward page by page without
//! gaps; without one it starts from the latest page (no history crawl).

use super::{Page, Shared, StepError, Stream};
use crate::parse::mastodon::{link_param, parse_link_header, parse_statuses};
use schema::config::sources::MastodonSource;
use schema::SourceId;
use std::time::Duration;

/// Mastodon's largest page.
pub const PAGE_LIMIT: usize = 40;

#[derive(Debug, Clone)]
pub struct MastodonStream {
    source: SourceId,
    name: String,
    url: url::Url,
    local_only: bool,
    require_place: bool,
    poll_interval: Duration,
    page_limit: usize,
}

impl MastodonStream {
    /// One stream per hashtag, plus the public timeline when configured.
    pub fn from_config(config: &MastodonSource) -> Vec<MastodonStream> {
        let mut streams = Vec::new();
        let mut add = |name: String, path: String| {
            // join() on a base without a trailing slash would drop its last segment.
            let mut url = config.base_url.clone();
            url.set_path(&format!("{}/{path}", config.base_url.path().trim_end_matches('/')));
            streams.push(MastodonStream {
                source: config.name.clone(),
                name,
                url,
                local_only: config.local_only,
                require_place: config.require_place,
                poll_interval: Duration::from_millis(config.poll_interval_ms),
                page_limit: PAGE_LIMIT,
            });
        };
        for tag in &config.hashtags {
            let escaped: String = url::form_urlencoded::byte_serialize(tag.as_bytes()).collect();
            add(format!("tag:{tag}"), format!("api/v1/timelines/tag/{escaped}"));
        }
        if config.public_timeline {
            add("public".into(), "api/v1/timelines/public".into());
        }
        streams
    }

    /// Smaller pages (tests).
    pub fn with_page_limit(mut self, limit: usize) -> Self {
        self.page_limit = limit.clamp(1, PAGE_LIMIT);
        self
    }

    fn page_url(&self, cursor: Option<&str>) -> url::Url {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &self.page_limit.to_string());
            if self.local_only {
                q.append_pair("local", "true");
            }
            if let Some(c) = cursor {
                q.append_pair("min_id", c);
            }
        }
        url
    }
}

impl Stream for MastodonStream {
    fn source(&self) -> &SourceId {
        &self.source
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn require_place(&self) -> bool {
        self.require_place
    }
    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    async fn fetch(&mut self, shared: &Shared, cursor: Option<&str>) -> Result<Page, StepError> {
        let response = shared.fetcher.get(&self.page_url(cursor), &[]).await?;
        let parsed = parse_statuses(&response.body, &shared.ctx(&self.source))?;
        let count = parsed.items.posts.len() + parsed.items.errors.len();
        let links =
            response.headers.get("link").and_then(|v| v.to_str().ok()).map(parse_link_header).unwrap_or_default();
        // Prefer the server's own paging id; fall back to the newest id in the page.
        let next = if count == 0 { None } else { link_param(&links, "prev", "min_id").or(parsed.newest_id) };
        Ok(Page {
            posts: parsed.items.posts,
            errors: parsed.items.errors,
            // Reading forward from a cursor: a full page means more is waiting.
            more: cursor.is_some() && count >= self.page_limit,
            cursor: next,
        })
    }
}
