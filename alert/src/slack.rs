//! The Slack message of an alert event, for an incoming webhook: `text` (the fallback shown in
//! notifications) and `blocks` (a header, the numbers as fields, the example posts, the dashboard
//! link). Delivered with the webhook's rules (retries, Retry-After, one delivery id).

use crate::event::AlertEvent;
use serde_json::{json, Value};

fn headline(e: &AlertEvent) -> String {
    let what = match e.event.as_str() {
        "resolved" => "Resolved",
        "renotified" => "Still firing, worse",
        _ => "Alert",
    };
    let place = if e.place == "*" { "the whole city".to_owned() } else { e.place.clone() };
    let topic = if e.topic == "*" { "all topics".to_owned() } else { e.topic.clone() };
    format!("{what} ({}): {} — {topic}, {place}", e.severity, e.rule)
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in user text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn message(e: &AlertEvent) -> Value {
    let median = e.baseline.as_ref().and_then(|b| b.median).map_or("–".to_owned(), |m| format!("{m:.2}"));
    let fields = [
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
    ];
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": headline(e).chars().take(150).collect::<String>()}}),
        json!({"type": "section", "fields": fields.iter().map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", esc(v))})).collect::<Vec<_>>()}),
    ];
    for p in e.evidence.iter().take(5) {
        let link = p.url.as_deref().map(|u| format!(" <{u}|source>")).unwrap_or_default();
        let text: String = p.text_redacted.chars().take(280).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("> {} _({}, {})_{link}", esc(&text), p.sentiment, p.created_at.format("%H:%M"))}}));
    }
    if let Some(url) = &e.dashboard_url {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open the dashboard"}, "url": url}]}));
    }
    json!({"text": headline(e), "blocks": blocks})
}
