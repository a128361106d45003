//! Mastodon: an array of Status entities (`/api/v1/timelines/public`, `/api/v1/timelines/tag/:tag`)
//! to posts, and the paging ids of the `Link` header.
//!
//! Paging forward: a request with `min_id=C` returns the statuses right after C (newest first inside
//! the page) and a `Link: <...?min_id=N>; rel="prev"` whose N is the next cursor. Ids are
//! snowflake-like decimal strings; they order by (length, text).

use super::{check_size, cut, finish, parse_rfc3339, ItemError, Items, ParseCtx, ParseError};
use crate::text::html_to_text;
use schema::{Engagement, Post};
use serde::Deserialize;

/// The fields of a Status entity that a post needs; the API sends many more.
#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    created_at: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    language: Option<String>,
    content: String,
    #[serde(default)]
    spoiler_text: String,
    #[serde(default)]
    replies_count: Option<u64>,
    #[serde(default)]
    reblogs_count: Option<u64>,
    #[serde(default)]
    favourites_count: Option<u64>,
    /// `public`, `unlisted`, `private` (followers only), `direct`; servers with extensions add
    /// others (`limited`, `local`). Absent on some very old servers' public timelines.
    #[serde(default)]
    visibility: Option<String>,
    account: Account,
}

#[derive(Debug, Deserialize)]
struct Account {
    /// `user` for local accounts, `user@domain` for remote ones: with the instance it is unique.
    acct: String,
}

/// A parsed page of statuses.
#[derive(Debug, Clone, Default)]
pub struct StatusPage {
    pub items: Items,
    /// The largest status id in the page, also of items that failed to parse: the cursor moves past
    /// bad items instead of fetching them forever.
    pub newest_id: Option<String>,
}

/// Parses a timeline response body.
pub fn parse_statuses(body: &[u8], ctx: &ParseCtx<'_>) -> Result<StatusPage, ParseError> {
    check_size(body, ctx)?;
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let serde_json::Value::Array(items) = value else {
        return Err(ParseError::Shape("expected an array of statuses".into()));
    };
    let mut page = StatusPage::default();
    for item in items {
        if let Some(id) = item.get("id").and_then(|v| v.as_str()).filter(|id| is_status_id(id)) {
            if page.newest_id.as_deref().is_none_or(|n| id_cmp(id, n).is_gt()) {
                page.newest_id = Some(id.to_owned());
            }
        }
        page.items.push(status_to_post(item, ctx));
    }
    Ok(page)
}

fn status_to_post(mut item: serde_json::Value, ctx: &ParseCtx<'_>) -> Result<Post, ItemError> {
    // A boost has no content of its own: what it spreads is the original status inside it, which
    // is taken instead (under its own id and visibility; a post boosted twice is one key).
    if let Some(original) = item.get_mut("reblog").filter(|r| r.is_object()) {
        item = original.take();
    }
    let status: Status = serde_json::from_value(item).map_err(|e| ItemError::Shape(cut(&e.to_string())))?;
    // A public-opinion monitor takes in public posts only. An authenticated (or misbehaving)
    // server can put followers-only and direct posts in a timeline; `unlisted` posts are visible
    // but their authors asked to stay out of timelines and search, so they are left out too.
    match status.visibility.as_deref() {
        None | Some("public") => {}
        Some(other) => return Err(ItemError::NotPublic(cut(other))),
    }
    let created_at = parse_rfc3339(&status.created_at)?;
    let body = html_to_text(&status.content);
    // A content warning is part of what the author published; keep it before the body.
    let text = match html_to_text(&status.spoiler_text) {
        cw if cw.is_empty() => body,
        cw => format!("{cw}\n{body}"),
    };
    let engagement =
        Engagement { likes: status.favourites_count, shares: status.reblogs_count, replies: status.replies_count };
    finish(
        ctx,
        status.id,
        status.url.or(status.uri),
        &status.account.acct,
        text,
        status.language,
        created_at,
        engagement,
    )
}

