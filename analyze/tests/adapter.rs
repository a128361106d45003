//! The tuned encoder (models/adapter's LoRA merged into the weights by scripts/fetch-model.sh) is
//! checked against candle running the plain weights with the adapter applied unmerged
//! (analyze::backend::lora): the golden set within 1e-4 cosine, on candle and on onnx fp32 and
//! int8 (int8 against fp32 within 2e-2: scripts/check_model.py says why). And the adapter does change the embeddings.

mod common;

use analyze::backend::candle::CandleBackend;
use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use std::path::PathBuf;

fn adapter() -> PathBuf {
    common::repo().join("models/adapter/e5-small-city-lora.safetensors")
}

fn tuned_dir() -> PathBuf {
    common::repo().join("models/multilingual-e5-small-tuned")
}

/// The tuned folder is built whenever the adapter is committed (scripts/build-tuned-model.sh).
fn tuned_available() -> bool {
    if !common::model_available() {
        return false;
    }
    let ok = adapter().exists() && tuned_dir().join("source.json").exists();
    assert!(
        ok || std::env::var_os("CITYPULSE_REQUIRE_MODEL").is_none(),
        "tuned model missing: run scripts/fetch-model.sh"
    );
    ok
}

fn embed(backend: Box<dyn analyze::backend::Backend>, posts: &[String]) -> Vec<Vec<f32>> {
    let tokenizer = PostTokenizer::load(&common::model_dir().join("tokenizer.json"), 128).unwrap();
    let mut encoder = Encoder::new(tokenizer, vec![backend], 2048);
    let refs: Vec<&str> = posts.iter().map(String::as_str).collect();
    let out = encoder.embed(&refs, &mut |_| {}).unwrap();
    assert_eq!(out.len(), posts.len());
    out
}

fn worst(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).map(|(x, y)| common::cosine(x, y)).fold(1.0, f32::min)
}

#[test]
fn the_merged_tuned_model_equals_the_plain_one_with_the_adapter_unmerged() {
    if !tuned_available() {
        return;
    }
    // A third of the golden set keeps the test short (three candle models in a debug build);
    // it still spans Vietnamese with and without diacritics, teen-code and English.
    let posts: Vec<String> = common::golden_posts().into_iter().step_by(3).collect();
    let unmerged =
        embed(Box::new(CandleBackend::load_adapted(&common::model_dir(), Some(&adapter()), 2).unwrap()), &posts);
    let merged = embed(Box::new(CandleBackend::load(&tuned_dir(), 2).unwrap()), &posts);
    let plain = embed(Box::new(CandleBackend::load(&common::model_dir(), 2).unwrap()), &posts);
    let w = worst(&unmerged, &merged);
    assert!(w >= 0.9999, "candle merged vs unmerged: worst cosine {w}");
    let moved = worst(&plain, &merged);
    assert!(moved < 0.999, "the adapter changes the embeddings: worst cosine to the plain model {moved}");
    eprintln!("candle merged vs unmerged: worst cosine {w:.6}; tuned vs plain worst {moved:.4}");

    #[cfg(feature = "onnx")]
    {
        use analyze::backend::onnx::OnnxBackend;
        let dylib = std::env::var_os("ORT_DYLIB_PATH")
            .map_or_else(|| common::repo().join("models/onnxruntime/libonnxruntime.so"), PathBuf::from);
        let fp32 = embed(Box::new(OnnxBackend::load(&dylib, &tuned_dir().join("model.onnx"), 2).unwrap()), &posts);
        let int8 = embed(Box::new(OnnxBackend::load(&dylib, &tuned_dir().join("model.int8.onnx"), 2).unwrap()), &posts);
        let (w32, w8) = (worst(&unmerged, &fp32), worst(&fp32, &int8));
        assert!(w32 >= 0.9999, "onnx fp32 tuned vs candle unmerged: worst cosine {w32}");
        // 0.98 as in scripts/check_model.py's tuned check (it says why).
        assert!(w8 >= 0.98, "onnx int8 vs fp32 tuned: worst cosine {w8}");
        eprintln!("onnx fp32 vs candle unmerged worst {w32:.6}; int8 vs fp32 worst {w8:.5}");
    }
}
