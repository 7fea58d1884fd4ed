// buddylb dashboard: plain JavaScript drawing SVG, no build step, nothing fetched from
// elsewhere. It reads the admin API (the same routes as `buddylb show`) every 2 s and
// acts only through its POST routes, after a confirmation that shows the drain preview.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const OUTCOME_COLOR = {new: "#1f77b4", sticky_hit: "#2e9e4f", buddy_hit: "#9b3fb5", restick: "#e08a1e",
                       no_sticky: "#7f7f7f", no_server: "#d03b3b"};
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
let view = "overview";
let page = {offset: 0, limit: 50};
let timer = null;

function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "rect", "line", "text", "polyline", "title", "circle"].includes(tag);
  const e = svg ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, options = {}) {
  const r = await fetch(path, {credentials: "same-origin", ...options});
  if (r.status === 401) { showLogin(); throw new Error("login needed"); }
  const body = await r.json();
  if (!r.ok || !body.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body.data;
}

function post(path, data) {
  return api(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)});
}

function showLogin() { document.getElementById("login").classList.remove("hidden"); }

function table(headers, rows) {
  return el("table", {}, el("tr", {}, ...headers.map(h => el("th", {}, h))),
            ...rows.map(r => el("tr", {}, ...r.map(c => el("td", {}, c instanceof Node ? c : fmt(c))))));
}

