//! What the alert stage's daily digest sends: the report of the day (the same `Summary` and HTML
//! as `citypulse report`) as an e-mail with a plain-text part, built here because the report
//! lives in this crate; the alert crate schedules, sends and records it.

use super::report::{render, render_text, title, Lang};
use alert::digest::RenderDigest;
use alert::mail::Mail;
use anyhow::Result;
use schema::config::Config;
use std::sync::Arc;

/// The digest renderer for the alert stage, when `[digest]` is configured.
pub fn renderer(config: &Config) -> Result<Option<RenderDigest>> {
    let Some(digest) = &config.alerts.digest else { return Ok(None) };
    let lang = if digest.lang == "en" { Lang::En } else { Lang::Vi };
    let settings = super::ServeSettings::from_config(config)?;
    let state = super::shared(&settings, store::client(&config.services.clickhouse));
    let city = config.services.city.name.clone();
    let render: RenderDigest = Arc::new(move |date| {
        let (state, city) = (state.clone(), city.clone());
        Box::pin(async move {
            let summary = super::summary::build(&state, date).await.map_err(|e| e.to_string())?;
            Ok(Mail {
                subject: format!("[citypulse] {} {date} — {city}", title(lang)),
                text: render_text(&summary, &city, lang),
                html: render(&summary, &city, lang),
                id: alert::digest::event_id(date),
            })
        })
    });
    Ok(Some(render))
}
