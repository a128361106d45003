//! Reddit subreddit listings as streams: `/r/:sub/new.json`, one stream per subreddit.
//!
//! `new.json` lists the newest posts first; the cursor is a [`Watermark`] of what was delivered.
//! A poll reads one page of 100, and follows `after` to older pages only while every post of a
//! page is newer than the watermark (a busy hour would otherwise leave a gap), at most
//! [`MAX_PAGES_PER_POLL`] pages. Without a cursor it reads one page: no history crawl.

use super::reddit_auth::RedditAuth;
use super::watermark::Watermark;
use super::{Page, Shared, StepError, Stream};
use crate::parse::reddit::parse_listing;
use schema::config::sources::RedditSource;
use schema::SourceId;
use std::time::Duration;

/// Reddit's largest listing page.
pub const PAGE_LIMIT: usize = 100;
/// Pages one poll may read when every post keeps being new.
pub const MAX_PAGES_PER_POLL: usize = 5;

#[derive(Debug, Clone)]
pub struct RedditStream {
    source: SourceId,
    name: String,
    url: url::Url,
    site: String,
    auth: RedditAuth,
    require_place: bool,
    poll_interval: Duration,
}

impl RedditStream {
    pub fn from_config(config: &RedditSource) -> Vec<RedditStream> {
        let auth = RedditAuth::from_config(config);
        let base = config.base_url.as_str().trim_end_matches('/').to_owned();
        config
            .subreddits
            .iter()
            .filter_map(|sub| {
                let url = url::Url::parse(&format!("{base}/r/{sub}/new.json?limit={PAGE_LIMIT}&raw_json=1")).ok()?;
                Some(RedditStream {
                    source: config.name.clone(),
                    name: format!("r/{sub}"),
                    url,
                    // oauth.reddit.com serves the API; people follow links on www.
                    site: "https://www.reddit.com".into(),
                    auth: auth.clone(),
                    require_place: config.require_place,
                    poll_interval: Duration::from_millis(config.poll_interval_ms),
                })
            })
            .collect()
    }
}

impl Stream for RedditStream {
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
        let mark = Watermark::parse(cursor);
        let mut items = crate::parse::Items::default();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES_PER_POLL {
            let mut url = self.url.clone();
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let headers: Vec<(&str, String)> =
                self.auth.header(&shared.fetcher).await?.into_iter().map(|h| ("authorization", h)).collect();
            let response = match shared.fetcher.get(&url, &headers).await {
                Err(crate::http::FetchError::Client(401)) => {
                    self.auth.refused().await;
                    return Err(crate::http::FetchError::Client(401).into());
                }
                r => r?,
            };
            let page = parse_listing(&response.body, &self.site, &shared.ctx(&self.source))?;
            let all_new = !page.items.posts.is_empty()
                && mark.as_ref().is_some_and(|m| page.items.posts.iter().all(|p| m.is_new(p)));
            items.posts.extend(page.items.posts);
            items.errors.extend(page.items.errors);
            match page.after {
                Some(next) if all_new => after = Some(next),
                _ => break,
            }
        }
        Ok(watermark_page(cursor, items))
    }
}

/// Keeps the posts newer than the cursor's watermark and moves the mark over them.
pub(super) fn watermark_page(cursor: Option<&str>, items: crate::parse::Items) -> Page {
    let mark = Watermark::parse(cursor).unwrap_or_default();
    let posts: Vec<_> = items.posts.into_iter().filter(|p| mark.is_new(p)).collect();
    let next = mark.advanced(&posts);
    Page { cursor: (next != mark).then(|| next.encode()), posts, errors: items.errors, more: false }
}
