// citypulse dashboard. No framework and no CDN: the office's network may have no internet.
// Charts are SVG drawn here (a sparkline and a bar+line chart need ~60 lines; a vendored chart
// library would be 40-400 kB for the same). The view lives in the URL, so it can be shared.
"use strict";

const T = {
  vi: {
    subtitle: "Dư luận thành phố", lang: "English", lang_hint: "Chuyển sang tiếng Anh", period: "Khoảng thời gian",
    p24h: "24 giờ", p7d: "7 ngày", p30d: "30 ngày", pcustom: "Tùy chọn", since: "Từ", until: "Đến", topic: "Chủ đề",
    place: "Địa điểm", source: "Nguồn", all: "Tất cả", apply: "Áp dụng", topics: "Chủ đề trong kỳ", chart: "Số bài và cảm xúc theo thời gian",
    places_moved: "Địa điểm biến động", alerts: "Cảnh báo", close: "Đóng", more: "Xem thêm", posts: "bài",
    net: "cảm xúc ròng", negative: "tiêu cực", neutral: "trung tính", positive: "tích cực", vs_prev: "so với kỳ trước",
    up: "tăng", down: "giảm", same: "không đổi", no_posts: "Không có bài nào trong khoảng này.", no_alerts: "Không có cảnh báo.",
    firing: "đang cảnh báo", resolved: "đã kết thúc", posts_of: "Bài viết", token_ask: "Mã truy cập API",
    token_use: "Dùng mã", volume: "Số bài", footer: "Chỉ hiển thị văn bản đã ẩn thông tin cá nhân.", open: "mở bài gốc",
    compare: "Kênh của thành phố so với mạng xã hội", official: "Phản ánh qua kênh thành phố", public: "Bài đăng công khai",
    all_topics: "mọi chủ đề", share_neg: "tiêu cực",
    emerging: "Vấn đề mới nổi (chưa thuộc chủ đề nào)", emerging_day: "Ngày", new: "mới", growing: "đang tăng",
    emerging_none: "Không có nhóm bài nào mới hay đang tăng.", emerging_missing: "Chưa có báo cáo cho ngày này.",
    emerging_meta: (r) => `${r.unclaimed_posts} bài chưa thuộc chủ đề nào · ${r.groups_found} nhóm · ${r.is_final ? "cả ngày" : "tính đến " + clock(r.computed_at)}`,
    growth: "so với các ngày trước", unseen: "chưa thấy ở các ngày trước", propose: "Đề xuất thành chủ đề", proposed: "Đã ghi đề xuất vào", no_history: "chưa có ngày trước để so sánh",
    searches: "Tìm kiếm đã lưu", search_pick: "Tìm kiếm", search_none: "Chưa có tìm kiếm nào được lưu.", search_delete: "Xóa tìm kiếm này",
    search_new: "Lưu một tìm kiếm mới", search_name: "Tên (a-z, 0-9, _)", search_query: "Từ khóa (AND, OR, NOT, \"cụm từ\", ngoặc)",
    search_save: "Lưu", search_posts: "xem các bài", from_config: "cấu hình", saved_by: "lưu bởi",
    unindexed: (n) => `${n} bài cũ chưa được lập chỉ mục nên chưa được tính (chạy citypulse searches reindex).`,
    correct: "Nhãn sai?", correct_sentiment: "Cảm xúc đúng", correct_topic: "Chủ đề đúng", correct_save: "Lưu sửa nhãn",
    corrected: "Đã ghi nhận: lần huấn luyện lại tới sẽ học từ đây.", correct_pick: "Chọn nhãn đúng.",
  },
  en: {
    subtitle: "The city's opinion", lang: "Tiếng Việt", lang_hint: "Switch to Vietnamese", period: "Period",
    p24h: "24 hours", p7d: "7 days", p30d: "30 days", pcustom: "Custom", since: "From", until: "To", topic: "Topic",
    place: "Place", source: "Source", all: "All", apply: "Apply", topics: "Topics in this period", chart: "Posts and sentiment over time",
    places_moved: "Places that moved", alerts: "Alerts", close: "Close", more: "More", posts: "posts",
    net: "net sentiment", negative: "negative", neutral: "neutral", positive: "positive", vs_prev: "vs previous period",
    up: "up", down: "down", same: "unchanged", no_posts: "No posts in this period.", no_alerts: "No alerts.",
    firing: "firing", resolved: "resolved", posts_of: "Posts", token_ask: "API access token",
    token_use: "Use token", volume: "Posts", footer: "Only redacted text is shown.", open: "open the original",
    compare: "The city's own channels vs social media", official: "Reports to the city's channels", public: "Public posts",
    all_topics: "all topics", share_neg: "negative",
    emerging: "Emerging issues (no topic claims them)", emerging_day: "Day", new: "new", growing: "growing",
    emerging_none: "No group of posts is new or growing.", emerging_missing: "No report for this day yet.",
    emerging_meta: (r) => `${r.unclaimed_posts} posts no topic claims · ${r.groups_found} groups · ${r.is_final ? "whole day" : "as of " + clock(r.computed_at)}`,
    growth: "vs the days before", unseen: "not seen in the days before", propose: "Propose as a topic", proposed: "Proposal written to", no_history: "no earlier days to compare with",
    searches: "Saved searches", search_pick: "Search", search_none: "No search saved yet.", search_delete: "Delete this search",
    search_new: "Save a new search", search_name: "Name (a-z, 0-9, _)", search_query: "Words (AND, OR, NOT, \"phrases\", parentheses)",
    search_save: "Save", search_posts: "see the posts", from_config: "configuration", saved_by: "saved by",
    unindexed: (n) => `${n} older posts are not indexed yet and not counted (run citypulse searches reindex).`,
    correct: "Wrong label?", correct_sentiment: "Right sentiment", correct_topic: "Right topic", correct_save: "Save correction",
    corrected: "Saved: the next retraining learns from it.", correct_pick: "Pick the right label.",
  },
};

