//! `citypulse eval`: the classifier measured on a labelled TSV.

use super::model::{options, Progress};
use crate::cli::{Cli, EvalArgs};
use analyze::labelled::read_tsv;
use analyze::metrics::{render, report, Report};
use analyze::{Analysis, Classifier};
use anyhow::{Context, Result};
use schema::SentimentLabel;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(cli: &Cli, args: &EvalArgs) -> Result<ExitCode> {
    let config = super::load_config(cli)?;
    super::init_logging(cli, &config);
    let data = read_tsv(&args.data)?;
    anyhow::ensure!(
        data.has_sentiment || data.has_topic,
        "{} has neither a sentiment nor a topic column",
        args.data.display()
    );
    let topic_ids: Vec<String> = config.topics.ids().map(|t| t.to_string()).collect();
    if data.has_topic {
        for (i, row) in data.rows.iter().enumerate() {
            let t = row.topic.as_deref().unwrap_or("");
            anyhow::ensure!(
                topic_ids.iter().any(|id| id == t) || t == "other",
                "{}:{}: topic {t:?} is not in topics.toml",
                args.data.display(),
                i + 2
            );
        }
    }
    let opts = options(&config, &args.model)?;
    let mut runs = vec![measure(&opts, &config, &data, &topic_ids, &args.data)?];
    if args.compare_plain {
        anyhow::ensure!(
            opts.adapter.is_some(),
            "--compare-plain needs the tuned encoder (an adapter, not --adapter none)"
        );
        let plain = options(&config, &crate::cli::ModelArgs { adapter: Some("none".into()), ..args.model.clone() })?;
        runs.insert(0, measure(&plain, &config, &data, &topic_ids, &args.data)?);
    }
    let names = if let Some(dir) = &args.compare_heads {
        let after = options(&config, &crate::cli::ModelArgs { heads: Some(dir.clone()), ..args.model.clone() })?;
        warn_without_topic_head(dir);
        runs.push(measure(&after, &config, &data, &topic_ids, &args.data)?);
        ["before", "after"]
    } else {
        ["plain", "tuned"]
    };
    if args.json {
        let all: Vec<&serde_json::Value> = runs.iter().map(|r| &r.json).collect();
        println!(
            "{}",
            if all.len() == 1 { all[0].clone() } else { serde_json::json!({ names[0]: all[0], names[1]: all[1] }) }
        );
    } else {
        for r in &runs {
            print!("{}", r.text);
        }
        if runs.len() == 2 {
            let headers = if args.compare_heads.is_some() {
                [if args.model.heads.is_some() { "--heads" } else { "configured heads" }, "--compare-heads"]
            } else {
                ["plain encoder", "tuned encoder"]
            };
            print!("{}", side_by_side(headers, &runs[0].summary, &runs[1].summary));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Heads without a topic head classify topics by the prototypes alone: say so, since the topic
/// figures then compare two different things.
fn warn_without_topic_head(dir: &std::path::Path) {
    if !dir.join(analyze::classifier::TOPIC_HEAD).is_file() {
        eprintln!(
            "eval: {} has no {}: its topics come from the prototypes alone (copy the current topic head beside a new sentiment head to compare sentiment only)",
            dir.display(),
            analyze::classifier::TOPIC_HEAD
        );
    }
}

/// One encoder's scores: the full text, the JSON, and the headline figures for the comparison.
struct Measured {
    text: String,
    json: serde_json::Value,
    /// (measure, value, rows it is a proportion of: for a 95% interval).
    summary: Vec<(String, f64, Option<usize>)>,
}

fn measure(
    opts: &analyze::ModelOptions,
    config: &schema::config::Config,
    data: &analyze::labelled::LabelledSet,
    topic_ids: &[String],
    path: &std::path::Path,
) -> Result<Measured> {
    let mut classifier = Classifier::load(opts, &config.topics).context("loading the classifier")?;
    let texts: Vec<&str> = data.rows.iter().map(|r| r.text.as_str()).collect();
    let mut progress = Progress::new("eval", texts.len());
    let start = Instant::now();
    let results = classifier.classify(&texts, &mut |done| progress.update(done))?;
    let posts_per_second = texts.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let encoder = &classifier.model().id;

    let mut json = serde_json::json!({ "rows": data.rows.len(), "posts_per_second": posts_per_second, "backend": classifier.backend_name(), "workers": classifier.workers(), "model": classifier.model() });
    let mut text = format!(
        "{}: {} rows, {:.1} posts/s ({}, {} worker{}; encoder {encoder})\n",
        path.display(),
        data.rows.len(),
        posts_per_second,
        classifier.backend_name(),
        classifier.workers(),
        if classifier.workers() == 1 { "" } else { "s" }
    );
    let mut summary = vec![("posts/s".to_owned(), posts_per_second, None)];
    if data.has_sentiment {
        let (r, polarity) = sentiment_scores(&data.rows, &results);
        text += &render("sentiment", &r);
        text += &format!(
            "  polarity_accuracy {:.4} (rows gold negative or positive; the more probable of the two)\n",
            polarity
        );
        json["sentiment"] = serde_json::json!({ "accuracy": r.accuracy, "macro_f1": r.macro_f1, "polarity_accuracy": polarity, "per_class": r.per_class, "confusion": r.confusion, "classes": r.classes });
        let polar_rows = r.per_class.iter().filter(|(c, _)| c.as_str() != "neutral").map(|(_, s)| s.support).sum();
        summary.push(("sentiment accuracy".into(), r.accuracy, Some(r.rows)));
        summary.push(("sentiment macro-F1".into(), r.macro_f1, None));
        summary.push(("neutral F1".into(), r.per_class.get("neutral").map_or(0.0, |c| c.f1), None));
        summary.push(("polarity accuracy".into(), polarity, Some(polar_rows)));
    }
    if data.has_topic {
        let (best, thresholded, other_rate) = topic_scores(&data.rows, &results, topic_ids);
        text += &render("topic (best configured topic, thresholds ignored)", &best);
        text += &format!("  thresholded top-1 accuracy {:.4}; other_rate {:.4}\n", thresholded.accuracy, other_rate);
        json["topic"] = serde_json::json!({ "accuracy": best.accuracy, "macro_f1": best.macro_f1, "other_rate": other_rate, "thresholded_accuracy": thresholded.accuracy, "per_class": best.per_class, "confusion": best.confusion, "classes": best.classes });
        summary.push(("topic accuracy".into(), best.accuracy, Some(best.rows)));
    }
    Ok(Measured { text, json, summary })
}

/// Two runs' headline figures in one table (plain and tuned encoder, or heads before and after), accuracies with their 95%
/// (Wilson) intervals: on a few dozen posts one post moves a figure by points.
fn side_by_side(
    headers: [&str; 2],
    plain: &[(String, f64, Option<usize>)],
    tuned: &[(String, f64, Option<usize>)],
) -> String {
    let cell = |v: f64, n: Option<usize>| match n {
        Some(n) if n > 0 => {
            let (lo, hi) = wilson(v, n);
            format!("{v:.4} [{lo:.3}, {hi:.3}]")
        }
        _ if v > 1.0 => format!("{v:.1}"),
        _ => format!("{v:.4}"),
    };
    let mut out = format!("\n{:<20} {:<24} {:<24}\n", "measure", headers[0], headers[1]);
    for ((name, p, n), (_, t, _)) in plain.iter().zip(tuned) {
        out += &format!("{name:<20} {:<24} {:<24}\n", cell(*p, *n), cell(*t, *n));
    }
    out
}

/// The 95% Wilson score interval of a proportion `p` of `n`.
fn wilson(p: f64, n: usize) -> (f64, f64) {
    let (n, z) = (n as f64, 1.96f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (centre - half, centre + half)
}

fn sentiment_scores(rows: &[analyze::labelled::LabelledRow], results: &[Analysis]) -> (Report, f64) {
    let classes: Vec<String> = SentimentLabel::ALL.iter().map(|l| l.as_str().to_owned()).collect();
    let pairs: Vec<(String, String)> = rows
        .iter()
        .zip(results)
        .filter_map(|(row, r)| row.sentiment.map(|g| (g.as_str().to_owned(), r.sentiment.label.as_str().to_owned())))
        .collect();
    let polar: Vec<bool> = rows
        .iter()
        .zip(results)
        .filter_map(|(row, r)| {
            let p = &r.sentiment.probabilities;
            let predicted = if p.positive > p.negative { SentimentLabel::Positive } else { SentimentLabel::Negative };
            row.sentiment.filter(|g| *g != SentimentLabel::Neutral).map(|g| g == predicted)
        })
        .collect();
    let polarity = polar.iter().filter(|&&ok| ok).count() as f64 / polar.len().max(1) as f64;
    (report(&pairs, &classes), polarity)
}

fn topic_scores(
    rows: &[analyze::labelled::LabelledRow],
    results: &[Analysis],
    ids: &[String],
) -> (Report, Report, f64) {
    let gold: Vec<(&str, &Analysis)> =
        rows.iter().zip(results).filter_map(|(row, r)| row.topic.as_deref().map(|t| (t, r))).collect();
    let best: Vec<(String, String)> = gold.iter().map(|(g, r)| (g.to_string(), r.best_topic.to_string())).collect();
    let top1: Vec<(String, String)> = gold.iter().map(|(g, r)| (g.to_string(), r.topics[0].id.to_string())).collect();
    let other = gold.iter().filter(|(_, r)| r.topics[0].id.as_str() == "other").count();
    (report(&best, ids), report(&top1, ids), other as f64 / gold.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::wilson;

    #[test]
    fn wilson_intervals_match_published_values() {
        // 33 of 36 (0.9167): 95% Wilson interval 0.782–0.971.
        let (lo, hi) = wilson(33.0 / 36.0, 36);
        assert!((lo - 0.782).abs() < 0.001 && (hi - 0.971).abs() < 0.001, "{lo} {hi}");
        let (lo, hi) = wilson(1.0, 10);
        assert!((lo - 0.722).abs() < 0.001 && (hi - 1.0).abs() < 1e-9, "{lo} {hi}");
    }
}
