//! Term matching: the one definition of "this post mentions that term", shared by alert rules
//! (`watch_terms`), the search API and saved searches.
//!
//! # Rules
//!
//! 1. **Normalisation.** Term and text are put in NFC, lower-cased (and NFC again, since lower-casing
//!    may decompose), and stripped of invisible formatting characters (soft hyphen, zero-width
//!    joiner and non-joiner, word joiner, BOM); the typographic apostrophe ’ becomes '. Vietnamese
//!    posts arrive both composed and decomposed ("ậ" as one code point or as "a" + two combining
//!    marks); after this step the two are the same.
//! 2. **Whole words.** Both are split into words at Unicode word boundaries (UAX #29). A term
//!    matches only whole words: "ngập" does not match "ngậpngừng", "flood" does not match "flooding".
//!    On top of UAX #29, a word is also split where punctuation touches a letter ("ngập.Xe", typed
//!    without the space after the full stop, is "ngập" then "xe"; "TP.HCM" is "tp" then "hcm") and at
//!    underscores ("#ket_xe" is "ket" then "xe"); digits keep their separators ("3.5", "10:30").
//! 3. **Phrases.** A term of several words matches when its words appear consecutively in the text.
//!    Whitespace, hyphens, slashes, quotes, brackets, emoji and other symbols between two words do
//!    not matter ("kẹt xe" matches "kẹt   xe" and "Kẹt-xe"), but clause and sentence punctuation
//!    (`. , ; : ! ? …` and their full-width forms) and line breaks end a phrase: "kẹt xe" does not
//!    match "đường bị kẹt. Xe cứu thương…". A term that contains such punctuation itself
//!    ("tp.hcm") matches the same words across any such punctuation ("TP. HCM").
//! 4. **Diacritics.** fold(s) removes the combining marks of Latin letters (Vietnamese tone and vowel
//!    marks; also é, ñ, ü) and maps đ → d. A word "has diacritics" when fold changes it; marks on
//!    other scripts, digits and emoji (variation selectors, keycaps) never count.
//!    - A term written **without** diacritics ("ngap") matches the folded text: "ngập", "NGẬP",
//!      "ngáp" and "ngap" alike. Whoever writes it that way asks for every spelling.
//!    - A term written **with** diacritics ("ngập") matches exactly those diacritics ("NGẬP", not
//!      "ngáp" — *ngáp* is "to yawn", *ngập* "flooded"), and also the folded term in a post written
//!      entirely without diacritics ("duong ngap qua"). A post with any diacritic is taken to be
//!      accented throughout, so its "ngap" is not read as "ngập".
//!
//! # Why
//!
//! Many Vietnamese posts are typed without diacritics (no Telex/VNI input method on hand, speed,
//! habit) or in teen-code that drops them, so a term must reach the unaccented form too. But folding
//! everything would be wrong in accented text, where diacritics carry the meaning: "ngập" (flooded)
//! and "ngáp" (yawn) are different words, and alerting on yawns is noise. An
//! unaccented post is ambiguous and the term's reading is the best guess; an accented post is not.
//!
//! Known limits: old- and new-style tone placement ("hoà" / "hòa", "thuý" / "thúy") are different
//! spellings here, and words written without separators ("#ketxe") are one word.

use std::borrow::Cow;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use unicode_segmentation::UnicodeSegmentation;

/// Stands, in a word list, where a phrase may not continue (clause punctuation, a line break).
/// Never equal to a word: words are not empty.
const BREAK: &str = "";

/// Why a term cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    /// The term is empty or only whitespace.
    #[error("term #{index} is empty")]
    Empty { index: usize },
    /// The term has no letters or digits (only punctuation or emoji), so it could never match.
    #[error("term #{index} {term:?} has no letters or digits")]
    NoWords { index: usize, term: String },
}

/// Whether `term` matches `text` (see the [module documentation](self) for the rules).
///
/// For one-off use; to match many texts against the same terms, build a [`TermMatcher`] once.
/// A term without letters or digits matches nothing.
pub fn matches(term: &str, text: &str) -> bool {
    match Term::parse(term.to_owned()) {
        Some(t) => t.is_match(&Prepared::new(&normalize(text))),
        None => false,
    }
}

