//! Reddit: a subreddit listing (`/r/:sub/new.json`) to posts, and its `after` cursor.
//!
//! A listing is `{"kind":"Listing","data":{"after":..,"children":[{"kind":"t3","data":{..}}]}}`,
//! newest first; `after` is the fullname (`t3_<id>`) to ask for the next, older page.

use super::{check_size, cut, finish, ItemError, Items, ParseCtx, ParseError};
use chrono::{DateTime, Utc};
use schema::{Engagement, Post};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Listing {
    kind: String,
    data: ListingData,
}

#[derive(Debug, Deserialize)]
struct ListingData {
    #[serde(default)]
    after: Option<String>,
    children: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Thing {
    kind: String,
    data: Link,
}

/// The fields of a `t3` (link/self post) that a post needs.
#[derive(Debug, Deserialize)]
struct Link {
    id: String,
    title: String,
    #[serde(default)]
    selftext: String,
    author: String,
    created_utc: f64,
    #[serde(default)]
    permalink: Option<String>,
    #[serde(default)]
    ups: Option<u64>,
    #[serde(default)]
    num_comments: Option<u64>,
}

/// A parsed listing page.
#[derive(Debug, Clone, Default)]
pub struct ListingPage {
    pub items: Items,
    /// Fullname to pass as `after` for the next (older) page; `None` at the end.
    pub after: Option<String>,
}

/// Parses a listing body. `site` is prefixed to permalinks (`https://www.reddit.com`).
pub fn parse_listing(body: &[u8], site: &str, ctx: &ParseCtx<'_>) -> Result<ListingPage, ParseError> {
    check_size(body, ctx)?;
    let listing: Listing = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ParseError::Shape(cut(&e.to_string())),
        _ => ParseError::Json(cut(&e.to_string())),
    })?;
    if listing.kind != "Listing" {
        return Err(ParseError::Shape(format!("kind {:?}, expected Listing", cut(&listing.kind))));
    }
    let mut page = ListingPage { after: listing.data.after.filter(|a| a.len() <= 64), ..Default::default() };
    for child in listing.data.children {
        page.items.push(thing_to_post(child, site, ctx));
    }
    Ok(page)
}

fn thing_to_post(child: serde_json::Value, site: &str, ctx: &ParseCtx<'_>) -> Result<Post, ItemError> {
    let thing: Thing = serde_json::from_value(child).map_err(|e| ItemError::Shape(cut(&e.to_string())))?;
    if thing.kind != "t3" {
        return Err(ItemError::Shape(format!("kind {:?}, expected t3", cut(&thing.kind))));
    }
    let link = thing.data;
    let created_at = unix_seconds(link.created_utc)?;
    let text = if link.selftext.trim().is_empty() { link.title } else { format!("{}\n{}", link.title, link.selftext) };
    let url = link.permalink.map(|p| format!("{}{p}", site.trim_end_matches('/')));
    let engagement = Engagement { likes: link.ups, shares: None, replies: link.num_comments };
    // Reddit does not declare a language.
    finish(ctx, link.id, url, &link.author, text, None, created_at, engagement)
}

fn unix_seconds(secs: f64) -> Result<DateTime<Utc>, ItemError> {
    if !secs.is_finite() || !(0.0..1e11).contains(&secs) {
        return Err(ItemError::BadTime(secs.to_string()));
    }
    DateTime::from_timestamp(secs as i64, 0).ok_or_else(|| ItemError::BadTime(secs.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::{ctx, fixture};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_format_listing() {
        let page = parse_listing(&fixture("reddit_new.json"), "https://www.reddit.com", &ctx()).unwrap();
        assert_eq!(page.after.as_deref(), Some("t3_1gvw9zz"));
        assert_eq!(page.items.posts.len(), 2, "{:?}", page.items.errors);
        assert_eq!(page.items.errors.len(), 2);
        let p = &page.items.posts[0];
        assert_eq!(p.id, "1gvx1ab");
        assert_eq!(
            p.text,
            "Flooding in District 7 again\nNguyen Huu Tho street is under water after 30 minutes of rain."
        );
        assert_eq!(
            p.url.as_deref(),
            Some("https://www.reddit.com/r/saigon/comments/1gvx1ab/flooding_in_district_7_again/")
        );
        assert_eq!(p.created_at.timestamp(), 1_732_093_200);
        assert_eq!(p.engagement, Engagement { likes: Some(15), shares: None, replies: Some(7) });
        assert_eq!(p.lang, None);
        assert_eq!(page.items.posts[1].text, "Metro line 1 is finally open");
    }

    #[test]
    fn wrong_json_is_typed() {
        let c = ctx();
        assert!(matches!(parse_listing(b"[]", "", &c), Err(ParseError::Shape(_))));
        assert!(matches!(
            parse_listing(b"{\"kind\":\"t3\",\"data\":{\"children\":[]}}", "", &c),
            Err(ParseError::Shape(_))
        ));
        assert!(matches!(parse_listing(b"{\"kind\":", "", &c), Err(ParseError::Json(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_listing(&bytes, "https://www.reddit.com", &ctx());
        }

        #[test]
        fn arbitrary_created_utc_never_panics(secs in any::<f64>()) {
            let _ = unix_seconds(secs);
        }
    }
}
