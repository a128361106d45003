//! `citypulse serve`: the analysts' HTTP surface. The JSON API under `/api/v1` (`api`, its
//! parameters in `params`, the daily picture in `summary`), `/openapi.json`, the dashboard page at
//! `/` with its assets compiled into the binary (`page`), `/healthz` and `/metrics`; and, when
//! `[[intake]]` channels are configured, `POST /api/v1/intake/{channel}` (`intake`), behind each
//! channel's own token rather than the analysts'. Saved searches as series: `searches`. A stage of the one shape:
//! `run(settings, deps, shutdown)`.

pub mod api;
pub mod auth;
pub mod corrections;
pub mod digest;
pub mod emerging;
pub mod intake;
pub mod openapi;
pub mod page;
pub mod params;
pub mod report;
pub mod searches;
pub mod summary;

use anyhow::{Context, Result};
use axum::routing::{get, post};
use axum::Router;
use chrono_tz::Tz;
use schema::author::AuthorHasher;
use schema::config::Config;
use serde::Serialize;
use stagekit::StageHealth;
use std::net::SocketAddr;
use std::sync::Arc;
use store::{CityZone, Database, Queries};
use tokio_util::sync::CancellationToken;

/// A topic or place with its labels.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub id: String,
    pub label_vi: String,
    pub label_en: String,
}

/// Plain values from the configuration.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub tz: Tz,
    pub db: Database,
    pub zone: CityZone,
    pub max_range_days: u32,
    pub topics: Vec<Label>,
    pub places: Vec<Label>,
    pub sources: Vec<String>,
    /// The first-party channels among `sources` (`[[intake]]`): the official side of a comparison.
    pub official: Vec<String>,
    /// `[emerging]`: the job whose saved reports the API reads, and where proposals go.
    pub emerging: schema::config::emerging::EmergingConfig,
    /// `searches.toml`: the configured saved searches (the API's are in ClickHouse).
    pub searches: schema::config::SearchesConfig,
}

impl ServeSettings {
    pub fn from_config(config: &Config) -> Result<Self> {
        let s = &config.services;
        let mut topics: Vec<Label> = config
            .topics
            .topic
            .iter()
            .map(|t| Label { id: t.id.as_str().into(), label_vi: t.label_vi.clone(), label_en: t.label_en.clone() })
            .collect();
        topics.push(Label { id: "other".into(), label_vi: "Khác".into(), label_en: "Other".into() });
        let places = config
            .places
            .place
            .iter()
            .map(|p| Label {
                id: p.id.as_str().into(),
                label_vi: p.name.clone(),
                label_en: english_name(&p.name, &p.aliases),
            })
            .collect();
        Ok(ServeSettings {
            listen: s.serve.listen.parse().with_context(|| format!("serve.listen {:?}", s.serve.listen))?,
            tz: config.tz(),
            db: Database::from_config(&s.clickhouse)?,
            zone: CityZone::new(&s.city.time_zone)?,
            max_range_days: s.serve.max_range_days,
            topics,
            places,
            sources: config.sources.names().into_iter().map(str::to_owned).collect(),
            official: config.sources.intake_names().map(str::to_owned).collect(),
            emerging: s.emerging.clone(),
            searches: config.searches.clone(),
        })
    }
}

/// A place's English name: the first alias written in ASCII with a capital (the gazetteer lists
/// "District 1", "Ho Chi Minh City"), else the name without diacritics.
fn english_name(name: &str, aliases: &[String]) -> String {
    aliases
        .iter()
        .rev()
        .find(|a| a.is_ascii() && a.contains(' ') && a.starts_with(|c: char| c.is_ascii_uppercase()))
        .cloned()
        .unwrap_or_else(|| schema::terms::fold_diacritics(name))
}

/// What the stage is handed.
pub struct ServeDeps {
    pub client: clickhouse::Client,
    pub tokens: auth::Tokens,
    pub health: StageHealth,
    /// The intake endpoint, when channels are configured.
    pub intake: Option<intake::IntakeState>,
}

impl ServeDeps {
    /// `hasher` pseudonymises the intake's authors; it is needed only when a channel is enabled.
    pub async fn from_config(config: &Config, health: StageHealth, hasher: Option<AuthorHasher>) -> Result<Self> {
        let tokens = auth::Tokens::from_config(&config.services.serve.token, |v| std::env::var(v).ok())?;
        let intake = if config.sources.intake_enabled() {
            let hasher = hasher.context("the intake needs CITYPULSE_AUTHOR_KEY to pseudonymise authors")?;
            let desk = Arc::new(crate::intake::Desk::from_config(config, hasher).await?);
            Some(Arc::new(intake::Intake::new(desk, |v| std::env::var(v).ok())?))
        } else {
            None
        };
        Ok(ServeDeps { client: store::client(&config.services.clickhouse), tokens, health, intake })
    }
}