/// Removes the diacritics of Latin letters and maps đ/Đ to d/D: "Đường ngập" → "Duong ngap".
/// Case, marks on other scripts and everything else are kept; the result is in NFC.
pub fn fold_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_latin = false;
    for c in text.nfd() {
        if is_combining_mark(c) {
            if !after_latin {
                out.push(c);
            }
        } else if is_invisible(c) {
            // Transparent: a mark after a soft hyphen still belongs to the letter before it.
            out.push(c);
        } else {
            after_latin = is_latin_letter(c);
            out.push(match c {
                'đ' => 'd',
                'Đ' => 'D',
                c => c,
            });
        }
    }
    if is_nfc_quick(out.chars()) == IsNormalized::Yes {
        out
    } else {
        out.nfc().collect()
    }
}

/// A list of terms prepared once, matched against many texts.
#[derive(Debug, Clone)]
pub struct TermMatcher {
    terms: Vec<Term>,
}

impl TermMatcher {
    /// Prepares `terms` (words or phrases, any case, composed or decomposed). Fails on an empty or
    /// whitespace-only term and on a term without letters or digits. A term repeated verbatim is
    /// kept once; different spellings of one term are kept and reported each under its own spelling.
    pub fn new<S: AsRef<str>>(terms: &[S]) -> Result<Self, TermError> {
        let mut out: Vec<Term> = Vec::with_capacity(terms.len());
        for (index, term) in terms.iter().enumerate() {
            let term = term.as_ref();
            if term.trim().is_empty() {
                return Err(TermError::Empty { index });
            }
            if out.iter().any(|t| t.original == term) {
                continue;
            }
            match Term::parse(term.to_owned()) {
                Some(t) => out.push(t),
                None => return Err(TermError::NoWords { index, term: term.to_owned() }),
            }
        }
        Ok(Self { terms: out })
    }

    /// The terms that `text` matches, as they were configured, in configured order, each once.
    pub fn matched<'a>(&'a self, text: &str) -> Vec<&'a str> {
        if self.terms.is_empty() {
            return Vec::new();
        }
        let normalized = normalize(text);
        let text = Prepared::new(&normalized);
        self.terms.iter().filter(|t| t.is_match(&text)).map(|t| t.original.as_str()).collect()
    }

    /// Whether `text` matches at least one term.
    pub fn is_match(&self, text: &str) -> bool {
        if self.terms.is_empty() {
            return false;
        }
        let normalized = normalize(text);
        let text = Prepared::new(&normalized);
        self.terms.iter().any(|t| t.is_match(&text))
    }
}

/// What `posts` stores of a text so that ClickHouse can match terms (migration 008): its words,
/// normalised as here, each between single spaces (" kẹt xe | ở quận 1 "), with `|` where a phrase
/// may not continue. A term then matches where its own encoding is a substring, which is exactly
/// [`matches`]: words never hold a space or a `|`, so a substring starts and ends at word bounds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchIndex {
    /// The words as written (normalised); empty when the text has no words.
    pub words: String,
    /// The words folded ([`fold_diacritics`]); equal to `words` when the text has no diacritics.
    pub folded: String,
    /// Whether any word has diacritics: such a text's unaccented words are not read as accented
    /// terms. A flag of its own so that a term with diacritics reads one string column, not two.
    pub accented: bool,
}

/// The version of [`SearchIndex`]'s encoding that `posts.search_index` records (0: not indexed).
pub const SEARCH_INDEX_VERSION: u8 = 1;

/// Stands for [`BREAK`] in a [`SearchIndex`].
const INDEX_BREAK: &str = "|";

/// The [`SearchIndex`] of `text`.
pub fn search_index(text: &str) -> SearchIndex {
    let normalized = normalize(text);
    let p = Prepared::new(&normalized);
    SearchIndex { words: encode(&p.words), folded: encode(&p.folded), accented: !p.unaccented }
}

