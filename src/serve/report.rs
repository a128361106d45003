//! The daily report as one self-contained HTML file: inline CSS and SVG, no script, no external
//! request (links to the posts' sources are links, not loads). Rendered from the same `Summary` as
//! `GET /api/v1/summary`, so the report and the API cannot disagree.

use super::summary::{Change, Summary, TopicDay};
use chrono::Datelike;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

struct Words {
    title: &'static str,
    topics: &'static str,
    topic: &'static str,
    posts: &'static str,
    negative: &'static str,
    neutral: &'static str,
    positive: &'static str,
    net: &'static str,
    vs_day: &'static str,
    vs_weekday: &'static str,
    trend: &'static str,
    places: &'static str,
    place: &'static str,
    day_before: &'static str,
    alerts: &'static str,
    no_alerts: &'static str,
    examples: &'static str,
    footer: &'static str,
    weekdays: [&'static str; 7],
}

const VI: Words = Words {
    title: "Báo cáo dư luận",
    topics: "Chủ đề trong ngày",
    topic: "Chủ đề",
    posts: "Số bài",
    negative: "Tiêu cực",
    neutral: "Trung tính",
    positive: "Tích cực",
    net: "Cảm xúc ròng",
    vs_day: "So với hôm trước",
    vs_weekday: "So với cùng thứ trong 4 tuần trước",
    trend: "14 ngày",
    places: "Địa điểm biến động",
    place: "Địa điểm",
    day_before: "Hôm trước",
    alerts: "Cảnh báo trong ngày",
    no_alerts: "Không có cảnh báo.",
    examples: "Bài tiêu biểu",
    footer: "citypulse · chỉ văn bản đã ẩn thông tin cá nhân · cảm xúc ròng = (tích cực − tiêu cực) / số bài",
    weekdays: ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"],
};

const EN: Words = Words {
    title: "Daily opinion report",
    topics: "Topics of the day",
    topic: "Topic",
    posts: "Posts",
    negative: "Negative",
    neutral: "Neutral",
    positive: "Positive",
    net: "Net sentiment",
    vs_day: "vs the day before",
    vs_weekday: "vs the same weekday, last 4 weeks",
    trend: "14 days",
    places: "Places that moved",
    place: "Place",
    day_before: "Day before",
    alerts: "Alerts of the day",
    no_alerts: "No alerts.",
    examples: "Example posts",
    footer: "citypulse · redacted text only · net sentiment = (positive − negative) / posts",
    weekdays: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn signed(v: Option<f64>, digits: usize) -> String {
    match v {
        None => "–".into(),
        Some(v) if v > 0.0 => format!("+{v:.digits$}"),
        Some(v) if v < 0.0 => format!("−{:.digits$}", -v),
        Some(v) => format!("±{v:.digits$}"),
    }
}

fn change(c: &Change) -> String {
    format!("{} {} · {}", signed(c.posts, 0), "", signed(c.net_sentiment, 2)).replace("  ", " ")
}

fn sparkline(values: &[i64]) -> String {
    let (w, h) = (112.0, 24.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = w / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, h - 2.0 - *v as f64 * (h - 4.0) / max))
        .collect();
    format!(
        r##"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><polyline fill="none" stroke="#0b57d0" stroke-width="1.5" points="{}"/></svg>"##,
        values.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
        points.join(" ")
    )
}

/// Horizontal bars of posts per topic, with the net sentiment written beside each.
fn bars(topics: &[&TopicDay], label: impl Fn(&TopicDay) -> String) -> String {
    let max = topics.iter().map(|t| t.day.posts).max().unwrap_or(0).max(1) as f64;
    let row_h = 22.0;
    let mut svg = format!(
        r#"<svg width="640" height="{}" viewBox="0 0 640 {}" role="img">"#,
        topics.len() as f64 * row_h + 4.0,
        topics.len() as f64 * row_h + 4.0
    );
    for (i, t) in topics.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let w = t.day.posts as f64 / max * 330.0;
        let colour = match t.day.net_sentiment {
            Some(n) if n < -0.05 => "#d9837c",
            Some(n) if n > 0.05 => "#7fb894",
            _ => "#b5bcc5",
        };
        let _ = write!(
            svg,
            r##"<text x="0" y="{:.0}" font-size="12">{}</text><rect x="170" y="{y:.0}" width="{w:.1}" height="16" fill="{colour}"/><text x="{:.0}" y="{:.0}" font-size="12">{} · {}</text>"##,
            y + 13.0,
            esc(&label(t)),
            176.0 + w,
            y + 13.0,
            t.day.posts,
            signed(t.day.net_sentiment, 2)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The whole report.
pub fn render(s: &Summary, city: &str, lang: Lang) -> String {
    let w = if lang == Lang::Vi { &VI } else { &EN };
    let label = |vi: &str, en: &str| if lang == Lang::Vi { vi.to_owned() } else { en.to_owned() };
    let mut topics: Vec<&TopicDay> = s.topics.iter().collect();
    topics.sort_by_key(|t| (std::cmp::Reverse(t.day.posts), t.topic.clone()));
    let weekday = w.weekdays[s.date.weekday().num_days_from_monday() as usize];
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="{}"><head><meta charset="utf-8"><title>{} {}</title><style>{STYLE}</style></head><body>
<h1>{} — {}</h1><p class="sub">{weekday}, {}</p>"#,
        if lang == Lang::Vi { "vi" } else { "en" },
        w.title,
        s.date,
        w.title,
        esc(city),
        s.date
    );
    let _ = write!(h, "<h2>{}</h2>{}", w.topics, bars(&topics, |t| label(&t.label_vi, &t.label_en)));
    let _ = write!(
        h,
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{} ({}, {})</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.topic, w.posts, w.negative, w.neutral, w.positive, w.net, w.vs_day, w.posts, w.net, w.vs_weekday, w.trend
    );
    for t in &topics {
        let _ = write!(
            h,
            r#"<tr data-topic="{}"><td>{}</td><td data-field="posts">{}</td><td data-field="negative">{}</td><td>{}</td><td>{}</td><td data-field="net">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&t.topic),
            esc(&label(&t.label_vi, &t.label_en)),
            t.day.posts,
            t.day.negative,
            t.day.neutral,
            t.day.positive,
            signed(t.day.net_sentiment, 2),
            change(&t.vs_previous_day),
            change(&t.vs_same_weekday),
            sparkline(&t.daily_posts)
        );
    }
    h.push_str("</tbody></table>");
    let _ = write!(
        h,
        "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.places, w.place, w.posts, w.day_before, w.net
    );
    for p in &s.places_moved {
        let _ = write!(
            h,
            r#"<tr data-place="{}"><td>{}</td><td data-field="posts">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&p.place),
            esc(&label(&p.label_vi, &p.label_en)),
            p.posts,
            p.previous_day,
            signed(p.net_sentiment, 2)
        );
    }
    h.push_str("</tbody></table>");
    let _ = write!(h, "<h2>{}</h2>", w.alerts);
    if s.alerts.is_empty() {
        let _ = write!(h, "<p>{}</p>", w.no_alerts);
    }
    for a in &s.alerts {
        let r = &a.row;
        let _ = write!(
            h,
            r#"<div class="alert"><strong>{} · {} · {}</strong> {} / {} · {:.2}"#,
            esc(&r.state),
            esc(&r.severity),
            esc(&r.rule),
            esc(&r.topic),
            esc(&r.place),
            r.peak
        );
        for e in a.evidence.iter().take(3) {
            let _ = write!(h, "<blockquote>{}</blockquote>", esc(&e.text_redacted));
        }
        h.push_str("</div>");
    }
    let _ = write!(h, "<h2>{}</h2>", w.examples);
    for t in topics.iter().filter(|t| !t.examples.is_empty()) {
        let _ = write!(h, "<h3>{}</h3><ul>", esc(&label(&t.label_vi, &t.label_en)));
        for p in &t.examples {
            let link = if p.url.starts_with("https://") || p.url.starts_with("http://") {
                format!(r#" <a href="{}">↗</a>"#, esc(&p.url))
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<li><span class=\"badge\">{}</span> {}{link}</li>",
                esc(&p.sentiment),
                esc(&p.text_redacted)
            );
        }
        h.push_str("</ul>");
    }
    let _ = writeln!(h, "<footer>{}</footer></body></html>", w.footer);
    h
}

/// The report's title in `lang` (the digest's subject).
pub fn title(lang: Lang) -> &'static str {
    if lang == Lang::Vi {
        VI.title
    } else {
        EN.title
    }
}

/// The report as plain text: the digest e-mail's text part, for clients that show no HTML.
pub fn render_text(s: &Summary, city: &str, lang: Lang) -> String {
    let w = if lang == Lang::Vi { &VI } else { &EN };
    let label = |vi: &str, en: &str| if lang == Lang::Vi { vi.to_owned() } else { en.to_owned() };
    let mut topics: Vec<&TopicDay> = s.topics.iter().collect();
    topics.sort_by_key(|t| (std::cmp::Reverse(t.day.posts), t.topic.clone()));
    let unit = if lang == Lang::Vi { "bài" } else { "posts" };
    let mut t = format!("{} — {city} — {}\n\n{}\n", w.title, s.date, w.topics);
    for d in topics.iter().filter(|d| d.day.posts > 0) {
        let _ = writeln!(
            t,
            "- {}: {} {unit} · {} {} · {} {} ({} {})",
            label(&d.label_vi, &d.label_en),
            d.day.posts,
            d.day.negative,
            w.negative.to_lowercase(),
            w.net.to_lowercase(),
            signed(d.day.net_sentiment, 2),
            w.vs_day.to_lowercase(),
            change(&d.vs_previous_day)
        );
    }
    let _ = write!(t, "\n{}\n", w.places);
    for p in &s.places_moved {
        let _ = writeln!(
            t,
            "- {}: {} ({} {})",
            label(&p.label_vi, &p.label_en),
            p.posts,
            w.day_before.to_lowercase(),
            p.previous_day
        );
    }
    let _ = write!(t, "\n{}\n", w.alerts);
    if s.alerts.is_empty() {
        let _ = writeln!(t, "{}", w.no_alerts);
    }
    for a in &s.alerts {
        let r = &a.row;
        let _ = writeln!(t, "- {} · {} · {}: {} / {} · {:.2}", r.state, r.severity, r.rule, r.topic, r.place, r.peak);
    }
    let _ = write!(t, "\n{}\n", w.examples);
    for d in topics.iter().filter(|d| !d.examples.is_empty()) {
        for p in &d.examples {
            let _ = writeln!(t, "- [{}] ({}) {}", label(&d.label_vi, &d.label_en), p.sentiment, p.text_redacted);
        }
    }
    let _ = write!(t, "\n{}\n", w.footer);
    t
}

const STYLE: &str = "body{font:14px/1.45 system-ui,'Segoe UI',Roboto,'Noto Sans',sans-serif;color:#1b1f24;max-width:980px;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.5rem;margin:0}.sub{color:#59636e;margin-top:.2rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #d6dae0}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e3e6ea;padding:.3rem .4rem;text-align:left;vertical-align:middle}\
td[data-field]{text-align:right;font-variant-numeric:tabular-nums}.alert{border-left:4px solid #b3261e;padding:.3rem .6rem;margin:.5rem 0}\
blockquote{margin:.2rem 0 .2rem .6rem;color:#59636e}.badge{font-size:11px;border:1px solid #59636e;border-radius:3px;padding:0 .3rem}\
footer{margin-top:2rem;color:#59636e;font-size:12px}@media print{body{margin:0}}";
