//! What the job reports for one city day: the JSON the API returns and the table the CLI prints.

use serde::{Deserialize, Serialize};

/// Why a group is in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fewer than one post a day like it in the baseline days.
    New,
    /// At least `min_growth` times the baseline days' daily average.
    Growing,
}

/// One place and how many of the group's posts name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceCount {
    pub place: String,
    pub posts: u32,
}

/// One reported group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// 1 = the largest growth of the day.
    pub rank: u32,
    /// Its most distinctive words, diacritics kept, joined by " · ".
    pub label: String,
    /// The words of the label, most distinctive first.
    pub terms: Vec<String>,
    pub status: Status,
    /// Posts in the group (scaled up from the sample when the day was sampled).
    pub posts: u32,
    /// The day's unclaimed posts within the group's radius of its centre (the group and its fringe).
    pub posts_like: u32,
    /// Posts a day within the same radius over the baseline days (sample-corrected).
    pub baseline_per_day: f32,
    /// posts_like ÷ baseline_per_day (baseline floored at 0.5 a day, so a new group's growth is finite).
    pub growth: f32,
    /// Share of the group's posts whose sentiment is negative.
    pub share_negative: f32,
    /// The places its posts name, most named first.
    pub places: Vec<PlaceCount>,
    /// Posts per source.
    pub sources: Vec<(String, u32)>,
    /// The posts nearest the group's centre, redacted text, distinct.
    pub examples: Vec<String>,
    /// Their post keys.
    pub example_keys: Vec<String>,
    /// The keys of the group's posts, nearest the centre first (at most [`MAX_MEMBER_KEYS`]): the
    /// posts behind the group.
    pub member_keys: Vec<String>,
}

/// Most member keys a group lists.
pub const MAX_MEMBER_KEYS: usize = 500;

/// The report of one city day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The city day, `YYYY-MM-DD`.
    pub date: String,
    /// When it was computed (RFC 3339, UTC).
    pub computed_at: String,
    /// Computed after the day ended: it will not change.
    pub is_final: bool,
    /// Unclaimed posts with an embedding that day (before any sampling).
    pub unclaimed_posts: u32,
    /// Of them, read and grouped (all unless over `max_posts_per_day`).
    pub posts_grouped: u32,
    /// Baseline days that had any unclaimed posts; 0 means everything dense counts as new.
    pub baseline_days_with_posts: u32,
    /// Dense groups found, reported or not.
    pub groups_found: u32,
    /// The reported ones: new or growing, at least `min_group_posts`, largest growth first.
    pub groups: Vec<Group>,
    /// Seconds the job took.
    pub seconds: f64,
}

impl Report {
    /// The report as an analyst reads it in a terminal.
    pub fn table(&self) -> String {
        let r = self;
        let mut out = format!(
            "Emerging issues of {}{}: {} unclaimed posts{}, {} baseline day(s) with posts; {} dense group(s), {} reported ({:.1} s)\n",
            r.date,
            if r.is_final { "" } else { " (so far)" },
            r.unclaimed_posts,
            if r.posts_grouped < r.unclaimed_posts { format!(" ({} sampled)", r.posts_grouped) } else { String::new() },
            r.baseline_days_with_posts,
            r.groups_found,
            r.groups.len(),
            r.seconds,
        );
        if r.baseline_days_with_posts == 0 && !r.groups.is_empty() {
            out.push_str("No earlier days to compare with: every dense group counts as new.\n");
        }
        for g in &r.groups {
            let places = g.places.iter().take(3).map(|p| format!("{} ({})", p.place, p.posts)).collect::<Vec<_>>();
            out.push_str(&format!(
                "\n#{} {:?}  {}\n   {} posts, {}, {:.0}% negative{}\n",
                g.rank,
                g.status,
                g.label,
                g.posts,
                if g.baseline_per_day < 0.05 {
                    "not seen in the days before".to_owned()
                } else {
                    format!("{:.1}x the days before ({:.1}/day)", g.growth, g.baseline_per_day)
                },
                g.share_negative * 100.0,
                if places.is_empty() { String::new() } else { format!(", places: {}", places.join(", ")) },
            ));
            for e in g.examples.iter().take(3) {
                let short: String = e.chars().take(120).collect();
                out.push_str(&format!("   > {short}{}\n", if short.len() < e.len() { "…" } else { "" }));
            }
        }
        out
    }
}
