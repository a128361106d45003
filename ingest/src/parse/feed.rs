//! RSS 2.0 and Atom (news sites, YouTube channel feeds) through feed-rs.
//!
//! The text of an item is its title, then its summary (or content) with HTML stripped: news feeds
//! put the lede there, which is what opinion about a headline hangs on. An item whose date is missing
//! or unreadable (after the lenient parser in `dates`) is kept with its fetch time, marked
//! `created_at_estimated`: the crawler's watermark remembers such items by id so they are published
//! once, and the store keeps them out of trend and alert windows.

use super::{check_size, cut, finish, ItemError, Items, ParseCtx, ParseError};
use crate::text::html_to_text;
use schema::{Engagement, Post};

/// Parses a whole feed document. `charset` is the `Content-Type` header's, if it named one.
pub fn parse_feed(body: &[u8], charset: Option<&str>, ctx: &ParseCtx<'_>) -> Result<Items, ParseError> {
    check_size(body, ctx)?;
    let body = fix_rss_root(to_parseable(body, charset));
    let body: &[u8] = &body;
    let zone = ctx.zone;
    let parser =
        feed_rs::parser::Builder::new().timestamp_parser(move |raw| super::dates::feed_timestamp(raw, zone)).build();
    let feed = parser.parse(body).map_err(|e| ParseError::Feed(cut(&e.to_string())))?;
    let feed_author = feed.title.as_ref().map(|t| t.content.clone()).unwrap_or_else(|| ctx.source.to_string());
    let mut items = Items::default();
    for entry in feed.entries {
        items.push(entry_to_post(entry, &feed_author, feed.language.clone(), ctx));
    }
    Ok(items)
}

/// The document as the XML parser can read it. A byte-order mark or an XML declaration that names
/// an encoding is left to the parser (it decodes gb2312, windows-1251, windows-1258, ...). A
/// document without either that is not UTF-8 is decoded here: by the `Content-Type` charset when
/// there is one (it takes precedence, RFC 7303), else as windows-1252, the superset of ISO-8859-1
/// that servers mean when they say nothing (Vietnamese and Portuguese sites among them).
fn to_parseable<'a>(body: &'a [u8], charset: Option<&str>) -> std::borrow::Cow<'a, [u8]> {
    use std::borrow::Cow;
    let utf8 = std::str::from_utf8(body).is_ok();
    let header_encoding = charset.and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()));
    if utf8 && header_encoding.is_none_or(|e| e == encoding_rs::UTF_8) {
        return Cow::Borrowed(body);
    }
    if encoding_rs::Encoding::for_bom(body).is_some() {
        return Cow::Borrowed(body);
    }
    let declaration_end =
        body.windows(2).position(|w| w == b"?>").filter(|_| body.trim_ascii_start().starts_with(b"<?xml"));
    let declared = declaration_end.is_some_and(|end| body[..end].windows(9).any(|w| w == b"encoding="));
    if declared && header_encoding.is_none() {
        return Cow::Borrowed(body);
    }
    let encoding = header_encoding.unwrap_or(encoding_rs::WINDOWS_1252);
    let rest = declaration_end.map_or(body, |end| &body[end + 2..]);
    let (text, _, _) = encoding.decode(rest);
    Cow::Owned(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{text}").into_bytes())
}

