//! The gazetteer matcher: which configured places a post mentions, and the relevance filter for
//! sources that are not city-specific.
//!
//! Aliases match on the normalised text ([`crate::text::normalize_for_match`]) at word boundaries,
//! so "Q1" finds "q1" in "kẹt xe q1." but not in "q10", and "Quận 1" matches "quận 1" whether the
//! post was written composed or decomposed. Every spelling (with and without diacritics, English)
//! is listed in places.toml: the matcher does not strip accents itself, because unaccented
//! Vietnamese collides ("quan" is also "quán", a café).

use crate::text::normalize_for_match;
use schema::config::PlacesConfig;
use schema::PlaceId;

/// Matches text against the configured places.
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    /// (normalised alias, index into `ids`), longest alias first so the first hit per place is the
    /// most specific one (only matters for debugging; the result is a set).
    aliases: Vec<(String, usize)>,
    ids: Vec<PlaceId>,
}

impl Gazetteer {
    pub fn new(config: &PlacesConfig) -> Self {
        let mut aliases = Vec::new();
        let mut ids = Vec::new();
        for (i, place) in config.place.iter().enumerate() {
            ids.push(place.id.clone());
            for alias in place.aliases.iter().chain(std::iter::once(&place.name)) {
                let norm = normalize_for_match(alias);
                if !norm.is_empty() && !aliases.contains(&(norm.clone(), i)) {
                    aliases.push((norm, i));
                }
            }
        }
        aliases.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Gazetteer { aliases, ids }
    }

    /// Canonical ids of every place `text` mentions, in config order, each once.
    pub fn places_in(&self, text: &str) -> Vec<PlaceId> {
        let norm = normalize_for_match(text);
        let mut hit = vec![false; self.ids.len()];
        for (alias, place) in &self.aliases {
            if !hit[*place] && contains_word(&norm, alias) {
                hit[*place] = true;
            }
        }
        self.ids.iter().zip(hit).filter(|(_, h)| *h).map(|(id, _)| id.clone()).collect()
    }

    /// The configured place whose id is `id` exactly.
    pub fn place_id(&self, id: &str) -> Option<&PlaceId> {
        self.ids.iter().find(|p| p.as_str() == id)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Whether `needle` occurs in `haystack` with no letter or digit right before or after it.
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(start, m)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + m.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
}

fn is_word_char(c: char) -> bool {
    // Combining marks count as part of a word: a stray one after "q1" must not make a boundary.
    c.is_alphanumeric() || ('\u{0300}'..='\u{036f}').contains(&c)
}

/// Why a post is not produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relevance {
    Keep,
    /// The source requires a place and the post names none.
    NoPlace,
}

/// The relevance rule: a source with `require_place` keeps only posts that name a place.
pub fn relevance(require_place: bool, places: &[PlaceId]) -> Relevance {
    if require_place && places.is_empty() {
        Relevance::NoPlace
    } else {
        Relevance::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gazetteer() -> Gazetteer {
        let toml = r#"
            [[place]]
            id = "district_1"
            name = "Quận 1"
            aliases = ["Quận 1", "Quan 1", "Q1", "Q.1", "District 1"]
            [[place]]
            id = "district_10"
            name = "Quận 10"
            aliases = ["Quận 10", "Quan 10", "Q10", "Q.10", "District 10"]
            [[place]]
            id = "hcmc"
            name = "TP. Hồ Chí Minh"
            aliases = ["TP.HCM", "Sài Gòn", "Sai Gon", "Saigon", "HCMC"]
        "#;
        Gazetteer::new(&toml_parse(toml))
    }

    fn toml_parse(s: &str) -> PlacesConfig {
        toml::from_str(s).unwrap()
    }

    fn ids(g: &Gazetteer, text: &str) -> Vec<String> {
        g.places_in(text).into_iter().map(String::from).collect()
    }

    #[test]
    fn spellings_of_one_place_give_one_id() {
        let g = gazetteer();
        for text in ["Kẹt xe ở Quận 1 sáng nay", "ket xe o quan 1", "Traffic in District 1!", "QUẬN 1", "q1.", "(Q.1)"]
        {
            assert_eq!(ids(&g, text), ["district_1"], "{text}");
        }
    }

    #[test]
    fn word_boundaries_keep_q1_out_of_q10() {
        let g = gazetteer();
        assert_eq!(ids(&g, "ngập ở q10"), ["district_10"]);
        assert_eq!(ids(&g, "Quận 10 và Quận 1"), ["district_1", "district_10"]);
        assert!(ids(&g, "aq1 q1x q12 district 100 saigonese").is_empty());
        assert_eq!(ids(&g, "Sài Gòn, TP.HCM"), ["hcmc"]);
    }

    #[test]
    fn decomposed_text_matches() {
        let g = gazetteer();
        assert_eq!(ids(&g, "Qua\u{0323}\u{0302}n 1"), ["district_1"]);
        assert_eq!(ids(&g, "Sa\u{0300}i Go\u{0300}n"), ["hcmc"]);
    }

    #[test]
    fn shipped_gazetteer_loads_and_matches() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/places.toml")).unwrap();
        let g = Gazetteer::new(&toml_parse(&text));
        assert!(!g.is_empty());
        assert_eq!(ids(&g, "Ngập nặng ở Thảo Điền"), ["thu_duc"]);
    }

    #[test]
    fn relevance_rule() {
        let p = vec![PlaceId::new("hcmc").unwrap()];
        assert_eq!(relevance(true, &[]), Relevance::NoPlace);
        assert_eq!(relevance(true, &p), Relevance::Keep);
        assert_eq!(relevance(false, &[]), Relevance::Keep);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = gazetteer().places_in(&s);
        }

        /// An alias surrounded by any non-word characters is found; glued to a letter or digit it is not.
        #[test]
        fn boundaries(pre in "[ ,.!?()\\-]{0,3}", post in "[ ,.!?()\\-]{0,3}", glue in "[a-z0-9ạ]") {
            let g = gazetteer();
            let found = format!("xx{pre} quận 1{post} yy");
            prop_assert_eq!(ids(&g, &found), vec!["district_1".to_string()]);
            let glued = format!("quận 1{glue}");
            prop_assert!(!ids(&g, &glued).contains(&"district_1".to_string()));
        }
    }
}
