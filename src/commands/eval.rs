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
    let mut classifier = Classifier::load(&opts, &config.topics).context("loading the classifier")?;
    let texts: Vec<&str> = data.rows.iter().map(|r| r.text.as_str()).collect();
    let mut progress = Progress::new("eval", texts.len());
    let start = Instant::now();
    let results = classifier.classify(&texts, &mut |done| progress.update(done))?;
    let posts_per_second = texts.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);

    let mut json = serde_json::json!({ "rows": data.rows.len(), "posts_per_second": posts_per_second, "backend": classifier.backend_name(), "workers": classifier.workers(), "model": classifier.model() });
    let mut text = format!(
        "{}: {} rows, {:.1} posts/s ({}, {} worker{})\n",
        args.data.display(),
        data.rows.len(),
        posts_per_second,
        classifier.backend_name(),
        classifier.workers(),
        if classifier.workers() == 1 { "" } else { "s" }
    );
    if data.has_sentiment {
        let (r, polarity) = sentiment_scores(&data.rows, &results);
        text += &render("sentiment", &r);
        text += &format!(
            "  polarity_accuracy {:.4} (rows gold negative or positive; the more probable of the two)\n",
            polarity
        );
        json["sentiment"] = serde_json::json!({ "accuracy": r.accuracy, "macro_f1": r.macro_f1, "polarity_accuracy": polarity, "per_class": r.per_class, "confusion": r.confusion, "classes": r.classes });
    }
    if data.has_topic {
        let (best, thresholded, other_rate) = topic_scores(&data.rows, &results, &topic_ids);
        text += &render("topic (best configured topic, thresholds ignored)", &best);
        text += &format!("  thresholded top-1 accuracy {:.4}; other_rate {:.4}\n", thresholded.accuracy, other_rate);
        json["topic"] = serde_json::json!({ "accuracy": best.accuracy, "macro_f1": best.macro_f1, "other_rate": other_rate, "thresholded_accuracy": thresholded.accuracy, "per_class": best.per_class, "confusion": best.confusion, "classes": best.classes });
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
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
