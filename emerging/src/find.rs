//! The job's reasoning on one day's posts, without ClickHouse: group the unclaimed posts by
//! meaning, measure each group against the days before, and describe the new and growing ones.

use crate::cluster::{self, dot, Params, Vectors};
use crate::report::{Group, PlaceCount, Status, MAX_MEMBER_KEYS};
use crate::words::{self, Background};
use rayon::prelude::*;
use schema::config::emerging::EmergingConfig;
use schema::terms::fold_diacritics;
use schema::Int8Embedding;
use std::collections::{BTreeMap, HashSet};

/// One unclaimed post of the report's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPost {
    pub key: String,
    pub embedding: Int8Embedding,
    pub text_redacted: String,
    pub negative: bool,
    pub places: Vec<String>,
    pub source: String,
}

/// The unclaimed posts of the baseline days (a sample when there are many).
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub embeddings: Vec<Int8Embedding>,
    /// Share of the baseline's posts that were read (1.0 = all).
    pub sample_rate: f32,
    /// Baseline days that had any unclaimed post.
    pub days_with_posts: u32,
}

/// Share of a group's posts that lie within its radius: the radius is the cosine to the centre
/// that this share of its members reach, and "posts like it" are counted within it on every day.
const RADIUS_SHARE: f32 = 0.8;
/// Baseline posts a day below which a group counts as new.
const NEW_BELOW_PER_DAY: f32 = 1.0;
/// Floor of the baseline in the growth ratio, so that a new group's growth is a finite number.
const BASELINE_FLOOR_PER_DAY: f32 = 0.5;
/// How far above its baseline a growing group must be, in standard deviations of a Poisson count
/// with the baseline's mean: a ratio alone calls 10 after 5 a day growth, which is noise.
const MIN_GROWTH_Z: f32 = 3.0;
/// Power-iteration rounds for the style directions (converged well before on real embeddings).
const POWER_ITERATIONS: usize = 30;
/// Posts a k-means cell holds (see cluster.rs).
pub const CELL_POSTS: usize = 1500;
/// Example posts per group (the dashboard shows three; a proposed topic takes them all).
const EXAMPLES: usize = 8;
/// Words in a label.
const LABEL_TERMS: usize = 3;

/// What [`find`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Dense groups, reported or not.
    pub groups_found: usize,
    /// New or growing, ranked.
    pub groups: Vec<Group>,
}

/// Groups `day` (read at `day_rate`: 1.0 = every post, less when sampled; counts are scaled back)
/// and reports the groups that are new or growing against `baseline`.
pub fn find(day: &[DayPost], day_rate: f32, baseline: &Baseline, cfg: &EmergingConfig) -> Found {
    if day.is_empty() {
        return Found { groups_found: 0, groups: Vec::new() };
    }
    let dims = day[0].embedding.len();
    let mut raw_day = Vectors::new(dims);
    day.iter().for_each(|p| raw_day.push(&p.embedding.to_unit()));
    let mut raw_past = Vectors::new(dims);
    baseline.embeddings.iter().filter(|e| e.len() == dims).for_each(|e| raw_past.push(&e.to_unit()));
    let center = mean_of_both(&raw_day, &raw_past);
    // The directions along which the baseline days vary most are style (sentiment, with or
    // without diacritics, product reviews against everything else), shared by every subject:
    // left in, they join a new subject's complaints to everyone else's. Taken from the days before
    // only, so that today's new subject cannot remove itself.
    let style = cluster::top_components(&raw_past.shifted(&center), cfg.style_components, POWER_ITERATIONS);
    let (today, past) = (raw_day.projected(&center, &style), raw_past.projected(&center, &style));

    let params =
        Params { neighbour_cosine: cfg.neighbour_cosine, min_neighbours: cfg.min_neighbours, cell_posts: CELL_POSTS };
    let day_rate = day_rate.clamp(1e-3, 1.0);
    let dense: Vec<Vec<usize>> = cluster::groups(&today, &params)
        .into_iter()
        .filter(|g| g.len() as f32 / day_rate >= cfg.min_group_posts as f32)
        .collect();
    let mut background = Background::default();
    day.iter().for_each(|p| background.add(&p.text_redacted));

    let mut reported: Vec<Group> = dense
        .par_iter()
        .filter_map(|members| {
            let centre = cluster::centre_of(&today, members);
            let radius = radius(&today, members, &centre);
            let like = |v: &Vectors| (0..v.len()).filter(|&i| dot(v.row(i), &centre) >= radius).count();
            let posts_like = like(&today) as f32 / day_rate;
            let baseline_per_day = if baseline.days_with_posts == 0 {
                0.0
            } else {
                like(&past) as f32 / baseline.sample_rate.max(1e-6) / baseline.days_with_posts as f32
            };
            let growth = posts_like / baseline_per_day.max(BASELINE_FLOOR_PER_DAY);
            let status = if baseline_per_day < NEW_BELOW_PER_DAY {
                Status::New
            } else if growth >= cfg.min_growth
                && (posts_like - baseline_per_day) / baseline_per_day.sqrt() >= MIN_GROWTH_Z
            {
                Status::Growing
            } else {
                return None;
            };
            let mut group =
                describe(day, &today, members, &centre, &background, status, posts_like, baseline_per_day, growth);
            group.posts = (members.len() as f32 / day_rate).round() as u32;
            Some(group)
        })
        .collect();
    reported.sort_by(|a, b| b.growth.total_cmp(&a.growth).then(b.posts.cmp(&a.posts)));
    reported.truncate(cfg.max_groups);
    for (i, g) in reported.iter_mut().enumerate() {
        g.rank = i as u32 + 1;
    }
    Found { groups_found: dense.len(), groups: reported }
}

