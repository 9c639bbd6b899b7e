// motet console: vanilla JS over the JSON endpoints under /_motet (no build step, no CDN).
"use strict";

// ---- small helpers ---------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  const d = new Date(epoch * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDateTime(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtDur(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  if (seconds < 120) return `${seconds.toFixed(2)} s`;
  return `${(seconds / 60).toFixed(1)} min`;
}

function fmtIn(seconds) {
  const sign = seconds < 0 ? "ago" : "in";
  let rest = Math.abs(Math.round(seconds));
  const d = Math.floor(rest / 86400); rest -= d * 86400;
  const hh = Math.floor(rest / 3600); rest -= hh * 3600;
  const mm = Math.floor(rest / 60); const ss = rest - mm * 60;
  const parts = d ? [`${d}d`, `${hh}h`] : hh ? [`${hh}h`, `${mm}m`] : mm ? [`${mm}m`, `${ss}s`] : [`${ss}s`];
  return sign === "in" ? `in ${parts.join(" ")}` : `${parts.join(" ")} ago`;
}

// An id's last 8 digits: motet's ids start with their time, shared by ids made together.
function short(id) { return id ? id.slice(-8) : ""; }

function json(value, indent = 2) { return JSON.stringify(value, null, indent); }

function compact(fields) {
  const keys = Object.keys(fields || {});
  if (!keys.length) return "";
  return keys.map((k) => `${k}=${JSON.stringify(fields[k])}`).join("  ");
}

function badge(text, kind) { return h("span", { class: `badge ${kind || ""}`, text }); }

function traceLink(id) {
  return id ? h("a", { class: "trace-link", href: `#traces/${id}`, text: short(id), title: id }) : "";
}

// ---- API -------------------------------------------------------------------------------

const banner = () => document.getElementById("banner");

function showBanner(text) { const b = banner(); b.textContent = text; b.classList.remove("hidden"); }
function hideBanner() { banner().classList.add("hidden"); }

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { accept: "application/json" } };
  if (options.body !== undefined) {
    init.method = "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const res = await fetch(path, init);
  const body = await res.json().catch(() => null);
  if (res.status === 401) {
    showBanner("Not authorized. This console needs the operator token: open /_console?token=<token> once.");
  }
  if (!res.ok) {
    const error = new Error((body && body.detail) || `${res.status} ${res.statusText}`);
    error.status = res.status;
    throw error;
  }
  return body;
}

// ---- views and routing -----------------------------------------------------------------

let active = { timers: [], token: 0 };

function every(ms, fn) { active.timers.push(setInterval(fn, ms)); }

const views = {};

function route() {
  for (const t of active.timers) clearInterval(t);
  active = { timers: [], token: active.token + 1 };
  const [name, ...rest] = (location.hash.slice(1) || "flows").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const view = views[name] || views.flows;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === (views[name] ? name : "flows"));
  }
  const root = clear(document.getElementById("view"));
  root.dataset.view = name;
  view(root, arg, active.token).catch((err) => {
    root.append(h("div", { class: "banner", text: `Could not load: ${err.message}` }));
  });
}

function stale(token) { return token !== active.token; }

// ---- health ----------------------------------------------------------------------------

async function pollHealth() {
  const el = document.getElementById("health");
  try {
    const hb = await api("/_motet/health");
    el.className = "health ok";
    el.querySelector(".health-text").textContent =
      `${hb.backend} · ${hb.steps} steps · ${hb.pending} pending${hb.dead ? ` · ${hb.dead} dead` : ""}`;
  } catch (err) {
    el.className = "health down";
    el.querySelector(".health-text").textContent = err.status === 401 ? "unauthorized" : "unreachable";
  }
}

// ---- flows -----------------------------------------------------------------------------

const NODE_H = { step: 48, route: 30, cron: 30, state: 30, topic: 30 };
const KIND_COLOR = { http: 1, queue: 1, cron: 1, state: 1, noop: 1 };  // kinds with a colour class

function nodeWidth(node) {
  const chars = Math.max(node.label.length, node.kind === "step" ? (node.detail || "").length : 0);
  return Math.max(node.kind === "step" ? 150 : 90, chars * (node.kind === "step" ? 8.2 : 7.6) + 30);
}

function layout(graph) {
  const layers = new Map();
  for (const n of graph.nodes) {
    n.w = nodeWidth(n); n.h = NODE_H[n.kind] || 30;
    if (!layers.has(n.layer)) layers.set(n.layer, []);
    layers.get(n.layer).push(n);
  }
  const order = [...layers.keys()].sort((a, b) => a - b);
  const ROW = 74, GAP = 110, MARGIN = 24;
  // Room after each layer for the widest label on the edges that leave it.
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const gapAfter = new Map();
  for (const e of graph.edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    if (!a || !b || !e.label || b.kind === "topic" || b.layer <= a.layer) continue;
    gapAfter.set(a.layer, Math.max(gapAfter.get(a.layer) || GAP, e.label.length * 6.6 + 60));
  }
  let x = MARGIN, height = 0;
  for (const depth of order) {
    const members = layers.get(depth).sort((a, b) => a.order - b.order);
    height = Math.max(height, members.length * ROW);
  }
  for (const depth of order) {
    const members = layers.get(depth);
    const width = Math.max(...members.map((n) => n.w));
    const offset = (height - members.length * ROW) / 2;
    members.forEach((n, i) => {
      n.x = x + (width - n.w) / 2;
      n.y = MARGIN + offset + i * ROW + (ROW - n.h) / 2;
    });
    x += width + (gapAfter.get(depth) || GAP);
  }
  return { width: x - GAP + MARGIN, height: height + 2 * MARGIN + 40 };
}

