//! Criterion micro-benchmarks of the per-post steps around the encoder: decoding a `posts.raw`
//! message, normalising and redacting its text, tokenising it, and the heads on an embedding.
//! `cargo bench -p analyze --bench micro` (make bench runs it). Posts: the shipped demo sample, so
//! the text is the city's real mix (Vietnamese with and without diacritics, some English). The
//! tokenizer and heads need `scripts/fetch-model.sh`; without them those groups are skipped, said.

use analyze::heads::mlp::MlpHead;
use analyze::text::{prepare_for_model, redact};
use analyze::tokenize::PostTokenizer;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use schema::{decode, Limits, Post};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo sample's messages as they arrive from Kafka (one JSON object each).
fn messages() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(repo().join("config/demo/posts.jsonl")).expect("config/demo/posts.jsonl");
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

fn texts(messages: &[Vec<u8>]) -> Vec<String> {
    let limits = Limits::default();
    messages.iter().filter_map(|m| decode::<Post>(m, &limits).ok()).map(|p| p.text).collect()
}

fn per_post(c: &mut Criterion, name: &str, n: usize, mut f: impl FnMut()) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("demo sample", |b| b.iter(&mut f));
    group.finish();
}

fn text_steps(c: &mut Criterion) {
    let messages = messages();
    let texts = texts(&messages);
    assert!(!texts.is_empty(), "the demo sample decoded to no posts");
    let limits = Limits::default();
    per_post(c, "decode posts.raw", messages.len(), || {
        for m in &messages {
            std::hint::black_box(decode::<Post>(m, &limits).ok());
        }
    });
    per_post(c, "normalise for the model", texts.len(), || {
        for t in &texts {
            std::hint::black_box(prepare_for_model(t));
        }
    });
    per_post(c, "redact", texts.len(), || {
        for t in &texts {
            std::hint::black_box(redact(t));
        }
    });
}

fn model_steps(c: &mut Criterion) {
    let models = repo().join("models");
    let tokenizer = match PostTokenizer::load(&models.join("multilingual-e5-small/tokenizer.json"), 512) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokenisation and heads skipped: {e}");
            return;
        }
    };
    let texts = texts(&messages());
    per_post(c, "tokenise", texts.len(), || {
        for t in &texts {
            std::hint::black_box(tokenizer.encode(t).ok());
        }
    });
    for name in ["sentiment", "topic"] {
        let head = match MlpHead::load(&models.join(format!("heads/{name}/head.json"))) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{name} head skipped: {e}");
                continue;
            }
        };
        // A unit-length embedding of the encoder's width: the heads' cost does not depend on values.
        let width = head.center.len().max(384);
        let embedding: Vec<f32> = (0..width).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let mut group = c.benchmark_group(format!("{name} head"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("one embedding", |b| {
            b.iter_batched(|| embedding.clone(), |e| head.probabilities(&e), BatchSize::SmallInput)
        });
        group.finish();
    }
}

criterion_group!(benches, text_steps, model_steps);
criterion_main!(benches);