const $ = (id) => document.getElementById(id);
const view = new URLSearchParams(location.search);
let lang = view.get("lang") === "en" ? "en" : "vi";
let meta = { topics: [], places: [], official: [], canWrite: false };
let postsQuery = null;
let searches = [];

function t(key) { return T[lang][key] || key; }
// An instant as this browser's local time of day (the office's screens run in the city's zone).
function clock(iso) { return new Date(iso).toLocaleTimeString(lang === "en" ? "en-GB" : "vi-VN", { hour: "2-digit", minute: "2-digit" }); }
function label(item) { return item ? (lang === "en" ? item.label_en : item.label_vi) : ""; }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v); else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function fmtNet(v) { return v === null || v === undefined || Number.isNaN(v) ? "–" : (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(2); }
function netClass(v) { return v > 0.05 ? "pos" : v < -0.05 ? "neg" : "neu"; }

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  $("lang").textContent = t("lang");
}

function authHeaders() {
  const headers = {};
  const token = sessionStorage.getItem("citypulse-token");
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function answer(res) {
  if (res.status === 401) { $("token-box").hidden = false; throw new Error(t("token_ask")); }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? `${body.error.param || ""}: ${body.error.message}` : res.statusText);
  return body;
}

async function api(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined && v !== null));
  return answer(await fetch(`/api/v1/${path}?${q}`, { headers: authHeaders() }));
}

async function apiPost(path, body) {
  return answer(await fetch(`/api/v1/${path}`, { method: "POST", headers: { ...authHeaders(), "Content-Type": "application/json" }, body: JSON.stringify(body) }));
}

function range() {
  const period = $("period").value;
  if (period === "custom") return { since: $("since").value || "7d", until: $("until").value || undefined, span: null };
  const hours = { "24h": 24, "7d": 168, "30d": 720 }[period];
  const until = new Date();
  const since = new Date(until.getTime() - hours * 3600e3);
  return { since: since.toISOString(), until: until.toISOString(), span: hours * 3600e3 };
}

