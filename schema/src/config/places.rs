//! `places.toml`: the city's gazetteer. One canonical id per place with its aliases in Vietnamese
//! (with and without diacritics) and English; matching happens on the NFC, lower-cased text.

use super::problems::FileProblems;
use crate::ids::PlaceId;
use serde::Deserialize;

/// The whole of places.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacesConfig {
    #[serde(default)]
    pub place: Vec<Place>,
}

/// One place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Canonical id, e.g. `district_1`.
    pub id: PlaceId,
    /// Display name, e.g. `Quận 1`.
    pub name: String,
    /// What `city` or `district` or `landmark` or `street` this is. Default `district`.
    #[serde(default = "district")]
    pub kind: String,
    /// Every spelling that means this place ("Quận 1", "quan 1", "Q1", "District 1").
    pub aliases: Vec<String>,
}

fn district() -> String {
    "district".into()
}

impl PlacesConfig {
    pub fn validate(&self, p: &mut FileProblems<'_>) {
        p.unique(self.place.iter().map(|pl| pl.id.as_str()), "place id");
        let mut owners = std::collections::HashMap::new();
        for (i, place) in self.place.iter().enumerate() {
            p.check(!place.name.trim().is_empty(), format!("place[{i}].name"), "must not be empty");
            p.check(!place.aliases.is_empty(), format!("place[{i}].aliases"), "needs at least one alias");
            for (j, alias) in place.aliases.iter().enumerate() {
                let key = alias.trim().to_lowercase();
                if key.chars().count() < 2 {
                    p.push(format!("place[{i}].aliases[{j}]"), "alias too short to match safely");
                }
                if let Some(other) = owners.insert(key, place.id.as_str()) {
                    if other != place.id.as_str() {
                        p.push(
                            format!("place[{i}].aliases[{j}]"),
                            format!("alias {alias:?} also belongs to place {other:?}"),
                        );
                    }
                }
            }
        }
    }
}