function drawGraph(graph, onStep) {
  const size = layout(graph);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const svg = s("svg", { class: "graph", width: size.width, height: size.height,
    viewBox: `0 0 ${size.width} ${size.height}`, "data-testid": "flows-graph" });
  svg.append(s("defs", {},
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa3b5" })),
    s("marker", { id: "arrow-dlq", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#c05656" }))));
  const edges = s("g", {});
  const labels = s("g", {});
  for (const e of graph.edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    if (!a || !b) continue;
    let d, mx, my;
    if (b.layer > a.layer) {
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x - 2, y2 = b.y + b.h / 2;
      const dx = Math.max(40, (x2 - x1) / 2);
      d = `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
      mx = (x1 + x2) / 2; my = (y1 + y2) / 2;
    } else {  // a back edge (a cycle): loop under both nodes
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y + b.h + 2;
      const low = Math.max(y1, y2) + 46;
      d = `M ${x1} ${y1} C ${x1} ${low}, ${x2} ${low}, ${x2} ${y2}`;
      mx = (x1 + x2) / 2; my = low - 10;
    }
    const dlq = e.virtual && e.label.startsWith("dead letters");
    edges.append(s("path", { d, class: `edge${e.virtual ? " virtual" : ""}`,
      "marker-end": dlq || e.virtual ? "url(#arrow-dlq)" : "url(#arrow)" }));
    if (e.label && b.kind !== "topic") {  // a topic node already says its name
      const w = e.label.length * 6.6 + 10;
      labels.append(s("rect", { class: "edge-label-bg", x: mx - w / 2, y: my - 9, width: w, height: 16, rx: 4 }));
      labels.append(s("text", { class: "edge-label", x: mx, y: my + 3, "text-anchor": "middle", text: e.label }));
    }
  }
  const nodes = s("g", {});
  for (const n of graph.nodes) {
    const g = s("g", { class: `node ${n.kind}`, transform: `translate(${n.x},${n.y})`, "data-node": n.id });
    if (n.kind === "topic") {
      g.append(s("ellipse", { cx: n.w / 2, cy: n.h / 2, rx: n.w / 2, ry: n.h / 2 }));
      g.append(s("text", { x: n.w / 2, y: n.h / 2 + 4, "text-anchor": "middle", text: n.label }));
    } else if (n.kind === "step") {
      const kind = (n.detail || "noop").split(",")[0].trim();
      g.append(s("rect", { width: n.w, height: n.h, rx: 8 }));
      g.append(s("rect", { class: `bar k-${KIND_COLOR[kind] ? kind : "noop"}`, width: 5, height: n.h - 2, x: 1, y: 1, rx: 2 }));
      g.append(s("text", { x: 16, y: 20, "font-weight": 600, text: n.label }));
      g.append(s("text", { class: "kind", x: 16, y: 37, text: n.detail || "noop" }));
      g.append(s("title", { text: n.description || n.label }));
      g.addEventListener("click", () => onStep(n.label));
    } else {
      const icon = { route: "⇢ ", cron: "◷ ", state: "◈ " }[n.kind] || "";
      g.append(s("rect", { width: n.w, height: n.h, rx: n.kind === "route" ? 15 : 6 }));
      g.append(s("text", { x: n.w / 2, y: n.h / 2 + 4, "text-anchor": "middle", class: "mono", text: icon + n.label }));
    }
    nodes.append(g);
  }
  svg.append(edges, nodes, labels);
  return svg;
}

views.flows = async (root, arg, token) => {
  // "#flows" opens the first flow; "#flows/" is every step.
  const first = await api("/_motet/flows" + (arg ? `?flow=${encodeURIComponent(arg)}` : ""));
  if (stale(token)) return;
  const flow = arg;
  if (flow === null && first.flows.length) { location.replace(`#flows/${encodeURIComponent(first.flows[0])}`); return; }
  const select = h("select", { "data-testid": "flow-select", onchange: (ev) => { location.hash = ev.target.value ? `#flows/${encodeURIComponent(ev.target.value)}` : "#flows/"; } },
    h("option", { value: "", text: "All steps" }),
    first.flows.map((f) => h("option", { value: f, text: f, selected: f === flow })));
  const steps = first.nodes.filter((n) => n.kind === "step").length;
  const svg = drawGraph(first, (step) => { location.hash = `#logs/${encodeURIComponent(step)}`; });
  const wrap = h("div", { class: "graph-wrap" }, svg);
  root.append(
    h("h1", { text: "Flows" }),
    h("p", { class: "sub", text: `${steps} steps · ${first.edges.length} connections — click a step to see its logs` }),
    h("div", { class: "toolbar" }, h("label", {}, "Flow", select)),
    wrap,
    h("div", { class: "legend" },
      h("span", {}, h("i", { class: "l-http" }), "HTTP"), h("span", {}, h("i", { class: "l-queue" }), "queue"),
      h("span", {}, h("i", { class: "l-cron" }), "cron"), h("span", {}, h("i", { class: "l-state" }), "state"),
      h("span", {}, h("i", { class: "l-topic" }), "topic without subscribers"),
      h("span", {}, h("i", { class: "l-dlq" }), "dead letters / virtual")));
  // Shrink a wide graph to fit (down to 75 %); beyond that, scroll.
  const width = Number(svg.getAttribute("width")), height = Number(svg.getAttribute("height"));
  const room = wrap.clientWidth - 20;
  if (width > room) {
    const scale = Math.max(room / width, 0.75);
    svg.setAttribute("width", width * scale);
    svg.setAttribute("height", height * scale);
  }
};

// ---- logs ------------------------------------------------------------------------------

let stepNames = null;

async function steps() {
  if (!stepNames) {
    const g = await api("/_motet/flows");
    stepNames = g.nodes.filter((n) => n.kind === "step").map((n) => n.label).sort();
  }
  return stepNames;
}

function logRow(line) {
  return h("tr", { "data-seq": line.seq },
    h("td", { class: "time", text: fmtTime(line.time) }),
    h("td", {}, badge(line.level, line.level)),
    h("td", { class: "step", text: line.step || "motet", title: line.step || "motet" }),
    h("td", {}, h("div", { text: line.msg }), h("div", { class: "fields", text: compact(line.fields) }),
      line.traceback ? h("details", { class: "tb" }, h("summary", { text: "traceback" }), tracebackView(line.traceback)) : ""),
    h("td", { class: "mono" }, line.attempt && line.attempt > 1 ? `#${line.attempt}` : ""),
    h("td", {}, traceLink(line.trace_id)));
}

// A failure's traceback as the runtime stored it: the user's frames in full, motet's folded.
function tracebackView(text, testid) {
  return h("pre", { class: "traceback", "data-testid": testid || "traceback", text });
}

function logTable(lines, testid) {
  const body = h("tbody", {}, lines.map(logRow));
  const table = h("table", { class: "logs", "data-testid": testid },
    h("thead", {}, h("tr", {}, ["time", "level", "step", "message", "try", "trace"].map((t) => h("th", { text: t })))), body);
  return { table, body };
}

views.logs = async (root, arg, token) => {
  const names = await steps();
  if (stale(token)) return;
  const filters = { step: arg || "", level: "", q: "", trace_id: "" };
  let cursor = null, live = true, generation = 0;
  const stepSel = h("select", { "data-testid": "log-step" }, h("option", { value: "", text: "all steps" }),
    names.map((n) => h("option", { value: n, text: n, selected: n === arg })));
  const levelSel = h("select", { "data-testid": "log-level" }, ["", "debug", "info", "warn", "error"].map((l) => h("option", { value: l, text: l || "any level" })));
  const text = h("input", { type: "search", placeholder: "search messages", "data-testid": "log-search" });
  const trace = h("input", { type: "text", placeholder: "trace id", class: "mono" });
  const liveEl = h("span", { class: "live", "data-testid": "log-live" }, h("span", { class: "dot" }), "live");
  const toggle = h("button", { text: "Pause", onclick: () => { live = !live; toggle.textContent = live ? "Pause" : "Resume"; liveEl.classList.toggle("paused", !live); } });
  const { table, body } = logTable([], "log-table");
  const scroller = h("div", { class: "logs-scroll table-wrap" }, table);
  const count = h("span", { class: "muted" });
  root.append(h("h1", { text: "Logs" }), h("p", { class: "sub", text: "Every line carries its step, trace, message and attempt. Stored, so it survives restarts." }),
    h("div", { class: "toolbar" }, stepSel, levelSel, text, trace, toggle, liveEl, count), scroller);

  function params() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
    return p;
  }
  async function load(initial) {
    const p = params();
    const mine = initial ? ++generation : generation;
    if (initial) p.set("limit", "300"); else { p.set("after", cursor ?? 0); p.set("limit", "500"); }
    const res = await api(`/_motet/logs?${p}`);
    if (stale(token) || mine !== generation) return;  // the filters changed meanwhile
    if (initial) clear(body);
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    for (const line of res.logs) body.append(logRow(line));
    if (res.logs.length) cursor = res.logs[res.logs.length - 1].seq;
    else if (initial) cursor = cursor ?? 0;
    while (body.children.length > 2000) body.removeChild(body.firstChild);
    count.textContent = `${body.children.length} lines`;
    if (initial || nearBottom) scroller.scrollTop = scroller.scrollHeight;
  }
  const reload = () => { filters.step = stepSel.value; filters.level = levelSel.value; filters.q = text.value.trim(); filters.trace_id = trace.value.trim(); cursor = null; load(true); };
  for (const el of [stepSel, levelSel]) el.addEventListener("change", reload);
  for (const el of [text, trace]) el.addEventListener("input", () => { clearTimeout(el._t); el._t = setTimeout(reload, 250); });
  await load(true);
  every(1000, () => { if (live) load(false).catch(() => {}); });
};

// ---- traces ----------------------------------------------------------------------------

function waterfall(spans, onSelect) {
  if (!spans.length) return h("div", { class: "empty", text: "No spans yet." });
  const start = Math.min(...spans.map((s) => s.started));
  const end = Math.max(...spans.map((s) => s.started + s.duration));
  const total = Math.max(end - start, 1e-6);
  const rows = spans.map((sp) => {
    const kind = sp.kind === "handler" ? sp.trigger : sp.kind;
    const left = ((sp.started - start) / total) * 100;
    const width = Math.max((sp.duration / total) * 100, 0.4);
    const bar = h("div", { class: `bar ${kind} ${sp.outcome}`, title: `${sp.name}: ${fmtDur(sp.duration)}` });
    bar.style.left = `${Math.min(left, 99.5)}%`;
    bar.style.width = `${Math.min(width, 100 - Math.min(left, 99.5))}%`;
    const indent = h("span", { class: "indent" });
    indent.style.width = `${sp.depth * 16}px`;
    return h("tr", { class: "clickable", "data-span": sp.span_id, onclick: () => onSelect(sp) },
      h("td", { class: "name" }, indent, badge(kind, kind), " ", h("b", { text: sp.name }),
        sp.attempt && sp.attempt > 1 ? h("span", { class: "muted", text: ` attempt ${sp.attempt}` }) : "",
        sp.outcome !== "ok" ? [" ", badge(sp.status || sp.outcome, "error")] : sp.status ? [" ", badge(String(sp.status), "ok")] : ""),
      h("td", { class: "bar-cell" }, h("div", { class: "track" }, bar)),
      h("td", { class: "dur", text: fmtDur(sp.duration) }));
  });
  return h("table", { class: "waterfall", "data-testid": "waterfall" }, h("tbody", {}, rows));
}

function spanDetail(sp) {
  const items = [["span", sp.span_id], ["started", fmtDateTime(sp.started) + "." + pad(Math.round((sp.started % 1) * 1000), 3)],
    ["duration", fmtDur(sp.duration)], ["outcome", sp.outcome]];
  if (sp.step) items.push(["step", sp.step]);
  if (sp.topic) items.push(["topic", sp.topic]);
  if (sp.message_id) items.push(["message", sp.message_id]);
  if (sp.attempt) items.push(["attempt", sp.attempt]);
  if (sp.status) items.push(["status", sp.status]);
  if (sp.error) items.push(["error", sp.error]);
  const dl = h("dl", { class: "span-detail" }, items.map(([k, v]) => [h("dt", { text: k }), h("dd", { class: "mono", text: String(v) })]));
  dl.append(h("dt", { text: "emitted" }), h("dd", {}, sp.emitted.length ? sp.emitted.map((e) => h("div", { class: "mono", text: `${e.topic}  ${short(e.id)}` })) : h("span", { class: "muted", text: "nothing" })));
  dl.append(h("dt", { text: "state writes" }), h("dd", {}, sp.state_writes.length ? sp.state_writes.map((w) => h("div", { class: "mono", text: `${w.event || "unchanged"} ${w.namespace}/${w.key}` })) : h("span", { class: "muted", text: "none" })));
  if (sp.traceback) dl.append(h("dt", { text: "traceback" }), h("dd", {}, tracebackView(sp.traceback, "span-traceback")));
  return h("div", { class: "card" }, h("h2", { text: sp.name }), dl);
}

function traceView(data) {
  const detail = h("div", {}, h("div", { class: "card muted", text: "Select a span for its details." }));
  const select = (sp) => { clear(detail).append(spanDetail(sp)); };
  const first = data.spans[0];
  const wf = waterfall(data.spans, select);
  const { table } = logTable(data.logs, "trace-logs");
  return h("div", {},
    h("div", { class: "trace-grid" }, h("div", { class: "card" }, wf), detail),
    h("h2", { text: `Log lines (${data.logs.length})` }), h("div", { class: "table-wrap" }, table),
    first ? "" : "");
}

views.traces = async (root, arg, token) => {
  if (arg) return traceDetail(root, arg, token);
  const names = await steps();
  if (stale(token)) return;
  const stepSel = h("select", {}, h("option", { value: "", text: "all steps" }), names.map((n) => h("option", { value: n, text: n })));
  const body = h("tbody", {});
  root.append(h("h1", { text: "Traces" }),
    h("p", { class: "sub", text: "Every HTTP request, cron tick and message joins a trace; each handler run is a span." }),
    h("div", { class: "toolbar" }, h("label", {}, "Step", stepSel)),
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "trace-list" },
      h("thead", {}, h("tr", {}, ["started", "root", "steps", "spans", "duration", "status", "trace"].map((t) => h("th", { text: t })))), body)));
  async function load() {
    const res = await api(`/_motet/traces?limit=100${stepSel.value ? `&step=${encodeURIComponent(stepSel.value)}` : ""}`);
    if (stale(token)) return;
    clear(body);
    if (!res.traces.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "empty", text: "No traces yet: send a request from Endpoints." })));
    for (const t of res.traces) {
      body.append(h("tr", { class: "clickable", "data-trace": t.trace_id, onclick: () => { location.hash = `#traces/${t.trace_id}`; } },
        h("td", { class: "mono", text: fmtTime(t.started) }), h("td", {}, h("b", { text: t.root })),
        h("td", { class: "muted", text: t.steps.join(", ") }), h("td", { class: "num", text: t.spans }),
        h("td", { class: "num mono", text: fmtDur(t.duration) }),
        h("td", {}, t.errors ? badge(`${t.errors} failed`, "error") : badge("ok", "ok")),
        h("td", {}, traceLink(t.trace_id))));
    }
  }
  stepSel.addEventListener("change", load);
  await load();
  every(2000, () => load().catch(() => {}));
};

