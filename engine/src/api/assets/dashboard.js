// Sluice live dashboard. One EventSource on /api/v1/events brings a `status`
// document per second (see api/dashboard.rs `Status`); everything is drawn
// from it: hand-drawn canvas charts, tables, and one panel per view whose
// kind (alerts, grid, leaderboard, table) the server picked. No libraries and
// nothing fetched from elsewhere.
"use strict";

const HISTORY_MS = 120_000; // longest span of the charts
const MIN_SPAN_MS = 30_000; // shortest span, while history is younger than this
const STALE_MS = 5_000; // no update for this long: the page greys out
const COLORS = ["#5cc8f5", "#74c77a", "#ffb454", "#c792ea", "#ff6b68", "#4dd0c4", "#e6d85c", "#f48fb1"];
const token = new URLSearchParams(location.hash.slice(1)).get("token");

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n) => {
  if (n == null || !Number.isFinite(n)) return "–";
  const a = Math.abs(n);
  return a >= 1e9 ? (n / 1e9).toFixed(2) + "G" : a >= 1e6 ? (n / 1e6).toFixed(2) + "M"
    : a >= 1e4 ? (n / 1e3).toFixed(1) + "k" : Number.isInteger(n) ? String(n) : n.toFixed(a < 10 ? 2 : 1);
};
const bytes = (n) => n >= 2 ** 30 ? (n / 2 ** 30).toFixed(1) + " GiB" : n >= 2 ** 20 ? (n / 2 ** 20).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
const dur = (ms) => {
  if (ms == null || !Number.isFinite(ms)) return "–";
  const a = Math.abs(ms);
  return a < 1e3 ? Math.round(ms) + " ms" : a < 6e4 ? (ms / 1e3).toFixed(1) + " s" : a < 36e5 ? (ms / 6e4).toFixed(1) + " min"
    : a < 864e5 ? (ms / 36e5).toFixed(1) + " h" : (ms / 864e5).toFixed(1) + " d";
};
const clock = (ms) => ms == null ? "–" : new Date(ms).toISOString().slice(11, 19);
const stamp = (ms) => ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);

// ---------------------------------------------------------------- charts

// `least`: the smallest top of the y axis (no "0.25 records" on an idle chart).
const charts = {
  rate: { title: "Records in per second", y: fmt, least: 4, series: new Map() },
  lag: { title: "Lag in records", y: fmt, least: 4, series: new Map() },
  wm: { title: "Watermark lag", y: dur, least: 1000, series: new Map() },
};
const jobColors = new Map();
const colorOf = (name) => {
  if (!jobColors.has(name)) jobColors.set(name, COLORS[jobColors.size % COLORS.length]);
  return jobColors.get(name);
};

function record(chart, name, t, v) {
  const s = charts[chart].series;
  if (!s.has(name)) s.set(name, []);
  const a = s.get(name);
  a.push({ t, v });
  while (a.length && a[0].t < t - HISTORY_MS) a.shift();
}

// Round the top of the axis up to 1, 2 or 5 times a power of ten.
function niceTop(max, least) {
  max = Math.max(max, least);
  const raw = max / 4, mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  return { top: step * Math.ceil(max / step), step };
}

