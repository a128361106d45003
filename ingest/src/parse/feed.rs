//! RSS 2.0 and Atom (news sites, YouTube channel feeds) through feed-rs.
//!
//! The text of an item is its title, then its summary (or content) with HTML stripped: news feeds
//! put the lede there, which is what opinion about a headline hangs on. Items without a date are
//! errors, not "now": the feed's cursor is a timestamp watermark and an undated item would look new
//! on every poll.

use super::{check_size, cut, finish, ItemError, Items, ParseCtx, ParseError};
use crate::text::html_to_text;
use schema::{Engagement, Post};

/// Parses a whole feed document.
pub fn parse_feed(body: &[u8], ctx: &ParseCtx<'_>) -> Result<Items, ParseError> {
    check_size(body, ctx)?;
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

fn entry_to_post(
    entry: feed_rs::model::Entry,
    feed_author: &str,
    lang: Option<String>,
    ctx: &ParseCtx<'_>,
) -> Result<Post, ItemError> {
    let created_at = entry.published.or(entry.updated).ok_or(ItemError::Missing("published or updated date"))?;
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
    finish(ctx, entry.id, url, author, text, lang, created_at, Engagement::default())
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::{ctx, fixture};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rss2_news_feed() {
        let items = parse_feed(&fixture("vnexpress.rss"), &ctx()).unwrap();
        assert_eq!(items.posts.len(), 2, "{:?}", items.errors);
        assert_eq!(items.errors, vec![ItemError::Missing("published or updated date")]);
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
        let items = parse_feed(&fixture("youtube.atom"), &ctx()).unwrap();
        assert_eq!(items.posts.len(), 1, "{:?}", items.errors);
        let p = &items.posts[0];
        assert_eq!(p.id, "yt:video:dQw4w9WgXcQ");
        assert_eq!(p.text, "Metro số 1 chạy thử\nTuyến metro Bến Thành – Suối Tiên chạy thử toàn tuyến.");
        assert_eq!(p.url.as_deref(), Some("https://www.youtube.com/watch?v=dQw4w9WgXcQ"));
    }

    #[test]
    fn not_a_feed_is_typed() {
        assert!(matches!(parse_feed(b"<html><body>hi</body></html>", &ctx()), Err(ParseError::Feed(_))));
        assert!(matches!(parse_feed(b"\xff\xfe\x00<rss", &ctx()), Err(ParseError::Feed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_feed(&bytes, &ctx());
        }

        #[test]
        fn arbitrary_item_text_never_panics(title in "\\PC{0,100}", desc in "\\PC{0,200}") {
            let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
            let rss = format!(
                "<rss version=\"2.0\"><channel><title>t</title><item><title>{}</title><description>{}</description>\
                 <pubDate>Wed, 20 Nov 2024 17:30:00 +0700</pubDate><guid>g1</guid></item></channel></rss>",
                esc(&title), esc(&desc));
            let _ = parse_feed(rss.as_bytes(), &ctx());
        }
    }
}
