// nof0 arena dashboard: plain JavaScript, no libraries. Reads only /api/* and polls it
// with If-None-Match; the equity chart is a hand-written SVG line chart.
"use strict";

const POLL_MS = 5000;
const ROUTES = [
  "account-totals", "leaderboard", "analytics", "positions", "trades",
  "conversations", "status", "crypto-prices",
];
const BASELINE = "buynhold_btc";
const PALETTE = ["#4e79ff", "#2fbf71", "#e0457b", "#a66bff", "#17b3c4", "#d4a017", "#ff7a45", "#8c9cb0"];
const BTC_COLOR = "#f7931a";
const RANGES = { all: null, "72h": 72 * 3600, "24h": 24 * 3600 };

// Operator controls: each entry renders one button in every leaderboard row and on the
// trader page, shown only when the server has control on (GET /api/control).
const TRADER_ACTIONS = [
  { label: "Pause", title: "Pause new entries of", path: "pause" },
  { label: "Resume", title: "Resume", path: "resume" },
  {
    label: "Flatten", title: "Flatten", path: "flatten",
    confirm: (id) => `Flatten ${id}: cancel its entries, close its positions at market, cancel its stops and targets, then pause it?`,
  },
].map((a) => ({ ...a, run: (id) => control(`traders/${encodeURIComponent(id)}/${a.path}`, `${a.label} ${id}`, a.confirm?.(id)) }));

const state = {
  docs: {},          // route -> last good JSON body
  etags: {},         // route -> ETag of that body
  series: new Map(), // model_id -> Map(timestamp -> {equity, pct})
  failing: null,     // why the last poll failed (null: it did not)
  lastOk: null,      // Date of the last complete poll
  sort: { key: "equity", dir: -1 },
  chart: { mode: "usd", range: "all" },
  open: new Set(),   // ids of <details> the viewer opened
  allTrades: false,  // show every completed trade, not only the newest
  control: null,     // GET /api/control: {enabled, detail, actions}; null until it answered
};
const TRADES_SHOWN = 30;
const TURNS_SHOWN = 30;

// -- formatting ---------------------------------------------------------------------------

const usd = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usdSigned = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });
const pctSigned = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });
const plain = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });
const fixed2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const shortTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const money = (v) => (isNum(v) ? usd.format(v) : "–");
const pnl = (v) => (isNum(v) ? usdSigned.format(v) : "–");
const pct = (v) => (isNum(v) ? `${pctSigned.format(v)} %` : "–");
const num = (v) => (isNum(v) ? plain.format(v) : "–");
const price = (v) => (isNum(v) && v !== 0 ? plain.format(v) : "–");
const time = (seconds) => (isNum(seconds) && seconds > 0 ? when.format(new Date(seconds * 1000)) : "–");
const sign = (v) => (isNum(v) ? (v > 0 ? "up" : v < 0 ? "down" : "") : "");

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// -- data -----------------------------------------------------------------------------------

async function fetchRoute(route) {
  const headers = {};
  if (state.etags[route]) headers["If-None-Match"] = state.etags[route];
  const response = await fetch(`/api/${route}`, { headers, cache: "no-store" });
  if (response.status === 304) return false;
  if (response.status === 503) throw new Error(`/api/${route}: the views are catching up (503)`);
  if (!response.ok) throw new Error(`/api/${route} answered ${response.status}`);
  state.docs[route] = await response.json();
  state.etags[route] = response.headers.get("ETag");
  return true;
}

async function poll() {
  if (!state.control) await fetchControl();
  const results = await Promise.allSettled(ROUTES.map(fetchRoute));
  const failed = results.map((r, i) => [r, ROUTES[i]]).filter(([r]) => r.status === "rejected");
  state.failing = failed.length ? failed.map(([r]) => r.reason.message || String(r.reason)).join("; ") : null;
  if (!failed.length) state.lastOk = new Date();
  const changed = results.some((r) => r.status === "fulfilled" && r.value === true);
  if (changed) {
    remember();
    render();
  }
  renderLiveness();
}

// Whether operator control is on; asked until the server answers (it does not change while
// the server runs). Not a polled view: failing here does not mark the page stale.
async function fetchControl() {
  try {
    const response = await fetch("/api/control", { cache: "no-store" });
    if (!response.ok) return;
    state.control = await response.json();
  } catch (error) {
    return; // the server is down: the views' poll says so
  }
  renderOperator();
  render();
}