function draw(id, now) {
  const c = charts[id], canvas = $("chart-" + id);
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 58, R = 8, T = 8, B = 20, pw = w - L - R, ph = h - T - B;
  for (const [name, a] of c.series) if (!a.length || a[a.length - 1].t < now - HISTORY_MS) c.series.delete(name);
  let max = 0, oldest = now;
  for (const a of c.series.values()) for (const p of a) { if (p.v != null) max = Math.max(max, p.v); oldest = Math.min(oldest, p.t); }
  const { top, step } = niceTop(max, c.least);
  // The x axis spans the history there is, between MIN_SPAN_MS and HISTORY_MS.
  const span = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - oldest));
  const x = (t) => L + pw * (1 - (now - t) / span), y = (v) => T + ph * (1 - v / top);
  g.font = "11px system-ui, sans-serif"; g.lineWidth = 1; g.strokeStyle = "#2a3747"; g.fillStyle = "#9aa8b6";
  g.textAlign = "right"; g.textBaseline = "middle";
  for (let v = 0; v <= top + step / 2; v += step) {
    g.beginPath(); g.moveTo(L, Math.round(y(v)) + 0.5); g.lineTo(w - R, Math.round(y(v)) + 0.5); g.stroke();
    g.fillText(c.y(v), L - 6, y(v));
  }
  g.textBaseline = "top";
  const ago = (ms) => ms < 6e4 ? `−${Math.round(ms / 1e3)} s` : `−${+(ms / 6e4).toFixed(1)} min`;
  for (const [t, label, align] of [[now - span, ago(span), "left"], [now - span / 2, ago(span / 2), "center"], [now, "now", "right"]]) {
    g.textAlign = align;
    g.fillText(label, x(t), h - B + 5);
  }
  let points = 0;
  const legend = [], spoken = [];
  for (const [name, a] of c.series) {
    const color = colorOf(name);
    g.strokeStyle = color; g.fillStyle = color; g.lineWidth = 2; g.beginPath();
    let open = false;
    for (const p of a) {
      if (p.v == null) { open = false; continue; }
      points++;
      open ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v));
      open = true;
    }
    g.stroke();
    const last = a[a.length - 1];
    if (last.v != null) { g.beginPath(); g.arc(x(last.t), y(last.v), 3, 0, 2 * Math.PI); g.fill(); }
    legend.push(`<span><i style="background:${color}"></i>${esc(name)} <b>${c.y(last.v)}</b></span>`);
    spoken.push(`${name} ${c.y(last.v)}`);
  }
  canvas.dataset.points = points;
  canvas.setAttribute("aria-label", `${c.title} over the last ${ago(span).slice(1)}: ${spoken.join(", ") || "no running jobs"}`);
  $("legend-" + id).innerHTML = legend.join("");
}

// ---------------------------------------------------------------- tables

const num = (field, v, text) => `<td class="num" data-field="${field}" data-value="${v ?? ""}">${text ?? fmt(v)}</td>`;

function jobRow(j, now) {
  const wmLag = j.watermark == null ? null : now - j.watermark;
  const ckpt = j.last_checkpoint_ms == null ? "no checkpoint yet"
    : `last ${dur(now - j.last_checkpoint_ms)} ago, ${bytes(j.last_checkpoint_bytes)}, took ${(j.last_checkpoint_us / 1e3).toFixed(1)} ms`;
  const bad = (n) => n > 0 ? `<b class="bad">${fmt(n)}</b>` : "0";
  let row = `<tr data-job="${esc(j.name)}"><th scope="row">${esc(j.name)}</th>
    <td><span class="pill ${esc(j.state)}">${esc(j.state)}</span></td>
    ${num("rate_in", j.rate_in)}${num("rate_out", j.rate_out)}${num("records_in", j.records_in)}${num("records_out", j.records_out)}
    ${num("lag", j.lag)}<td data-field="watermark" data-value="${j.watermark ?? ""}">${stamp(j.watermark)}</td>
    ${num("watermark_lag", wmLag, dur(wmLag))}
    <td class="num" data-field="checkpoints" data-value="${j.checkpoints}" title="${esc(ckpt)}">${fmt(j.checkpoints)}</td>
    ${num("late_events", j.late_events)}${num("dead_letters", j.dead_letters, bad(j.dead_letters))}${num("errors", j.errors, bad(j.errors))}</tr>`;
  if (j.reason) row += `<tr><td></td><td colspan="12" class="reason">${esc(j.state)}: ${esc(j.reason)}</td></tr>`;
  return row;
}

const body = (id, rows, empty, cols) => {
  $(id).tBodies[0].innerHTML = rows.length ? rows.join("") : `<tr><td colspan="${cols}" class="muted">${empty}</td></tr>`;
};

// ---------------------------------------------------------------- views

function surgeColor(m) {
  const t = Math.max(0, Math.min(1, (m - 1) / 2)); // ×1 green → ×3 and above red
  return `hsl(${130 - 130 * t}, ${55 + 25 * t}%, ${55 + 3 * t}%)`;
}

function alerts(rows) {
  return `<ol class="alerts">${rows.map((r) => {
    const a = r.value || {}, ids = Array.isArray(a.txn_ids) ? a.txn_ids : [];
    const amounts = Array.isArray(a.amounts) ? a.amounts.filter(Number.isFinite) : [];
    const total = amounts.reduce((s, x) => s + x, 0);
    return `<li data-row><span class="rule">${esc(a.rule)}</span> payer <b>${esc(a.payer)}</b>
      ${a.detected_at != null ? `<span class="muted">at ${clock(a.detected_at)} UTC</span>` : ""}
      <div class="txns">${ids.length} transaction${ids.length === 1 ? "" : "s"}: ${ids.slice(0, 4).map(esc).join(", ")}${ids.length > 4 ? ", …" : ""}
      ${amounts.length ? ` · total ${total.toLocaleString("en")}` : ""}</div></li>`;
  }).join("")}</ol>`;
}

