//! Canonical text form (`normalize`) and the encoder's input form (`prepare_for_model`).

use regex::{Captures, Regex};
use std::sync::LazyLock;
use unicode_normalization::{is_nfc, UnicodeNormalization};

/// NFC, strips control characters/zero-width chars (keep emoji incl. ZWJ sequences intact!),
/// collapses whitespace, trims.
///
/// Every run of whitespace (newlines included) becomes one ASCII space: posts are classified
/// and stored as single lines. The function is idempotent, and NFD input gives the same
/// output as NFC input (the encoder sees NFD text as a different string: cosine 0.92).
pub fn normalize(text: &str) -> String {
    // NFC first so the ZWJ rule below sees the same neighbours whatever form came in.
    let composed: String = if is_nfc(text) { text.to_owned() } else { text.nfc().collect() };
    let mut out = String::with_capacity(composed.len());
    let mut stripped = false;
    let mut pending_space = false;
    let mut chars = composed.chars().peekable();
    // The last character kept, to decide whether a ZWJ or a tag character belongs to an emoji.
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            prev = None;
            continue;
        }
        let keep = if c == ZWJ {
            // Keep a joiner only between two emoji ("👨‍👩‍👧"); elsewhere it is invisible noise.
            prev.is_some_and(is_emoji_part) && chars.peek().copied().is_some_and(is_pictographic)
        } else if is_tag(c) {
            // Tag characters spell subdivision flags (🏴 + tags); keep them only there.
            prev.is_some_and(|p| is_tag(p) || p == '\u{1F3F4}')
        } else {
            !(c.is_control() || is_invisible_format(c))
        };
        if !keep {
            stripped = true;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        prev = Some(c);
    }
    // Dropping a character can put a base letter next to a combining mark ("e\u{200B}\u{301}"):
    // compose again so that the result is NFC and normalize() stays idempotent.
    if stripped && !is_nfc(&out) {
        out = out.nfc().collect();
    }
    out
}

const ZWJ: char = '\u{200D}';

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007F}').contains(&c)
}

/// Format characters (Unicode category Cf) that only steer rendering: zero-width spaces and
/// joiners, bidi controls, the BOM, soft hyphens. Written out by hand to avoid a
/// Unicode-tables dependency.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E001F}')
}

/// Characters that can precede a ZWJ inside an emoji sequence.
fn is_emoji_part(c: char) -> bool {
    is_pictographic(c) || matches!(c, '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{20E3}')
}

/// Approximation of Unicode's Extended_Pictographic property: the blocks emoji live in.
/// (U+2329/U+232A are excluded on purpose: they are not emoji and change under NFC.)
fn is_pictographic(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{21FF}' | '\u{2300}'..='\u{2328}' | '\u{232B}'..='\u{23FF}'
        | '\u{24C2}' | '\u{25A0}'..='\u{27BF}' | '\u{2934}' | '\u{2935}' | '\u{2B00}'..='\u{2BFF}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}' | '\u{1F000}'..='\u{1FAFF}')
}

/// URLs with a scheme or "www.", and bare links on common TLDs that carry a path ("bit.ly/x").
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>\x22]+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|vn|ly|io|me|co|gl|gov|edu|info)/[^\s<>\x22]*",
    )
    .expect("URL regex is a valid constant")
});

/// "@handle" (also fediverse "@handle@instance") not glued to a word: "a@b.com" is no mention.
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\w@])@[\p{L}\p{N}_](?:[\p{L}\p{N}_.]*[\p{L}\p{N}_])?(?:@[\w-]+(?:\.[\w-]+)+)?")
        .expect("mention regex is a valid constant")
});

/// "#tag" not glued to a word ("C#" and HTML entities "&#39;" stay).
static HASHTAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^\w&#])#([\p{L}\p{M}\p{N}_]+)").expect("hashtag regex is a valid constant"));

/// Text given to the encoder: normalize(), URLs replaced by their host name, @mentions →
/// "@user", hashtags split into words ("#KẹtXe" → "Kẹt Xe", "#ketxe" → "ketxe"), emoji kept.
///
/// The host ("vnexpress.net", "facebook.com") is kept because it says what kind of link was
/// shared; paths and queries are dropped because they are noise to the encoder.
pub fn prepare_for_model(text: &str) -> String {
    let text = normalize(text);
    let text = URL.replace_all(&text, |c: &Captures| {
        // Sentence punctuation right after a link is not part of it: "(xem bit.ly/x)." keeps ")."
        let url = c[0].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'']);
        format!("{}{}", url_host(url), &c[0][url.len()..])
    });
    let text = MENTION.replace_all(&text, "${1}@user");
    let text = HASHTAG.replace_all(&text, |c: &Captures| format!("{}{}", &c[1], split_tag(&c[2])));
    // Replacements can leave doubled spaces (an empty host, "_" in a tag): collapse again.
    normalize(&text)
}

