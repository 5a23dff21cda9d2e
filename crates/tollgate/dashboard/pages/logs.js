// Logs: every logged call, newest first, filtered by key, owner, model, status, error
// type and time; paged by cursor; a row opens to show all its fields.

import { h, mount, mono, httpStatusBadge, emptyState, errorBox, spinner, icon, fmtInt, fmtMoney,
  fmtMs, fmtTime } from "../js/dom.js";
import { api, apiUrl, keyNames } from "../js/api.js";

const PAGE = 50;
const FILTERS = ["key_id", "owner", "model", "status", "error_type", "from", "to"];

export async function render(ctx) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, ctx.query.get(f) || ""]));
  const exportBtn = h("a.btn", { href: apiUrl("logs", { ...filters, format: "csv", limit: 10000 }), download: "tollgate-logs.csv" }, icon("download"), "Export CSV");
  ctx.setTitle("Logs", exportBtn);
  mount(ctx.main, spinner());

  let names = new Map();
  let models = [];
  let owners = [];
  let currency = "USD";
  try {
    const [n, m, u] = await Promise.all([keyNames({ fresh: true }), api("models"), api("users")]);
    names = n;
    models = m.data.map((x) => x.name);
    if (m.data.length) currency = m.data[0].currency;
    owners = u.data.map((x) => x.owner);
  } catch (e) {
    if (ctx.isCurrent() && e.status !== 401) mount(ctx.main, errorBox(e));
    return;
  }
  if (!ctx.isCurrent()) return;

  const opt = (value, label, selected) => h("option", { value, selected }, label);
  const keySelect = h("select", { name: "key_id", "aria-label": "Key" },
    opt("", "All keys"),
    [...names.values()].sort((a, b) => a.name.localeCompare(b.name)).map((k) => opt(k.id, `${k.name} (${k.masked})`, k.id === filters.key_id)),
    filters.key_id && !names.has(filters.key_id) ? opt(filters.key_id, filters.key_id, true) : null);
  const modelSelect = h("select", { name: "model", "aria-label": "Model" },
    opt("", "All models"), models.map((m) => opt(m, m, m === filters.model)),
    filters.model && !models.includes(filters.model) ? opt(filters.model, filters.model, true) : null);
  const statusSelect = h("select", { name: "status", "aria-label": "Status" },
    [["", "Any status"], ["2xx", "2xx success"], ["4xx", "4xx client errors"], ["5xx", "5xx server errors"],
      ["401", "401 unauthorized"], ["403", "403 forbidden"], ["429", "429 limited"], ["499", "499 client closed"]]
      .map(([v, l]) => opt(v, l, v === filters.status)));
  const ownerList = h("datalist", { id: "owner-options" }, owners.map((o) => h("option", { value: o })));
  const form = h("form.filters", { dataset: { form: "log-filters" } },
    keySelect,
    h("input", { name: "owner", placeholder: "Owner", list: "owner-options", value: filters.owner, "aria-label": "Owner" }), ownerList,
    modelSelect,
    statusSelect,
    h("input", { name: "error_type", placeholder: "Error type", value: filters.error_type, "aria-label": "Error type" }),
    h("label.inline", h("span", "From"), h("input", { type: "date", name: "from", value: filters.from })),
    h("label.inline", h("span", "To"), h("input", { type: "date", name: "to", value: filters.to })),
    h("button.btn.btn-primary", { type: "submit" }, "Apply"),
    Object.values(filters).some(Boolean) ? h("a.btn.btn-ghost", { href: "#/logs" }, "Clear") : null);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const f of FILTERS) {
      const v = form.elements[f].value.trim();
      if (v) params.set(f, v);
    }
    location.hash = `#/logs${params.toString() ? "?" + params : ""}`;
  });

  const list = h("section.card");
  const pager = h("div.pager");
  mount(ctx.main, h("div.page", form, list, pager));

  // Cursors of the pages seen, so "Newer" can go back.
  const cursors = [null];
  let index = 0;

  async function load() {
    mount(list, spinner());
    try {
      const page = await api("logs", { query: { ...filters, limit: PAGE, cursor: cursors[index] } });
      if (!ctx.isCurrent()) return;
      cursors[index + 1] = page.next_cursor;
      draw(page.data, page.next_cursor);
    } catch (e) {
      if (ctx.isCurrent() && e.status !== 401) mount(list, errorBox(e));
    }
  }

  function draw(rows, next) {
    if (!rows.length) {
      mount(list, emptyState(index === 0 ? "No calls found" : "No older calls",
        Object.values(filters).some(Boolean) ? "No logged call matches these filters." : "Calls through /v1 appear here as they are made.", null, "logs"));
    } else {
      const tbody = h("tbody");
      for (const r of rows) {
        const detail = h("tr.detail", { hidden: true }, h("td", { colspan: 10 }, details(r, currency)));
        const row = h("tr.clickable", { tabindex: 0, dataset: { request: r.request_id }, "aria-expanded": "false" },
          h("td.nowrap", { title: r.time }, fmtShortTime(r.created_at)),
          h("td", httpStatusBadge(r.status)),
          h("td.nowrap", mono(r.endpoint.replace(/^\/v1\//, ""))),
          h("td.nowrap", modelCell(r)),
          h("td.nowrap", keyCell(r.key_id)),
          h("td", r.owner || h("span.muted", "—")),
          h("td.small.mono", r.upstream_key_id || "—"),
          h("td.num", fmtMs(r.latency_ms)),
          h("td.num", fmtInt(r.prompt_tokens + r.completion_tokens)),
          h("td.num", fmtMoney(r.cost, currency)));
        const toggle = () => {
          detail.hidden = !detail.hidden;
          row.setAttribute("aria-expanded", String(!detail.hidden));
        };
        row.addEventListener("click", toggle);
        row.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            toggle();
          }
        });
        tbody.append(row, detail);
      }
      mount(list, h("div.table-wrap", h("table.table.logs",
        h("thead", h("tr", ["Time", "Status", "Route", "Model", "Key", "Owner", "Upstream key", "Latency", "Tokens", "Cost"]
          .map((c, i) => h(`th${i >= 7 ? ".num" : ""}`, { scope: "col" }, c)))),
        tbody)));
    }
    mount(pager,
      h("button.btn", { type: "button", disabled: index === 0, onclick: () => { index--; load(); } }, "← Newer"),
      h("span.muted.small", `Page ${index + 1} · ${rows.length} call${rows.length === 1 ? "" : "s"}`),
      h("button.btn", { type: "button", disabled: !next, dataset: { page: "older" }, onclick: () => { index++; load(); } }, "Older →"));
  }

  function keyCell(id) {
    if (!id) return h("span.muted", "—");
    const k = names.get(id);
    return h("a", { href: `#/keys/${encodeURIComponent(id)}`, onclick: (e) => e.stopPropagation() }, k ? k.name : id);
  }

  await load();
}

