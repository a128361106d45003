//! Configuration: one TOML file per concern under `config/`, loaded together and validated in one
//! pass that reports every problem with its file and key path.
//!
//! - `citypulse.toml` ([`services`]): city and time zone, Kafka, ClickHouse, limits, telemetry, services.
//!   Overridable from the environment: `CITYPULSE__SECTION__KEY` (e.g. `CITYPULSE__KAFKA__BROKERS`).
//! - `sources.toml` ([`sources`]), `places.toml` ([`places`]), `topics.toml` ([`topics`]),
//!   `alerts.toml` ([`alerts`]), `demo.toml` ([`demo`]), and the optional `searches.toml` ([`searches`]).
//!
//! Secrets are never read from files: config names the environment variable that holds each one.

pub mod alerts;
pub mod demo;
pub mod emerging;
pub mod load;
pub mod places;
pub mod problems;
pub mod searches;
pub mod services;
pub mod sources;
pub mod topics;

pub use alerts::AlertsConfig;
pub use demo::DemoConfig;
pub use places::PlacesConfig;
pub use problems::{Problem, Problems};
pub use searches::SearchesConfig;
pub use services::ServicesConfig;
pub use sources::SourcesConfig;
pub use topics::TopicsConfig;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Every configuration file, loaded and validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The folder the files came from.
    pub dir: PathBuf,
    pub services: ServicesConfig,
    pub sources: SourcesConfig,
    pub places: PlacesConfig,
    pub topics: TopicsConfig,
    pub alerts: AlertsConfig,
    pub demo: DemoConfig,
    /// Empty when the folder has no `searches.toml`.
    pub searches: SearchesConfig,
    /// Environment overrides that were applied (names only; values may be secrets).
    pub env_overrides: Vec<String>,
}

impl Config {
    /// Loads `dir/*.toml` with overrides from the process environment.
    pub fn load(dir: &Path) -> Result<Config, Problems> {
        Self::load_with_env(dir, std::env::vars())
    }

    /// Loads with an explicit environment (tests).
    pub fn load_with_env(dir: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let services_text = read(dir, "citypulse.toml", &mut problems);
        let services = services_text.and_then(|text| load_services(&text, env, &mut problems));
        let sources = read_parse::<SourcesConfig>(dir, "sources.toml", &mut problems);
        let places = read_parse::<PlacesConfig>(dir, "places.toml", &mut problems);
        let topics = read_parse::<TopicsConfig>(dir, "topics.toml", &mut problems);
        let alerts = read_parse::<AlertsConfig>(dir, "alerts.toml", &mut problems);
        let demo = read_parse::<DemoConfig>(dir, "demo.toml", &mut problems);
        let searches = if dir.join("searches.toml").exists() {
            read_parse::<SearchesConfig>(dir, "searches.toml", &mut problems)
        } else {
            Some(SearchesConfig::default())
        };
        // Semantic checks run on whatever parsed (bad lines left out), so one run lists everything.
        let parts = Parts {
            services: services.as_ref().map(|s| &s.0),
            sources: sources.as_ref(),
            places: places.as_ref(),
            topics: topics.as_ref(),
            alerts: alerts.as_ref(),
            demo: demo.as_ref(),
            searches: searches.as_ref(),
        };
        parts.validate(&mut problems);
        match (services, sources, places, topics, alerts, demo, searches) {
            (
                Some((services, env_overrides)),
                Some(sources),
                Some(places),
                Some(topics),
                Some(alerts),
                Some(demo),
                Some(searches),
            ) if problems.is_empty() => Ok(Config {
                dir: dir.to_owned(),
                services,
                sources,
                places,
                topics,
                alerts,
                demo,
                searches,
                env_overrides,
            }),
            _ => Err(problems),
        }
    }

    /// Semantic checks across all files.
    pub fn validate(&self, problems: &mut Problems) {
        Parts {
            services: Some(&self.services),
            sources: Some(&self.sources),
            places: Some(&self.places),
            topics: Some(&self.topics),
            alerts: Some(&self.alerts),
            demo: Some(&self.demo),
            searches: Some(&self.searches),
        }
        .validate(problems);
    }

    /// The city's time zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.services.city.tz()
    }
}

/// The files that parsed; each is validated on its own, cross-file checks where both sides exist.
struct Parts<'a> {
    services: Option<&'a ServicesConfig>,
    sources: Option<&'a SourcesConfig>,
    places: Option<&'a PlacesConfig>,
    topics: Option<&'a TopicsConfig>,
    alerts: Option<&'a AlertsConfig>,
    demo: Option<&'a DemoConfig>,
    searches: Option<&'a SearchesConfig>,
}

impl Parts<'_> {
    fn validate(&self, problems: &mut Problems) {
        if let Some(s) = self.services {
            s.validate(&mut problems.file("citypulse.toml"));
        }
        if let Some(s) = self.sources {
            s.validate(&mut problems.file("sources.toml"));
        }
        if let Some(p) = self.places {
            p.validate(&mut problems.file("places.toml"));
        }
        if let Some(t) = self.topics {
            t.validate(&mut problems.file("topics.toml"));
        }
        let places: Option<Vec<&str>> = self.places.map(|p| p.place.iter().map(|pl| pl.id.as_str()).collect());
        if let Some(a) = self.alerts {
            let topics: Option<Vec<&str>> = self.topics.map(|t| t.ids().map(|id| id.as_str()).collect());
            let searches: Option<Vec<&str>> = self.searches.map(|s| s.search.iter().map(|s| s.name.as_str()).collect());
            a.validate(topics.as_deref(), places.as_deref(), searches.as_deref(), &mut problems.file("alerts.toml"));
        }
        if let Some(s) = self.searches {
            let sources = self.sources.map(|s| s.names());
            s.validate(places.as_deref(), sources.as_deref(), &mut problems.file("searches.toml"));
        }
        if let Some(d) = self.demo {
            d.validate(&mut problems.file("demo.toml"));
        }
    }
}

fn read(dir: &Path, name: &str, problems: &mut Problems) -> Option<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            problems.file(name).push("", format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn read_parse<T: DeserializeOwned>(dir: &Path, name: &str, problems: &mut Problems) -> Option<T> {
    let text = read(dir, name, problems)?;
    load::parse_toml(name, &text, problems).value
}

/// citypulse.toml: parse the file (all problems at its lines), then apply environment overrides.
fn load_services(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Problems,
) -> Option<(ServicesConfig, Vec<String>)> {
    let parsed = load::parse_toml::<ServicesConfig>("citypulse.toml", text, problems);
    let from_file = parsed.value?;
    let overrides: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(load::ENV_PREFIX)).collect();
    if overrides.is_empty() || parsed.failed {
        return Some((from_file, Vec::new()));
    }
    let mut table: toml::Table = text.parse().ok()?;
    let applied = load::apply_env_overrides(&mut table, overrides);
    let label = format!("citypulse.toml (with environment {})", applied.join(", "));
    load::from_table(&label, table, problems).map(|c| (c, applied))
}