const controlOn = () => state.control?.enabled === true;

// POST one control action with the token typed into the operator panel (kept in the page
// only: never stored), and say what the server answered.
async function control(path, what, question, extra = {}) {
  const out = document.getElementById("op-result");
  const tokenInput = document.getElementById("op-token");
  const say = (text, kind) => { out.textContent = text; out.className = `op-result ${kind}`; };
  const token = tokenInput.value.trim();
  if (!token) {
    say(`${what}: enter the control token first.`, "warn");
    tokenInput.focus();
    return;
  }
  if (question && !window.confirm(question)) return;
  const reason = document.getElementById("op-reason").value.trim() || "from the dashboard";
  let response;
  try {
    response = await fetch(`/api/control/${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ reason, ...extra }),
    });
  } catch (error) {
    say(`${what}: the server did not answer (${error.message}).`, "warn");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(`${what} refused (${response.status}): ${body.detail ?? response.statusText}`, "warn");
    return;
  }
  const results = (body.results ?? []).map((r) => `${r.trader}: ${r.changed ? "done" : "already so"}${r.paused ? ", paused" : ", trading"}${r.flatten_pending ? ", flatten pending" : ""}`);
  say(`${what}: accepted for ${body.credential}. ${results.join("; ")}`, "ok");
}

function renderOperator() {
  const panel = document.getElementById("operator");
  if (!panel || !state.control) return;
  panel.hidden = false;
  document.getElementById("op-form").hidden = !controlOn();
  document.getElementById("op-detail").textContent = controlOn()
    ? "Pause, resume and flatten buttons are on each leaderboard row and trader page. Every action is recorded with your token's id and the reason."
    : state.control.detail;
}

function loop() {
  poll().finally(() => setTimeout(loop, POLL_MS));
}

// Every account row seen (hourly history, plus the live rows seen while the page is open).
function remember() {
  const rows = state.docs["account-totals"]?.accountTotals ?? [];
  for (const row of rows) {
    if (!state.series.has(row.model_id)) state.series.set(row.model_id, new Map());
    state.series.get(row.model_id).set(row.timestamp, { equity: row.dollar_equity, pct: row.cum_pnl_pct });
  }
}

const leaderboard = () => state.docs.leaderboard?.leaderboard ?? [];
const analyticsOf = (id) => (state.docs.analytics?.analytics ?? []).find((a) => a.model_id === id);
const statusOf = (id) => (state.docs.status?.traders ?? []).find((t) => t.model_id === id);
const traderIds = () => leaderboard().map((e) => e.id);
const colorOf = (id) => (id === BASELINE ? BTC_COLOR : PALETTE[Math.max(0, traderIds().indexOf(id)) % PALETTE.length]);
const nameOf = (id) => (id === BASELINE ? "BTC buy & hold" : id);

// -- rendering --------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/trader\/([A-Za-z0-9._-]{1,64})$/);
  return match ? { trader: match[1] } : { trader: null };
}

function render() {
  const view = document.getElementById("view");
  const { trader } = route();
  if (!state.docs.leaderboard) {
    view.innerHTML = `<p class="empty">Waiting for the arena's first views…</p>`;
    return;
  }
  if (trader && !traderIds().includes(trader)) {
    view.innerHTML = `<p class="empty">No trader “${esc(trader)}”. <a href="#/">Back to the arena</a></p>`;
    return;
  }
  const only = trader ? [trader] : null;
  const parts = [];
  if (trader) parts.push(traderHeader(trader));
  parts.push(section("equity", trader ? "Equity vs BTC" : "Equity of every trader vs BTC buy & hold", equityControls() + `<div class="chart-wrap"><svg id="equity-chart" role="img" aria-label="Equity over time"></svg></div><ul class="legend" id="legend"></ul>`));
  parts.push(section("leaderboard", "Leaderboard", leaderboardTable(only)));
  if (trader) parts.push(section("analytics", "Analytics", analyticsTables(trader)));
  parts.push(section("positions", "Open positions", positionsTables(only)));
  parts.push(section("trades", "Completed trades", tradesTable(only)));
  parts.push(section("chat", "Model chat", chat(only)));
  parts.push(section("status", "Status", statusView(only)));
  const focused = focusKey(document.activeElement);
  view.innerHTML = parts.join("");
  drawEquity(only);
  if (focused) view.querySelector(focused)?.focus();
}

// A selector for the focused control, so a keyboard user keeps their place across redraws.
function focusKey(element) {
  if (!element || element === document.body) return null;
  for (const name of ["sort", "mode", "range", "more", "action"]) {
    if (element.dataset?.[name] !== undefined) return `button[data-${name}="${CSS.escape(element.dataset[name])}"]`;
  }
  const turn = element.tagName === "SUMMARY" ? element.parentElement?.dataset?.id : null;
  return turn ? `details[data-id="${CSS.escape(turn)}"] > summary` : null;
}

function section(id, title, body) {
  return `<section class="card" id="sec-${id}" aria-labelledby="h-${id}"><h2 id="h-${id}">${esc(title)}</h2>${body}</section>`;
}

function actions(id) {
  if (!controlOn()) return "";
  return TRADER_ACTIONS.map((a, i) => `<button type="button" class="action" data-action="${i}" data-trader="${esc(id)}" aria-label="${esc(a.title || a.label)} ${esc(id)}">${esc(a.label)}</button>`).join(" ");
}

function traderHeader(id) {
  const entry = leaderboard().find((e) => e.id === id);
  const status = statusOf(id);
  const badge = status?.paused ? `<span class="badge warn">paused</span>` : `<span class="badge ok">trading</span>`;
  return `<section class="card trader-head" aria-label="Trader ${esc(id)}">
    <p><a href="#/">← Arena</a></p>
    <h1><span class="swatch" style="background:${colorOf(id)}"></span>${esc(id)} ${badge}</h1>
    <p class="meta">${esc(status?.model ?? "")}</p>
    <p class="big">${money(entry?.equity)} <span class="${sign(entry?.return_pct)}">${pct(entry?.return_pct)}</span></p>
    <div class="actions">${actions(id)}</div>
  </section>`;
}

// Equity chart ----------------------------------------------------------------------------

function equityControls() {
  const button = (group, value, label, text) => {
    const on = state.chart[group] === value;
    return `<button type="button" class="toggle" data-${group}="${value}" aria-pressed="${on}" aria-label="${esc(label)}">${esc(text)}</button>`;
  };
  return `<div class="controls" role="toolbar" aria-label="Chart options">
    <span class="group" role="group" aria-label="Units">${button("mode", "usd", "Show dollars", "$")}${button("mode", "pct", "Show percent", "%")}</span>
    <span class="group" role="group" aria-label="Time range">${button("range", "all", "Show all time", "All")}${button("range", "72h", "Show the last 72 hours", "72H")}${button("range", "24h", "Show the last 24 hours", "24H")}</span>
  </div>`;
}

function chartSeries(only) {
  const ids = [...(only ?? traderIds()), BASELINE];
  const field = state.chart.mode === "pct" ? "pct" : "equity";
  let latest = -Infinity;
  for (const id of ids) for (const t of state.series.get(id)?.keys() ?? []) latest = Math.max(latest, t);
  const span = RANGES[state.chart.range];
  const from = span ? latest - span : -Infinity;
  return ids.map((id) => {
    const points = [...(state.series.get(id) ?? new Map()).entries()]
      .filter(([t, v]) => t >= from && isNum(v[field]))
      .sort((a, b) => a[0] - b[0])
      .map(([t, v]) => [t, v[field]]);
    return { id, label: nameOf(id), color: colorOf(id), points, dashed: id === BASELINE };
  });
}

function drawEquity(only) {
  const svg = document.getElementById("equity-chart");
  if (!svg) return;
  const series = chartSeries(only);
  const format = state.chart.mode === "pct" ? pct : money;
  lineChart(svg, series, format);
  if (!performance.getEntriesByName("nof0:first-chart").length) performance.mark("nof0:first-chart");
  svg.setAttribute("aria-label", `Equity over time (${state.chart.mode === "pct" ? "percent" : "dollars"}, ${state.chart.range}): ${series.map((s) => `${s.label} ${s.points.length ? format(s.points[s.points.length - 1][1]) : "no data"}`).join(", ")}`);
  document.getElementById("legend").innerHTML = series.map((s) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    const link = s.id === BASELINE ? esc(s.label) : `<a href="#/trader/${encodeURIComponent(s.id)}">${esc(s.label)}</a>`;
    return `<li data-series="${esc(s.id)}"><span class="swatch${s.dashed ? " dashed" : ""}" style="background:${s.color}"></span>${link} <b>${last === null ? "–" : format(last)}</b></li>`;
  }).join("");
}

