//! Text helpers shared by every parser: HTML to plain text, and the normalised form that place
//! matching and de-duplication use (NFC, lower case, one space between words).
//!
//! The HTML stripper is a hand-written linear scan rather than an HTML5 parser: posts only need
//! their visible text, hostile markup (unclosed tags, `<` in attributes, megabytes of nesting) must
//! cost O(n) and never panic, and html5ever would be the heaviest dependency of the crate.

use unicode_normalization::UnicodeNormalization;

/// Tags whose content is not visible text.
const SKIP_CONTENT: [&str; 4] = ["script", "style", "template", "noscript"];
/// Tags that separate blocks of text; they become a line break.
const BLOCK: [&str; 14] = ["p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr"];

/// Visible text of an HTML fragment: tags removed, entities decoded, blocks separated by newlines,
/// runs of spaces collapsed, NFC. Text without markup passes through (entities still decoded).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_decoded(&mut out, &rest[..lt]);
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            // An unclosed `<`: what follows is text, as browsers treat it.
            push_decoded(&mut out, &rest[lt..]);
            rest = "";
            break;
        };
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        let name = tag_name(tag);
        if SKIP_CONTENT.contains(&name.as_str()) && !tag.starts_with('/') && !tag.ends_with('/') {
            rest = skip_until_close(rest, &name);
        } else if BLOCK.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    push_decoded(&mut out, rest);
    tidy(&out)
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Returns what follows `</name ...>`, or "" when the element never closes.
fn skip_until_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    let close = format!("</{name}");
    match lower.find(&close) {
        // to_ascii_lowercase keeps byte offsets, so the index is valid in `rest`.
        Some(i) => match rest[i..].find('>') {
            Some(gt) => &rest[i + gt + 1..],
            None => "",
        },
        None => "",
    }
}

fn push_decoded(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Entities are short; a `;` far away means this `&` is literal.
        let end = after.char_indices().take(12).find(|&(_, c)| c == ';').map(|(i, _)| i);
        match end.and_then(|e| decode_entity(&after[..e]).map(|c| (e, c))) {
            Some((e, c)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "ldquo" => '“',
        "rdquo" => '”',
        "lsquo" => '‘',
        "rsquo" => '’',
        _ => return None,
    })
}

/// Collapses spaces inside lines, drops empty lines, trims, NFC.
fn tidy(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !words.is_empty() {
            lines.push(words.join(" "));
        }
    }
    lines.join("\n").nfc().collect()
}

/// The form matching works on: NFC, lower case, every run of whitespace one space, no control
/// characters. Vietnamese arrives both composed and decomposed; NFC makes "Quận" one spelling.
pub fn normalize_for_match(text: &str) -> String {
    let lower: String = text.nfc().flat_map(char::to_lowercase).collect();
    // Lower-casing can produce decomposed sequences again (e.g. 'İ'); recompose.
    let lower: String = lower.nfc().collect();
    let mut out = String::with_capacity(lower.len());
    for word in lower.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mastodon_content_becomes_text() {
        let html = r#"<p>Kẹt xe ở <a href="https://m.s/tags/saigon" class="mention hashtag" rel="tag">#<span>saigon</span></a> &amp; Quận 1</p><p>Line&nbsp;two<br>three &#8212; &#x1F600;</p>"#;
        assert_eq!(html_to_text(html), "Kẹt xe ở #saigon & Quận 1\nLine two\nthree — 😀");
    }

    #[test]
    fn scripts_styles_and_soup() {
        assert_eq!(html_to_text("a<script>alert('<p>x</p>')</script>b<style>p{}</style>c"), "abc");
        assert_eq!(html_to_text("x < y and a&b &unknown; <b"), "x < y and a&b &unknown; <b");
        assert_eq!(html_to_text("<script>never closed"), "");
        assert_eq!(html_to_text("<<<>>>&#0;&#xFFFFFFFF;"), ">>&#0;&#xFFFFFFFF;");
    }

    #[test]
    fn decomposed_input_is_composed() {
        let nfd = "Qua\u{0323}\u{0302}n 1"; // "Quận 1" decomposed
        assert_eq!(html_to_text(nfd), "Quận 1");
        assert_eq!(normalize_for_match(nfd), "quận 1");
        assert_eq!(normalize_for_match("  QUẬN\t\n 1 "), "quận 1");
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(s in ".{0,300}") {
            let t = html_to_text(&s);
            let _ = normalize_for_match(&t);
        }

        /// Markup soup (tags, closing tags, skipped elements, stray brackets), without `&`: an
        /// entity such as `&lt;b&gt;` decodes to a tag-like text on purpose. Every `<…>` is a tag
        /// and goes; a `<` that survives is an unclosed one, so no `>` follows it.
        #[test]
        fn never_leaves_a_tag(parts in proptest::collection::vec(
            prop_oneof!["<", ">", "/", "p", "b", "br", "script", "style", "x", " ", "\"", "=", "\n", "é"],
            0..80,
        )) {
            let html = parts.concat();
            let text = html_to_text(&html);
            if let Some(lt) = text.find('<') {
                prop_assert!(!text[lt..].contains('>'), "a tag survived: {html:?} -> {text:?}");
            }
        }

        #[test]
        fn tags_from_plain_words_are_removed(words in proptest::collection::vec("[a-z]{1,8}", 1..10)) {
            let html: String = words.iter().map(|w| format!("<span class=\"x\">{w}</span> ")).collect();
            prop_assert_eq!(html_to_text(&html), words.join(" "));
        }
    }
}