fn mean_of_both(a: &Vectors, b: &Vectors) -> Vec<f32> {
    let (ma, mb) = (a.mean(), b.mean());
    let (na, nb) = (a.len() as f32, b.len() as f32);
    ma.iter().zip(&mb).map(|(x, y)| (x * na + y * nb) / (na + nb).max(1.0)).collect()
}

/// The cosine to `centre` that [`RADIUS_SHARE`] of the members reach.
fn radius(v: &Vectors, members: &[usize], centre: &[f32]) -> f32 {
    let mut cos: Vec<f32> = members.iter().map(|&i| dot(v.row(i), centre)).collect();
    cos.sort_by(|a, b| b.total_cmp(a));
    let at = ((cos.len() as f32 * RADIUS_SHARE).ceil() as usize).clamp(1, cos.len()) - 1;
    cos[at]
}

#[allow(clippy::too_many_arguments)]
fn describe(
    day: &[DayPost],
    today: &Vectors,
    members: &[usize],
    centre: &[f32],
    background: &Background,
    status: Status,
    posts_like: f32,
    baseline_per_day: f32,
    growth: f32,
) -> Group {
    let texts: Vec<&str> = members.iter().map(|&i| day[i].text_redacted.as_str()).collect();
    let terms: Vec<String> = words::distinctive(&texts, background, LABEL_TERMS).into_iter().map(|t| t.text).collect();
    let mut nearest: Vec<(f32, usize)> = members.iter().map(|&i| (dot(today.row(i), centre), i)).collect();
    nearest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut seen = HashSet::new();
    let chosen: Vec<usize> = nearest
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| seen.insert(fold_diacritics(&day[i].text_redacted.to_lowercase())))
        .take(EXAMPLES)
        .collect();
    let label = if terms.is_empty() { shorten(&day[chosen[0]].text_redacted) } else { terms.join(" · ") };
    let negative = members.iter().filter(|&&i| day[i].negative).count();
    Group {
        rank: 0,
        label,
        terms,
        status,
        posts: members.len() as u32,
        posts_like: posts_like as u32,
        baseline_per_day,
        growth,
        share_negative: negative as f32 / members.len() as f32,
        places: counted(members.iter().flat_map(|&i| day[i].places.iter().cloned()))
            .into_iter()
            .map(|(place, posts)| PlaceCount { place, posts })
            .collect(),
        sources: counted(members.iter().map(|&i| day[i].source.clone())),
        examples: chosen.iter().map(|&i| day[i].text_redacted.clone()).collect(),
        example_keys: chosen.iter().map(|&i| day[i].key.clone()).collect(),
        member_keys: nearest.iter().take(MAX_MEMBER_KEYS).map(|&(_, i)| day[i].key.clone()).collect(),
    }
}

