//! The e-mail of an alert event: a subject naming severity, rule, topic and place; a plain-text
//! part and an HTML part with the numbers, the example posts, the dashboard link and a small
//! chart of the window against its baseline and threshold.
//!
//! The chart is HTML table cells of set widths, not an image: mail clients block remote images,
//! Gmail and Outlook drop inline SVG, and a table of coloured cells renders everywhere (and
//! reads as text for a screen reader).

use crate::event::AlertEvent;
use crate::message::{cut, fields, headline, EXAMPLE_POSTS};
use std::fmt::Write;

/// One message, whatever carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The `Message-ID`'s left part: the same on every retry of one event, so a mail client
    /// that gets a retried message twice shows it once.
    pub id: String,
}

/// `&`, `<`, `>` and `"` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn alert_mail(e: &AlertEvent) -> Mail {
    Mail {
        subject: format!("[citypulse] {}", headline(e)),
        text: text(e),
        html: html(e),
        id: format!("{}.{}", e.event_id, e.event),
    }
}

fn text(e: &AlertEvent) -> String {
    let mut s = format!("{}\n\n", headline(e));
    for (k, v) in fields(e) {
        let _ = writeln!(s, "{k}: {v}");
    }
    if !e.evidence.is_empty() {
        s.push_str("\nExample posts:\n");
    }
    for p in e.evidence.iter().take(EXAMPLE_POSTS) {
        let _ = writeln!(s, "- \"{}\" ({}, {})", cut(&p.text_redacted, 280), p.sentiment, p.created_at.format("%H:%M"));
        if let Some(url) = &p.url {
            let _ = writeln!(s, "  {url}");
        }
    }
    if let Some(url) = &e.dashboard_url {
        let _ = write!(s, "\nDashboard: {url}\n");
    }
    s
}

fn html(e: &AlertEvent) -> String {
    let mut s = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:Arial,sans-serif;color:#1f2328;max-width:640px\">",
    );
    let _ = write!(s, "<h2 style=\"margin:0 0 12px\">{}</h2>", esc(&headline(e)));
    s.push_str(&chart(e));
    s.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse;margin:12px 0\">");
    for (k, v) in fields(e) {
        let _ = write!(s, "<tr><th align=\"left\" style=\"color:#57606a\">{k}</th><td>{}</td></tr>", esc(&v));
    }
    s.push_str("</table>");
    if !e.evidence.is_empty() {
        s.push_str("<h3 style=\"margin:16px 0 4px\">Example posts</h3>");
    }
    for p in e.evidence.iter().take(EXAMPLE_POSTS) {
        let source = p.url.as_deref().map(|u| format!(" · <a href=\"{}\">source</a>", esc(u))).unwrap_or_default();
        let _ = write!(
            s,
            "<blockquote style=\"margin:6px 0;padding:4px 10px;border-left:3px solid #d0d7de\">{}\
             <br><small style=\"color:#57606a\">{}, {}{source}</small></blockquote>",
            esc(&cut(&p.text_redacted, 280)),
            esc(&p.sentiment),
            p.created_at.format("%H:%M"),
        );
    }
    if let Some(url) = &e.dashboard_url {
        let _ = write!(s, "<p><a href=\"{}\">Open the dashboard</a></p>", esc(url));
    }
    s.push_str("</body></html>");
    s
}

/// Bars for this window, the baseline median (when there is one) and the threshold, scaled to
/// the largest. For a watch-terms rule (no baseline) the threshold is the comparison.
fn chart(e: &AlertEvent) -> String {
    let median = e.baseline.as_ref().and_then(|b| b.median);
    let mut bars = vec![("This window", e.observed, "#cf222e")];
    if let Some(m) = median {
        bars.push(("Baseline median", m, "#8c959f"));
    }
    bars.push(("Threshold", e.threshold, "#bf8700"));
    let max = bars.iter().map(|b| b.1.abs()).fold(0.0_f64, f64::max);
    let mut s = String::from("<table cellpadding=\"2\" style=\"border-collapse:collapse\" role=\"img\" aria-label=\"window against baseline\">");
    for (label, value, colour) in bars {
        let width = if max > 0.0 { ((value.abs() / max) * 240.0).round().max(2.0) } else { 2.0 };
        let _ = write!(
            s,
            "<tr><td style=\"font-size:12px;color:#57606a;padding-right:8px\">{label}</td>\
             <td><table cellpadding=\"0\" cellspacing=\"0\"><tr><td width=\"{width}\" height=\"12\" \
             style=\"background:{colour};width:{width}px;height:12px;font-size:0\">&nbsp;</td>\
             <td style=\"font-size:12px;padding-left:6px\">{value:.2}</td></tr></table></td></tr>"
        );
    }
    s.push_str("</table>");
    s
}
