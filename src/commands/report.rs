//! `citypulse report --date D [--out FILE] [--lang vi|en] [--format html|pdf]`: the day's picture
//! (the API's `summary`) as one self-contained HTML file, or printed to PDF by headless chromium.

use crate::cli::{Cli, ReportArgs, ReportFormat, ReportLang};
use crate::serve::report::{render, Lang};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &ReportArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let tz = config.tz();
    let date = match &args.date {
        Some(d) => {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").with_context(|| format!("--date {d:?}: use YYYY-MM-DD"))?
        }
        None => chrono::Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1),
    };
    let settings = crate::serve::ServeSettings::from_config(&config)?;
    let state = crate::serve::shared(&settings, store::client(&config.services.clickhouse));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summary = runtime.block_on(crate::serve::summary::build(&state, date)).context("reading the day's picture")?;
    let lang = if args.lang == ReportLang::En { Lang::En } else { Lang::Vi };
    let html = render(&summary, &config.services.city.name, lang);
    let ext = if args.format == ReportFormat::Pdf { "pdf" } else { "html" };
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("citypulse-report-{date}.{ext}")));
    match args.format {
        ReportFormat::Html => std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?,
        ReportFormat::Pdf => print_pdf(&html, &out)?,
    }
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints the HTML with headless chromium (`CITYPULSE_CHROMIUM`, else `chromium` on the PATH).
fn print_pdf(html: &str, out: &Path) -> Result<()> {
    let chromium = std::env::var("CITYPULSE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dir = tempfile_dir()?;
    let page = dir.join("report.html");
    std::fs::write(&page, html)?;
    let out_abs = std::path::absolute(out)?;
    let result = std::process::Command::new(&chromium)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-pdf-header-footer"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", out_abs.display()))
        .arg(format!("file://{}", page.display()))
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--format pdf prints through headless chromium, which is not installed ({chromium} not found): \
             apt-get install chromium, set CITYPULSE_CHROMIUM, or use --format html"
        ),
        Err(e) => bail!("could not run {chromium}: {e}"),
        Ok(o) if !o.status.success() || !out_abs.exists() => {
            bail!(
                "{chromium} did not print the report: {}",
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            )
        }
        Ok(_) => Ok(()),
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("citypulse-report-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