/// Two real-world `<rss>` roots that feed-rs cannot read: one without `version` (it then finds
/// no root element), and one with the old UserLand default namespace (it then finds no items):
/// a `version="2.0"` is added, the namespace removed. ASCII-only edits to the root tag, safe in
/// any ASCII-compatible encoding (a UTF-16 document is left alone).
fn fix_rss_root(doc: std::borrow::Cow<'_, [u8]>) -> std::borrow::Cow<'_, [u8]> {
    const USERLAND: &[u8] = br#" xmlns="http://backend.userland.com/rss2""#;
    let head = &doc[..doc.len().min(4096)];
    let Some(start) =
        head.windows(5).position(|w| w == b"<rss>" || (w.starts_with(b"<rss") && w[4].is_ascii_whitespace()))
    else {
        return doc;
    };
    let Some(len) = doc[start..].iter().position(|&b| b == b'>') else { return doc };
    let tag = &doc[start..start + len];
    let has_version = tag.windows(8).any(|w| w == b"version=");
    let userland = tag.windows(USERLAND.len()).position(|w| w == USERLAND);
    if has_version && userland.is_none() {
        return doc;
    }
    let mut fixed_tag = tag.to_vec();
    if let Some(at) = userland {
        fixed_tag.drain(at..at + USERLAND.len());
    }
    if !has_version {
        fixed_tag.splice(4..4, br#" version="2.0""#.iter().copied());
    }
    let mut out = Vec::with_capacity(doc.len() + 16);
    out.extend_from_slice(&doc[..start]);
    out.extend_from_slice(&fixed_tag);
    out.extend_from_slice(&doc[start + len..]);
    std::borrow::Cow::Owned(out)
}

fn entry_to_post(
    entry: feed_rs::model::Entry,
    feed_author: &str,
    lang: Option<String>,
    ctx: &ParseCtx<'_>,
) -> Result<Post, ItemError> {
    let date = entry.published.or(entry.updated);
    let created_at = date.unwrap_or(ctx.fetched_at);
    let title = entry.title.map(|t| html_to_text(&t.content)).unwrap_or_default();
    let body = entry
        .summary
        .map(|s| s.content)
        .or_else(|| entry.content.and_then(|c| c.body))
        .map(|b| html_to_text(&b))
        .filter(|b| !b.is_empty())
        // YouTube puts a video's description in media:group, not in summary.
        .or_else(|| entry.media.iter().find_map(|m| m.description.as_ref()).map(|d| html_to_text(&d.content)))
        .unwrap_or_default();
    let text = match (title.is_empty(), body.is_empty()) {
        (false, false) => format!("{title}\n{body}"),
        (false, true) => title,
        _ => body,
    };
    let url = entry.links.first().map(|l| l.href.clone());
    // News items are by the outlet or a staff writer; either way the author is pseudonymised alike.
    let author = entry.authors.first().map(|p| p.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(feed_author);
    let lang = entry.language.or(lang);
    let mut post = finish(ctx, entry.id, url, author, text, lang, created_at, Engagement::default())?;
    post.created_at_estimated = date.is_none();
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::{ctx, fixture};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rss2_news_feed() {
        let items = parse_feed(&fixture("vnexpress.rss"), None, &ctx()).unwrap();
        assert_eq!(items.posts.len(), 3, "{:?}", items.errors);
        assert!(items.errors.is_empty(), "{:?}", items.errors);
        // The fixture's last item has no pubDate: kept at the fetch time, marked estimated.
        let estimated: Vec<_> = items.posts.iter().map(|p| p.created_at_estimated).collect();
        assert_eq!(estimated, [false, false, true]);
        assert_eq!(items.posts[2].created_at, items.posts[2].fetched_at);
        let p = &items.posts[0];
        assert_eq!(p.id, "https://vnexpress.net/ngap-sau-o-nguyen-huu-canh-4820001.html");
        assert_eq!(
            p.text,
            "Ngập sâu ở Nguyễn Hữu Cảnh sau mưa lớn\nNhiều tuyến đường ở TP HCM ngập sâu sau cơn mưa chiều."
        );
        assert_eq!(p.lang.as_deref(), Some("vi"));
        assert_eq!(p.created_at.to_rfc3339(), "2024-11-20T10:30:00+00:00");
    }

    #[test]
    fn atom_youtube_feed() {
        let items = parse_feed(&fixture("youtube.atom"), None, &ctx()).unwrap();
        assert_eq!(items.posts.len(), 1, "{:?}", items.errors);
        let p = &items.posts[0];
        assert_eq!(p.id, "yt:video:dQw4w9WgXcQ");
        assert_eq!(p.text, "Metro số 1 chạy thử\nTuyến metro Bến Thành – Suối Tiên chạy thử toàn tuyến.");
        assert_eq!(p.url.as_deref(), Some("https://www.youtube.com/watch?v=dQw4w9WgXcQ"));
    }

    /// One item, Vietnamese text, in the document's own encoding.
    fn legacy_feed(encoding: &'static encoding_rs::Encoding, declare: bool) -> Vec<u8> {
        let declaration =
            if declare { format!("<?xml version=\"1.0\" encoding=\"{}\"?>", encoding.name()) } else { String::new() };
        let xml = format!(
            "{declaration}<rss version=\"2.0\"><channel><title>Báo</title><item><title>Ngập ở Quận 1, khổ quá</title>\
             <pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate><guid>g1</guid></item></channel></rss>"
        );
        let text = windows_1258_form(&xml);
        let (bytes, _, unmappable) = encoding.encode(&text);
        assert!(!unmappable, "the text is representable in {}", encoding.name());
        bytes.into_owned()
    }

    /// Vietnamese as windows-1258 holds it: letters with circumflex, breve or horn precomposed,
    /// tone marks as combining characters (the code page has no precomposed toned letters).
    fn windows_1258_form(s: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        let mut out = String::new();
        for c in s.nfc() {
            let d: Vec<char> = c.to_string().nfd().collect();
            let mut base = d[0];
            for &mark in &d[1..] {
                match unicode_normalization::char::compose(base, mark) {
                    Some(b) if matches!(mark, '\u{302}' | '\u{306}' | '\u{31B}') => base = b,
                    _ => {}
                }
            }
            out.push(base);
            out.extend(d[1..].iter().filter(|m| !matches!(m, '\u{302}' | '\u{306}' | '\u{31B}')));
        }
        out
    }

    #[test]
    fn legacy_encodings_by_declaration_header_or_fallback() {
        use unicode_normalization::UnicodeNormalization;
        let title = |items: &Items| items.posts.first().map(|p| p.text.nfc().collect::<String>());
        let want = Some("Ngập ở Quận 1, khổ quá".to_owned());
        // Declared in the document.
        let doc = legacy_feed(encoding_rs::WINDOWS_1258, true);
        assert!(std::str::from_utf8(&doc).is_err(), "really not UTF-8");
        assert_eq!(title(&parse_feed(&doc, None, &ctx()).unwrap()), want, "declared windows-1258");
        // Only in the Content-Type header.
        let doc = legacy_feed(encoding_rs::WINDOWS_1258, false);
        assert_eq!(title(&parse_feed(&doc, Some("windows-1258"), &ctx()).unwrap()), want, "header windows-1258");
        // The header wins over a wrong declaration.
        let mut wrong = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>".to_vec();
        wrong.extend(legacy_feed(encoding_rs::WINDOWS_1258, false));
        assert_eq!(title(&parse_feed(&wrong, Some("windows-1258"), &ctx()).unwrap()), want, "header over declaration");
        // Neither: ISO-8859-1 text (no Vietnamese letters in it) read as windows-1252.
        let xml = "<rss version=\"2.0\"><channel><title>UOL</title><item><title>Últimas Notícias</title>\
                   <pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate><guid>g1</guid></item></channel></rss>";
        let (doc, _, _) = encoding_rs::WINDOWS_1252.encode(xml);
        let items = parse_feed(&doc, None, &ctx()).unwrap();
        assert_eq!(items.posts.first().map(|p| p.text.as_str()), Some("Últimas Notícias"));
    }

    #[test]
    fn rss_roots_without_version_or_with_the_userland_namespace_are_read() {
        let item = "<channel><title>t</title><item><title>Hello</title>\
                    <pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate><guid>g1</guid></item></channel></rss>";
        for root in ["<rss>", "\n<rss\n>", r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2">"#] {
            let doc = format!("<?xml version=\"1.0\"?>{root}{item}");
            let items = parse_feed(doc.as_bytes(), None, &ctx()).unwrap_or_else(|e| panic!("{root}: {e}"));
            assert_eq!(items.posts.len(), 1, "{root}: {:?}", items.errors);
        }
        // A root that needs nothing is left as it is.
        let doc = format!(r#"<rss version="2.0">{item}"#);
        assert!(matches!(fix_rss_root(std::borrow::Cow::Borrowed(doc.as_bytes())), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn not_a_feed_is_typed() {
        assert!(matches!(parse_feed(b"<html><body>hi</body></html>", None, &ctx()), Err(ParseError::Feed(_))));
        assert!(matches!(parse_feed(b"\xff\xfe\x00<rss", None, &ctx()), Err(ParseError::Feed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_feed(&bytes, None, &ctx());
        }

        #[test]
        fn arbitrary_item_text_never_panics(title in "\\PC{0,100}", desc in "\\PC{0,200}") {
            let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
            let rss = format!(
                "<rss version=\"2.0\"><channel><title>t</title><item><title>{}</title><description>{}</description>\
                 <pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate><guid>g1</guid></item></channel></rss>",
                esc(&title), esc(&desc));
            let _ = parse_feed(rss.as_bytes(), None, &ctx());
        }
    }
}