function sparkline(values) {
  const w = 120, h = 28, max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i * w / Math.max(1, values.length - 1)).toFixed(1)},${(h - 2 - v * (h - 4) / max).toFixed(1)}`);
  const svg = `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${t("volume")}: ${values.join(", ")}"><polyline fill="none" stroke="#0b57d0" stroke-width="1.5" points="${pts.join(" ")}"/></svg>`;
  const span = el("span"); span.innerHTML = svg; return span;
}

function sums(rows) {
  const by = new Map();
  for (const r of rows) {
    const s = by.get(r.key) || { posts: 0, negative: 0, neutral: 0, positive: 0, buckets: new Map() };
    s.posts += r.posts; s.negative += r.negative; s.neutral += r.neutral; s.positive += r.positive;
    s.buckets.set(r.bucket, (s.buckets.get(r.bucket) || 0) + r.posts);
    by.set(r.key, s);
  }
  return by;
}
const net = (s) => (s && s.posts ? (s.positive - s.negative) / s.posts : null);

async function load() {
  $("error").hidden = true;
  const r = range();
  const filters = { place: $("place").value, source: $("source").value };
  const granularity = r.span !== null && r.span <= 48 * 3600e3 ? "hour" : "day";
  saveView(r);
  try {
    const now = await api("trends", { since: r.since, until: r.until, by: "topic", granularity, ...filters });
    let before = { rows: [] };
    if (r.span !== null) {
      const prevSince = new Date(new Date(r.since).getTime() - r.span).toISOString();
      before = await api("trends", { since: prevSince, until: r.since, by: "topic", granularity, ...filters });
    }
    renderTiles(sums(now.rows), sums(before.rows), r, granularity);
    const series = await api("trends", { since: r.since, until: r.until, by: $("topic").value ? "topic" : "source", granularity, topic: $("topic").value, ...filters });
    renderChart(series.rows, granularity);
    if (meta.official.length) {
      const bySource = await api("trends", { since: r.since, until: r.until, by: "source", granularity, topic: $("topic").value, place: $("place").value });
      renderCompare(bySource.rows, r);
    }
    await renderPlaces(r);
    renderAlerts((await api("alerts", { since: r.since })).alerts);
    await renderSearch(r, granularity);
    await renderEmerging();
  } catch (e) { showError(e); }
}

function showError(e) { $("error").textContent = e.message; $("error").hidden = false; }

function renderTiles(now, before, r, granularity) {
  const box = $("tiles"); box.replaceChildren();
  const chosen = $("topic").value;
  // Busiest first: the topics people talk about lead the page.
  const count = (tp) => (now.get(tp.id) || { posts: 0 }).posts;
  const topics = meta.topics.filter((tp) => !chosen || tp.id === chosen).sort((a, b) => count(b) - count(a));
  for (const tp of topics) {
    const s = now.get(tp.id) || { posts: 0, negative: 0, neutral: 0, positive: 0, buckets: new Map() };
    const n = net(s), p = net(before.get(tp.id));
    const delta = n !== null && p !== null ? n - p : null;
    const arrow = delta === null ? "" : delta > 0.02 ? "▲" : delta < -0.02 ? "▼" : "→";
    const word = delta === null ? "" : delta > 0.02 ? t("up") : delta < -0.02 ? t("down") : t("same");
    const keys = [...s.buckets.keys()].sort();
    box.append(el("article", { class: "tile", "data-topic": tp.id },
      el("h3", {}, label(tp)),
      el("button", { class: "n", type: "button", "data-count": "posts", "aria-label": `${s.posts} ${t("posts")} – ${label(tp)}`,
        onclick: () => showPosts({ topic: tp.id, since: r.since, until: r.until }, `${label(tp)}`) }, s.posts),
      el("span", { class: `net ${netClass(n)}`, "data-net": n === null ? "" : n.toFixed(4) }, `${t("net")} ${fmtNet(n)}`),
      el("span", { class: "meta", title: t("vs_prev") }, arrow ? `${arrow} ${word} ${fmtNet(delta)} ${t("vs_prev")}` : ""),
      el("span", { class: "meta" },
        el("button", { class: "link", type: "button", "data-count": "negative",
          onclick: () => showPosts({ topic: tp.id, sentiment: "negative", since: r.since, until: r.until }, `${label(tp)} – ${t("negative")}`) },
          `${s.negative} ${t("negative")}`), ` · ${s.positive} ${t("positive")}`),
      sparkline(keys.map((k) => s.buckets.get(k)))));
  }
}

