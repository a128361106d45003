//! `sources.toml`: what the crawlers fetch, how often, and how politely.
//! Every base URL is configuration, so tests point sources at servers on 127.0.0.1.

use super::problems::FileProblems;
use crate::ids::SourceId;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole of sources.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub defaults: SourceDefaults,
    /// Per-host request quotas shared by every source hitting that host (the strictest wins).
    #[serde(default)]
    pub host_quota: Vec<HostQuota>,
    #[serde(default)]
    pub mastodon: Vec<MastodonSource>,
    #[serde(default)]
    pub reddit: Vec<RedditSource>,
    #[serde(default)]
    pub feed: Vec<FeedSource>,
    #[serde(default)]
    pub bluesky: Vec<BlueskySource>,
    #[serde(default)]
    pub replay: Vec<ReplaySource>,
    /// The city's own channels (the 1022 hotline, a ward's app) that push records to
    /// `POST /api/v1/intake/{name}` or are imported with `citypulse import`.
    #[serde(default)]
    pub intake: Vec<IntakeChannel>,
}

/// Settings every HTTP source shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceDefaults {
    /// User-Agent sent with every request (Reddit requires a descriptive one).
    pub user_agent: String,
    /// Per-request timeout, milliseconds. Default 15000.
    pub request_timeout_ms: u64,
    /// Largest response body read, bytes; larger is an error for that item. Default 8388608.
    pub max_response_bytes: usize,
    /// First backoff after a failure, milliseconds. Default 1000.
    pub backoff_initial_ms: u64,
    /// Longest backoff, milliseconds. Default 300000.
    pub backoff_max_ms: u64,
    /// Consecutive failures after which a source is paused and reported. Default 8.
    pub pause_after_failures: u32,
    /// How long a paused source rests, milliseconds. Default 900000.
    pub pause_ms: u64,
    /// How many recent post keys are remembered to drop exact duplicates. Default 100000.
    pub dedup_window_posts: usize,
    /// Quota of a host with no `[[host_quota]]`, requests per second. Default 1.0.
    pub requests_per_second: f64,
    /// Burst of a host with no `[[host_quota]]`, requests. Default 1.
    pub burst: u32,
}

impl Default for SourceDefaults {
    fn default() -> Self {
        SourceDefaults {
            user_agent: "citypulse/0.1 (public-opinion monitor; set a contact address in sources.toml)".into(),
            request_timeout_ms: 15_000,
            max_response_bytes: 8 * 1024 * 1024,
            backoff_initial_ms: 1000,
            backoff_max_ms: 300_000,
            pause_after_failures: 8,
            pause_ms: 900_000,
            dedup_window_posts: 100_000,
            requests_per_second: 1.0,
            burst: 1,
        }
    }
}

/// A request quota for one host (and port).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostQuota {
    /// `host` or `host:port`.
    pub host: String,
    /// Sustained rate, requests per second (may be below 1, e.g. 0.5).
    pub requests_per_second: f64,
    /// Requests allowed in a burst. Default 1.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn minute_ms() -> u64 {
    60_000
}
fn reddit_token_url() -> url::Url {
    url::Url::parse("https://www.reddit.com/api/v1/access_token").expect("constant URL")
}

/// Mastodon public and hashtag timelines of one instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSource {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Instance base URL, e.g. `https://mastodon.social`.
    pub base_url: url::Url,
    /// Hashtags without `#` (`/api/v1/timelines/tag/:tag`).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Also read `/api/v1/timelines/public` (`local = true` for the instance's own posts only).
    #[serde(default)]
    pub public_timeline: bool,
    #[serde(default)]
    pub local_only: bool,
    /// Poll interval, milliseconds. Default 60000.
    #[serde(default = "minute_ms")]
    pub poll_interval_ms: u64,
    /// Keep only posts that mention a place from places.toml. Default true.
    #[serde(default = "yes")]
    pub require_place: bool,
}