/** `23:28:02` today, `21 Nov 23:28` before. */
function fmtShortTime(ms) {
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString("en-GB", { day: "2-digit", month: "short" })} ${time}`;
}

function modelCell(r) {
  const served = r.model_served || r.model_requested;
  if (!served) return h("span.muted", "—");
  const out = h("span", served);
  if (r.downgraded_from) out.append(h("span.tag.tag-warn", { title: `Downgraded from ${r.downgraded_from}` }, "downgraded"));
  else if (r.model_requested && r.model_served && r.model_requested !== r.model_served) {
    out.append(h("span.muted.small", ` (asked ${r.model_requested})`));
  }
  return out;
}

function details(r, currency) {
  const rows = [
    ["Request id", mono(r.request_id)],
    ["Time", `${fmtTime(r.created_at)} (${r.time})`],
    ["Endpoint", mono(r.endpoint)],
    ["Status", `${r.status}${r.error_type ? ` · ${r.error_type}` : ""}`],
    ["Model asked", r.model_requested || "—"],
    ["Model served", r.model_served || "—"],
    ["Downgraded from", r.downgraded_from || "—"],
    ["Provider", r.provider || "—"],
    ["Upstream key", r.upstream_key_id || "—"],
    ["Stream", r.stream ? "yes" : "no"],
    ["Latency", fmtMs(r.latency_ms)],
    ["Time to first byte", fmtMs(r.ttfb_ms)],
    ["Prompt tokens", fmtInt(r.prompt_tokens)],
    ["Completion tokens", `${fmtInt(r.completion_tokens)}${r.usage_estimated ? " (estimated)" : ""}`],
    ["Cost", fmtMoney(r.cost, currency)],
    ["Client IP", r.client_ip || "—"],
    ["User agent", r.user_agent || "—"],
  ];
  return h("dl.facts.facts-compact", rows.map(([k, v]) => h("div.fact-row", h("dt", k), h("dd", v))));
}
