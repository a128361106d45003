//! The only values ever spliced into SQL text: a database name and a time-zone literal, both
//! validated here so that nothing else needs quoting. Everything user-supplied goes through `?` binds.

use crate::error::StoreError;
use std::fmt;

/// A validated ClickHouse database name (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database(String);

impl Database {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        if schema::config::services::is_identifier(name) {
            Ok(Database(name.to_owned()))
        } else {
            Err(StoreError::InvalidName {
                what: "database",
                value: name.to_owned(),
                why: "use [A-Za-z_][A-Za-z0-9_]*, at most 64 characters",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The city's IANA time zone, known to chrono-tz and made of characters that are safe inside a
/// single-quoted SQL literal (letters, digits, `/`, `_`, `+`, `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CityZone(chrono_tz::Tz);

impl CityZone {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let invalid = |why| StoreError::InvalidName { what: "time zone", value: name.to_owned(), why };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)) {
            return Err(invalid("only letters, digits and / _ + - are allowed"));
        }
        name.parse::<chrono_tz::Tz>().map(CityZone).map_err(|_| invalid("not an IANA time zone"))
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_plain_words() {
        assert!(Database::new("citypulse_test1").is_ok());
        for bad in ["", "1abc", "a.b", "a;DROP", "a b", "a`b", "a'b"] {
            assert!(Database::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zones_must_be_known_and_literal_safe() {
        assert_eq!(CityZone::new("Asia/Ho_Chi_Minh").map(CityZone::name).ok(), Some("Asia/Ho_Chi_Minh"));
        assert!(CityZone::new("Etc/GMT+7").is_ok());
        for bad in ["Mars/Olympus", "UTC'); DROP TABLE posts; --", "Asia/Ho Chi Minh"] {
            assert!(CityZone::new(bad).is_err(), "{bad:?}");
        }
    }
}
