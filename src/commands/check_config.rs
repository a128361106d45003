//! `citypulse check-config`: validate every file in the config folder. Needs no secrets and no
//! model files.

use crate::cli::Cli;
use anyhow::Result;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> Result<ExitCode> {
    match schema::config::Config::load(&cli.config) {
        Ok(config) => {
            println!(
                "config {} is valid: city {:?} (time zone {}), {} sources, {} places, {} topics, {} alert rules, \
                 {} saved searches",
                cli.config.display(),
                config.services.city.name,
                config.services.city.time_zone,
                config.sources.names().len(),
                config.places.place.len(),
                config.topics.topic.len(),
                config.alerts.rule.len(),
                config.searches.search.len(),
            );
            if !config.env_overrides.is_empty() {
                println!("environment overrides applied: {}", config.env_overrides.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            eprintln!("config {} is invalid: {problems}", cli.config.display());
            Ok(ExitCode::from(1))
        }
    }
}
