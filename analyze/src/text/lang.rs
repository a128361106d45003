//! Language of a post: Vietnamese, English or anything else.
//!
//! whatlang recognises Vietnamese only when it carries diacritics; posts typed without them
//! ("duong nay ket xe qua troi") or in chat abbreviations ("ko bik j lun") come out as French,
//! Tagalog or nothing. So the decision starts from word lists: the share of a post's words that
//! are Vietnamese syllables with their tone marks removed (vi_syllables.txt, generated from
//! the spelling rules) or teen-code (vi_teencode.txt), against the share that are common
//! English words (en_common.txt); whatlang decides what the lists leave open.

use regex::Regex;
use std::collections::HashSet;
use std::sync::LazyLock;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The detected language is the contract type `schema::Lang` (vi / en / other).
pub use schema::Lang;

fn word_set(list: &'static str) -> HashSet<&'static str> {
    list.lines().filter(|line| !line.starts_with('#')).flat_map(str::split_whitespace).collect()
}

static VI_SYLLABLES: LazyLock<HashSet<&str>> = LazyLock::new(|| word_set(include_str!("vi_syllables.txt")));
static VI_TEENCODE: LazyLock<HashSet<&str>> = LazyLock::new(|| word_set(include_str!("vi_teencode.txt")));
static EN_COMMON: LazyLock<HashSet<&str>> = LazyLock::new(|| word_set(include_str!("en_common.txt")));

/// Parts of a post that are no language: links, e-mail addresses, @handles.
static NOT_WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:https?://|www\.)\S+|\S+@\S+|@[\w.]+").expect("valid constant regex"));
/// Words: letters with their combining marks; the apostrophe keeps "don't" one English word.
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{M}]+(?:['’][\p{L}]+)*").expect("valid constant regex"));

/// Detects vi/en/other.
///
/// Defaults, for text with little to go on:
/// - no letters at all (empty, only emoji, numbers, links or handles) → `Other`: undetermined;
/// - mostly non-Latin letters (CJK, Hangul, Thai, Cyrillic…) → `Other`;
/// - a word that is both a Vietnamese syllable and English ("ok", "hi", "the") counts for both,
///   and when such words are all there is, the answer is `Vi`, the city's main language;
/// - capitalised words on no list are names ("Landmark", "Shopee") and are not counted; text
///   of nothing but such names → `En` if whatlang says English, else `Other`.
///
/// Short texts are decided by the word lists first, since whatlang is unreliable below ~20
/// characters.
pub fn detect_language(text: &str) -> Lang {
    let text = super::normalize(text);
    let text = NOT_WORDS.replace_all(&text, " ");
    let letters = text.chars().filter(|c| c.is_alphabetic());
    let latin = letters.clone().filter(|&c| is_latin(c)).count();
    let other = letters.count() - latin;
    if latin == 0 || other > latin {
        return Lang::Other;
    }
    let stats = WordStats::of(&text);
    if stats.words == 0 {
        // Only names (or nothing): let whatlang guess, with no word-list evidence.
        return match whatlang::detect(&fold(&text)).map(|info| info.lang()) {
            Some(whatlang::Lang::Eng) => Lang::En,
            _ => Lang::Other,
        };
    }
    let share = |n: usize| n as f64 / stats.words as f64;
    let (vi, en, en_only) = (share(stats.vi), share(stats.en), share(stats.en_only));
    // Words on both lists ("the", "ok") are en − en_only; the rest of vi is Vietnamese only.
    let vi_only = share(stats.vi - (stats.en - stats.en_only));
    // Letters only Vietnamese uses (ư, ơ, đ, ạ, ế…) on a good part of the words settle it;
    // so do words that are nearly all Vietnamese syllables with no English-only word among them.
    if share(stats.vi_marked) >= 0.3 || (vi >= 0.8 && en_only < 0.2) {
        return Lang::Vi;
    }
    let by_lists = || {
        if vi >= 0.5 && vi_only >= en_only {
            Lang::Vi
        } else if en >= 0.5 && en_only >= vi_only {
            Lang::En
        } else {
            Lang::Other
        }
    };
    // whatlang reads the text without diacritics: the lists above have used them already, and
    // a Vietnamese name ("Huỳnh Hoa") in an English sentence would otherwise make it say Vie.
    match whatlang::detect(&fold(&text)).map(|info| info.lang()) {
        Some(whatlang::Lang::Eng) => Lang::En,
        // Its Vie on unaccented text is a guess (it says so for "thanks"); the lists decide.
        Some(whatlang::Lang::Vie) | None => by_lists(),
        // Unaccented Vietnamese with a few names or loan words comes out as French, Tagalog…
        Some(_) if vi >= 0.7 && en_only < 0.2 => Lang::Vi,
        Some(_) if en >= 0.5 && en_only >= vi_only => Lang::En,
        Some(_) => Lang::Other,
    }
}

/// Counts of a text's Latin words by the lists they appear in. Capitalised words on no list
/// are names and are not counted at all.
#[derive(Debug, Default)]
struct WordStats {
    words: usize,
    /// Vietnamese syllable (tones removed), teen-code, or a word with a Vietnamese-only letter.
    vi: usize,
    /// Words with a letter only Vietnamese uses.
    vi_marked: usize,
    /// Common English words (whether or not also Vietnamese).
    en: usize,
    /// Common English words that are not Vietnamese syllables: "is", "and", "of".
    en_only: usize,
}

impl WordStats {
    fn of(text: &str) -> WordStats {
        let mut stats = WordStats::default();
        for m in WORD.find_iter(text) {
            let word = m.as_str();
            if !word.chars().all(|c| is_latin(c) || is_combining_mark(c) || c == '\'' || c == '’') {
                continue;
            }
            let lower = word.to_lowercase().replace('’', "'");
            let capitalized = word.chars().next().is_some_and(char::is_uppercase);
            let folded = fold(&lower);
            let marked = lower.chars().any(is_vietnamese_only);
            let hashtag = text[..m.start()].ends_with('#');
            let vi = marked
                || VI_SYLLABLES.contains(folded.as_str())
                || VI_TEENCODE.contains(folded.as_str())
                || (hashtag && is_syllable_compound(&folded));
            let en = !marked && EN_COMMON.contains(lower.as_str());
            if capitalized && !vi && !en {
                // A name on no list ("Landmark", "Vincom", "Shopee") says nothing about the
                // language around it.
                continue;
            }
            stats.words += 1;
            stats.vi += usize::from(vi);
            stats.vi_marked += usize::from(marked);
            stats.en += usize::from(en);
            stats.en_only += usize::from(en && !vi);
        }
        stats
    }
}

/// Whether a hashtag body is Vietnamese syllables written together: "ketxe" = "ket" + "xe".
/// Only for hashtags: ordinary Spanish or English words split into syllables too often
/// ("casa", "banana").
fn is_syllable_compound(word: &str) -> bool {
    // splits[k]: word[..k] is a sequence of syllables. Syllables are ASCII once folded.
    let n = word.len();
    if !word.is_ascii() || n < 4 {
        return false;
    }
    let mut splits = vec![false; n + 1];
    splits[0] = true;
    for end in 1..=n {
        splits[end] =
            (end.saturating_sub(7)..end).any(|start| splits[start] && VI_SYLLABLES.contains(&word[start..end]));
    }
    splits[n]
}

/// Removes diacritics: "Đường" → "Duong".
fn fold(text: &str) -> String {
    text.nfd()
        .filter(|&c| !is_combining_mark(c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}') && c != '\u{00D7}' && c != '\u{00F7}'
}

/// Letters that (among languages written in Latin script that show up here) only Vietnamese
/// uses: ă, đ, ơ, ư, ĩ, ũ and the dotted/hooked vowels of U+1EA0–U+1EF9. Shared letters like
/// é, à, ô, ã are French or Portuguese too and say nothing.
fn is_vietnamese_only(c: char) -> bool {
    matches!(c, 'ă' | 'đ' | 'ơ' | 'ư' | 'ĩ' | 'ũ' | '\u{1EA0}'..='\u{1EF9}')
}
