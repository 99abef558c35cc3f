// Sluice live dashboard: one EventSource, canvas charts drawn by hand (no
// libraries, nothing fetched from elsewhere).
"use strict";

const HISTORY = 120; // seconds of history in the charts
const COLORS = ["#4fc3f7", "#66bb6a", "#ffa726", "#ab47bc", "#ef5350", "#26c6da", "#d4e157", "#8d6e63"];
const series = { rate: new Map(), lag: new Map() };
const token = new URLSearchParams(location.hash.slice(1)).get("token");

const $ = (id) => document.getElementById(id);
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + "G" : n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n));
const bytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
const time = (ms) => ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

function push(map, name, v) {
  if (!map.has(name)) map.set(name, []);
  const a = map.get(name);
  a.push(v);
  if (a.length > HISTORY) a.shift();
}

function draw(canvas, map, legend) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  let max = 1;
  for (const a of map.values()) for (const v of a) max = Math.max(max, v);
  g.strokeStyle = "#243040"; g.fillStyle = "#7d8b99"; g.font = "11px system-ui";
  for (let i = 0; i <= 4; i++) {
    const y = 8 + (h - 24) * i / 4;
    g.beginPath(); g.moveTo(40, y); g.lineTo(w, y); g.stroke();
    g.fillText(fmt(max * (1 - i / 4)), 0, y + 4);
  }
  let k = 0;
  const items = [];
  for (const [name, a] of map) {
    const color = COLORS[k++ % COLORS.length];
    items.push(`<span><i style="background:${color}"></i>${esc(name)}</span>`);
    g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
    a.forEach((v, i) => {
      const x = 40 + (w - 40) * (i + HISTORY - a.length) / (HISTORY - 1);
      const y = 8 + (h - 24) * (1 - v / max);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
  legend.innerHTML = items.join("");
}

function surgeColor(m) {
  const t = Math.max(0, Math.min(1, (m - 1) / 2));
  return `hsl(${120 - 120 * t}, 70%, ${55 - 10 * t}%)`;
}

function renderView(v) {
  const rows = v.rows;
  if (!rows.length) return `<h3>${esc(v.view)}</h3><p>no results yet</p>`;
  const first = rows[0].value || {};
  if ("multiplier" in first && "cell" in first) {
    const cells = rows.map((r) => `<div class="cell" style="background:${surgeColor(r.value.multiplier)}" title="${esc(r.value.cell)}">${esc(r.value.cell)}<br><b>×${Number(r.value.multiplier).toFixed(2)}</b></div>`);
    return `<h3>${esc(v.view)} <small>(${v.total} cells)</small></h3><div class="grid" style="grid-template-columns:repeat(6,1fr)">${cells.join("")}</div>`;
  }
  const cols = Object.keys(first).filter((c) => typeof first[c] !== "object" || first[c] === null).slice(0, 8);
  const head = `<tr><th>key</th>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>`;
  const body = rows.map((r) => `<tr><td>${esc(r.key)}</td>${cols.map((c) => {
    const x = r.value[c];
    const s = typeof x === "number" && c.includes("window") ? time(x).slice(11) : typeof x === "number" && !Number.isInteger(x) ? x.toFixed(2) : x;
    return `<td>${esc(s ?? "")}</td>`;
  }).join("")}</tr>`).join("");
  return `<h3>${esc(v.view)} <small>(${v.total} entries)</small></h3><table>${head}${body}</table>`;
}

function render(s) {
  $("uptime").textContent = Math.floor(s.uptime_s) + " s";
  $("ready").textContent = s.ready ? "ready" : "recovering…";
  let rin = 0, rout = 0, lag = 0;
  for (const j of s.jobs) { rin += j.rate_in; rout += j.rate_out; lag += j.lag; }
  $("rate-in").textContent = fmt(rin); $("rate-out").textContent = fmt(rout); $("lag").textContent = fmt(lag);
  $("shards").textContent = `${s.shards.filter((x) => x.alive).length}/${s.shards.length}`;
  for (const j of s.jobs) { push(series.rate, j.name, j.rate_in); push(series.lag, j.name, j.lag); }
  draw($("chart-rate"), series.rate, $("legend-rate"));
  draw($("chart-lag"), series.lag, $("legend-lag"));
  $("jobs").tBodies[0].innerHTML = s.jobs.map((j) => `<tr>
    <td>${esc(j.name)}</td><td><span class="pill ${j.state}">${esc(j.state)}</span></td>
    <td class="num">${fmt(j.rate_in)}</td><td class="num">${fmt(j.rate_out)}</td><td class="num">${fmt(j.records_in)}</td>
    <td class="num">${fmt(j.lag)}</td><td>${time(j.watermark)}</td><td class="num">${j.checkpoints}</td>
    <td class="num">${fmt(j.late_events)}</td><td class="num">${fmt(j.dead_letters)}</td><td class="num">${fmt(j.errors)}</td></tr>`).join("");
  $("view-list").innerHTML = s.views.length ? s.views.map(renderView).join("") : "no views yet";
  $("shard-table").tBodies[0].innerHTML = s.shards.map((x) => `<tr><td>${x.id}</td><td>${x.core ?? "–"}</td>
    <td>${x.alive ? "yes" : "<b style='color:var(--bad)'>stuck</b>"}</td><td class="num">${fmt(x.records_in)}</td>
    <td class="num">${fmt(x.ingested)}</td><td class="num">${x.queued}</td><td class="num">${x.panics}</td></tr>`).join("");
  $("topic-table").tBodies[0].innerHTML = s.topics.map((t) => `<tr><td>${esc(t.name)}</td><td class="num">${fmt(t.records)}</td><td class="num">${bytes(t.size_bytes)}</td></tr>`).join("");
}

function connect() {
  // EventSource cannot send headers; with a read token, poll instead.
  if (token) {
    const poll = () => fetch("/api/v1/status", { headers: { Authorization: "Bearer " + token } })
      .then((r) => r.json()).then((s) => { $("conn").textContent = "live"; render(s); })
      .catch(() => { $("conn").textContent = "disconnected"; })
      .finally(() => setTimeout(poll, 1000));
    poll();
    return;
  }
  const es = new EventSource("/api/v1/events");
  es.addEventListener("status", (e) => { $("conn").textContent = "live"; $("conn").className = "fig"; render(JSON.parse(e.data)); });
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "fig off"; };
}
connect();