function grid(rows) {
  const cells = rows.map((r) => ({ cell: String(r.value.cell), m: Number(r.value.multiplier), at: /^(-?\d+)-(-?\d+)$/.exec(r.value.cell) }));
  const placed = cells.every((c) => c.at);
  const rs = placed ? cells.map((c) => +c.at[1]) : [], cs = placed ? cells.map((c) => +c.at[2]) : [];
  const r0 = Math.min(...rs), c0 = Math.min(...cs), width = placed ? Math.max(...cs) - c0 + 1 : 0;
  const layout = placed && width <= 30 ? `grid-template-columns:repeat(${width}, minmax(2.6rem, 1fr))` : "grid-template-columns:repeat(auto-fill, minmax(3.4rem, 1fr))";
  const items = cells.map((c, i) => {
    const where = placed && width <= 30 ? `grid-row:${rs[i] - r0 + 1};grid-column:${cs[i] - c0 + 1};` : "";
    return `<div class="cell" role="listitem" data-row style="${where}background:${surgeColor(c.m)}" title="cell ${esc(c.cell)}: ×${c.m.toFixed(2)}">${esc(c.cell)}<br> <b>×${c.m.toFixed(2)}</b></div>`;
  });
  return `<div class="grid" role="list" style="${layout}">${items.join("")}</div>
    <div class="scale" aria-hidden="true">×1<span></span>×3+</div>`;
}

function leaderboard(rows) {
  const best = Math.max(1, ...rows.map((r) => Number(r.value.points) || 0));
  return `<table><thead><tr><th scope="col" class="num">rank</th><th scope="col">key</th><th scope="col">points</th></tr></thead><tbody>${rows.map((r, i) => {
    const p = Number(r.value.points) || 0, name = r.value.name ?? r.value.player;
    return `<tr data-row><td class="num">${i + 1}</td><th scope="row">${esc(r.key)}${name != null ? ` <span class="muted">${esc(name)}</span>` : ""}</th>
      <td class="bar" data-value="${p}"><span style="width:${(100 * Math.max(0, p) / best).toFixed(1)}%"></span><b>${fmt(p)}</b></td></tr>`;
  }).join("")}</tbody></table>`;
}

const scalar = (x) => x === null || typeof x !== "object" || (Array.isArray(x) && x.every((y) => y === null || typeof y !== "object"));

function cellText(field, x) {
  if (Array.isArray(x)) return x.slice(0, 5).map(esc).join(", ") + (x.length > 5 ? ", …" : "");
  if (typeof x === "number") {
    if (/(^ts$|_at$|time$)/.test(field) && x > 1e11) return clock(x);
    return Number.isInteger(x) ? x.toLocaleString("en") : x.toFixed(2);
  }
  return esc(x ?? "");
}

function table(rows) {
  const first = rows[0].value;
  const object = first !== null && typeof first === "object" && !Array.isArray(first);
  const cols = object ? Object.keys(first).filter((c) => !["key", "window_start", "window_end"].includes(c) && scalar(first[c])).slice(0, 7) : [];
  const windowed = rows.some((r) => r.window_start != null);
  const numeric = (c) => typeof first[c] === "number" && !/(^ts$|_at$|time$)/.test(c);
  const head = `<tr><th scope="col">key</th>${windowed ? "<th scope=\"col\">window (UTC)</th>" : ""}${object ? cols.map((c) => `<th scope="col"${numeric(c) ? " class=\"num\"" : ""}>${esc(c)}</th>`).join("") : "<th scope=\"col\">value</th>"}</tr>`;
  const trs = rows.map((r) => `<tr data-row><th scope="row">${esc(r.key)}</th>${windowed ? `<td>${clock(r.window_start)}–${clock(r.window_end)}</td>` : ""}${
    object ? cols.map((c) => `<td${numeric(c) ? " class=\"num\"" : ""}>${cellText(c, (r.value || {})[c])}</td>`).join("")
      : `<td>${esc(JSON.stringify(r.value))}</td>`}</tr>`);
  return `<div class="scroll"><table><thead>${head}</thead><tbody>${trs.join("")}</tbody></table></div>`;
}

const RENDER = { alerts, grid, leaderboard, table };
const NOUN = { alerts: "alerts", grid: "cells in the newest window", leaderboard: "entries", table: "entries" };