/// " w1 w2 | w3 ": every word followed by a space, the whole preceded by one; empty for none.
fn encode<S: AsRef<str>>(words: &[S]) -> String {
    if words.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(1 + words.iter().map(|w| w.as_ref().len().max(1) + 1).sum::<usize>());
    out.push(' ');
    for w in words {
        out.push_str(if w.as_ref() == BREAK { INDEX_BREAK } else { w.as_ref() });
        out.push(' ');
    }
    out
}

/// A ClickHouse condition on `posts.search_words`, `search_folded` and `search_accented` that holds
/// exactly where
/// [`matches`]`(term, text_redacted)` does; None when the term has no words. The needles are
/// quoted string literals, so any term is safe to splice.
pub fn term_sql(term: &str) -> Option<String> {
    let t = Term::parse(term.to_owned())?;
    let folded = sql_string(&encode(&t.folded));
    Some(if t.accented {
        // An accented post must carry the diacritics; a post without any is read as the folded
        // term, and its words are already folded.
        let exact = sql_string(&encode(&t.words));
        format!(
            "(position(search_words, {exact}) > 0 OR (search_accented = 0 AND position(search_words, {folded}) > 0))"
        )
    } else {
        format!("position(search_folded, {folded}) > 0")
    })
}

/// A ClickHouse string literal (backslash and quote escaped, `?` as `\x3F`).
pub fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            // clickhouse-rs reads `?` anywhere in the text as a bind placeholder.
            '?' => out.push_str("\\x3F"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// One prepared term.
#[derive(Debug, Clone)]
struct Term {
    original: String,
    /// Normalised words, [`BREAK`] between clauses.
    words: Vec<String>,
    /// `words` folded.
    folded: Vec<String>,
    /// Whether folding changed any word.
    accented: bool,
}

impl Term {
    /// None when the term has no words.
    fn parse(original: String) -> Option<Self> {
        let normalized = normalize(&original);
        let tokens = tokenize(&normalized);
        if tokens.is_empty() {
            return None;
        }
        let words: Vec<String> = tokens.iter().map(|w| (*w).to_owned()).collect();
        let folded: Vec<String> = tokens.iter().map(|w| fold_word(w).into_owned()).collect();
        let accented = words != folded;
        Some(Self { original, words, folded, accented })
    }

    fn is_match(&self, text: &Prepared<'_>) -> bool {
        if self.accented {
            contains(&text.words, &self.words) || (text.unaccented && contains(&text.words, &self.folded))
        } else {
            contains(&text.folded, &self.folded)
        }
    }
}

/// A text normalised, split into words and folded, once for all terms.
struct Prepared<'a> {
    words: Vec<&'a str>,
    folded: Vec<Cow<'a, str>>,
    /// No word has diacritics (then `folded` equals `words`).
    unaccented: bool,
}

impl<'a> Prepared<'a> {
    fn new(normalized: &'a str) -> Self {
        let words = tokenize(normalized);
        let folded: Vec<Cow<'a, str>> = words.iter().map(|w| fold_word(w)).collect();
        let unaccented = words.iter().zip(&folded).all(|(w, f)| *w == f.as_ref());
        Self { words, folded, unaccented }
    }
}

/// Whether `needle` (not empty) occurs as a run of consecutive items of `haystack`.
fn contains<H: AsRef<str>, N: AsRef<str>>(haystack: &[H], needle: &[N]) -> bool {
    !needle.is_empty()
        && haystack.windows(needle.len()).any(|w| w.iter().zip(needle).all(|(h, n)| h.as_ref() == n.as_ref()))
}

/// NFC, lower case, without invisible formatting characters, typographic apostrophes made plain,
/// NFC.
fn normalize(s: &str) -> String {
    let nfc: Cow<'_, str> =
        if is_nfc_quick(s.chars()) == IsNormalized::Yes { Cow::Borrowed(s) } else { Cow::Owned(s.nfc().collect()) };
    let mut lower = nfc.to_lowercase();
    if lower.contains(is_invisible) {
        lower.retain(|c| !is_invisible(c));
    }
    if lower.contains('\u{2019}') {
        lower = lower.replace('\u{2019}', "'");
    }
    if is_nfc_quick(lower.chars()) == IsNormalized::Yes {
        lower
    } else {
        lower.nfc().collect()
    }
}