async function traceDetail(root, id, token) {
  const holder = h("div", {});
  root.append(h("p", {}, h("a", { href: "#traces", class: "trace-link", text: "← all traces" })),
    h("h1", {}, "Trace ", h("span", { class: "mono", text: id })), holder);
  let last = "";
  async function load() {
    let data;
    try { data = await api(`/_motet/traces/${id}`); } catch (err) {
      if (err.status === 404) { clear(holder).append(h("div", { class: "empty", text: "Not stored yet…" })); return; }
      throw err;
    }
    if (stale(token)) return;
    const key = `${data.spans.length}:${data.logs.length}`;
    if (key === last) return;
    last = key;
    clear(holder).append(h("p", { class: "sub", text: `${data.spans.length} spans · ${data.logs.length} log lines` }), traceView(data));
  }
  await load();
  every(1500, () => load().catch(() => {}));
}

// ---- queues and dead letters -----------------------------------------------------------

views.queues = async (root, arg, token) => {
  const stats = h("div", { class: "stats" });
  const qbody = h("tbody", {});
  const dlHolder = h("div", {});
  let selected = arg || null;
  let lastResult = "";
  root.append(h("h1", { text: "Queues" }), h("p", { class: "sub", text: "One queue per (topic, subscribing step). Select a queue for its dead letters." }), stats,
    h("div", { class: "table-wrap queue-scroll" }, h("table", { "data-testid": "queue-table" },
      h("thead", {}, h("tr", {}, ["subscription", "strategy", "ready", "leased", "retrying", "scheduled", "running", "dead", "retries", "dead letters go to"].map((t) => h("th", { text: t, title: QUEUE_COLUMN_TITLES[t] || "" })))), qbody)),
    dlHolder);
  async function loadQueues() {
    const res = await api("/_motet/queues");
    if (stale(token)) return;
    const sum = (k) => res.queues.reduce((a, q) => a + q[k], 0);
    clear(stats).append(
      h("div", { class: "stat" }, h("b", { text: res.queues.length }), h("span", { text: "queues" })),
      h("div", { class: "stat" }, h("b", { text: sum("ready") + sum("delayed") }), h("span", { text: "waiting" })),
      h("div", { class: "stat" }, h("b", { text: sum("leased") }), h("span", { text: "being handled" })),
      h("div", { class: `stat ${sum("dead") ? "alert" : ""}`, "data-testid": "dead-total" }, h("b", { text: sum("dead") }), h("span", { text: "dead letters" })));
    clear(qbody);
    const rows = [...res.queues].sort((a, b) => b.dead - a.dead || (b.ready + b.delayed) - (a.ready + a.delayed) || a.subscription.localeCompare(b.subscription));
    for (const q of rows) {
      qbody.append(h("tr", { class: `clickable ${q.subscription === selected ? "selected" : ""}`, "data-subscription": q.subscription,
        onclick: () => { selected = q.subscription; loadQueues(); loadDead(); } },
        h("td", {}, h("b", { text: q.step }), h("span", { class: "muted", text: " ← " }), h("span", { class: "pill", text: q.topic })),
        h("td", {}, q.options.strategy, q.options.rate_limit ? h("span", { class: "muted", text: ` · ${q.options.rate_limit}` }) : "",
          q.throttled ? [" ", h("span", { class: "badge warn", "data-testid": "throttled", text: "throttled" })] : ""), h("td", { class: "num", text: q.ready }), h("td", { class: "num", text: q.leased }),
        h("td", { class: "num", text: q.delayed }), h("td", { class: "num", "data-testid": "scheduled", text: q.scheduled || 0 }),
        h("td", { class: "num", text: q.in_flight }),
        h("td", { class: "num" }, q.dead ? badge(String(q.dead), "error") : "0"),
        h("td", { class: "num", text: q.options.max_retries }), h("td", { class: "mono muted", text: q.options.dead_letter_queue || "dead-letter store" })));
    }
  }
  async function loadDead() {
    const res = await api(`/_motet/dead-letters?limit=200${selected ? `&subscription=${encodeURIComponent(selected)}` : ""}`);
    if (stale(token)) return;
    const checks = new Map();
    const actions = h("div", { class: "toolbar" });
    const doAction = async (kind) => {
      const ids = [...checks].filter(([, c]) => c.checked).map(([id]) => id);
      if (!ids.length) return;
      const out = await api(`/_motet/dead-letters/${kind}`, { body: { ids } });
      lastResult = kind === "redrive" ? `re-driven: ${out.redriven}` : `discarded: ${out.discarded}`;
      actions.append(h("span", { class: "muted", "data-testid": "dl-result", text: lastResult }));
      setTimeout(() => { loadQueues(); loadDead(); pollHealth(); }, 300);
    };
    const all = h("input", { type: "checkbox", title: "select all", onchange: () => { for (const c of checks.values()) c.checked = all.checked; } });
    actions.append(h("button", { class: "primary", text: "Re-drive selected", "data-testid": "redrive", onclick: () => doAction("redrive") }),
      h("button", { class: "danger", text: "Discard selected", "data-testid": "discard", onclick: () => doAction("discard") }),
      selected ? h("button", { text: "Show all queues", onclick: () => { selected = null; loadQueues(); loadDead(); } }) : "",
      lastResult ? h("span", { class: "muted", "data-testid": "dl-result", text: lastResult }) : "");
    const body = h("tbody", {});
    for (const d of res.dead_letters) {
      const check = h("input", { type: "checkbox", "data-id": d.id });
      checks.set(d.id, check);
      const more = h("tr", { class: "hidden" }, h("td", { colspan: 6 },
        d.traceback ? [h("div", { class: "muted", text: "traceback of the last attempt" }), tracebackView(d.traceback, "dl-traceback")] : "",
        h("pre", { class: "json-view", text: json({ error: d.error, message: d.message }) })));
      body.append(h("tr", { "data-dead-letter": d.id },
        h("td", {}, check), h("td", { class: "mono", text: fmtDateTime(d.failed_at) }),
        h("td", {}, h("span", { class: "pill", text: d.subscription })), h("td", { class: "num", text: d.attempts }),
        h("td", {}, h("div", { text: d.error }), traceLink(d.message.trace_id)),
        h("td", {}, h("button", { text: "Inspect", onclick: () => more.classList.toggle("hidden") }))), more);
    }
    if (!res.dead_letters.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty", text: "No dead letters." })));
    clear(dlHolder).append(h("h2", { text: `Dead letters${selected ? ` of ${selected}` : ""} (${res.dead_letters.length})` }), actions,
      h("div", { class: "table-wrap" }, h("table", { "data-testid": "dead-letters" },
        h("thead", {}, h("tr", {}, h("th", {}, all), ["failed", "subscription", "attempts", "error", ""].map((t) => h("th", { text: t })))), body)));
  }
  await loadQueues();
  await loadDead();
  every(2000, () => loadQueues().catch(() => {}));
};

// ---- messages: status by id, cancel ------------------------------------------------------

// What the less obvious queue columns count (a header's tooltip).
const QUEUE_COLUMN_TITLES = {
  retrying: "waiting for a retry after a failed attempt",
  scheduled: "emitted with delay= or at=, not yet due (counted once per subscribing step)",
};

const STATE_BADGE = { queued: "info", delayed: "cron", running: "queue", retrying: "warn", done: "ok", dead: "error", cancelled: "debug", expired: "error" };
const SETTLED = new Set(["done", "dead", "cancelled", "expired"]);

views.messages = async (root, arg, token) => {
  const input = h("input", { type: "text", class: "mono", placeholder: "message id (as emit returned it)", "data-testid": "message-id", style: "min-width: 30em", value: arg || "" });
  const go = () => { const id = input.value.trim(); if (id) location.hash = `#messages/${encodeURIComponent(id)}`; };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  const out = h("div", { "data-testid": "message-status" });
  root.append(h("h1", { text: "Messages" }), h("p", { class: "sub", text: "Look up a message by id: each delivery (one per subscribing step), its state, attempts, last error and result. Cancel stops it wherever it is." }),
    h("div", { class: "toolbar" }, input, h("button", { class: "primary", text: "Look up", "data-testid": "message-lookup", onclick: go })), out);
  if (!arg) return;
  let note = "";
  async function load() {
    let res;
    try {
      res = await api(`/_motet/messages/${encodeURIComponent(arg)}`);
    } catch (err) {
      if (stale(token)) return;
      clear(out).append(h("div", { class: "card muted", "data-testid": "message-missing", text: err.message }));
      return;
    }
    if (stale(token)) return;
    const live = !SETTLED.has(res.state);
    const cancel = h("button", { class: "danger", text: "Cancel message", "data-testid": "message-cancel", disabled: !res.deliveries.some((d) => !SETTLED.has(d.state)),
      onclick: async () => {
        try {
          const done = await api(`/_motet/messages/${encodeURIComponent(arg)}/cancel`, { body: {} });
          note = done.detail;
        } catch (err) { note = err.message; }
        load();
      } });
    const body = h("tbody", {});
    for (const d of res.deliveries) {
      const detail = [];
      if (d.error) detail.push(h("div", { class: "muted", text: `error: ${d.error}` }));
      if (d.traceback) detail.push(tracebackView(d.traceback, "message-traceback"));
      if (d.result !== null && d.result !== undefined) detail.push(h("pre", { class: "json-view", "data-testid": "message-result", text: json(d.result) }));
      if (d.result_note) detail.push(h("div", { class: "muted", text: `result not kept: ${d.result_note}` }));
      if (d.dead_letter_id) detail.push(h("a", { href: `#queues/${encodeURIComponent(d.subscription)}`, text: `dead letter ${short(d.dead_letter_id)}` }));
      body.append(h("tr", { "data-delivery": d.subscription },
        h("td", {}, h("b", { text: d.step }), h("span", { class: "muted", text: ` ${d.subscription}` })),
        h("td", {}, badge(d.state, STATE_BADGE[d.state])), h("td", { class: "num", text: d.attempts }),
        h("td", { class: "mono muted" }, [["enqueued", d.enqueued_at], ["started", d.started_at], ["finished", d.finished_at], [d.attempts ? "next try" : "due", d.due_at]]
          .filter(([, t]) => t !== null && t !== undefined).map(([k, t]) => h("div", { text: `${k} ${fmtDateTime(t)}` }))),
        h("td", {}, detail)));
    }
    clear(out).append(
      h("div", { class: "toolbar" }, h("span", { class: "mono", text: res.id }), h("span", { class: "pill", text: res.topic || "?" }),
        h("span", { "data-testid": "message-state" }, badge(res.state, STATE_BADGE[res.state])), cancel,
        note ? h("span", { class: "muted", "data-testid": "message-note", text: note }) : ""),
      h("div", { class: "table-wrap" }, h("table", { "data-testid": "message-deliveries" },
        h("thead", {}, h("tr", {}, ["delivery", "state", "attempts", "times", "error / result"].map((t) => h("th", { text: t })))), body)));
    return live;
  }
  await load();
  every(2000, () => load().catch(() => {}));
};

// ---- state -----------------------------------------------------------------------------

views.state = async (root, arg, token) => {
  const res = await api("/_motet/state");
  if (stale(token)) return;
  const list = h("ul", { class: "route-list" }, res.groups.map((g) => h("li", { class: g === arg ? "selected" : "", onclick: () => { location.hash = `#state/${encodeURIComponent(g)}`; } }, h("span", { class: "mono", text: g }))));
  if (!res.groups.length) list.append(h("li", { class: "muted", text: "No state yet." }));
  const right = h("div", {});
  root.append(h("h1", { text: "State" }), h("p", { class: "sub", text: "Namespaced JSON documents written by handlers." }),
    h("div", { class: "tester" }, h("div", { class: "card" }, list), right));
  if (!arg) { right.append(h("div", { class: "card muted", text: "Select a namespace." })); return; }
  const items = await api(`/_motet/state/${encodeURIComponent(arg)}`);
  if (stale(token)) return;
  const reload = () => { if (!stale(token)) route(); };
  right.append(stateEditor(arg, null, {}, reload),
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "state-items" },
      h("thead", {}, h("tr", {}, h("th", { text: "key" }), h("th", { text: "value" }), h("th", { text: "" }))),
      h("tbody", {}, items.items.map((it) => stateRow(arg, it, reload))))));
};