function renderChart(rows, granularity, box = $("chart")) {
  const buckets = [...new Set(rows.map((r) => r.bucket))].sort();
  if (!buckets.length) { box.replaceChildren(el("p", {}, t("no_posts"))); return; }
  const agg = buckets.map((b) => rows.filter((r) => r.bucket === b).reduce((a, r) => ({ posts: a.posts + r.posts, pos: a.pos + r.positive, neg: a.neg + r.negative }), { posts: 0, pos: 0, neg: 0 }));
  const w = 900, h = 220, pad = 30, max = Math.max(1, ...agg.map((a) => a.posts)), bw = (w - 2 * pad) / buckets.length;
  let bars = "", line = [];
  agg.forEach((a, i) => {
    const bh = (a.posts / max) * (h - 2 * pad), x = pad + i * bw;
    bars += `<rect x="${(x + 1).toFixed(1)}" y="${(h - pad - bh).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="#9db7e8"><title>${buckets[i]}: ${a.posts} ${t("posts")}</title></rect>`;
    const n = a.posts ? (a.pos - a.neg) / a.posts : 0;
    line.push(`${(x + bw / 2).toFixed(1)},${(h / 2 - n * (h / 2 - pad)).toFixed(1)}`);
  });
  const fmt = (b) => granularity === "hour" ? b.slice(5, 16).replace("T", " ") : b.slice(0, 10);
  box.innerHTML = `<svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${t("chart")}">
    <line x1="${pad}" x2="${w - pad}" y1="${h / 2}" y2="${h / 2}" stroke="#d6dae0" stroke-dasharray="4"/>${bars}
    <polyline fill="none" stroke="#1b1f24" stroke-width="2" points="${line.join(" ")}"/>
    <text x="${pad}" y="${h - 8}" font-size="12" fill="#59636e">${fmt(buckets[0])}</text>
    <text x="${w - pad}" y="${h - 8}" font-size="12" fill="#59636e" text-anchor="end">${fmt(buckets[buckets.length - 1])}</text>
    <text x="${pad}" y="14" font-size="12" fill="#59636e">max ${max} ${t("posts")}</text></svg>
    <p class="legend">▮ ${t("volume")} · ━ ${t("net")} (−1 … +1)</p>`;
}

// The same topic as the city's own channels (1022…) report it and as people post it in public:
// each side with its own scale, since a hotline's dozens and social media's thousands differ.
function renderCompare(rows, r) {
  const chosen = meta.topics.find((x) => x.id === $("topic").value);
  $("h-compare").textContent = `${t("compare")} – ${chosen ? label(chosen) : t("all_topics")}`;
  const box = $("compare"); box.replaceChildren();
  const buckets = [...new Set(rows.map((x) => x.bucket))].sort();
  for (const side of ["official", "public"]) {
    const mine = rows.filter((x) => meta.official.includes(x.key) === (side === "official"));
    const total = mine.reduce((a, x) => ({ posts: a.posts + x.posts, neg: a.neg + x.negative, pos: a.pos + x.positive }), { posts: 0, neg: 0, pos: 0 });
    const n = total.posts ? (total.pos - total.neg) / total.posts : null;
    const share = total.posts ? Math.round((100 * total.neg) / total.posts) : 0;
    const series = buckets.map((b) => mine.filter((x) => x.bucket === b).reduce((a, x) => a + x.posts, 0));
    const sources = side === "official" ? meta.official.join(", ") : "";
    box.append(el("article", { class: "side", "data-side": side },
      el("h3", {}, t(side), sources ? el("small", { class: "meta" }, ` (${sources})`) : ""),
      // The one official channel's posts can be listed (the API filters by one source).
      side === "official" && meta.official.length === 1
        ? el("button", { class: "n link", type: "button", "data-count": "posts",
          onclick: () => showPosts({ topic: $("topic").value, since: r.since, until: r.until, source: meta.official[0] }, t(side)) }, total.posts)
        : el("span", { class: "n", "data-count": "posts" }, total.posts),
      el("span", { class: "meta", "data-count": "negative" }, `${total.neg} ${t("share_neg")} (${share}%) · ${t("net")} ${fmtNet(n)}`),
      sparkline(series)));
  }
  $("compare-panel").hidden = false;
}