/// The words of normalised text, in order, with [`BREAK`] where a phrase may not continue (never
/// first, last or twice in a row).
fn tokenize(normalized: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut pending_break = false;
    for (offset, segment) in normalized.split_word_bound_indices() {
        if !segment.chars().any(char::is_alphanumeric) {
            pending_break |= segment.chars().any(ends_phrase);
            continue;
        }
        // A word by UAX #29; split it further at punctuation that touches a letter and at
        // connectors (underscore).
        let mut start = 0;
        let mut prev: Option<char> = None;
        let mut chars = segment.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            let between_digits = prev.is_some_and(|p| p.is_numeric()) && next.is_some_and(char::is_numeric);
            let in_word = c.is_alphanumeric() || is_combining_mark(c) || is_apostrophe(c) || between_digits;
            if !in_word {
                push_word(&mut out, &mut pending_break, &normalized[offset + start..offset + i]);
                pending_break |= ends_phrase(c);
                start = i + c.len_utf8();
            }
            prev = Some(c);
        }
        push_word(&mut out, &mut pending_break, &normalized[offset + start..offset + segment.len()]);
    }
    out
}

/// Appends `word` to `out`, after a [`BREAK`] if one is pending; a piece without letters or digits
/// (only apostrophes or marks between separators) is part of the gap instead.
fn push_word<'a>(out: &mut Vec<&'a str>, pending_break: &mut bool, word: &'a str) {
    if !word.chars().any(char::is_alphanumeric) {
        return;
    }
    if std::mem::take(pending_break) && !out.is_empty() {
        out.push(BREAK);
    }
    out.push(word);
}

/// `word` folded, borrowed when folding changes nothing.
fn fold_word(word: &str) -> Cow<'_, str> {
    if word.is_ascii() {
        return Cow::Borrowed(word);
    }
    let folded = fold_letters(word).unwrap_or_else(|| fold_diacritics(word));
    if folded == word {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(folded)
    }
}

/// [`fold_diacritics`] of an NFC word made only of ASCII, đ/Đ and precomposed Latin letters (a
/// base letter and combining marks, as Vietnamese letters are), one character at a time without
/// building its NFD: the store folds every word of every new post, and this is 3x faster. None
/// for any other word, which takes the general path. A property test holds the two equal.
fn fold_letters(word: &str) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        if c == 'đ' || c == 'Đ' {
            out.push(if c == 'đ' { 'd' } else { 'D' });
            continue;
        }
        let mut base: Option<char> = None;
        let mut only_marks = true;
        unicode_normalization::char::decompose_canonical(c, |d| match base {
            None => base = Some(d),
            Some(_) => only_marks &= is_combining_mark(d),
        });
        match base {
            Some(b) if only_marks && is_latin_letter(b) && !is_combining_mark(b) => out.push(b),
            _ => return None,
        }
    }
    Some(out)
}

/// Clause and sentence punctuation (with their full-width and CJK forms) and line breaks: a phrase
/// does not continue across them.
const PHRASE_ENDS: &[char] = &[
    '.', ',', ';', ':', '!', '?', '…', '¡', '¿', '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
    '。', '、', '，', '；', '：', '！', '？', '．', '｡', '､',
];

fn ends_phrase(c: char) -> bool {
    PHRASE_ENDS.contains(&c)
}

/// Inside a word; normalisation has made the typographic apostrophe (U+2019) plain.
fn is_apostrophe(c: char) -> bool {
    c == '\''
}

