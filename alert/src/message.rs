//! What every human-read notifier says about an event (Slack, e-mail): the headline naming
//! severity, rule, topic and place, and the numbers as labelled fields. One place, so the channels
//! cannot disagree.

use crate::event::AlertEvent;

/// `Alert (critical): flood_terms — flooding, district_7`.
pub fn headline(e: &AlertEvent) -> String {
    if e.kind == "test" {
        return "TEST — not an alert: citypulse notification check".to_owned();
    }
    let what = match e.event.as_str() {
        "resolved" => "Resolved",
        "renotified" => "Still firing, worse",
        _ => "Alert",
    };
    let place = if e.place == "*" { "the whole city".to_owned() } else { e.place.clone() };
    let topic = match &e.search {
        Some(search) => format!("search {search}"),
        None if e.topic == "*" => "all topics".to_owned(),
        None => e.topic.clone(),
    };
    format!("{what} ({}): {} — {topic}, {place}", e.severity, e.rule)
}

/// The numbers, as (label, value) pairs in reading order.
pub fn fields(e: &AlertEvent) -> Vec<(&'static str, String)> {
    let median = e.baseline.as_ref().and_then(|b| b.median).map_or("–".to_owned(), |m| format!("{m:.2}"));
    vec![
        ("Observed", format!("{:.2} (threshold {:.2})", e.observed, e.threshold)),
        ("Baseline median", median),
        ("Posts in the window", e.posts.to_string()),
        (
            "Sentiment",
            format!(
                "{} negative · {} neutral · {} positive",
                e.sentiment.negative, e.sentiment.neutral, e.sentiment.positive
            ),
        ),
        ("Window", format!("{} – {}", e.window.start.format("%Y-%m-%d %H:%M"), e.window.end.format("%H:%M %:z"))),
        ("Terms", if e.terms.is_empty() { "–".to_owned() } else { e.terms.join(", ") }),
    ]
}

/// At most this many example posts go into a message: enough to see what people say, few enough
/// to read on a phone.
pub const EXAMPLE_POSTS: usize = 5;

/// A post's text cut to `max` characters (on a character boundary, with an ellipsis).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}