// Groups of posts no topic claims that are new or growing (the emerging job's saved report).
async function renderEmerging() {
  const box = $("emerging"); box.replaceChildren(); $("emerging-meta").textContent = "";
  const answer = await api("emerging", { date: $("emerging-date").value });
  $("emerging-date").value = answer.date;
  const r = answer.report;
  if (!r) { box.append(el("p", {}, t("emerging_missing"))); return; }
  $("emerging-meta").textContent = t("emerging_meta")(r) + (r.baseline_days_with_posts ? "" : ` · ${t("no_history")}`);
  if (!r.groups.length) { box.append(el("p", {}, t("emerging_none"))); return; }
  for (const g of r.groups) {
    const places = g.places.slice(0, 3).map((p) => { const pl = meta.places.find((x) => x.id === p.place); return `${pl ? label(pl) : p.place} (${p.posts})`; });
    const result = el("div", { class: "proposal" });
    const card = el("article", { class: `group ${g.status}`, "data-rank": g.rank },
      el("h3", {}, el("span", { class: "badge" }, t(g.status)), ` ${g.label}`),
      el("span", { class: "meta" }, `${g.posts} ${t("posts")} · ${g.baseline_per_day < 0.05 ? t("unseen") : `×${g.growth.toFixed(1)} ${t("growth")}`} · ${Math.round(100 * g.share_negative)}% ${t("share_neg")}${places.length ? " · " + places.join(", ") : ""}`));
    for (const x of g.examples.slice(0, 3)) card.append(el("blockquote", {}, x));
    card.append(el("button", { type: "button", class: "propose", onclick: async () => {
      try {
        const p = await apiPost("emerging/proposals", { date: r.date, rank: g.rank, computed_at: r.computed_at });
        result.replaceChildren(el("p", {}, `${t("proposed")} ${p.path}`), el("pre", {}, p.block));
      } catch (e) { result.replaceChildren(el("p", { class: "error" }, e.message)); }
    } }, t("propose")), result);
    box.append(card);
  }
}

// A saved search as a series: volume and net sentiment over the chosen period, the posts behind it.
let searchTicket = 0;
async function renderSearch(r, granularity) {
  // Renders may overlap (a save reloads the page's data while a first load is still running):
  // only the latest one draws.
  const ticket = ++searchTicket;
  const name = $("search").value;
  const box = $("search-chart");
  const s = searches.find((x) => x.name === name);
  $("search-delete").hidden = !s || s.origin !== "api" || !meta.canWrite;
  if (!s) { box.replaceChildren(el("p", {}, t("search_none"))); $("search-meta").replaceChildren(); return; }
  const answer = await api(`searches/${encodeURIComponent(name)}/trends`, { since: r.since, until: r.until, granularity });
  if (ticket !== searchTicket) return;
  $("search-meta").replaceChildren();
  const total = answer.rows.reduce((a, x) => ({ posts: a.posts + x.posts, neg: a.neg + x.negative, pos: a.pos + x.positive }), { posts: 0, neg: 0, pos: 0 });
  const share = total.posts ? Math.round((100 * total.neg) / total.posts) : 0;
  const origin = s.origin === "api" ? `${t("saved_by")} ${s.saved_by}` : t("from_config");
  $("search-meta").append(el("code", {}, s.query), ` · ${origin}${s.description ? " · " + s.description : ""} · `,
    el("button", { class: "link", type: "button", "data-count": "posts",
      onclick: () => showPosts({ search: name, since: r.since, until: r.until }, s.name) }, `${total.posts} ${t("posts")}`),
    ` · ${total.neg} ${t("negative")} (${share}%) · ${t("net")} ${fmtNet(total.posts ? (total.pos - total.neg) / total.posts : null)}`);
  if (answer.unindexed_posts) $("search-meta").append(el("span", { class: "error-text" }, ` · ${t("unindexed")(answer.unindexed_posts)}`));
  renderChart(padBuckets(answer.rows, r, granularity), granularity, box);
}

