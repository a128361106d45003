//! The Slack message of an alert event, for an incoming webhook: `text` (the fallback shown in
//! notifications) and `blocks` (a header, the numbers as fields, the example posts, the dashboard
//! link). Delivered with the webhook's rules (retries, Retry-After, one delivery id).

use crate::event::AlertEvent;
use crate::message::{cut, fields, headline, EXAMPLE_POSTS};
use serde_json::{json, Value};

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in user text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn message(e: &AlertEvent) -> Value {
    let fields = fields(e);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": headline(e).chars().take(150).collect::<String>()}}),
        json!({"type": "section", "fields": fields.iter().map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", esc(v))})).collect::<Vec<_>>()}),
    ];
    for p in e.evidence.iter().take(EXAMPLE_POSTS) {
        let link = p.url.as_deref().map(|u| format!(" <{u}|source>")).unwrap_or_default();
        let text = cut(&p.text_redacted, 280);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("> {} _({}, {})_{link}", esc(&text), p.sentiment, p.created_at.format("%H:%M"))}}));
    }
    if let Some(url) = &e.dashboard_url {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open the dashboard"}, "url": url}]}));
    }
    json!({"text": headline(e), "blocks": blocks})
}