/// Host of a URL without scheme, credentials, port and "www.", e.g. "https://www.x.vn:80/a" → "x.vn".
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    let host = host.trim_end_matches('.').to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    if host.is_empty() {
        "URL".to_owned()
    } else {
        host.to_owned()
    }
}

/// Splits a hashtag body into words: at "_", at lower→upper ("KẹtXe"), at the end of an
/// acronym ("HCMKetXe" → "HCM Ket Xe") and between letters and digits ("Covid19" → "Covid 19").
/// All-lowercase tags stay one word: without a dictionary we cannot know where "ketxe" splits.
fn split_tag(tag: &str) -> String {
    let chars: Vec<char> = tag.chars().collect();
    let mut out = String::with_capacity(tag.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            out.push(' ');
            continue;
        }
        if i > 0 && starts_word(chars[i - 1], c, chars.get(i + 1).copied()) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn starts_word(prev: char, c: char, next: Option<char>) -> bool {
    let lower_to_upper = prev.is_lowercase() && c.is_uppercase();
    let acronym_end = prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase);
    let digit_edge = (prev.is_alphabetic() && c.is_numeric()) || (prev.is_numeric() && c.is_alphabetic());
    lower_to_upper || acronym_end || digit_edge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfd_becomes_nfc() {
        let nfd: String = "Kẹt xe ở Quận 1".nfd().collect();
        assert_ne!(nfd, "Kẹt xe ở Quận 1");
        assert_eq!(normalize(&nfd), "Kẹt xe ở Quận 1");
    }

    #[test]
    fn strips_controls_and_zero_width() {
        assert_eq!(normalize("a\u{200B}b\u{FEFF}c\u{0007}d\u{202E}e\u{00AD}f"), "abcdef");
        assert_eq!(normalize("ket\u{200D}xe"), "ketxe");
        // A removed zero-width char must not leave the mark uncomposed.
        assert_eq!(normalize("e\u{200B}\u{0301}"), "é");
    }

    #[test]
    fn collapses_and_trims_whitespace() {
        assert_eq!(normalize("  Mưa\t\tto \n\n quá\u{00A0}\u{3000}trời  "), "Mưa to quá trời");
        assert_eq!(normalize(" \u{200B} \n "), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn keeps_emoji_sequences() {
        for s in [
            "gia đình 👨\u{200D}👩\u{200D}👧 đi chơi",
            "🏳\u{FE0F}\u{200D}🌈 pride",
            "👍🏽 ok",
            "❤\u{FE0F} Sài Gòn",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} fan",
            "👩🏻\u{200D}💻 dev",
            "1\u{FE0F}\u{20E3} số một",
        ] {
            assert_eq!(normalize(s), s, "{s:?}");
        }
    }

    #[test]
    fn model_text_replaces_urls_with_host() {
        assert_eq!(prepare_for_model("Xem https://www.vnexpress.net/ket-xe-123.html?x=1 nhé"), "Xem vnexpress.net nhé");
        assert_eq!(prepare_for_model("link: bit.ly/3abc, hay lắm"), "link: bit.ly, hay lắm");
        assert_eq!(prepare_for_model("(http://user:pw@Example.COM:8080)"), "(example.com)");
    }

    #[test]
    fn model_text_mentions_and_hashtags() {
        assert_eq!(
            prepare_for_model("@nguyen.van_a @bob@mastodon.social #KẹtXe #ketxe #HCMKetXe"),
            "@user @user Kẹt Xe ketxe HCM Ket Xe"
        );
        assert_eq!(prepare_for_model("#ket_xe #Covid19 #SaiGon2024"), "ket xe Covid 19 Sai Gon 2024");
        // E-mail addresses and "C#" are no mentions or hashtags.
        assert_eq!(prepare_for_model("mail a@b.com, học C# 😂"), "mail a@b.com, học C# 😂");
    }
}