/// Subreddit `new.json` listings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedditSource {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `https://www.reddit.com` (or `https://oauth.reddit.com` with a token).
    pub base_url: url::Url,
    pub subreddits: Vec<String>,
    /// Name of the environment variable with a ready OAuth bearer token, if any. Not together with
    /// `client_id_env`.
    #[serde(default)]
    pub oauth_token_env: Option<String>,
    /// App-only OAuth (client credentials): name of the environment variable with the app's client
    /// id. With `client_secret_env`; citypulse fetches the token from `token_url` and renews it
    /// before it expires. Unauthenticated reading is limited to 10 requests a minute.
    #[serde(default)]
    pub client_id_env: Option<String>,
    /// Name of the environment variable with the app's client secret (with `client_id_env`).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Where app-only tokens come from. Default `https://www.reddit.com/api/v1/access_token`.
    #[serde(default = "reddit_token_url")]
    pub token_url: url::Url,
    /// Poll interval, milliseconds. Default 60000.
    #[serde(default = "minute_ms")]
    pub poll_interval_ms: u64,
    /// Keep only posts that mention a place. Default false (city subreddits are already local).
    #[serde(default)]
    pub require_place: bool,
}

/// An RSS or Atom feed (news sites, YouTube channel feeds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSource {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub url: url::Url,
    /// Poll interval, milliseconds. Default 60000.
    #[serde(default = "minute_ms")]
    pub poll_interval_ms: u64,
    /// Keep only items that mention a place. Default true.
    #[serde(default = "yes")]
    pub require_place: bool,
}

/// Bluesky Jetstream (WebSocket firehose of posts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueskySource {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// e.g. `wss://jetstream2.us-east.bsky.network/subscribe`.
    pub url: url::Url,
    /// Keep only posts that mention a place. Default true (the firehose is global).
    #[serde(default = "yes")]
    pub require_place: bool,
}

/// A JSONL file of posts, replayed (demo, benchmarks, tests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySource {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Path, relative to the working directory.
    pub path: PathBuf,
    /// Rate, posts per second; 0 means as fast as possible. Default 0.
    #[serde(default)]
    pub posts_per_second: f64,
}

/// A first-party channel: records pushed over HTTP with the channel's own bearer token, or
/// imported from a file. Its name is the posts' `source`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeChannel {
    pub name: SourceId,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Name of the environment variable holding the channel's bearer token.
    pub token_env: String,
    /// Largest request body, bytes. Default 4194304 (4 MiB).
    #[serde(default = "default_intake_body")]
    pub max_body_bytes: usize,
    /// Most records in one request. Default 1000.
    #[serde(default = "default_intake_records")]
    pub max_records: usize,
    /// Sustained requests per second for the channel's token. Default 5.
    #[serde(default = "default_intake_rate")]
    pub requests_per_second: f64,
    /// Requests allowed in a burst. Default 10.
    #[serde(default = "default_intake_burst")]
    pub burst: u32,
}

fn default_intake_body() -> usize {
    4 * 1024 * 1024
}
fn default_intake_records() -> usize {
    1000
}
fn default_intake_rate() -> f64 {
    5.0
}
fn default_intake_burst() -> u32 {
    10
}

impl SourcesConfig {
    /// Names of every configured source, in file order, the intake channels last.
    pub fn names(&self) -> Vec<&str> {
        let m = self.mastodon.iter().map(|s| s.name.as_str());
        let r = self.reddit.iter().map(|s| s.name.as_str());
        let f = self.feed.iter().map(|s| s.name.as_str());
        let b = self.bluesky.iter().map(|s| s.name.as_str());
        let p = self.replay.iter().map(|s| s.name.as_str());
        m.chain(r).chain(f).chain(b).chain(p).chain(self.intake_names()).collect()
    }

    /// Names of the first-party channels: the "official" side of a comparison.
    pub fn intake_names(&self) -> impl Iterator<Item = &str> {
        self.intake.iter().map(|c| c.name.as_str())
    }

    /// Whether any intake channel is enabled (then `serve` takes records and writes `posts.raw`).
    pub fn intake_enabled(&self) -> bool {
        self.intake.iter().any(|c| c.enabled)
    }

    /// The enabled intake channel called `name`.
    pub fn intake_channel(&self, name: &str) -> Option<&IntakeChannel> {
        self.intake.iter().find(|c| c.enabled && c.name.as_str() == name)
    }

