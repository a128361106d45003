//! `searches.toml`: saved searches, an analyst's own query watched as a series ([`crate::search_query`]
//! for the language). Optional: a configuration folder without the file has none. Searches saved
//! through the API (analyst role) live in ClickHouse beside these, under names these do not use.
//!
//! ```toml
//! [[search]]
//! name = "flooding_thu_duc"            # [a-z0-9_-], at most 64: it is part of a URL
//! query = '(ngập OR "triều cường") NOT "tin giả"'
//! places = ["thu_duc"]                 # optional: only posts naming one of these places
//! sources = ["mastodon_vn"]            # optional: only posts from one of these sources
//! description = "Flooding around Thủ Đức"
//! ```

use super::problems::FileProblems;
use crate::search_query::{Query, QueryError};
use crate::terms::{sql_string, TermError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchesConfig {
    #[serde(default)]
    pub search: Vec<SavedSearch>,
}

/// One saved search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSearch {
    pub name: String,
    pub query: String,
    #[serde(default)]
    pub places: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// Longest name; names are URL path segments and alert scopes.
pub const MAX_NAME: usize = 64;
/// Longest query, in characters.
pub const MAX_QUERY: usize = 1000;

/// Why a search cannot be saved, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SearchError {
    pub field: &'static str,
    pub message: String,
}

impl SavedSearch {
    /// Every mistake in the search: its name, its query (with the column), unknown places or
    /// sources (checked when the lists are given).
    pub fn problems(&self, places: Option<&[&str]>, sources: Option<&[&str]>) -> Vec<SearchError> {
        let mut out = Vec::new();
        let mut bad = |field, message: String| out.push(SearchError { field, message });
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            bad("name", format!("{:?}: use 1 to {MAX_NAME} of a-z, 0-9, _ and -", self.name));
        }
        if self.query.chars().count() > MAX_QUERY {
            bad("query", format!("longer than {MAX_QUERY} characters"));
        } else if let Err(e) = self.parse() {
            bad("query", e.to_string());
        }
        for (field, given, known) in [("places", &self.places, places), ("sources", &self.sources, sources)] {
            for id in given {
                if known.is_some_and(|k| !k.contains(&id.as_str())) {
                    bad(field, format!("unknown {} {id:?}", &field[..field.len() - 1]));
                }
            }
        }
        if self.description.chars().count() > 500 {
            bad("description", "longer than 500 characters".into());
        }
        out
    }

    /// The parsed query; an error names the column, or the word that has no letters or digits.
    pub fn parse(&self) -> Result<Query, QueryError> {
        let q = Query::parse(&self.query)?;
        q.to_sql().map_err(|e| QueryError { column: 1, message: term_message(e) })?;
        Ok(q)
    }

    /// The ClickHouse condition on `posts` for this search: the query on the search columns, and
    /// the place and source filters. Ids are quoted literals whatever they hold.
    pub fn sql(&self) -> Result<String, QueryError> {
        let q = Query::parse(&self.query)?;
        let mut sql = q.to_sql().map_err(|e| QueryError { column: 1, message: term_message(e) })?;
        if !self.places.is_empty() {
            let list: Vec<String> = self.places.iter().map(|p| sql_string(p)).collect();
            sql = format!("{sql} AND hasAny(places, [{}])", list.join(", "));
        }
        if !self.sources.is_empty() {
            let list: Vec<String> = self.sources.iter().map(|s| sql_string(s)).collect();
            sql = format!("{sql} AND source IN ({})", list.join(", "));
        }
        Ok(sql)
    }
}

fn term_message(e: TermError) -> String {
    match e {
        TermError::NoWords { term, .. } => format!("{term:?} has no letters or digits, so it matches nothing"),
        e => e.to_string(),
    }
}

impl SearchesConfig {
    pub fn get(&self, name: &str) -> Option<&SavedSearch> {
        self.search.iter().find(|s| s.name == name)
    }

    pub fn validate(&self, places: Option<&[&str]>, sources: Option<&[&str]>, p: &mut FileProblems<'_>) {
        p.unique(self.search.iter().map(|s| s.name.as_str()), "search name");
        for (i, s) in self.search.iter().enumerate() {
            for e in s.problems(places, sources) {
                p.push(format!("search[{i}].{}", e.field), e.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(name: &str, query: &str) -> SavedSearch {
        SavedSearch { name: name.into(), query: query.into(), places: vec![], sources: vec![], description: "".into() }
    }

    #[test]
    fn problems_name_the_field_and_the_column() {
        assert!(search("flooding_q1", "ngập OR \"kẹt xe\"").problems(None, None).is_empty());
        let e = search("Flooding Q1", "ngập OR (kẹt").problems(None, None);
        assert_eq!(e.iter().map(|e| e.field).collect::<Vec<_>>(), ["name", "query"]);
        assert!(e[1].message.starts_with("column 9:"), "{}", e[1].message);
        let e = search("x", "ngập OR 🚗").problems(None, None);
        assert!(e[0].message.contains("no letters or digits"), "{e:?}");
        let mut s = search("x", "ngập");
        s.places = vec!["q1".into(), "atlantis".into()];
        s.sources = vec!["nowhere".into()];
        let e = s.problems(Some(&["q1"]), Some(&["mastodon_vn"]));
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].to_string(), "places: unknown place \"atlantis\"");
        assert_eq!(e[1].to_string(), "sources: unknown source \"nowhere\"");
    }

    #[test]
    fn sql_adds_the_place_and_source_filters() {
        let mut s = search("x", "ngap");
        s.places = vec!["q1".into(), "o'x".into()];
        s.sources = vec!["reddit".into()];
        assert_eq!(
            s.sql().unwrap(),
            "position(search_folded, ' ngap ') > 0 AND hasAny(places, ['q1', 'o\\'x']) AND source IN ('reddit')"
        );
        // A `?` would be a bind placeholder to clickhouse-rs: it never reaches the SQL as itself.
        s.sources = vec!["a?b".into()];
        assert!(s.sql().unwrap().ends_with("source IN ('a\\x3Fb')"), "{}", s.sql().unwrap());
    }
}
