//! `citypulse alert --once`, `alert backtest`, `alert test-notify`, `alert digest` and
//! `alert history` (the service itself runs through `stages`). The logic lives in the `alert` crate.

use super::time_args::parse_instant;
use crate::cli::{AlertArgs, AlertView, Cli, ListFormat};
use alert::history::{AlertSummary, History};
use alert::AlertEvent;
use anyhow::{Context, Result};
use chrono_tz::Tz;
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &AlertArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let tz = config.tz();
    let now = chrono::Utc::now();
    let settings = alert::AlertSettings::from_config(&config)?;
    match &args.view {
        Some(AlertView::Backtest { since, until, step, rule, format }) => {
            let since = parse_instant(since, tz, now)?;
            let until = until.as_deref().map(|u| parse_instant(u, tz, now)).transpose()?.unwrap_or(now);
            let step = parse_step(step)?;
            let mut settings = settings;
            if let Some(name) = rule {
                settings.rules.retain(|r| &r.name == name);
                anyhow::ensure!(!settings.rules.is_empty(), "--rule {name:?}: no such rule in alerts.toml");
            }
            let client = store::client(&config.services.clickhouse);
            let total = ((until - since).num_seconds() / step.num_seconds().max(1)).max(0) + 1;
            let mut done = 0;
            let mut progress = |_at| {
                done += 1;
                if done % 100 == 0 {
                    eprintln!("backtest: {done} of {total} evaluations");
                }
            };
            let events =
                runtime.block_on(alert::backtest::backtest(&settings, client, since, until, step, &mut progress))?;
            print_events(&events, *format);
            if *format == ListFormat::Table {
                println!(
                    "\npages per rule from {} to {} (every {}):",
                    since.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                    until.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                    humantime(step)
                );
                for (rule, pages, resolved) in alert::backtest::pages_per_rule(&settings, &events) {
                    println!("  {rule:<28} {pages:>4} pages, {resolved:>4} resolved");
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(AlertView::TestNotify { name }) => {
            let deps =
                alert::AlertDeps::from_config(&config, stagekit::Health::default().stage(stagekit::StageName::Alert))?;
            anyhow::ensure!(
                deps.notifiers.names().any(|n| n == name),
                "no notifier {name:?} in alerts.toml (notifiers: {})",
                deps.notifiers.names().collect::<Vec<_>>().join(", ")
            );
            let event = alert::event::test_event(tz, now);
            let attempts = runtime.block_on(deps.notifiers.deliver(&event, name, 0, &Default::default()));
            for a in &attempts {
                // An HTTP status for webhooks, an SMTP reply code for e-mail.
                let status = a.http_status.map_or(String::new(), |s| format!(" (status {s})"));
                println!(
                    "attempt {}: {}{status}{}",
                    a.attempt,
                    a.outcome.as_str(),
                    a.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
            let delivered = delivered(&attempts);
            println!("test notification through {name}: {}", if delivered { "delivered" } else { "NOT delivered" });
            return Ok(if delivered { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        Some(AlertView::Digest { date }) => return send_digest(&config, &settings, date.as_deref(), &runtime),
        _ => {}
    }
    if let Some(AlertView::History { since, state, format }) = &args.view {
        let since = parse_instant(since, tz, now)?;
        let history = History::new(store::client(&config.services.clickhouse), settings.db.clone());
        let mut alerts = runtime.block_on(history.list(since.timestamp()))?;
        if let Some(state) = state {
            alerts.retain(|a| a.row.state == state.as_str());
        }
        print_history(&alerts, *format, tz);
        return Ok(ExitCode::SUCCESS);
    }
    let at = args.at.as_deref().map(|a| parse_instant(a, tz, now)).transpose()?.unwrap_or(now);
    let deps = alert::AlertDeps::from_config(&config, stagekit::Health::default().stage(stagekit::StageName::Alert))?;
    let events = runtime.block_on(alert::evaluate_once(&settings, deps, at, args.dry_run))?;
    print_events(&events, args.format);
    Ok(ExitCode::SUCCESS)
}

/// `citypulse alert digest [--date D]`: the digest of D (default yesterday) sent now through every
/// `[digest].notify` notifier, whether or not it went out before; exit 1 unless every one took it.
fn send_digest(
    config: &schema::config::Config,
    settings: &alert::AlertSettings,
    date: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<ExitCode> {
    let plan = settings.digest.as_ref().context("no [digest] in alerts.toml: nothing says where the digest goes")?;
    let date = match date {
        Some(d) => {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").with_context(|| format!("--date {d:?}: use YYYY-MM-DD"))?
        }
        None => chrono::Utc::now().with_timezone(&plan.tz).date_naive() - chrono::Duration::days(1),
    };
    let deps = alert::AlertDeps::from_config(config, stagekit::Health::default().stage(stagekit::StageName::Alert))?;
    let render = crate::serve::digest::renderer(config)?.context("the digest renderer")?;
    let history = History::new(deps.client.clone(), settings.db.clone());
    let sent = runtime.block_on(async {
        store::migrate(&deps.client, &settings.db, settings.zone).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        alert::digest::send(plan, date, true, &render, &deps.notifiers, &history, &stop)
            .await
            .map_err(anyhow::Error::from)
    })?;
    let mut all = true;
    for (notifier, attempts) in &sent {
        let ok = delivered(attempts);
        all &= ok;
        let why = attempts.last().and_then(|a| a.error.as_deref()).map(|e| format!(" ({e})")).unwrap_or_default();
        println!("digest of {date} through {notifier}: {}{why}", if ok { "delivered" } else { "NOT delivered" });
    }
    Ok(if all { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Whether a delivery's last attempt got through.
fn delivered(attempts: &[alert::deliver::Attempt]) -> bool {
    attempts.last().is_some_and(|a| a.outcome == alert::deliver::Outcome::Delivered)
}

/// `5m`, `15m`, `1h`, `1d`: at least a minute (evaluations are floored to the minute).
fn parse_step(s: &str) -> Result<chrono::Duration> {
    let (n, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| anyhow::anyhow!("--step {s:?}: use 5m, 15m, 1h"))?;
    let step = match unit {
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => anyhow::bail!("--step {s:?}: use 5m, 15m, 1h"),
    };
    anyhow::ensure!(step >= chrono::Duration::minutes(1), "--step {s:?}: at least 1m");
    Ok(step)
}

fn humantime(d: chrono::Duration) -> String {
    match d.num_minutes() {
        m if m % 1440 == 0 => format!("{}d", m / 1440),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

fn print_events(events: &[AlertEvent], format: ListFormat) {
    if format == ListFormat::Json {
        for e in events {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
        return;
    }
    if events.is_empty() {
        println!("no alert events");
        return;
    }
    println!(
        "{:<10} {:<8} {:<26} {:<18} {:<14} {:<16} {:>9} {:>9} {:>6}",
        "event", "severity", "rule", "topic", "place", "window end", "observed", "median", "posts"
    );
    for e in events {
        let median = e.baseline.as_ref().and_then(|b| b.median).map_or("-".to_owned(), |m| format!("{m:.3}"));
        println!(
            "{:<10} {:<8} {:<26} {:<18} {:<14} {:<16} {:>9.3} {:>9} {:>6}",
            e.event,
            e.severity,
            e.rule,
            e.topic,
            e.place,
            e.window.end.format("%Y-%m-%d %H:%M"),
            e.observed,
            median,
            e.posts
        );
        for p in &e.evidence {
            let text: String = p.text_redacted.chars().take(90).collect();
            println!("    {:<8} {:+.2}  {}", p.sentiment, p.score, text.replace('\n', " "));
        }
    }
}

fn print_history(alerts: &[AlertSummary], format: ListFormat, tz: Tz) {
    if format == ListFormat::Json {
        for a in alerts {
            println!("{}", serde_json::to_string(a).unwrap_or_default());
        }
        return;
    }
    if alerts.is_empty() {
        println!("no alerts in this period");
        return;
    }
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap_or_default()
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    println!(
        "{:<16} {:<16} {:<9} {:<8} {:<26} {:<18} {:<14} {:>8}  deliveries",
        "fired", "resolved", "state", "severity", "rule", "topic", "place", "peak"
    );
    for a in alerts {
        let r = &a.row;
        let resolved = if r.resolved_at > 0 { at(r.resolved_at) } else { "-".into() };
        let deliveries: Vec<String> = a.deliveries.iter().map(|(o, n)| format!("{n} {o}")).collect();
        println!(
            "{:<16} {:<16} {:<9} {:<8} {:<26} {:<18} {:<14} {:>8.3}  {}",
            at(r.fired_at),
            resolved,
            r.state,
            r.severity,
            r.rule,
            r.topic,
            r.place,
            r.peak,
            deliveries.join(", ")
        );
    }
}
