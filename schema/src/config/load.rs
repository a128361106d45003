//! Reading one TOML file into a typed config, collecting every parse problem (not just the first)
//! and applying `CITYPULSE__SECTION__KEY` environment overrides.
//!
//! serde stops at the first error. To report them all at once we record the error's key path and
//! line, comment that line out and parse again, up to a bound. A line removed this way can cause a
//! follow-up "missing field" report for the same key, which still points at the right place.

use super::problems::Problems;
use serde::de::DeserializeOwned;

/// Most parse problems reported per file before giving up on it.
const MAX_PARSE_PROBLEMS: usize = 20;

/// What parsing a file gave.
pub struct Parsed<T> {
    /// The file's value; when there were problems, the value with the offending lines left out
    /// (so semantic checks still run on the rest of the file), if that parses.
    pub value: Option<T>,
    /// True when any problem was recorded.
    pub failed: bool,
}

/// Parses `text` as `T`, recording every problem found into `problems`.
pub fn parse_toml<T: DeserializeOwned>(file: &str, text: &str, problems: &mut Problems) -> Parsed<T> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut failed = false;
    for _ in 0..MAX_PARSE_PROBLEMS {
        let current = lines.join("\n");
        let err = match parse_once::<T>(&current) {
            Ok(value) => return Parsed { value: Some(value), failed },
            Err(err) => err,
        };
        failed = true;
        let line = err.line(&current);
        problems.file(file).push_at_line(err.path.clone(), line, err.message.clone());
        // Comment out the offending line and try again, unless we cannot tell which line it is
        // or it is a table header (removing it would misattribute every key below it).
        match line {
            Some(n) if n >= 1 && n <= lines.len() && !lines[n - 1].trim_start().starts_with('[') => {
                lines[n - 1] = format!("# {}", lines[n - 1]);
            }
            _ => return Parsed { value: None, failed },
        }
    }
    Parsed { value: None, failed }
}

/// Deserialises `table` (already parsed, e.g. after env overrides) as `T`, recording a problem.
pub fn from_table<T: DeserializeOwned>(file: &str, table: toml::Table, problems: &mut Problems) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table)) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.file(file).push(e.path().to_string(), e.inner().message().to_owned());
            None
        }
    }
}

struct ParseError {
    path: String,
    message: String,
    span: Option<std::ops::Range<usize>>,
}

impl ParseError {
    fn line(&self, text: &str) -> Option<usize> {
        let start = self.span.as_ref()?.start.min(text.len());
        Some(text[..start].matches('\n').count() + 1)
    }
}

fn parse_once<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ParseError {
            path: if path == "." { String::new() } else { path },
            message: inner.message().to_owned(),
            span: inner.span(),
        }
    })
}

/// The prefix of environment overrides: `CITYPULSE__KAFKA__BROKERS=host:9092` sets `[kafka] brokers`.
pub const ENV_PREFIX: &str = "CITYPULSE__";

/// Applies `CITYPULSE__A__B=value` overrides to `table`. Values are read as TOML when they parse
/// (numbers, booleans, arrays) and as strings otherwise. Returns the names of variables applied.
pub fn apply_env_overrides(table: &mut toml::Table, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else { continue };
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        let value = parse_env_value(&raw);
        let mut node = &mut *table;
        for key in &keys[..keys.len() - 1] {
            let entry = node.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => node = t,
                _ => {
                    *entry = toml::Value::Table(toml::Table::new());
                    let toml::Value::Table(t) = entry else { unreachable!() };
                    node = t;
                }
            }
        }
        node.insert(keys[keys.len() - 1].clone(), value);
        applied.push(name);
    }
    applied
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        kafka: Kafka,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Kafka {
        #[serde(default)]
        brokers: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        tls: bool,
    }

    #[test]
    fn reports_every_bad_line_with_its_path_and_line() {
        let mut problems = Problems::default();
        let text = "[kafka]\nbrokers = \"a\"\nport = -1\nbrokerz = \"x\"\ntls = \"yes\"\n";
        let parsed = parse_toml::<Conf>("citypulse.toml", text, &mut problems);
        assert!(parsed.failed);
        assert_eq!(parsed.value.map(|c| c.kafka.brokers), Some("a".to_owned()), "the rest of the file still parses");
        let shown: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].starts_with("citypulse.toml:3: kafka.port"), "{shown:#?}");
        assert!(shown[1].contains(":4:") && shown[1].contains("brokerz"), "{shown:#?}");
        assert!(shown[2].contains(":5: kafka.tls"), "{shown:#?}");
    }

    #[test]
    fn env_overrides_set_nested_keys_with_types() {
        let mut table: toml::Table = "[kafka]\nbrokers = \"a\"\n".parse().unwrap();
        let vars = [
            ("CITYPULSE__KAFKA__BROKERS".to_owned(), "b:9092".to_owned()),
            ("CITYPULSE__KAFKA__PORT".to_owned(), "9093".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        assert_eq!(apply_env_overrides(&mut table, vars).len(), 2);
        let mut problems = Problems::default();
        let conf: Conf = from_table("citypulse.toml", table, &mut problems).unwrap();
        assert_eq!(conf.kafka.brokers, "b:9092");
        assert_eq!(conf.kafka.port, 9093);
        assert!(!conf.kafka.tls);
    }
}