// One state key: its value, and Edit / Delete (the operator's writes go through the backend as
// a handler's would, so state triggers fire).
function stateRow(namespace, item, reload) {
  const value = h("td", {}, h("pre", { text: json(item.value) }));
  const del = h("button", { text: "Delete", "data-testid": "state-delete" });
  del.onclick = async () => {
    if (del.dataset.armed !== "1") { del.dataset.armed = "1"; del.textContent = "Confirm delete"; return; }
    try { await api("/_motet/state/delete", { body: { namespace, key: item.key } }); reload(); }
    catch (e) { value.append(h("div", { class: "error", text: e.message })); }
  };
  const edit = h("button", { text: "Edit", "data-testid": "state-edit",
    onclick: () => { clear(value).append(stateEditor(namespace, item.key, item.value, reload)); } });
  return h("tr", { "data-state-key": item.key }, h("td", { class: "mono", text: item.key }), value,
    h("td", { class: "actions" }, edit, del));
}

// A form that sets one key to a JSON value; `key` null lets the operator name a new one.
function stateEditor(namespace, key, value, reload) {
  const keyInput = key === null ? h("input", { placeholder: "new key", "data-testid": "state-new-key" }) : null;
  const text = h("textarea", { class: "mono", rows: 4, "data-testid": "state-value" });
  text.value = JSON.stringify(value, null, 2);
  const error = h("div", { class: "error", "data-testid": "state-error" });
  const save = h("button", { text: key === null ? "Add key" : "Save", "data-testid": "state-save" });
  save.onclick = async () => {
    error.textContent = "";
    let parsed;
    try { parsed = JSON.parse(text.value); } catch (e) { error.textContent = `Not JSON: ${e.message}`; return; }
    const name = key === null ? keyInput.value.trim() : key;
    if (!name) { error.textContent = "Name the key."; return; }
    try { await api("/_motet/state/set", { body: { namespace, key: name, value: parsed } }); reload(); }
    catch (e) { error.textContent = e.message; }
  };
  return h("div", { class: key === null ? "card state-editor" : "state-editor" }, keyInput || "", text, h("div", {}, save), error);
}

