//! Identifiers that travel between stages: topic ids, place ids, source ids.
//!
//! They are lowercase ASCII words (`[a-z0-9_]`, 1..=64 chars) so they are safe as ClickHouse values,
//! Prometheus label values and config keys, and so a typo in config fails validation instead of
//! creating a new, silently empty topic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: use 1 to 64 characters of a-z, 0-9 and _")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
}

fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A validated ", $kind, " identifier.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if is_valid_id(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: $kind, value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(TopicId, "topic");
id_type!(PlaceId, "place");
id_type!(SourceId, "source");

impl TopicId {
    /// The topic given when no configured topic passes its threshold.
    pub fn other() -> Self {
        Self("other".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_words() {
        assert_eq!(TopicId::new("admin_procedures").unwrap().as_str(), "admin_procedures");
        assert!(PlaceId::new("district_1").is_ok());
    }

    #[test]
    fn rejects_what_would_be_unsafe_or_a_typo() {
        for bad in ["", "Traffic", "traffic jam", "a'b", "quận_1", &"x".repeat(65)] {
            assert!(TopicId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<SourceId>("\"Bad Id\"").unwrap_err();
        assert!(err.to_string().contains("invalid source id"), "{err}");
    }
}