/// What the handlers share.
pub struct Shared {
    pub queries: Queries,
    pub history: alert::history::History,
    pub tz: Tz,
    pub max_range_days: u32,
    pub topics: Vec<Label>,
    pub places: Vec<Label>,
    pub topic_ids: Vec<String>,
    pub place_ids: Vec<String>,
    pub sources: Vec<String>,
    /// The first-party (`[[intake]]`) channels among `sources`.
    pub official: Vec<String>,
    /// Reads the saved emerging-issues reports.
    pub emerging: ::emerging::Job,
    /// Where proposed topic blocks are written.
    pub proposals_dir: std::path::PathBuf,
    /// searches.toml's searches; with `client` and `db`, the API-saved ones.
    pub searches: schema::config::SearchesConfig,
    pub client: clickhouse::Client,
    pub db: Database,
}

pub type AppState = Arc<Shared>;

/// Totals of a run (the server keeps none yet; requests are counted on /metrics).
#[derive(Debug, Default)]
pub struct ServeStats;

/// What the handlers (and `citypulse report`) read through.
pub fn shared(settings: &ServeSettings, client: clickhouse::Client) -> AppState {
    Arc::new(Shared {
        queries: Queries::new(client.clone(), settings.db.clone(), settings.zone),
        history: alert::history::History::new(client.clone(), settings.db.clone()),
        emerging: ::emerging::Job::new(client.clone(), settings.db.clone(), settings.tz, settings.emerging.clone()),
        searches: settings.searches.clone(),
        client,
        db: settings.db.clone(),
        proposals_dir: settings.emerging.proposals_dir.clone(),
        tz: settings.tz,
        max_range_days: settings.max_range_days,
        topic_ids: settings.topics.iter().map(|l| l.id.clone()).collect(),
        place_ids: settings.places.iter().map(|l| l.id.clone()).collect(),
        topics: settings.topics.clone(),
        places: settings.places.clone(),
        sources: settings.sources.clone(),
        official: settings.official.clone(),
    })
}

/// The whole HTTP surface.
pub fn router(
    settings: &ServeSettings,
    client: clickhouse::Client,
    tokens: auth::Tokens,
    health: stagekit::Health,
    intake: Option<intake::IntakeState>,
) -> Router {
    let state = shared(settings, client);
    let api = Router::new()
        .route("/trends", get(api::trends))
        .route("/posts", get(api::posts))
        .route("/summary", get(api::summary))
        .route("/alerts", get(api::alerts))
        .route("/topics", get(api::topics))
        .route("/places", get(api::places))
        .route("/sources", get(api::sources))
        .route("/emerging", get(self::emerging::latest))
        .route("/emerging/proposals", post(self::emerging::propose))
        .route("/searches", get(self::searches::list).post(self::searches::save))
        .route("/searches/{name}", axum::routing::delete(self::searches::delete))
        .route("/searches/{name}/trends", get(self::searches::trends))
        .route("/searches/{name}/posts", get(self::searches::posts))
        .route("/me", get(auth::me))
        .route("/corrections", get(self::corrections::list).post(self::corrections::create))
        .route("/corrections/{id}", axum::routing::delete(self::corrections::revoke))
        .layer(axum::middleware::from_fn_with_state(Arc::new(tokens), auth::require_token))
        .with_state(state);
    let prometheus = crate::telemetry::prometheus().clone();
    let intake = match intake {
        Some(state) => Router::new().route("/api/v1/intake/{channel}", post(intake::push)).with_state(state),
        None => Router::new(),
    };
    Router::new()
        .merge(intake)
        .nest("/api/v1", api)
        .route("/openapi.json", get(openapi::spec))
        .route("/healthz", get(crate::telemetry::healthz).with_state(health))
        .route("/metrics", get(move || std::future::ready(prometheus.render())))
        .merge(page::routes())
}

/// Serves until `shutdown`; in-flight requests finish.
pub async fn run(settings: ServeSettings, deps: ServeDeps, shutdown: CancellationToken) -> Result<ServeStats> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (serve.listen)", settings.listen))?;
    let bound = listener.local_addr()?;
    deps.health.set_ok("http");
    let desk = deps.intake.as_ref().map(|i| i.desk());
    let warmer = tokio::spawn(searches::warm(shared(&settings, deps.client.clone()), shutdown.child_token()));
    let app = router(&settings, deps.client, deps.tokens, deps.health.registry(), deps.intake);
    tracing::info!(%bound, "serving the API and the dashboard");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("the HTTP server failed")?;
    warmer.abort();
    if let Some(desk) = desk {
        let written = desk.flush().await.context("writing the intake's last intake_seen rows")?;
        tracing::info!(written, "the intake's pending intake_seen rows written");
    }
    tracing::info!(%bound, "the API and the dashboard stopped");
    Ok(ServeStats)
}