fn is_status_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Orders Mastodon ids: longer decimal ids are larger; equal lengths compare as text.
pub fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One `<url>; rel="..."` entry of a `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    pub rel: String,
}

/// Parses an RFC 8288 `Link` header as Mastodon sends it. Entries that do not parse are skipped.
pub fn parse_link_header(header: &str) -> Vec<Link> {
    let mut links = Vec::new();
    // URLs in Link headers are percent-encoded, so a `,` only separates entries outside `<...>`.
    for entry in split_outside_brackets(header) {
        let entry = entry.trim();
        let Some(rest) = entry.strip_prefix('<') else { continue };
        let Some((url, params)) = rest.split_once('>') else { continue };
        for param in params.split(';') {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("rel") {
                    for rel in value.trim().trim_matches('"').split_whitespace() {
                        links.push(Link { url: url.to_owned(), rel: rel.to_ascii_lowercase() });
                    }
                }
            }
        }
    }
    links
}

fn split_outside_brackets(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The value of query parameter `param` in the link with relation `rel`, e.g. `min_id` of `prev`.
pub fn link_param(links: &[Link], rel: &str, param: &str) -> Option<String> {
    let link = links.iter().find(|l| l.rel == rel)?;
    let url = url::Url::parse(&link.url).ok()?;
    let value = url.query_pairs().find(|(k, _)| k == param).map(|(_, v)| v.into_owned());
    value.filter(|v| is_status_id(v))
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::{ctx, fixture};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_format_timeline() {
        let page = parse_statuses(&fixture("mastodon_tag_timeline.json"), &ctx()).unwrap();
        assert_eq!(page.items.posts.len(), 2, "{:?}", page.items.errors);
        assert_eq!(page.items.errors.len(), 2);
        assert_eq!(page.newest_id.as_deref(), Some("113515180458130303"));
        let p = &page.items.posts[0];
        assert_eq!(p.id, "113515180458130303");
        assert_eq!(p.text, "Kẹt xe kinh khủng ở Quận 1 chiều nay #saigon\nĐường Lê Lợi đứng yên 30 phút");
        assert_eq!(p.lang.as_deref(), Some("vi"));
        assert_eq!(p.url.as_deref(), Some("https://mastodon.social/@minhanh/113515180458130303"));
        assert_eq!(p.engagement, Engagement { likes: Some(12), shares: Some(3), replies: Some(4) });
        assert_eq!(p.created_at.to_rfc3339(), "2024-11-20T09:14:03.456+00:00");
        assert_eq!(p.author.len(), 32);
        assert!(!p.author.contains("minhanh"));
        let cw = &page.items.posts[1];
        assert!(cw.text.starts_with("flooding\n"), "{}", cw.text);
        assert!(page.items.errors.iter().any(|e| matches!(e, ItemError::BadTime(_))));
        assert!(page.items.errors.iter().any(|e| matches!(e, ItemError::Shape(_))));
    }

    #[test]
    fn only_public_statuses_become_posts() {
        let status = |id: &str, visibility: Option<&str>| {
            let mut s = serde_json::json!({
                "id": id, "created_at": "2024-11-20T09:14:03.456Z", "content": "<p>Kẹt xe ở Quận 1</p>",
                "account": {"acct": "minhanh"}
            });
            if let Some(v) = visibility {
                s["visibility"] = v.into();
            }
            s
        };
        let body = serde_json::json!([
            status("1", Some("public")),
            status("2", Some("private")),
            status("3", Some("direct")),
            status("4", Some("unlisted")),
            status("5", None),
            status("6", Some("limited")),
        ]);
        let page = parse_statuses(body.to_string().as_bytes(), &ctx()).unwrap();
        let ids: Vec<&str> = page.items.posts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "5"]);
        let dropped: Vec<String> = page.items.errors.iter().map(|e| format!("{}: {e}", e.kind())).collect();
        assert_eq!(
            dropped,
            [
                "not_public: item is not public (visibility \"private\")",
                "not_public: item is not public (visibility \"direct\")",
                "not_public: item is not public (visibility \"unlisted\")",
                "not_public: item is not public (visibility \"limited\")",
            ]
        );
        // The cursor still moves past them.
        assert_eq!(page.newest_id.as_deref(), Some("6"));
    }

    #[test]
    fn a_boost_stands_for_its_original() {
        let original = serde_json::json!({
            "id": "42", "created_at": "2024-11-20T09:14:03.456Z", "visibility": "public",
            "content": "<p>Ngập ở Thảo Điền</p>", "account": {"acct": "an@other.social"}
        });
        let boost = |visibility: &str| {
            let mut o = original.clone();
            o["visibility"] = visibility.into();
            serde_json::json!({
                "id": "43", "created_at": "2024-11-20T10:00:00Z", "visibility": "public", "content": "",
                "reblog": o, "account": {"acct": "minhanh"}
            })
        };
        let body = serde_json::json!([boost("public"), boost("private")]);
        let page = parse_statuses(body.to_string().as_bytes(), &ctx()).unwrap();
        let ids: Vec<&str> = page.items.posts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["42"]);
        assert_eq!(page.items.posts[0].text, "Ngập ở Thảo Điền");
        assert_eq!(page.items.errors.iter().map(|e| e.kind()).collect::<Vec<_>>(), ["not_public"]);
        // The cursor follows the boosts' own ids (the timeline's).
        assert_eq!(page.newest_id.as_deref(), Some("43"));
    }

    #[test]
    fn wrong_json_is_typed() {
        assert!(matches!(parse_statuses(b"{\"error\":\"x\"}", &ctx()), Err(ParseError::Shape(_))));
        assert!(matches!(parse_statuses(b"[{", &ctx()), Err(ParseError::Json(_))));
        assert!(matches!(parse_statuses(b"[\"\xff\xfe\"]", &ctx()), Err(ParseError::Json(_))));
        let page = parse_statuses(b"[1, null, {\"id\": 5}]", &ctx()).unwrap();
        assert_eq!(page.items.errors.len(), 3);
    }

    #[test]
    fn link_header_paging_ids() {
        let h = r#"<https://mastodon.social/api/v1/timelines/tag/saigon?max_id=113515180458130001>; rel="next", <https://mastodon.social/api/v1/timelines/tag/saigon?min_id=113515180458130303>; rel="prev""#;
        let links = parse_link_header(h);
        assert_eq!(links.len(), 2);
        assert_eq!(link_param(&links, "prev", "min_id").as_deref(), Some("113515180458130303"));
        assert_eq!(link_param(&links, "next", "max_id").as_deref(), Some("113515180458130001"));
        assert_eq!(link_param(&links, "prev", "max_id"), None);
        assert!(parse_link_header("garbage, <x; rel=").is_empty());
    }

    #[test]
    fn id_order() {
        assert!(id_cmp("99", "100").is_lt());
        assert!(id_cmp("113515180458130303", "113515180458130001").is_gt());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_statuses(&bytes, &ctx());
        }

        #[test]
        fn arbitrary_link_headers_never_panic(s in "\\PC{0,200}") {
            let links = parse_link_header(&s);
            let _ = link_param(&links, "prev", "min_id");
        }
    }
}