function niceTicks(lo, hi, count) {
  const step0 = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= step0) ?? step0;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

function lineChart(svg, series, format) {
  const width = Math.max(280, svg.parentElement.clientWidth || 600);
  const height = width < 600 ? 240 : 320;
  const pad = { l: width < 600 ? 64 : 84, r: 12, t: 12, b: 28 };
  const all = series.flatMap((s) => s.points);
  const svgNS = "http://www.w3.org/2000/svg";
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.replaceChildren();
  let [x0, x1] = all.length ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1];
  if (x1 - x0 < 60) { x0 -= 1800; x1 += 1800; }
  const spread = y1 - y0 || Math.max(Math.abs(y1) * 0.01, 0.5);
  y0 -= spread * 0.1; y1 += spread * 0.1;
  const X = (t) => pad.l + ((t - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (v - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const add = (name, attrs, parent = svg, text = null) => {
    const el = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== null) el.textContent = text;
    parent.appendChild(el);
    return el;
  };
  const grid = add("g", { class: "grid" });
  for (const v of niceTicks(y0, y1, 4)) {
    add("line", { x1: pad.l, x2: width - pad.r, y1: Y(v), y2: Y(v) }, grid);
    add("text", { x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end" }, grid, format(v));
  }
  const xCount = width < 600 ? 1 : 5;
  for (let i = 0; i <= xCount; i++) {
    const t = x0 + ((x1 - x0) * i) / xCount;
    add("text", { x: X(t), y: height - 8, "text-anchor": i === 0 ? "start" : i === xCount ? "end" : "middle" }, grid, shortTime.format(new Date(t * 1000)));
  }
  if (!all.length) add("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "nodata" }, svg, "No equity recorded yet");
  for (const s of series) {
    const g = add("g", { class: "series", "data-series": s.id });
    add("title", {}, g, s.label);
    const points = s.points.map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
    add("polyline", { points, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "6 4" : "none", "vector-effect": "non-scaling-stroke" }, g);
    if (s.points.length) {
      const [t, v] = s.points[s.points.length - 1];
      add("circle", { cx: X(t), cy: Y(v), r: 3.5, fill: s.color }, g);
    }
  }
}

// Tables ------------------------------------------------------------------------------------

const COLUMNS = [
  { key: "rank", label: "#", get: (r) => r.rank, fmt: (v) => v, numeric: true },
  { key: "id", label: "Trader", get: (r) => r.id, fmt: (v) => `<a href="#/trader/${encodeURIComponent(v)}"><span class="swatch" style="background:${colorOf(v)}"></span>${esc(v)}</a>`, text: true },
  { key: "equity", label: "Equity", get: (r) => r.equity, fmt: money, numeric: true },
  { key: "return_pct", label: "Return", get: (r) => r.return_pct, fmt: pct, numeric: true, signed: true },
  { key: "sharpe", label: "Sharpe", get: (r) => r.sharpe, fmt: (v) => (isNum(v) ? fixed2.format(v) : "–"), numeric: true },
  { key: "win_rate", label: "Win rate", get: (r) => r.win_rate, fmt: (v) => (isNum(v) ? `${fixed2.format(v)} %` : "–"), numeric: true },
  { key: "fees", label: "Fees", get: (r) => r.fees, fmt: money, numeric: true },
  { key: "num_trades", label: "Trades", get: (r) => r.num_trades, fmt: num, numeric: true },
  { key: "best", label: "Biggest win", get: (r) => r.best, fmt: pnl, numeric: true, signed: true },
  { key: "worst", label: "Biggest loss", get: (r) => r.worst, fmt: pnl, numeric: true, signed: true },
  { key: "cost", label: "AI cost", get: (r) => r.cost, fmt: money, numeric: true },
];

function leaderboardRows() {
  return leaderboard().map((entry, index) => {
    const a = analyticsOf(entry.id);
    const fees = a?.fee_pnl_moves_breakdown_table ?? {};
    const trades = entry.num_trades > 0;
    return {
      ...entry,
      rank: index + 1,
      win_rate: trades ? a?.winners_losers_breakdown_table?.win_rate : null,
      fees: fees.total_fees_paid ?? 0,
      best: trades ? fees.biggest_net_gain : null,
      worst: trades ? fees.biggest_net_loss : null,
      cost: a?.invocation_breakdown_table?.total_cost_usd ?? 0,
    };
  });
}

function leaderboardTable(only) {
  const { key, dir } = state.sort;
  const column = COLUMNS.find((c) => c.key === key) ?? COLUMNS[2];
  const rows = leaderboardRows().filter((r) => !only || only.includes(r.id));
  rows.sort((a, b) => {
    const x = column.get(a), y = column.get(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const head = COLUMNS.map((c) => {
    const sorted = c.key === key ? (dir > 0 ? "ascending" : "descending") : "none";
    const arrow = c.key === key ? (dir > 0 ? " ▲" : " ▼") : "";
    return `<th scope="col" aria-sort="${sorted}" class="${c.numeric && !c.text ? "num" : ""}"><button type="button" class="sort" data-sort="${c.key}" aria-label="Sort by ${esc(c.label)}">${esc(c.label)}${arrow}</button></th>`;
  }).join("") + (controlOn() ? `<th scope="col">Actions</th>` : "");
  const body = rows.map((r) => `<tr data-trader="${esc(r.id)}">${COLUMNS.map((c) => {
    const v = c.get(r);
    return `<td data-col="${c.key}" class="${c.numeric && !c.text ? "num" : ""} ${c.signed ? sign(v) : ""}">${c.fmt(v)}</td>`;
  }).join("")}${controlOn() ? `<td class="actions">${actions(r.id)}</td>` : ""}</tr>`).join("");
  return `<div class="scroll"><table id="leaderboard" class="data"><caption class="sr">Traders ranked by equity; choose a column to sort</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function positionsTables(only) {
  const entries = (state.docs.positions?.accountTotals ?? []).filter((e) => e.model_id !== BASELINE && (!only || only.includes(e.model_id)));
  const ids = only ?? traderIds();
  const rows = [];
  for (const id of ids) {
    const entry = entries.find((e) => e.model_id === id);
    for (const p of Object.values(entry?.positions ?? {})) {
      const plan = p.exit_plan ?? {};
      const side = p.quantity < 0 ? "short" : "long";
      rows.push(`<tr data-trader="${esc(id)}" data-coin="${esc(p.symbol)}">
        <td>${esc(id)}</td><td>${esc(p.symbol)}</td><td class="${side === "long" ? "up" : "down"}">${side}</td>
        <td class="num">${price(p.entry_price)}</td><td class="num">${price(p.current_price)}</td>
        <td class="num">${num(Math.abs(p.quantity))}</td><td class="num">${num(p.leverage)}×</td>
        <td class="num">${price(p.liquidation_price)}</td><td class="num ${sign(p.unrealized_pnl)}">${pnl(p.unrealized_pnl)}</td>
        <td class="num">${price(plan.profit_target)}</td><td class="num">${price(plan.stop_loss)}</td>
        <td class="wrap">${esc(plan.invalidation_condition || "–")}</td></tr>`);
    }
  }
  if (!rows.length) return `<p class="empty">No open positions.</p>`;
  return `<div class="scroll"><table id="positions" class="data"><thead><tr>
    <th scope="col">Trader</th><th scope="col">Coin</th><th scope="col">Side</th><th scope="col" class="num">Entry</th><th scope="col" class="num">Mark</th>
    <th scope="col" class="num">Size</th><th scope="col" class="num">Leverage</th><th scope="col" class="num">Liq. price</th><th scope="col" class="num">Unrealised P&amp;L</th>
    <th scope="col" class="num">Target</th><th scope="col" class="num">Stop</th><th scope="col">Invalidation</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function tradesTable(only) {
  const trades = (state.docs.trades?.trades ?? []).filter((t) => !only || only.includes(t.model_id));
  if (!trades.length) return `<p class="empty">No completed trades yet.</p>`;
  trades.sort((a, b) => b.exit_time - a.exit_time);
  const shown = state.allTrades ? trades : trades.slice(0, TRADES_SHOWN);
  const more = trades.length > shown.length
    ? `<p><button type="button" class="ghost" data-more="trades" aria-label="Show all ${trades.length} completed trades">Show all ${trades.length} trades</button></p>`
    : "";
  const rows = shown.map((t) => {
    // net = gross − fees + funding (the ledger's identity); the trade document has no funding field.
    const funding = Math.round((t.realized_net_pnl - t.realized_gross_pnl + t.total_commission_dollars) * 1e6) / 1e6;
    return `<tr data-trade="${esc(t.id)}" data-trader="${esc(t.model_id)}">
      <td>${esc(t.model_id)}</td><td>${esc(t.symbol)}</td><td class="${t.side === "long" ? "up" : "down"}">${esc(t.side)}</td>
      <td class="num">${price(t.entry_price)}</td><td class="num">${price(t.exit_price)}</td><td class="num">${num(t.quantity)}</td>
      <td class="num ${sign(t.realized_net_pnl)}">${pnl(t.realized_net_pnl)}</td><td class="num ${sign(t.realized_gross_pnl)}">${pnl(t.realized_gross_pnl)}</td>
      <td class="num">${money(t.total_commission_dollars)}</td><td class="num ${sign(funding)}">${pnl(funding)}</td>
      <td>${esc(t.close_reason || "–")}</td><td>${time(t.entry_time)}</td><td>${time(t.exit_time)}</td></tr>`;
  });
  return `<div class="scroll"><table id="trades" class="data"><thead><tr>
    <th scope="col">Trader</th><th scope="col">Coin</th><th scope="col">Side</th><th scope="col" class="num">Entry</th><th scope="col" class="num">Exit</th>
    <th scope="col" class="num">Size</th><th scope="col" class="num">Net P&amp;L</th><th scope="col" class="num">Gross P&amp;L</th><th scope="col" class="num">Fees</th>
    <th scope="col" class="num">Funding</th><th scope="col">Close reason</th><th scope="col">Opened</th><th scope="col">Closed</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>${more}`;
}

function details(id, summary, body, extra = "") {
  const open = state.open.has(id) ? " open" : "";
  return `<details data-id="${esc(id)}"${open}${extra}><summary>${summary}</summary>${body}</details>`;
}

// What the risk desk refused in this conversation's cycle (from /api/status).
function refusalsFor(conversation) {
  const recent = statusOf(conversation.model_id)?.recent_risk_rejections ?? [];
  return recent.filter((r) => r.cycle === conversation.cycle_id);
}

function chat(only) {
  const all = (state.docs.conversations?.conversations ?? []).filter((c) => !only || only.includes(c.model_id));
  if (!all.length) return `<p class="empty">No model invocations yet.</p>`;
  all.sort((a, b) => b.timestamp - a.timestamp);
  return `<ol class="chat" id="chat">${all.slice(0, TURNS_SHOWN).map((c) => {
    const decisions = Object.values(c.llm_response ?? {});
    const acting = decisions.filter((d) => d.signal !== "hold");
    const refusals = refusalsFor(c);
    const summary = `<span class="swatch" style="background:${colorOf(c.model_id)}"></span><b>${esc(c.model_id)}</b> · cycle ${esc(c.cycle_id)} · ${time(c.timestamp)}
      <span class="meta">${acting.length ? acting.map((d) => `${esc(d.coin)} ${esc(d.signal)}`).join(", ") : "hold"}${c.error ? ` · <span class="down">failed: ${esc(c.error.reason)}</span>` : ""}${refusals.length ? ` · <span class="warn">refused: ${refusals.map((r) => esc(r.coin)).join(", ")}</span>` : ""}</span>`;
    const body = `
      <p class="meta">${esc(c.model)} · prompt ${esc(c.prompt_version)} · ${num(c.tokens_in)} in / ${num(c.tokens_out)} out tokens · ${money(c.cost_usd)} · ${num(c.latency_ms)} ms</p>
      ${c.cot_trace_summary ? `<p class="summary">${esc(c.cot_trace_summary)}</p>` : ""}
      ${c.error ? `<p class="down">Model failure (${esc(c.error.reason)}): ${esc(c.error.detail)}</p>` : ""}
      ${refusals.length ? `<ul class="refusals" aria-label="Refused by the risk desk">${refusals.map((r) => `<li class="warn">Risk desk refused ${esc(r.coin)} ${esc(r.signal)} (${esc(r.rule)}): ${esc(r.detail)}</li>`).join("")}</ul>` : ""}
      ${decisions.length ? `<div class="scroll"><table class="data decisions"><thead><tr><th scope="col">Coin</th><th scope="col">Signal</th><th scope="col" class="num">Qty</th><th scope="col" class="num">Lev.</th><th scope="col" class="num">Target</th><th scope="col" class="num">Stop</th><th scope="col" class="num">Conf.</th><th scope="col">Why</th></tr></thead><tbody>
        ${decisions.map((d) => `<tr><td>${esc(d.coin)}</td><td>${esc(d.signal)}</td><td class="num">${num(d.quantity)}</td><td class="num">${num(d.leverage)}</td><td class="num">${price(d.profit_target)}</td><td class="num">${price(d.stop_loss)}</td><td class="num">${num(d.confidence)}</td><td class="wrap">${esc(d.justification)}</td></tr>`).join("")}
      </tbody></table></div>` : ""}
      ${details(`${c.id}/reasoning`, "Reasoning", `<pre>${esc(c.cot_trace || "(none recorded)")}</pre>`)}
      ${details(`${c.id}/prompt`, "Prompt", `<pre>${esc(c.user_prompt)}</pre>`)}
      ${details(`${c.id}/raw`, "Raw answer", `<pre>${esc(c.raw_response)}</pre>`)}`;
    return `<li class="turn" data-trader="${esc(c.model_id)}" data-cycle="${esc(c.cycle_id)}">${details(c.id, summary, body)}</li>`;
  }).join("")}</ol>`;
}

function refusalText(r) {
  return r ? `${esc(r.reason)}: ${esc(r.detail)} <span class="meta">(${time(r.time)})</span>` : "–";
}

function controlText(c) {
  if (!c) return "–";
  return `<span class="control-action">${esc(c.action)}</span> by <code>${esc(c.credential)}</code>: ${esc(c.reason || "no reason given")} <span class="meta">${time(c.time)}</span>`;
}

function statusView(only) {
  const doc = state.docs.status;
  if (!doc) return `<p class="empty">No status yet.</p>`;
  const traders = doc.traders.filter((t) => !only || only.includes(t.model_id));
  const rows = traders.map((t) => `<tr data-trader="${esc(t.model_id)}">
    <td>${esc(t.model_id)}</td><td>${t.paused ? `<span class="badge warn">paused</span> ${esc(t.pause_reason)} <span class="meta">${time(t.paused_at)}</span>` : `<span class="badge ok">trading</span>`}${t.flatten_pending ? ` <span class="badge warn">flatten pending</span>` : ""}</td>
    <td class="num">${num(t.cycles)}</td><td class="num">${num(t.cycles_skipped)}</td><td>${refusalText(t.last_skip)}</td>
    <td class="num">${num(t.llm_failures)}</td><td>${refusalText(t.last_llm_failure)}</td>
    <td class="num">${num(t.risk_rejections)}</td><td>${refusalText(t.last_risk_rejection)}</td>
    <td class="num">${num(t.order_rejections)}</td><td>${refusalText(t.last_order_rejection)}</td>
    <td>${controlText(t.last_control)}</td></tr>`).join("");
  const venues = doc.venues.map((v) => `<li><b>${esc(v.provider)}</b> <code>${esc(v.address)}</code> · baseline ${money(v.baseline_equity)} · foreign orders ${num(v.foreign_orders_open)}, fills ${num(v.foreign_fills)}
    ${v.findings.length ? `<ul>${v.findings.map((f) => `<li class="warn">${esc(f.key)}: ${esc(f.detail)} <span class="meta">since ${time(f.since)}${f.traders.length ? `; paused: ${f.traders.map(esc).join(", ")}` : ""}</span></li>`).join("")}</ul>` : `<span class="ok">no findings</span>`}</li>`).join("");
  return `<div class="scroll"><table id="status" class="data wide"><thead><tr><th scope="col">Trader</th><th scope="col">State</th><th scope="col" class="num">Cycles</th>
    <th scope="col" class="num">Skipped</th><th scope="col">Last skip</th><th scope="col" class="num">Model failures</th><th scope="col">Last failure</th>
    <th scope="col" class="num">Risk refusals</th><th scope="col">Last refusal</th><th scope="col" class="num">Order rejections</th><th scope="col">Last rejection</th><th scope="col">Last operator action</th></tr></thead><tbody>${rows}</tbody></table></div>
    ${only ? "" : `<h3>Venue accounts</h3><ul class="venues">${venues || "<li>none</li>"}</ul>`}`;
}

function analyticsTables(id) {
  const a = analyticsOf(id);
  if (!a) return `<p class="empty">No analytics yet.</p>`;
  const tables = ["fee_pnl_moves_breakdown_table", "winners_losers_breakdown_table", "longs_shorts_breakdown_table", "overall_trades_overview_table", "invocation_breakdown_table", "signals_breakdown_table"];
  return `<div class="grid2">${tables.map((name) => `<table class="data kv"><caption>${esc(name.replace(/_breakdown_table|_table/, "").replaceAll("_", " "))}</caption><tbody>
    ${Object.entries(a[name] ?? {}).map(([k, v]) => `<tr><th scope="row">${esc(k.replaceAll("_", " "))}</th><td class="num">${num(v)}</td></tr>`).join("")}</tbody></table>`).join("")}</div>`;
}

function renderLiveness() {
  const stale = document.getElementById("stale");
  const updated = document.getElementById("updated");
  updated.textContent = state.lastOk ? `updated ${when.format(state.lastOk)}` : "not updated yet";
  if (state.failing) {
    stale.hidden = false;
    stale.textContent = `Stale: live updates are failing (${state.failing}). Showing data from ${state.lastOk ? when.format(state.lastOk) : "no successful update"}; retrying every ${POLL_MS / 1000} s.`;
    document.body.classList.add("is-stale");
  } else {
    stale.hidden = true;
    document.body.classList.remove("is-stale");
  }
}

// -- events -----------------------------------------------------------------------------------

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  try { localStorage.setItem("nof0-theme", theme); } catch (error) { /* storage off: the choice lasts this page only */ }
}

function currentTheme() {
  return document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.id === "theme") setTheme(currentTheme() === "dark" ? "light" : "dark");
  else if (target.dataset.sort) {
    const key = target.dataset.sort;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : (key === "id" || key === "rank" ? 1 : -1) };
    render();
  } else if (target.dataset.mode) { state.chart.mode = target.dataset.mode; render(); }
  else if (target.dataset.more === "trades") { state.allTrades = true; render(); }
  else if (target.dataset.range) { state.chart.range = target.dataset.range; render(); }
  else if (target.id === "op-kill") {
    const flatten = document.getElementById("op-kill-flatten").checked;
    const question = flatten ? "Kill switch: flatten every trader (close every position at market) and pause them all?" : "Kill switch: pause every trader?";
    Promise.resolve(control("kill", flatten ? "Kill switch (flatten)" : "Kill switch", question, { flatten })).then(poll);
  } else if (target.dataset.action) {
    const action = TRADER_ACTIONS[Number(target.dataset.action)];
    Promise.resolve(action.run(target.dataset.trader)).then(poll);
  }
});

// The operator form has no submit: Enter in its fields must not reload the page.
document.addEventListener("submit", (event) => { if (event.target.id === "op-form") event.preventDefault(); });

document.addEventListener("toggle", (event) => {
  const id = event.target.dataset?.id;
  if (!id) return;
  if (event.target.open) state.open.add(id); else state.open.delete(id);
}, true);

window.addEventListener("hashchange", () => { render(); window.scrollTo(0, 0); });
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => drawEquity(route().trader ? [route().trader] : null), 150);
});

(() => {
  try {
    const saved = localStorage.getItem("nof0-theme");
    if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
  } catch (error) { /* storage off: follow prefers-color-scheme */ }
  loop();
})();