/// Counts, largest first (ties by name).
fn counted(items: impl Iterator<Item = String>) -> Vec<(String, u32)> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    items.for_each(|s| *counts.entry(s).or_default() += 1);
    let mut out: Vec<(String, u32)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The first eight words of `text`.
fn shorten(text: &str) -> String {
    text.split_whitespace().take(8).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(i: usize, v: Vec<f32>, text: &str, place: Option<&str>) -> DayPost {
        DayPost {
            key: format!("t:{i}"),
            embedding: Int8Embedding::quantise(&v),
            text_redacted: text.to_owned(),
            negative: !i.is_multiple_of(4),
            places: place.map(|p| vec![p.to_owned()]).unwrap_or_default(),
            source: "replay".into(),
        }
    }

    /// Axis `k` of 32 dimensions with a little of axis `k + 1`, so posts on one axis are close.
    fn near(k: usize, j: usize) -> Vec<f32> {
        let mut v = vec![0.0; 32];
        v[k % 32] = 1.0;
        v[(k + 1 + j % 5) % 32] = 0.3;
        v
    }

    fn chatter(n: usize) -> Vec<DayPost> {
        (0..n).map(|i| post(1000 + i, near(i, i / 32), &format!("chuyện thường ngày số {i}"), None)).collect()
    }

    fn bridge(n: usize) -> Vec<DayPost> {
        (0..n)
            .map(|i| {
                // Between two axes no chatter post mixes: close to each other, far from the chatter.
                let mut v = vec![0.0; 32];
                (v[7], v[25], v[(i % 3) + 28]) = (1.0, 1.0, 0.2);
                post(i, v, &format!("cầu Chữ Y đóng cửa sửa chữa lần {i}"), Some("district_8"))
            })
            .collect()
    }

    fn cfg() -> EmergingConfig {
        // No style directions: these made-up vectors have none, and removing the baseline's top one
        // would remove the bridge itself.
        EmergingConfig {
            neighbour_cosine: 0.9,
            min_neighbours: 3,
            min_group_posts: 6,
            style_components: 0,
            ..EmergingConfig::default()
        }
    }

    #[test]
    fn a_dense_new_group_is_reported_with_label_places_and_examples() {
        let mut day = chatter(64);
        day.extend(bridge(12));
        let past = Baseline {
            embeddings: chatter(64).into_iter().map(|p| p.embedding).collect(),
            sample_rate: 1.0,
            days_with_posts: 2,
        };
        let found = find(&day, 1.0, &past, &cfg());
        assert_eq!(found.groups.len(), 1, "{found:?}");
        let g = &found.groups[0];
        assert_eq!((g.status, g.posts, g.rank), (Status::New, 12, 1));
        assert!(g.label.starts_with("cầu chữ y · "), "{}", g.label);
        assert_eq!(g.places, vec![PlaceCount { place: "district_8".into(), posts: 12 }]);
        assert_eq!(g.examples.len(), 8, "distinct texts, nearest first");
        assert!((g.share_negative - 0.75).abs() < 0.01, "{}", g.share_negative);
    }

    #[test]
    fn the_same_group_every_day_is_steady_and_not_reported() {
        let mut day = chatter(64);
        day.extend(bridge(12));
        let past_posts: Vec<Int8Embedding> = bridge(24).into_iter().chain(chatter(64)).map(|p| p.embedding).collect();
        let past = Baseline { embeddings: past_posts, sample_rate: 1.0, days_with_posts: 2 };
        let found = find(&day, 1.0, &past, &cfg());
        assert_eq!(found.groups_found, 1);
        assert!(found.groups.is_empty(), "12 a day before and 12 today is not news: {found:?}");
        // Twice as many today: growing.
        day.extend(bridge(12));
        let found = find(&day, 1.0, &past, &cfg());
        assert_eq!(found.groups.iter().map(|g| g.status).collect::<Vec<_>>(), vec![Status::Growing]);
        assert!((found.groups[0].growth - 2.0).abs() < 0.01, "{}", found.groups[0].growth);
    }

    #[test]
    fn an_empty_day_reports_nothing() {
        assert_eq!(find(&[], 1.0, &Baseline::default(), &cfg()).groups_found, 0);
    }
}
