//! `[emerging]` in citypulse.toml: which posts keep their embedding, and how the daily
//! emerging-issues job groups them and decides what to report.

use super::problems::FileProblems;
use serde::Deserialize;
use std::path::PathBuf;

/// The emerging-issues job (`citypulse emerging`, the `emerging` stage) and the embeddings it reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmergingConfig {
    /// Whether the analyzer attaches the embedding of posts no topic claims (384 bytes each in
    /// ClickHouse `post_embeddings`). Off: the job has nothing to group. Default true.
    pub keep_embeddings: bool,
    /// A post whose centred cosine to its nearest topic prototype is below this counts as unclaimed
    /// even when a topic passed its threshold (scores are relative: with few topics one always
    /// passes). Default 0.30, not tuned on labelled data (`make demo` keeps 17 of 63 posts on its
    /// busiest day).
    pub claim_cosine: f32,
    /// Cosine at which two posts count as saying the same thing (neighbours), after centring and
    /// removing the style directions. Default 0.45 (tests/emerging.rs: the bridge closure's posts
    /// group apart from complaints about products at 0.45; at 0.6 half of them are missed).
    pub neighbour_cosine: f32,
    /// Directions of most variance in the baseline days removed before grouping: mostly style
    /// (sentiment, diacritics or not) shared by every subject. Default 1 (with 0 the bridge
    /// closure merged with product complaints; from 2 on, a subject big in the baseline days can
    /// vanish).
    pub style_components: usize,
    /// Neighbours a post needs to seed a group (a dense core, as in DBSCAN). Default 4.
    pub min_neighbours: usize,
    /// Posts a group needs on the day to be reported. Default 8.
    pub min_group_posts: usize,
    /// Days before the report's day that the growth is measured against. Default 7.
    pub baseline_days: u32,
    /// A group is reported as growing when the day's posts like it are at least this many times the
    /// daily average of the baseline days; with less than one such post a day before, it is new.
    /// Default 2.0.
    pub min_growth: f32,
    /// Most groups in one report, largest growth first. Default 20.
    pub max_groups: usize,
    /// Most unclaimed posts one day's job reads; beyond it takes an even sample and says so.
    /// Default 200000.
    pub max_posts_per_day: usize,
    /// How often the `emerging` stage recomputes today's report (and yesterday's final one after
    /// midnight), minutes. Default 60.
    pub every_minutes: u64,
    /// Where proposed topic blocks are written for a person to review. Default `emerging/proposals`.
    pub proposals_dir: PathBuf,
}

impl Default for EmergingConfig {
    fn default() -> Self {
        EmergingConfig {
            keep_embeddings: true,
            claim_cosine: 0.30,
            neighbour_cosine: 0.45,
            style_components: 1,
            min_neighbours: 4,
            min_group_posts: 8,
            baseline_days: 7,
            min_growth: 2.0,
            max_groups: 20,
            max_posts_per_day: 200_000,
            every_minutes: 60,
            proposals_dir: "emerging/proposals".into(),
        }
    }
}

impl EmergingConfig {
    pub fn validate(&self, p: &mut FileProblems<'_>) {
        let unit = |x: f32| (-1.0..=1.0).contains(&x);
        p.check(unit(self.claim_cosine), "emerging.claim_cosine", "must be a cosine in [-1, 1]");
        p.check(
            self.neighbour_cosine > 0.0 && self.neighbour_cosine < 1.0,
            "emerging.neighbour_cosine",
            "must be in (0, 1)",
        );
        p.check(self.min_neighbours >= 1, "emerging.min_neighbours", "must be at least 1");
        p.check(self.style_components <= 16, "emerging.style_components", "must be at most 16");
        p.check(self.min_group_posts >= 2, "emerging.min_group_posts", "must be at least 2");
        p.check((1..=90).contains(&self.baseline_days), "emerging.baseline_days", "must be 1 to 90");
        p.check(self.min_growth >= 1.0, "emerging.min_growth", "must be at least 1.0");
        p.check(self.max_groups >= 1, "emerging.max_groups", "must be at least 1");
        p.check(self.max_posts_per_day >= 100, "emerging.max_posts_per_day", "must be at least 100");
        p.check(self.every_minutes >= 1, "emerging.every_minutes", "must be at least 1");
    }
}