    pub fn validate(&self, p: &mut FileProblems<'_>) {
        let d = &self.defaults;
        p.check(!d.user_agent.trim().is_empty(), "defaults.user_agent", "must not be empty");
        p.check(d.request_timeout_ms >= 100, "defaults.request_timeout_ms", "must be at least 100");
        p.check(d.backoff_initial_ms >= 1, "defaults.backoff_initial_ms", "must be at least 1");
        p.check(
            d.backoff_max_ms >= d.backoff_initial_ms,
            "defaults.backoff_max_ms",
            "must be at least backoff_initial_ms",
        );
        p.check(d.pause_after_failures >= 1, "defaults.pause_after_failures", "must be at least 1");
        check_quota(p, "defaults", d.requests_per_second, d.burst);
        for (i, q) in self.host_quota.iter().enumerate() {
            check_quota(p, &format!("host_quota[{i}]"), q.requests_per_second, q.burst);
            p.check(
                !q.host.is_empty() && !q.host.contains('/'),
                format!("host_quota[{i}].host"),
                "must be host or host:port",
            );
        }
        for (i, s) in self.mastodon.iter().enumerate() {
            p.url(&s.base_url, &["http", "https"], format!("mastodon[{i}].base_url"));
            p.check(
                s.public_timeline || !s.hashtags.is_empty(),
                format!("mastodon[{i}]"),
                "reads nothing: set hashtags or public_timeline",
            );
            for (j, tag) in s.hashtags.iter().enumerate() {
                p.check(
                    !tag.is_empty() && !tag.contains(['#', '/', ' ']),
                    format!("mastodon[{i}].hashtags[{j}]"),
                    "write the tag without # or spaces",
                );
            }
            check_interval(p, s.poll_interval_ms, format!("mastodon[{i}].poll_interval_ms"));
        }
        for (i, s) in self.reddit.iter().enumerate() {
            p.url(&s.base_url, &["http", "https"], format!("reddit[{i}].base_url"));
            p.check(!s.subreddits.is_empty(), format!("reddit[{i}].subreddits"), "must name at least one subreddit");
            check_interval(p, s.poll_interval_ms, format!("reddit[{i}].poll_interval_ms"));
            p.url(&s.token_url, &["http", "https"], format!("reddit[{i}].token_url"));
            p.check(
                s.client_id_env.is_some() == s.client_secret_env.is_some(),
                format!("reddit[{i}].client_secret_env"),
                "client_id_env and client_secret_env go together (app-only OAuth)",
            );
            p.check(
                !(s.oauth_token_env.is_some() && s.client_id_env.is_some()),
                format!("reddit[{i}].oauth_token_env"),
                "set either oauth_token_env (a ready token) or client_id_env + client_secret_env (app-only OAuth), not both",
            );
        }
        for (i, s) in self.feed.iter().enumerate() {
            p.url(&s.url, &["http", "https"], format!("feed[{i}].url"));
            check_interval(p, s.poll_interval_ms, format!("feed[{i}].poll_interval_ms"));
        }
        for (i, s) in self.bluesky.iter().enumerate() {
            p.url(&s.url, &["ws", "wss"], format!("bluesky[{i}].url"));
        }
        for (i, s) in self.replay.iter().enumerate() {
            let ok = s.posts_per_second.is_finite() && s.posts_per_second >= 0.0;
            p.check(
                ok,
                format!("replay[{i}].posts_per_second"),
                format!("must be 0 (as fast as possible) or a positive rate, got {}", s.posts_per_second),
            );
        }
        for (i, c) in self.intake.iter().enumerate() {
            let env_ok = !c.token_env.is_empty() && c.token_env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            p.check(env_ok, format!("intake[{i}].token_env"), "must name an environment variable ([A-Za-z0-9_])");
            p.check(c.max_body_bytes >= 1024, format!("intake[{i}].max_body_bytes"), "must be at least 1024");
            p.check(c.max_records >= 1, format!("intake[{i}].max_records"), "must be at least 1");
            check_quota(p, &format!("intake[{i}]"), c.requests_per_second, c.burst);
        }
        p.unique(self.names(), "source name");
    }
}

/// A request rate and burst under `at` (`defaults`, `host_quota[0]`, …).
fn check_quota(p: &mut FileProblems<'_>, at: &str, requests_per_second: f64, burst: u32) {
    let ok = requests_per_second.is_finite() && requests_per_second > 0.0 && requests_per_second <= 10_000.0;
    p.check(
        ok,
        format!("{at}.requests_per_second"),
        format!("must be a positive rate up to 10000, got {requests_per_second}"),
    );
    p.check(burst >= 1, format!("{at}.burst"), "must be at least 1");
}

fn check_interval(p: &mut FileProblems<'_>, ms: u64, path: String) {
    p.check(ms >= 1000, path, "must be at least 1000 (be polite)");
}