// Empty buckets as zeros, so that a search's quiet hours show as such: bucket times are built in
// the city's offset as the API writes it (taken from a row; a DST change inside the range may
// leave an hour unpadded, never a wrong count).
function padBuckets(rows, r, granularity) {
  if (!rows.length) return rows;
  const off = rows[0].bucket.slice(19);
  const m = /^([+-])(\d\d):(\d\d)$/.exec(off);
  if (!m) return rows;
  const offMs = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60e3;
  const step = granularity === "hour" ? 3600e3 : 86400e3;
  const since = Date.parse(/^\d+[dhw]$/.test(r.since) ? rows[0].bucket : r.since);
  const until = r.until ? Date.parse(r.until) : Date.now();
  const have = new Set(rows.map((x) => x.bucket.slice(0, 16)));
  const out = [...rows];
  for (let t = Math.floor((since + offMs) / step) * step - offMs; t < until && out.length < 2000; t += step) {
    const local = new Date(t + offMs).toISOString().slice(0, 16);
    if (!have.has(local)) out.push({ bucket: `${local}:00${off}`, key: "", posts: 0, positive: 0, neutral: 0, negative: 0 });
  }
  return out.sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
}

async function loadSearches(chosen) {
  searches = (await api("searches")).searches;
  $("search").replaceChildren(...searches.map((s) => el("option", { value: s.name }, s.name)));
  if (chosen && searches.some((s) => s.name === chosen)) $("search").value = chosen;
}

async function saveSearch(e) {
  e.preventDefault();
  $("search-form-error").hidden = true;
  const place = $("search-place").value;
  const body = { name: $("search-name").value.trim(), query: $("search-query").value, places: place ? [place] : [] };
  try {
    await apiPost("searches", body);
    await loadSearches(body.name);
    $("search-new").open = false;
    await load();
  } catch (err) { $("search-form-error").textContent = err.message; $("search-form-error").hidden = false; }
}

async function deleteSearch() {
  const name = $("search").value;
  try {
    await answer(await fetch(`/api/v1/searches/${encodeURIComponent(name)}`, { method: "DELETE", headers: authHeaders() }).then((res) => (res.status === 204 ? new Response("{}") : res)));
    await loadSearches();
    await load();
  } catch (err) { showError(err); }
}

async function renderPlaces(r) {
  const list = $("places"); list.replaceChildren();
  const now = sums((await api("trends", { since: r.since, until: r.until, by: "place", granularity: "day", topic: $("topic").value, source: $("source").value })).rows);
  let before = new Map();
  if (r.span !== null) {
    const prevSince = new Date(new Date(r.since).getTime() - r.span).toISOString();
    before = sums((await api("trends", { since: prevSince, until: r.since, by: "place", granularity: "day", topic: $("topic").value, source: $("source").value })).rows);
  }
  const moves = meta.places.map((p) => ({ p, now: (now.get(p.id) || { posts: 0 }).posts, was: (before.get(p.id) || { posts: 0 }).posts, s: now.get(p.id) }))
    .filter((m) => m.now || m.was).sort((a, b) => Math.abs(b.now - b.was) - Math.abs(a.now - a.was)).slice(0, 8);
  if (!moves.length) list.append(el("li", {}, t("no_posts")));
  for (const m of moves) {
    const d = m.now - m.was;
    list.append(el("li", { "data-place": m.p.id },
      el("button", { class: "link", type: "button", onclick: () => showPosts({ place: m.p.id, topic: $("topic").value, since: r.since, until: r.until }, label(m.p)) }, label(m.p)),
      ` — ${m.now} ${t("posts")} (${d >= 0 ? "▲ +" : "▼ −"}${Math.abs(d)}), `,
      el("span", { class: `net ${netClass(net(m.s))}` }, `${t("net")} ${fmtNet(net(m.s))}`)));
  }
}