function view(v, i) {
  const kind = RENDER[v.kind] ? v.kind : "table";
  const id = `view-${i}`;
  const shown = v.rows.length < v.total ? `${v.rows.length} of ${fmt(v.total)}` : fmt(v.total);
  return `<article data-view="${esc(v.view)}" data-kind="${kind}" aria-labelledby="${id}">
    <h3 id="${id}">${esc(v.view)}<small>${shown} ${NOUN[kind]}</small></h3>
    ${v.rows.length ? RENDER[kind](v.rows) : `<p class="muted">no results yet</p>`}</article>`;
}

// ---------------------------------------------------------------- status

let lastUpdate = 0;

function render(s) {
  const now = s.now_ms, running = s.jobs.filter((j) => j.state === "running");
  let rin = 0, rout = 0, lag = 0, wmMax = null;
  for (const j of running) {
    rin += j.rate_in; rout += j.rate_out; lag += j.lag;
    if (j.watermark != null) wmMax = Math.max(wmMax ?? -Infinity, now - j.watermark);
    record("rate", j.name, now, j.rate_in);
    record("lag", j.name, now, j.lag);
    record("wm", j.name, now, j.watermark == null ? null : now - j.watermark);
  }
  $("jobs-running").textContent = `${running.length}/${s.jobs.length}`;
  $("rate-in").textContent = fmt(rin); $("rate-out").textContent = fmt(rout);
  $("lag").textContent = fmt(lag); $("wm-lag").textContent = dur(wmMax);
  const alive = s.shards.filter((x) => x.alive).length;
  $("shards").innerHTML = alive === s.shards.length ? `${alive}/${s.shards.length}` : `<span class="bad">${alive}/${s.shards.length}</span>`;
  $("uptime").textContent = dur(s.uptime_s * 1e3);
  for (const id of Object.keys(charts)) draw(id, now);
  body("jobs", s.jobs.map((j) => jobRow(j, now)), "no jobs yet", 13);
  $("view-list").innerHTML = s.views.length ? s.views.map(view).join("") : `<p class="muted">no views yet: a job with a <code>view</code> sink creates one</p>`;
  body("shard-table", s.shards.map((x) => `<tr><th scope="row">${x.id}</th><td>${x.core ?? "–"}</td>
    <td>${x.alive ? "yes" : `<span class="bad" title="${esc(x.last_panic)}">stuck</span>`}</td>${num("records_in", x.records_in)}
    ${num("ingested", x.ingested)}${num("queued", x.queued)}${num("panics", x.panics, x.panics ? `<b class="bad">${x.panics}</b>` : "0")}</tr>`), "no shards", 7);
  body("topic-table", s.topics.map((t) => `<tr><th scope="row">${esc(t.name)}</th>${num("records", t.records)}<td class="num">${bytes(t.size_bytes)}</td></tr>`), "no topics yet", 3);
  lastUpdate = Date.now();
  $("main").classList.remove("stale");
}

function connected(ok, why) {
  const c = $("conn");
  c.textContent = ok ? "live" : why || "reconnecting…";
  c.className = ok ? "live" : "off";
}

// Why the server refused the stream, in words a person can act on.
function refused(status) {
  return status === 401 || status === 403
    ? "this server needs a read token: open this page as /#token=<token>"
    : `disconnected (HTTP ${status}); retrying`;
}

setInterval(() => { if (lastUpdate && Date.now() - lastUpdate > STALE_MS) $("main").classList.add("stale"); }, 1000);

function connect() {
  // EventSource cannot send headers: with a read token (#token=… in the
  // address), poll /api/v1/status instead.
  if (token) {
    const poll = () => fetch("/api/v1/status", { headers: { Authorization: "Bearer " + token } })
      .then((r) => { if (!r.ok) throw new Error(r.status === 403 ? "the token in the address is not accepted" : `disconnected (HTTP ${r.status}); retrying`); return r.json(); })
      .then((s) => { connected(true); render(s); })
      .catch((e) => connected(false, e.message))
      .finally(() => setTimeout(poll, 1000));
    poll();
    return;
  }
  const es = new EventSource("/api/v1/events");
  es.addEventListener("status", (e) => { connected(true); render(JSON.parse(e.data)); });
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) return connected(false); // the browser retries
    // Refused outright (the browser gives up): ask why, then try again.
    fetch("/api/v1/status").then((r) => connected(false, refused(r.status)), () => connected(false));
    setTimeout(connect, 5000);
  };
}
connect();
