//! A proposed `[[topic]]` block for topics.toml, written from a reported group for a person to
//! review: an id and labels from the group's words, descriptions that say where it came from, and
//! its example posts (redacted). It parses as a topic (tested), but a person decides whether it
//! becomes one; nothing here edits topics.toml.

use crate::report::Group;
use schema::terms::fold_diacritics;

/// Most examples a proposal carries.
const MAX_EXAMPLES: usize = 12;

/// The topic id a group's label suggests: folded, `[a-z0-9_]`, at most 40 characters.
pub fn topic_id(group: &Group) -> String {
    let words: Vec<String> = group
        .terms
        .iter()
        .flat_map(|t| fold_diacritics(&t.to_lowercase()).split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|w| w.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let mut id = String::new();
    for w in words {
        if id.len() + w.len() + 1 > 40 {
            break;
        }
        if !id.is_empty() {
            id.push('_');
        }
        id.push_str(&w);
    }
    match id.chars().next() {
        Some(c) if c.is_ascii_lowercase() => id,
        Some(_) => format!("t_{id}"),
        None => format!("emerging_{}", group.rank),
    }
}

/// The TOML text of the proposal for `group` of the report of `date`.
pub fn topic_block(date: &str, group: &Group) -> String {
    let label = capitalised(&group.terms.first().cloned().unwrap_or_else(|| group.label.clone()));
    let about = if group.terms.is_empty() { group.label.clone() } else { group.terms.join(", ") };
    let places = group.places.iter().take(3).map(|p| p.place.as_str()).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    out.push_str(&format!(
        "# Proposed by `citypulse emerging` from group {} of {date}: \"{}\".\n",
        group.rank, group.label
    ));
    out.push_str(&format!(
        "# {} posts ({:?}, {:.1}x the days before), {:.0}% negative{}.\n",
        group.posts,
        group.status,
        group.growth,
        group.share_negative * 100.0,
        if places.is_empty() { String::new() } else { format!("; places: {places}") }
    ));
    out.push_str(
        "# Review before adding it to topics.toml: rename the id and labels, write the descriptions as\n\
         # a person would (what belongs here and what does not), translate label_en and description_en,\n\
         # keep only examples that are typical, and tune the threshold with `citypulse eval`.\n",
    );
    out.push_str("[[topic]]\n");
    out.push_str(&format!("id = {}\n", toml_string(&topic_id(group))));
    out.push_str(&format!("label_vi = {}\n", toml_string(&label)));
    out.push_str(&format!("label_en = {}\n", toml_string(&format!("{} (to translate)", fold_diacritics(&label)))));
    out.push_str(&format!("description_vi = {}\n", toml_string(&format!("Bài đăng về: {about}."))));
    out.push_str(&format!(
        "description_en = {}\n",
        toml_string(&format!("Posts about: {} (to translate).", fold_diacritics(&about)))
    ));
    out.push_str("examples = [\n");
    for e in group.examples.iter().take(MAX_EXAMPLES) {
        out.push_str(&format!("  {},\n", toml_string(e)));
    }
    out.push_str("]\nthreshold = 0.0\n");
    out
}

/// Writes the proposal for `group` of the report of `date` to `dir/<id>-<date>-<rank>.toml` (the
/// id is `[a-z0-9_]` and the date a parsed one, so the name cannot leave `dir`; proposing the same
/// group again overwrites its file) and returns the path.
pub fn write(dir: &std::path::Path, date: chrono::NaiveDate, group: &Group) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let date = date.to_string();
    let path = dir.join(format!("{}-{date}-{}.toml", topic_id(group), group.rank));
    std::fs::write(&path, topic_block(&date, group))?;
    Ok(path)
}

/// `s` as a TOML string value, escaped by the toml crate.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{PlaceCount, Status};
    use schema::config::TopicsConfig;

    fn group() -> Group {
        Group {
            rank: 1,
            label: "cầu chữ y · đóng cửa · sửa chữa".into(),
            terms: vec!["cầu chữ y".into(), "đóng cửa".into(), "sửa chữa".into()],
            status: Status::New,
            posts: 41,
            posts_like: 44,
            baseline_per_day: 0.0,
            growth: 88.0,
            share_negative: 0.78,
            places: vec![PlaceCount { place: "district_8".into(), posts: 30 }],
            sources: vec![("replay".into(), 41)],
            examples: vec![],
            example_keys: vec![],
            member_keys: vec![],
        }
    }

    #[test]
    fn the_block_parses_and_validates_as_a_topic() {
        let examples: Vec<String> = vec![
            "Cầu Chữ Y đóng cửa \"sửa chữa\" từ sáng nay".into(),
            "cau chu y dong cua, di vong xa qua\\".into(),
            "Sao đóng cầu mà không báo trước vậy".into(),
        ];
        let block = topic_block("2026-12-03", &Group { examples: examples.clone(), ..group() });
        let parsed: TopicsConfig = toml::from_str(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let mut problems = schema::config::Problems::default();
        parsed.validate(&mut problems.file("topics.toml"));
        assert!(problems.is_empty(), "{problems:?}\n{block}");
        let t = &parsed.topic[0];
        assert_eq!(t.id.as_str(), "cau_chu_y_dong_cua_sua_chua");
        assert_eq!(t.label_vi, "Cầu chữ y");
        assert_eq!(t.examples, examples, "examples kept exactly, quotes and backslashes included");
        assert!(t.description_vi.contains("đóng cửa"), "{}", t.description_vi);
    }

    #[test]
    fn ids_are_safe_whatever_the_words() {
        let mut g = group();
        g.terms = vec!["2024 ngập".into(), "x".repeat(60)];
        assert_eq!(topic_id(&g), "t_2024_ngap");
        g.terms = vec![];
        assert_eq!(topic_id(&g), "emerging_1");
    }
}