function renderAlerts(alerts) {
  const box = $("alerts"); box.replaceChildren();
  if (!alerts.length) { box.append(el("p", {}, t("no_alerts"))); return; }
  for (const a of alerts.slice(0, 10)) {
    const topic = meta.topics.find((x) => x.id === a.topic), place = meta.places.find((x) => x.id === a.place);
    const card = el("div", { class: `alert ${a.state}` },
      el("strong", {}, `${a.state === "firing" ? "⚠ " + t("firing") : "✓ " + t("resolved")} · ${a.severity} · ${a.rule}`),
      el("div", {}, `${topic ? label(topic) : a.topic} · ${place ? label(place) : a.place === "*" ? t("all") : a.place}`));
    for (const p of (a.evidence || []).slice(0, 3)) card.append(el("blockquote", {}, `${p.sentiment === "negative" ? "− " : ""}${p.text_redacted}`));
    box.append(card);
  }
}

async function showPosts(query, title) {
  postsQuery = { ...query, limit: 20 };
  $("posts").replaceChildren();
  $("posts-title").textContent = `${t("posts_of")}: ${title}`;
  $("posts-panel").hidden = false;
  await morePosts();
  $("posts-title").scrollIntoView({ block: "nearest" });
  $("posts-close").focus();
}

async function morePosts() {
  try {
    // A search's posts come from its own endpoint, which takes no topic, place or source filter.
    const { search, ...q } = postsQuery;
    const page = search
      ? await api(`searches/${encodeURIComponent(search)}/posts`, q)
      : await api("posts", { ...q, place: q.place || $("place").value, source: q.source || $("source").value });
    for (const p of page.posts) {
      const mark = { negative: "−", neutral: "○", positive: "+" }[p.sentiment] || "";
      $("posts").append(el("li", { class: "post" },
        el("span", { class: `badge net ${p.sentiment === "negative" ? "neg" : p.sentiment === "positive" ? "pos" : "neu"}` }, `${mark} ${t(p.sentiment)}`),
        `${p.created_at.slice(0, 16).replace("T", " ")} · ${p.source} · `,
        p.url ? el("a", { href: p.url, rel: "noopener noreferrer", target: "_blank" }, t("open")) : "",
        el("div", {}, p.text_redacted),
        correctionForm(p)));
    }
    if (!page.posts.length && !$("posts").children.length) $("posts").append(el("li", {}, t("no_posts")));
    postsQuery.cursor = page.next_cursor;
    $("posts-more").hidden = !page.next_cursor;
  } catch (e) { showError(e); }
}

// An analyst marks a post's sentiment or topic as wrong and gives the right one
// (POST /api/v1/corrections, analyst role); retraining the heads learns from it.
function correctionForm(p) {
  if (!meta.canWrite) return "";
  const choice = (name, items) => el("select", { name, "aria-label": t(`correct_${name}`) },
    el("option", { value: "" }, `${t(`correct_${name}`)}…`), ...items);
  const sentiment = choice("sentiment", ["negative", "neutral", "positive"].filter((s) => s !== p.sentiment).map((s) => el("option", { value: s }, t(s))));
  const topic = choice("topic", meta.topics.filter((x) => x.id !== p.topics[0]).map((x) => el("option", { value: x.id }, label(x))));
  const status = el("span", { class: "correct-status", role: "status" });
  const form = el("form", { class: "correct" }, sentiment, topic, el("button", { type: "submit" }, t("correct_save")), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const asks = [["sentiment", sentiment.value], ["topic", topic.value]].filter(([, v]) => v);
    if (!asks.length) { status.textContent = t("correct_pick"); return; }
    // Each field is its own correction: say which were saved if one is refused.
    const said = [];
    let failed = false;
    for (const [field, value] of asks) {
      try { await apiPost("corrections", { post: p.key, [field]: value }); said.push(asks.length > 1 ? `${t(`correct_${field}`)}: ✓` : ""); }
      catch (err) { failed = true; said.push(err.message); }
    }
    status.textContent = failed ? said.filter(Boolean).join(" · ") : t("corrected");
    if (!failed) form.querySelector("button").disabled = true;
  });
  return el("details", { class: "correct-box" }, el("summary", {}, t("correct")), form);
}