function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}=${x}`).join(", ") || "-";
  return String(v);
}

function groupColor(name, index) {
  return CSS.supports("color", name) ? name : PALETTE[index % PALETTE.length];
}

// -- overview -------------------------------------------------------------------------------
function chart(title, series, width = 420, height = 140) {
  const svg = el("svg", {width, height, class: "chart", "data-chart": title});
  const all = series.flatMap(s => s.values);
  const max = Math.max(1, ...all);
  const n = Math.max(2, ...series.map(s => s.values.length));
  svg.append(el("text", {x: 6, y: 14}, `${title} (max ${max.toFixed(1)}/s, 15 min)`));
  for (const s of series) {
    const pts = s.values.map((v, i) => `${(i / (n - 1)) * (width - 12) + 6},${height - 8 - (v / max) * (height - 30)}`);
    svg.append(el("polyline", {points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 1.5,
                               "data-series": s.name}));
  }
  return svg;
}

async function showOverview() {
  const data = await api("/dashboard/overview");
  const root = document.getElementById("view-overview");
  root.replaceChildren();
  for (const [name, ctx] of Object.entries(data.contexts)) {
    const s = ctx.series;
    const decisions = Object.entries(s.decisions).map(([o, values]) => ({name: o, values, color: OUTCOME_COLOR[o] || "#333"}));
    root.append(el("div", {class: "card", "data-context": name},
      el("h2", {}, `context ${name}`),
      table(["VIP", "class", "mode", "TLS", "in service"],
            ctx.vips.map(v => [v.vip, v.class, v.mode, v.tls ? "yes" : "no", v.inservice ? "yes" : "no"])),
      el("div", {class: "charts"},
        chart("requests/s", [{name: "requests", values: s.requests, color: "#1f77b4"}]),
        chart("connections/s", [{name: "connections", values: s.connections, color: "#2ca02c"}]),
        chart("decisions/s by outcome", decisions)),
      el("div", {class: "legend"}, ...decisions.map(d => el("span", {style: `color:${d.color}`}, `■ ${d.name}`))),
      el("p", {class: "totals", "data-requests": ctx.totals.requests, "data-connections": ctx.totals.connections},
         `since start: ${ctx.totals.requests} requests, ${ctx.totals.connections} L4 connections, decisions ` +
         (fmt(ctx.totals.decisions)))));
  }
  document.getElementById("status").textContent =
    `configuration generation ${data.generation}, ${data.open_connections} open connections` +
    (data.workers > 1 ? `, ${data.workers} workers` : "");
}

// -- buddy map ------------------------------------------------------------------------------
async function showMap() {
  const data = await api("/dashboard/map");
  const root = document.getElementById("view-map");
  root.replaceChildren();
  for (const [name, ctx] of Object.entries(data)) {
    const colW = 220, rowH = 46, top = 40;
    const rows = Math.max(1, ...ctx.serverfarms.map(f => f.rservers.length));
    const width = colW * ctx.serverfarms.length + 20, height = top + rows * rowH + 20;
    const svg = el("svg", {width, height, "data-context": name, class: "buddy-map"});
    const pos = {};
    ctx.serverfarms.forEach((f, i) => {
      const x = 20 + i * colW;
      svg.append(el("text", {x, y: 20, "font-weight": "bold"}, `serverfarm ${f.serverfarm}`));
      f.rservers.forEach((m, j) => { pos[`${f.serverfarm}/${m.rserver}`] = {x, y: top + j * rowH, m}; });
    });
    const links = el("g", {class: "links"});
    ctx.buddy_real_groups.forEach((g, gi) => {
      const color = groupColor(g.name, gi);
      const farms = Object.keys(g.serverfarms);
      for (let a = 0; a + 1 < farms.length; a++) {
        for (const ra of g.serverfarms[farms[a]]) for (const rb of g.serverfarms[farms[a + 1]]) {
          const p = pos[`${farms[a]}/${ra}`], q = pos[`${farms[a + 1]}/${rb}`];
          if (!p || !q) continue;
          const hits = (g.buddy_hits_per_s[farms[a + 1]] || 0) + (g.buddy_hits_per_s[farms[a]] || 0);
          const line = el("line", {x1: p.x + 150, y1: p.y + 15, x2: q.x, y2: q.y + 15, stroke: color,
                                   "stroke-width": 3, "data-group": g.name, "data-from": `${farms[a]}/${ra}`,
                                   "data-to": `${farms[a + 1]}/${rb}`, class: "link"},
                           el("title", {}, `buddy real group ${g.name}: ${hits.toFixed(2)} buddy hits/s`));
          links.append(line);
          links.append(el("text", {x: (p.x + 150 + q.x) / 2 - 10, y: (p.y + q.y) / 2 + 10, fill: color,
                                   "data-hits": g.name}, `${hits.toFixed(1)}/s`));
        }
      }
    });
    svg.append(links);
    for (const [key, {x, y, m}] of Object.entries(pos)) {
      const group = ctx.buddy_real_groups.findIndex(g => g.name === m.buddy_group);
      const node = el("g", {class: "node", "data-node": key, "data-state": m.state, "data-group": m.buddy_group || ""},
        el("rect", {x, y, width: 150, height: 30, rx: 5, class: `state-${m.state}`,
                    stroke: group >= 0 ? groupColor(m.buddy_group, group) : "#444", "stroke-width": 3}),
        el("text", {x: x + 8, y: y + 19}, `${m.rserver}  ${m.state === "OPERATIONAL" ? "up" : m.state}  ${m.connections}c`),
        el("title", {}, `${m.rserver} port ${m.port ?? "VIP"} weight ${m.weight} group ${m.buddy_group || "-"}: ${m.state}`));
      svg.append(node);
    }
    const legend = ctx.buddy_real_groups.map((g, gi) => el("span", {style: `color:${groupColor(g.name, gi)}`},
      `━ ${g.name}${g.single_farm ? " (one farm)" : ""}`));
    root.append(el("div", {class: "card"}, el("h2", {}, `context ${name}`), svg,
      el("div", {class: "legend"}, ...legend,
        ...["OPERATIONAL", "DRAINING", "PROBE-FAILED", "OUTOFSERVICE", "MAXCONNS"].map(s => el("span", {class: `state-${s}`}, `■ ${s}`))),
      el("p", {}, "sticky scopes: " + ctx.scopes.map(s => `${s.name}${s.buddy ? " (buddy)" : ""}: ${s.serverfarms.join(" + ")}`).join("; "))));
  }
}

// -- sticky database ------------------------------------------------------------------------
async function explain(value) {
  const out = document.getElementById("explain");
  out.replaceChildren();
  try {
    const scopes = await api("/show/sticky-client/" + encodeURIComponent(value));
    if (!scopes.length) out.append(el("p", {}, "no sticky scope keys this client"));
    for (const s of scopes) {
      const e = s.entry;
      out.append(el("div", {class: "card explain", "data-scope": s.scope},
        el("h2", {}, `context ${s.context}, scope ${s.scope}${s.buddy ? " (buddy)" : ""}, key ${s.key}`),
        el("p", {}, e ? `entry: last ${e.last_serverfarm}/${e.last_rserver}, per farm ${fmt(e.serverfarms)}, ` +
                        `expires in ${e.expires_in_s ?? "(open connections)"} s` : "entry: none (a new client here)"),
        table(["serverfarm", "would get", "outcome", "rule"], s.serverfarms.map(f =>
          [f.serverfarm, f.rserver || f.next_rserver || (f.outcome === "no_server" ? "none" : `${f.predictor} of ${f.candidates}`),
           f.outcome, f.rule]))));
    }
  } catch (err) { out.append(el("p", {class: "error"}, err.message)); }
}

async function showSticky() {
  const data = await api(`/dashboard/sticky?offset=${page.offset}&limit=${page.limit}`);
  document.getElementById("page-info").textContent =
    `${data.total ? data.offset + 1 : 0}-${data.offset + data.rows.length} of ${data.total}`;
  const many = (data.workers || 1) > 1;  // --workers N: each row names the worker that holds it
  document.getElementById("entries").replaceChildren(table(
    [...(many ? ["worker"] : []), "context", "scope", "key", "last farm", "last rserver", "rserver per farm",
     "expires (s)", "conns", ""],
    data.rows.map(r => [...(many ? [r.worker] : []), r.context, r.scope, r.key, r.last_serverfarm, r.last_rserver,
                        r.serverfarms, r.expires_in_s ?? "active", r.open_connections,
                        el("button", {onclick: () => { document.getElementById("search-value").value = r.key.split("->")[0];
                                                        explain(r.key.split("->")[0]); }}, "explain")])));
  page.total = data.total;
}

// -- rservers, probes and actions -----------------------------------------------------------
const ACTION_TITLE = {outofservice: "out of service", drain: "to drain (no new clients; stuck clients stay)",
                      inservice: "into service"};

async function confirmAction(r, state) {
  const box = document.getElementById("confirm");
  const preview = document.getElementById("preview");
  document.getElementById("confirm-title").textContent =
    `Take rserver ${r.rserver} ${ACTION_TITLE[state]} (every farm, context ${r.context})?`;
  preview.replaceChildren();
  if (state !== "inservice") {
    const p = await api(`/show/impact/rserver/${encodeURIComponent(r.rserver)}?context=${encodeURIComponent(r.context)}` +
                        `&action=${state}`);
    const t = p.totals;
    const how = state === "drain" ? "draining" : "out of service";
    preview.append(el("p", {id: "preview-summary", "data-action": state, "data-entries": t.entries,
                            "data-stay": t.stay, "data-keep": t.keep, "data-follow": t.follow_buddy, "data-restick": t.restick,
                            "data-no-server": t.no_server},
      `Drain preview (${how}): ${t.entries} sticky entries name ${r.rserver}; ` +
      (state === "drain" ? `${t.stay} clients would stay on it. By rule: ${t.keep} would keep their server, ` : "") +
      `${t.follow_buddy} would follow a buddy, ${t.restick} would re-stick, ${t.no_server} would find no server. ` +
      `${t.connections} open connections finish where they are.`),
      table(["serverfarm", "scope", "entries", "stay", "keep", "follow buddy", "restick", "no server", "to", "new clients"],
            p.serverfarms.map(f => [f.serverfarm, f.scope, f.entries, f.stay, f.keep, f.follow_buddy, f.restick, f.no_server,
                                    f.to, el("span", {"data-new-clients": `${f.serverfarm}`},
                                             fmt(Object.fromEntries(Object.entries(f.new_clients)
                                               .map(([k, v]) => [k, `${Math.round(v * 100)}%`]))))])));
  }
  box.classList.remove("hidden");
  return new Promise(resolve => {
    document.getElementById("confirm-yes").onclick = () => { box.classList.add("hidden"); resolve(true); };
    document.getElementById("confirm-no").onclick = () => { box.classList.add("hidden"); resolve(false); };
  });
}

async function act(r, state) {
  if (!await confirmAction(r, state)) return;
  await post(`/set/rserver/${encodeURIComponent(r.rserver)}`, {state, context: r.context});
  await refresh();
}

function actionButton(r, state, label) {
  return el("button", {class: "action", "data-action": `${state}/${r.context}/${r.rserver}`, onclick: () => act(r, state)},
            label);
}

function probeHistory(p) {
  // the last results, oldest first: one coloured tick each, the detail in its tooltip
  const ticks = el("svg", {width: 6 * Math.max(1, p.history.length) + 2, height: 14, class: "probe-history",
                           "data-probe-target": `${p.context}/${p.probe}/${p.serverfarm}/${p.rserver}`,
                           "data-results": p.history.map(h => h.result).join(",")});
  p.history.forEach((h, i) => ticks.append(el("rect", {x: 1 + i * 6, y: 1, width: 4, height: 12, class: `probe-${h.result.replace(" ", "-")}`},
    el("title", {}, `${new Date(h.ts * 1000).toLocaleTimeString()} ${h.result}` +
                    `${h.latency_ms !== null ? ` ${h.latency_ms} ms` : ""}${h.detail ? `: ${h.detail}` : ""}`))));
  return ticks;
}

async function showRservers() {
  const [rservers, probes] = await Promise.all([api("/show/rserver"), api("/show/probe")]);
  const root = document.getElementById("view-rservers");
  root.replaceChildren(
    el("div", {class: "card"}, el("h2", {}, "rservers"),
      table(["context", "rserver", "address", "admin", "state", "conns", "farm:weight", "actions"],
        rservers.map(r => [r.context, r.rserver, r.address,
          el("span", {"data-rserver-admin": `${r.context}/${r.rserver}`}, r.admin_state),
          el("span", {class: `state-${r.state.split(/[(,]/)[0]}`, "data-rserver-state": `${r.context}/${r.rserver}`}, r.state),
          r.connections, r.serverfarms.map(f => `${f.serverfarm}:${f.weight}`).join(", "),
          el("span", {}, ...(r.admin_state === "INSERVICE" ? [actionButton(r, "drain", "drain"), " ",
                                                               actionButton(r, "outofservice", "out of service")]
                             : r.admin_state === "DRAIN" ? [actionButton(r, "inservice", "in service"), " ",
                                                            actionButton(r, "outofservice", "out of service")]
                             : [actionButton(r, "inservice", "in service")]))]))),
    el("div", {class: "card"}, el("h2", {}, "probes"),
      table(["context", "probe", "serverfarm", "rserver", "state", "last result", "detail", "latency (ms)", "fails",
             "checks", "history (oldest first)"],
        probes.map(p => [p.context, p.probe, p.serverfarm, p.rserver, p.state, p.last_result, p.detail,
                         p.latency_ms, p.consecutive_failures, p.checks, probeHistory(p)]))));
}

async function showEvents() {
  const events = await api("/dashboard/events");
  document.getElementById("view-events").replaceChildren(el("div", {class: "card"}, el("h2", {}, "events"),
    events.length ? table(["time", "worker", "kind", "what"], events.map(e => [new Date(e.ts * 1000).toLocaleTimeString(),
      e.worker ?? 0, el("span", {class: `ev-${e.kind}`, "data-kind": e.kind, "data-worker": e.worker ?? 0}, e.kind),
      e.text])) : el("p", {}, "nothing happened yet")));
}

// -- plumbing -------------------------------------------------------------------------------
const VIEWS = {overview: showOverview, map: showMap, sticky: showSticky, rservers: showRservers, events: showEvents};

async function refresh() {
  try { await VIEWS[view](); document.body.dataset.loaded = view; }
  catch (err) { document.getElementById("status").textContent = err.message; }
}

function select(name) {
  view = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const s of document.querySelectorAll(".view")) s.classList.toggle("active", s.id === `view-${name}`);
  delete document.body.dataset.loaded;
  refresh();
}

document.getElementById("tabs").addEventListener("click", e => {
  if (e.target.dataset.view) location.hash = e.target.dataset.view;  // hashchange selects it
});
window.addEventListener("hashchange", () => { const v = location.hash.slice(1); if (VIEWS[v]) select(v); });
document.getElementById("search").addEventListener("submit", e => {
  e.preventDefault(); explain(document.getElementById("search-value").value.trim());
});
document.getElementById("prev").addEventListener("click", () => { page.offset = Math.max(0, page.offset - page.limit); refresh(); });
document.getElementById("next").addEventListener("click", () => {
  if (page.offset + page.limit < (page.total || 0)) page.offset += page.limit; refresh();
});
document.getElementById("login-form").addEventListener("submit", async e => {
  e.preventDefault();
  const r = await fetch("/login", {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify({token: document.getElementById("token").value})});
  if (r.ok) { document.getElementById("login").classList.add("hidden"); document.getElementById("token").value = ""; refresh(); }
  else document.getElementById("login-error").textContent = "wrong token";
});
const initial = location.hash.slice(1);
select(VIEWS[initial] ? initial : "overview");
timer = setInterval(() => { if (document.getElementById("confirm").classList.contains("hidden")) refresh(); }, 2000);