// ---- cron ------------------------------------------------------------------------------

views.cron = async (root, arg, token) => {
  const body = h("tbody", {});
  root.append(h("h1", { text: "Cron" }), h("p", { class: "sub", text: "Each tick fires once across instances; times in your browser's zone." }),
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "cron-table" },
      h("thead", {}, h("tr", {}, ["step", "schedule", "timezone", "next fire", "then", "last tick", ""].map((t) => h("th", { text: t })))), body)));
  async function load() {
    const res = await api("/_motet/cron");
    if (stale(token)) return;
    clear(body);
    for (const c of res.cron) {
      body.append(h("tr", {}, h("td", {}, h("b", { text: c.step })), h("td", {}, h("span", { class: "pill", text: c.expression })),
        h("td", { text: c.timezone }),
        h("td", {}, c.next.length ? [h("div", { text: fmtIn(c.next[0] - res.now) }), h("div", { class: "muted mono", text: fmtDateTime(c.next[0]) })] : "never"),
        h("td", { class: "muted mono" }, c.next.slice(1).map((t) => h("div", { text: fmtDateTime(t) }))),
        h("td", { class: "mono" }, c.last ? fmtDateTime(c.last) : h("span", { class: "muted", text: "never" })),
        h("td", {}, c.running ? badge("running", "info") : "")));
    }
  }
  await load();
  every(5000, () => load().catch(() => {}));
};