function saveView(r) {
  const q = new URLSearchParams();
  for (const k of ["topic", "place", "source", "search"]) if ($(k).value) q.set(k, $(k).value);
  if ($("period").value === "custom") { q.set("since", r.since); if (r.until) q.set("until", r.until); } else q.set("period", $("period").value);
  if (lang === "en") q.set("lang", "en");
  history.replaceState(null, "", `?${q}`);
}

function fill(select, items, chosen) {
  for (const it of items) select.append(el("option", { value: it.id }, typeof it === "string" ? it : label(it)));
  select.value = chosen || "";
}

async function start() {
  translate();
  $("period").value = view.get("since") ? "custom" : (view.get("period") || "24h");
  $("since").value = view.get("since") || ""; $("until").value = view.get("until") || "";
  const custom = () => document.querySelectorAll(".custom").forEach((e) => { e.hidden = $("period").value !== "custom"; });
  custom();
  $("period").addEventListener("change", custom);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  $("lang").addEventListener("click", () => { lang = lang === "vi" ? "en" : "vi"; translate(); relabel(); load(); });
  $("posts-close").addEventListener("click", () => { $("posts-panel").hidden = true; });
  $("posts-more").addEventListener("click", morePosts);
  // Empty: the API's default, today in the city's time zone; the report then names its date.
  $("emerging-date").value = view.get("emerging") || "";
  $("emerging-date").addEventListener("change", () => renderEmerging().catch(showError));
  $("search").addEventListener("change", () => { const r = range(); saveView(r); renderSearch(r, r.span !== null && r.span <= 48 * 3600e3 ? "hour" : "day").catch(showError); });
  $("search-form").addEventListener("submit", saveSearch);
  $("search-delete").addEventListener("click", deleteSearch);
  $("token-form").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("citypulse-token", $("token").value); $("token-box").hidden = true; init(); });
  await init();
}

function relabel() {
  for (const [id, items] of [["topic", meta.topics], ["place", meta.places]]) {
    for (const opt of $(id).options) { const it = items.find((x) => x.id === opt.value); if (it) opt.textContent = label(it); }
  }
}

async function init() {
  try {
    const [topics, places, configured, me] = await Promise.all([api("topics"), api("places"), api("sources"), api("me")]);
    meta = { topics: topics.topics, places: places.places, official: configured.sources.filter((s) => s.official).map((s) => s.id), canWrite: me.can_write };
    // A viewer's token may read, not write: no form the API would refuse.
    $("search-new").hidden = !meta.canWrite;
    const sources = await api("trends", { since: "30d", by: "source", granularity: "day" });
    for (const id of ["topic", "place", "source"]) $(id).replaceChildren($(id).options[0]);
    fill($("topic"), meta.topics, view.get("topic"));
    fill($("place"), meta.places, view.get("place"));
    $("search-place").replaceChildren($("search-place").options[0]);
    fill($("search-place"), meta.places, "");
    await loadSearches(view.get("search"));
    [...new Set(sources.rows.map((r) => r.key))].sort().forEach((s) => $("source").append(el("option", { value: s }, s)));
    $("source").value = view.get("source") || "";
    await load();
  } catch (e) { showError(e); }
}

start();