/// Invisible formatting characters that may sit inside a word without changing it.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Letters of the Latin script (as they appear after NFD, where diacritics are separate marks).
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(
            c,
            '\u{00C0}'..='\u{02AF}'
                | '\u{1D00}'..='\u{1DBF}'
                | '\u{1E00}'..='\u{1EFF}'
                | '\u{2C60}'..='\u{2C7F}'
                | '\u{A720}'..='\u{A7FF}'
                | '\u{AB30}'..='\u{AB6F}'
                | '\u{FF21}'..='\u{FF3A}'
                | '\u{FF41}'..='\u{FF5A}'
        ) && c.is_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nfd(s: &str) -> String {
        s.nfd().collect()
    }

    #[track_caller]
    fn yes(term: &str, text: &str) {
        assert!(matches(term, text), "{term:?} should match {text:?}");
        assert!(matches(&nfd(term), &nfd(text)), "{term:?} should match {text:?} (both NFD)");
    }

    #[track_caller]
    fn no(term: &str, text: &str) {
        assert!(!matches(term, text), "{term:?} should not match {text:?}");
        assert!(!matches(&nfd(term), &nfd(text)), "{term:?} should not match {text:?} (both NFD)");
    }

    proptest! {
        #[test]
        fn the_letter_by_letter_fold_is_fold_diacritics(word in "[a-zA-ZàáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđĐÀÁẠẶẬỆỘỢỰÑñüÜçÇøßΩ日本\u{0301}\u{0323}\u{1EA0}-\u{1EFF}]{1,12}") {
            let word: String = word.nfc().collect();
            if let Some(fast) = fold_letters(&word) {
                prop_assert_eq!(fast, fold_diacritics(&word));
            }
        }
    }

    #[test]
    fn the_search_index_spells_words_between_spaces() {
        let i = search_index("Kẹt xe ở Quận 1. TP.HCM ngập!");
        assert_eq!(i.words, " kẹt xe ở quận 1 | tp | hcm ngập ");
        assert_eq!(i.folded, " ket xe o quan 1 | tp | hcm ngap ");
        assert!(i.accented);
        let plain = search_index("duong ngap qua, O'Brien");
        assert_eq!(
            (plain.words.as_str(), plain.folded.as_str()),
            (" duong ngap qua | o'brien ", " duong ngap qua | o'brien ")
        );
        assert!(!plain.accented);
        assert_eq!(search_index("🚗 ..."), SearchIndex::default());
        assert_eq!(search_index(&nfd("NGẬP")), search_index("ngập"));
    }

    #[test]
    fn term_sql_quotes_its_needles() {
        assert_eq!(term_sql("Ngap").unwrap(), "position(search_folded, ' ngap ') > 0");
        assert_eq!(
            term_sql("kẹt xe").unwrap(),
            "(position(search_words, ' kẹt xe ') > 0 OR (search_accented = 0 AND position(search_words, ' ket xe ') > 0))"
        );
        assert_eq!(term_sql("tp.hcm").unwrap(), "position(search_folded, ' tp | hcm ') > 0");
        assert_eq!(term_sql("don't").unwrap(), "position(search_folded, ' don\\'t ') > 0");
        assert_eq!(term_sql("..."), None);
    }

    #[test]
    fn the_issue_examples() {
        // With diacritics: same diacritics in any case, or an unaccented post.
        yes("ngập", "NGẬP");
        yes("ngập", "duong ngap qua");
        no("ngập", "tôi ngáp ngủ ở quận 1");
        no("ngập", "đường ngap quá"); // accented post: its "ngap" is not "ngập"
                                      // Without diacritics: both forms.
        yes("ngap", "ngập");
        yes("ngap", "ngap");
        yes("ngap", "Đường NGẬP quá");
        yes("ngap", "tôi ngáp ngủ");
    }

    #[test]
    fn decomposed_input_is_the_same_text() {
        let decomposed = nfd("ngập");
        assert_ne!(decomposed, "ngập");
        assert!(matches("ngập", &decomposed));
        assert!(matches(&decomposed, "ngập"));
        assert!(matches(&decomposed, &nfd("Đường NGẬP")));
        assert!(!matches(&decomposed, &nfd("tôi ngáp ngủ")));
        assert!(matches("ngap", &decomposed));
    }

    #[test]
    fn phrases_are_consecutive_words() {
        yes("kẹt xe", "Kẹt xe ở Quận 1");
        yes("kẹt xe", "đang kẹt   xe kinh khủng");
        yes("kẹt xe", "Kẹt-xe giờ cao điểm");
        yes("kẹt xe", "#kẹt_xe");
        yes("kẹt xe", "kẹt \"xe\" 🚗");
        yes("ket xe", "KẸT XE");
        yes("kẹt xe", "ket xe o quan 1");
        no("kẹt xe", "kẹt ở xe");
        no("kẹt xe", "xe kẹt");
        no("kẹt xe", "kẹt");
        no("kẹt xe", "xe");
        no("kẹt xe", "kẹtxe");
    }

    #[test]
    fn phrases_stop_at_clause_punctuation_and_line_breaks() {
        no("kẹt xe", "Đường bị kẹt. Xe cứu thương không qua được");
        no("kẹt xe", "kẹt, xe");
        no("kẹt xe", "kẹt\nxe");
        no("kẹt xe", "kẹt…xe");
        // A term with the punctuation itself matches it, and any other clause break.
        yes("tp.hcm", "TP.HCM ngập");
        yes("tp.hcm", "tp. hcm");
        yes("kẹt, xe", "kẹt! xe");
    }

    #[test]
    fn whole_words_only() {
        no("ngập", "ngậpngừng");
        no("ngập", "ngậpp");
        no("mưa", "mưara");
        yes("mưa", "trời mưa!");
        yes("flood", "Flood warning");
        no("flood", "flooding");
        no("flood", "flashflood");
        yes("quận 1", "kẹt xe ở Quận 1 sáng nay");
        no("quận 1", "quận 12");
        yes("covid-19", "ca COVID 19 mới");
        yes("don't", "I don't know");
        yes("don't", "I DON’T know");
        yes("don’t", "I don't know");
        no("don", "I don't know");
    }

    #[test]
    fn punctuation_touching_a_letter_splits_words() {
        yes("ngập", "Đường ngập.Xe không đi được");
        yes("xe", "Đường ngập.Xe không đi được");
        yes("hcm", "TP.HCM");
        yes("ngập", "ngập:");
        // Numbers keep their separators.
        no("3", "mưa 3.5 giờ");
        yes("3.5", "mưa 3.5 giờ");
        yes("10:30", "lúc 10:30 sáng");
    }

    #[test]
    fn d_with_stroke_folds_to_d() {
        yes("duong", "Đường");
        yes("đường", "DUONG ngap");
        no("đường", "đuong ngap"); // đ counts as a diacritic: accented post
        yes("đà nẵng", "da nang mua to");
        yes("da nang", "ĐÀ NẴNG");
    }

    #[test]
    fn digits_and_emoji_do_not_make_a_post_accented() {
        yes("ngập", "duong ngap qua 😭😭 1️⃣ ❤️ 2024");
        yes("ngập", "ngap❤️");
        // A Latin accent anywhere does.
        no("ngập", "ngap qua, café");
    }

    #[test]
    fn case_and_invisible_characters() {
        yes("NGẬP", "ngập");
        yes("Flood", "FLOOD");
        yes("ngập", "ng\u{AD}ập");
        yes("ngập", "ng\u{200D}ập");
    }

    #[test]
    fn english_and_other_latin_accents() {
        yes("cafe", "Café sữa đá");
        yes("café", "cafe sua da");
        no("café", "cafè sữa");
        yes("naive", "Naïve approach");
    }

    #[test]
    fn other_scripts_are_compared_exactly() {
        // Thai tone marks are not diacritics to fold.
        no("ไม", "ไม่");
        yes("ไม่", "ไม่");
        yes("서울", "서울 홍수");
        yes("서울", &nfd("서울 홍수"));
    }

    #[test]
    fn fold_diacritics_examples() {
        assert_eq!(fold_diacritics("Đường ngập ở Quận 1"), "Duong ngap o Quan 1");
        assert_eq!(fold_diacritics(&nfd("Ngập lụt")), "Ngap lut");
        assert_eq!(fold_diacritics("❤️ 1️⃣"), "❤️ 1️⃣");
        assert_eq!(fold_diacritics("서울"), "서울");
    }

    #[test]
    fn tokenize_marks_breaks_once_and_never_at_the_ends() {
        let n = normalize("... Kẹt xe!!! Ngập, lụt ...\n\n");
        assert_eq!(tokenize(&n), ["kẹt", "xe", BREAK, "ngập", BREAK, "lụt"]);
        assert_eq!(tokenize("#ket_xe @a.b"), ["ket", "xe", "a", BREAK, "b"]);
        assert!(tokenize(&normalize(" !!! 😭 ")).is_empty());
    }

    #[test]
    fn matcher_reports_configured_spellings_in_order_once() {
        let terms = ["kẹt xe", "NGẬP", "flood", "ngập", "ngap", "NGẬP"].map(String::from);
        let m = TermMatcher::new(&terms).unwrap();
        assert_eq!(m.matched("Ngập và ngập, kẹt xe nữa"), ["kẹt xe", "NGẬP", "ngập", "ngap"]);
        assert_eq!(m.matched("tôi ngáp"), ["ngap"]);
        assert!(m.matched("nắng đẹp").is_empty());
        assert!(m.is_match("FLOOD!"));
        assert!(!m.is_match("flooding"));
        let borrowed = TermMatcher::new(&["ngập"]).unwrap();
        assert_eq!(borrowed.matched("NGAP"), ["ngập"]);
        let none = TermMatcher::new::<String>(&[]).unwrap();
        assert!(!none.is_match("ngập") && none.matched("ngập").is_empty());
    }

    #[test]
    fn matcher_rejects_terms_that_cannot_match() {
        assert_eq!(TermMatcher::new(&["ngập", ""]).unwrap_err(), TermError::Empty { index: 1 });
        assert_eq!(TermMatcher::new(&[" \t\n"]).unwrap_err(), TermError::Empty { index: 0 });
        assert_eq!(
            TermMatcher::new(&["ngập", "!!! 😭"]).unwrap_err(),
            TermError::NoWords { index: 1, term: "!!! 😭".into() }
        );
        assert!(!matches("", "anything"));
        assert!(!matches("...", "..."));
    }

    // ---- property tests ----

    /// Vietnamese letters (every tone on every vowel, đ) and ASCII letters and digits.
    const VI_LOWER: &str =
        "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵfjwz0123456789";

    fn vi_word() -> impl Strategy<Value = String> {
        let letters: Vec<char> = VI_LOWER.chars().collect();
        (proptest::collection::vec(proptest::sample::select(letters), 1..8), any::<bool>()).prop_map(|(cs, upper)| {
            let w: String = cs.into_iter().collect();
            if upper {
                w.to_uppercase()
            } else {
                w
            }
        })
    }

    /// A word without diacritics.
    fn plain_word() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{1,8}"
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![vi_word(), plain_word()]
    }

    fn phrase() -> impl Strategy<Value = String> {
        proptest::collection::vec(word(), 1..4).prop_map(|ws| ws.join(" "))
    }

    /// Words joined by spaces, punctuation and emoji.
    fn vi_text() -> impl Strategy<Value = String> {
        const SEPS: [&str; 10] = [" ", "  ", ", ", ". ", "-", "\n", " 😭 ", "!", " (", ") "];
        proptest::collection::vec((word(), proptest::sample::select(&SEPS[..])), 0..12)
            .prop_map(|parts| parts.into_iter().map(|(w, s)| w + s).collect())
    }

    /// Mostly Vietnamese-like text, sometimes anything at all.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![3 => vi_text(), 1 => "\\PC{0,40}", 1 => any::<String>()]
    }

    /// A term and a text that often contains it or a near spelling of it (folded, upper-cased, one
    /// letter changed), so that the properties see matches as well as misses.
    fn near_pair() -> impl Strategy<Value = (String, String)> {
        let letters: Vec<char> = VI_LOWER.chars().collect();
        (phrase(), vi_text(), vi_text(), 0..5u8, any::<proptest::sample::Index>(), proptest::sample::select(letters))
            .prop_map(|(term, before, after, how, at, letter)| {
                let inner = match how {
                    0 => term.clone(),
                    1 => fold_diacritics(&term),
                    2 => term.to_uppercase(),
                    3 => {
                        let mut chars: Vec<char> = term.chars().collect();
                        let i = at.index(chars.len());
                        chars[i] = letter;
                        chars.into_iter().collect()
                    }
                    _ => String::new(),
                };
                (term, format!("{before} {inner} {after}"))
            })
    }

    /// Mostly [`near_pair`]s, sometimes a term and anything at all.
    fn term_and_text() -> impl Strategy<Value = (String, String)> {
        prop_oneof![3 => near_pair(), 1 => (phrase(), any_text())]
    }

    #[test]
    fn the_generated_pairs_match_often_and_miss_often() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = term_and_text();
        let pairs: Vec<(String, String)> =
            (0..1000).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
        let hits = pairs.iter().filter(|(term, text)| matches(term, text)).count();
        let folded_hits = pairs.iter().filter(|(term, text)| matches(&fold_diacritics(term), text)).count();
        eprintln!("matches {hits}/1000, folded term matches {folded_hits}/1000");
        assert!((200..=800).contains(&hits), "{hits}");
        assert!(folded_hits > hits, "{folded_hits} vs {hits}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_term_matches_itself_among_other_words(
            before in proptest::collection::vec(word(), 0..5),
            term in phrase(),
            after in proptest::collection::vec(word(), 0..5),
        ) {
            let text = [before.join(" "), term.clone(), after.join(" ")].join(" ");
            prop_assert!(matches(&term, &text), "{term:?} in {text:?}");
            let m = TermMatcher::new(std::slice::from_ref(&term)).unwrap();
            prop_assert_eq!(m.matched(&text), [term.as_str()]);
        }

        #[test]
        fn nfc_and_nfd_give_the_same_result((term, text) in term_and_text()) {
            let composed: String = text.nfc().collect();
            let decomposed: String = text.nfd().collect();
            let expected = matches(&term, &composed);
            prop_assert_eq!(matches(&term, &decomposed), expected);
            prop_assert_eq!(matches(&nfd(&term), &decomposed), expected);
            prop_assert_eq!(matches(&nfd(&term), &composed), expected);
        }

        #[test]
        fn case_does_not_matter((term, text) in near_pair()) {
            let expected = matches(&term, &text);
            prop_assert_eq!(matches(&term, &text.to_uppercase()), expected);
            prop_assert_eq!(matches(&term, &text.to_lowercase()), expected);
            prop_assert_eq!(matches(&term.to_uppercase(), &text), expected);
        }

        #[test]
        fn an_unaccented_term_matching_a_text_matches_the_folded_text(
            (term, text) in term_and_text().prop_map(|(term, text)| (fold_diacritics(&term), text)),
        ) {
            if matches(&term, &text) {
                prop_assert!(matches(&term, &fold_diacritics(&text)));
            }
        }

        #[test]
        fn an_unaccented_term_matches_every_accenting_of_itself(
            term in phrase(),
            before in proptest::collection::vec(word(), 0..4),
        ) {
            let text = format!("{} {term}", before.join(" "));
            prop_assert!(matches(&fold_diacritics(&term), &text));
        }

        #[test]
        fn folding_a_term_only_widens_it((term, text) in term_and_text()) {
            if matches(&term, &text) {
                prop_assert!(matches(&fold_diacritics(&term), &text));
            }
        }

        #[test]
        fn the_matcher_agrees_with_matches(
            (term, text) in term_and_text(),
            others in proptest::collection::vec(phrase(), 0..4),
        ) {
            let mut terms = others;
            terms.insert(terms.len() / 2, term.clone());
            terms.push(fold_diacritics(&term));
            terms.push(term.to_uppercase());
            let m = TermMatcher::new(&terms).unwrap();
            let mut expected: Vec<&str> = Vec::new();
            for t in &terms {
                if !expected.contains(&t.as_str()) && matches(t, &text) {
                    expected.push(t);
                }
            }
            prop_assert_eq!(m.is_match(&text), !expected.is_empty());
            prop_assert_eq!(m.matched(&text), expected);
        }

        #[test]
        #[test]
        fn arbitrary_input_never_panics(term in any::<String>(), text in any::<String>()) {
            let _ = matches(&term, &text);
            let _ = fold_diacritics(&text);
        }
    }
}