// ---- endpoint tester -------------------------------------------------------------------

function sample(schema, doc, depth = 0) {
  if (!schema || depth > 6) return null;
  if (schema.$ref) return sample(schema.$ref.split("/").slice(1).reduce((o, k) => (o || {})[k], doc), doc, depth + 1);
  if (schema.example !== undefined) return schema.example;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  for (const key of ["anyOf", "oneOf", "allOf"]) if (schema[key]) return sample(schema[key].find((x) => x.type !== "null") || schema[key][0], doc, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "object" || schema.properties) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties || {})) out[k] = sample(v, doc, depth + 1);
    return out;
  }
  if (type === "array") return [sample(schema.items, doc, depth + 1)];
  if (type === "integer") return 1;
  if (type === "number") return 1.5;
  if (type === "boolean") return true;
  if (type === "string") return schema.format === "date-time" ? new Date().toISOString() : "hello";
  return null;
}

views.endpoints = async (root, arg, token) => {
  const res = await api("/_motet/routes");
  const openapi = await fetch("/openapi.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  if (stale(token)) return;
  const list = h("ul", { class: "route-list", "data-testid": "route-list" });
  const form = h("div", {});
  root.append(h("h1", { text: "Endpoints" }), h("p", { class: "sub", text: "Send a request to an HTTP step and follow its trace." }),
    h("div", { class: "tester" }, h("div", { class: "card" }, list), form));
  const items = res.routes.map((r) => {
    const li = h("li", { "data-route": `${r.method} ${r.path}`, onclick: () => pick(r, li) }, h("span", { class: `method ${r.method}`, text: r.method }), h("span", { class: "mono", text: r.path }));
    list.append(li);
    return [r, li];
  });
  if (!items.length) list.append(h("li", { class: "muted", text: "No HTTP steps." }));
  function bodyFor(r) {
    const op = openapi && openapi.paths && openapi.paths[r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}")];
    const schema = op && op[r.method.toLowerCase()] && op[r.method.toLowerCase()].requestBody
      && op[r.method.toLowerCase()].requestBody.content && op[r.method.toLowerCase()].requestBody.content["application/json"];
    const value = schema ? sample(schema.schema, openapi) : {};
    return json(value ?? {});
  }
  function pick(r, li) {
    for (const [, other] of items) other.classList.toggle("selected", other === li);
    const method = h("select", { "data-testid": "tester-method" }, ["GET", "POST", "PUT", "PATCH", "DELETE"].map((m) => h("option", { value: m, text: m, selected: m === r.method })));
    const path = h("input", { type: "text", value: r.path, "data-testid": "tester-path" });
    const body = h("textarea", { "data-testid": "tester-body" });
    body.value = ["GET", "DELETE", "HEAD"].includes(r.method) ? "" : bodyFor(r);
    const result = h("div", {});
    const send = h("button", { class: "primary", text: "Send", "data-testid": "tester-send", onclick: () => fire() });
    clear(form).append(h("div", { class: "card" },
      h("div", { class: "muted", text: `${r.step}${r.description ? ` — ${r.description}` : ""}` }),
      h("h2", { text: "Request" }), h("div", { class: "request-line" }, method, path, send), body), result);
    async function fire() {
      send.disabled = true;
      const t0 = performance.now();
      const init = { method: method.value, headers: {} };
      if (body.value.trim() && !["GET", "HEAD"].includes(method.value)) { init.body = body.value; init.headers["content-type"] = "application/json"; }
      let response, text;
      try { response = await fetch(path.value, init); text = await response.text(); } catch (err) {
        clear(result).append(h("div", { class: "banner", text: `Request failed: ${err.message}` })); send.disabled = false; return;
      }
      const ms = (performance.now() - t0) / 1000;
      send.disabled = false;
      const traceId = response.headers.get("x-trace-id");
      let pretty = text;
      try { pretty = json(JSON.parse(text)); } catch (e) { /* not JSON: show as is */ }
      const traceHolder = h("div", { "data-testid": "tester-trace" }, h("div", { class: "empty", text: "Waiting for the trace…" }));
      clear(result).append(h("div", { class: "card", "data-testid": "tester-response" }, h("h2", { text: "Response" }),
        h("dl", { class: "kv" }, h("dt", { text: "status" }), h("dd", {}, h("span", { class: `status s${String(response.status)[0]}`, "data-testid": "tester-status", text: `${response.status} ${response.statusText}` })),
          h("dt", { text: "time" }), h("dd", { text: fmtDur(ms) }),
          h("dt", { text: "trace" }), h("dd", {}, traceId ? h("a", { class: "trace-link", href: `#traces/${traceId}`, text: traceId }) : "–"),
          h("dt", { text: "content-type" }), h("dd", { text: response.headers.get("content-type") || "–" })),
        h("pre", { class: "json-view", "data-testid": "tester-response-body", text: pretty || "(empty body)" })),
        h("h2", { text: "Trace" }), traceHolder);
      if (traceId) followTrace(traceId, traceHolder);
    }
  }
  async function followTrace(id, holder) {
    const mine = active.token;
    let last = "", stableFor = 0;
    for (let i = 0; i < 60 && mine === active.token && stableFor < 8; i++) {
      try {
        const data = await api(`/_motet/traces/${id}`);
        const key = `${data.spans.length}:${data.logs.length}`;
        if (key !== last) { last = key; stableFor = 0; clear(holder).append(traceView(data)); } else stableFor++;
      } catch (err) { if (err.status !== 404) throw err; }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const wanted = arg ? items.find(([r]) => `${r.method} ${r.path}` === arg) : items[0];
  if (wanted) pick(wanted[0], wanted[1]);
};

// ---- streams (the stream inspector) ----------------------------------------------------

views.streams = async (root, arg, token) => {
  const res = await api("/_motet/streams");
  if (stale(token)) return;
  const [pickedStream, pickedGroup] = arg ? [arg.split("/")[0], arg.split("/").slice(1).join("/")] : [null, null];
  const list = h("ul", { class: "route-list", "data-testid": "stream-list" });
  for (const s of res.streams) {
    list.append(h("li", { class: "muted", "data-stream": s.name },
      h("b", { text: s.name }), " ",
      badge(s.public ? "public" : (s.access_hook ? "hook" : "private"), s.public ? "info" : "muted"),
      h("span", { class: "muted", text: ` · ${s.subscribers} live` })));
    for (const g of s.groups) {
      const here = s.name === pickedStream && g === pickedGroup;
      list.append(h("li", { class: here ? "selected" : "", "data-group": `${s.name}/${g}`, onclick: () => { location.hash = `#streams/${encodeURIComponent(s.name)}/${encodeURIComponent(g)}`; } },
        h("span", { class: "mono", text: `  ${g}` })));
    }
  }
  if (!res.streams.length) list.append(h("li", { class: "muted", text: "No streams declared (add a *.stream.py file to the steps folder)." }));
  const right = h("div", {});
  const hub = res.hub ? ` ${res.hub.subscribers} live subscribers here, ${res.hub.dropped} dropped for being slow.` : "";
  root.append(h("h1", { text: "Streams" }), h("p", { class: "sub", text: `Records handlers publish with ctx.streams; clients follow them at /_streams/{name}/{group}.${hub}` }),
    h("div", { class: "tester" }, h("div", { class: "card" }, list), right));
  if (!pickedGroup) { right.append(h("div", { class: "card muted", text: "Select a group." })); return; }
  const head = h("p", { class: "sub mono" });
  const body = h("tbody", {});
  right.append(head, h("div", { class: "table-wrap" }, h("table", { "data-testid": "stream-items" },
    h("thead", {}, h("tr", {}, h("th", { text: "id" }), h("th", { text: "item" }))), body)));
  async function load() {
    const group = await api(`/_motet/streams/${encodeURIComponent(pickedStream)}/${encodeURIComponent(pickedGroup)}`);
    if (stale(token)) return;
    head.textContent = `${group.stream} / ${group.group} · event ${group.event_id} · ${group.subscribers} live`;
    clear(body);
    for (const it of group.items) body.append(h("tr", {}, h("td", { class: "mono", text: it.id }), h("td", {}, h("pre", { text: json(it.value) }))));
    if (!group.items.length) body.append(h("tr", {}, h("td", { class: "muted", colspan: 2, text: "No items." })));
  }
  await load();
  every(2000, () => load().catch(() => {}));
};

// ---- start -----------------------------------------------------------------------------

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  route();
  pollHealth();
  setInterval(pollHealth, 5000);
});
