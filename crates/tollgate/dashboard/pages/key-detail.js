// One key: its settings, budget use, usage and cost charts, usage by model, and its
// latest calls.

import { h, mount, card, table, link, mono, statusBadge, httpStatusBadge, errorBox, spinner, icon,
  meter, stat, fmtInt, fmtCompact, fmtMoney, fmtPct, fmtMs, fmtTime, fmtDate, utcDay, utcMonthStart,
  daysSince } from "../js/dom.js";
import { api } from "../js/api.js";
import { timeChart, chartBox, dayTimes, destroyCharts, msAxis, COLORS } from "../js/charts.js";
import { editKey, keyAction, actionsFor, ACTION_LABELS, limitsSummary } from "./key-actions.js";

const DAYS = 30;

export async function render(ctx) {
  const id = ctx.params[0];
  ctx.setTitle("Key");
  mount(ctx.main, spinner());
  let d;
  try {
    d = await fetchAll(id);
  } catch (e) {
    if (ctx.isCurrent() && e.status !== 401) {
      mount(ctx.main, h("div.page", link("#/keys", icon("back"), "All keys"), errorBox(e)));
    }
    return;
  }
  if (!ctx.isCurrent()) return;
  const k = d.key;
  const cur = d.currency;

  const buttons = actionsFor(k.status).map((a) =>
    h(`button.btn${a === "revoke" || a === "delete" ? ".btn-danger-ghost" : ""}`, { type: "button", dataset: { act: a }, onclick: () => run(a) }, ACTION_LABELS[a]));
  ctx.setTitle(k.name, ...buttons);

  async function run(action) {
    const changed = action === "edit" ? await editKey(k, cur) : await keyAction(k, action);
    if (!changed || !ctx.isCurrent()) return;
    if (action === "delete") location.hash = "#/keys";
    else {
      destroyCharts();
      render(ctx);
    }
  }

  const t = d.today;
  const mo = d.month;
  const p = k.permissions;
  const budgetRow = (label, spent, limit) => h("div.budget",
    h("div.budget-head", h("span", label), h("span.muted", limit === null || limit === undefined
      ? `${fmtMoney(spent, cur)} spent · no budget`
      : `${fmtMoney(spent, cur)} of ${fmtMoney(limit, cur)}`)),
    limit ? meter(spent / limit, { warn: 0.75, bad: 0.9, label: fmtPct(spent / limit) }) : null);

  const info = h("dl.facts",
    dt("Id", mono(k.id)),
    dt("Key", mono(k.masked)),
    dt("Status", statusBadge(k.status)),
    dt("Owner", k.owner || "—"),
    dt("Team", k.team || "—"),
    dt("Tier", h("span.tag", k.tier)),
    dt("Environment", k.env),
    dt("Created", fmtTime(k.created_at)),
    dt("Expires", k.expires_at ? fmtTime(k.expires_at) : "Never"),
    dt("Models", p.models ? p.models.join(", ") : "Every model of its tier"),
    dt("Endpoints", p.endpoints ? p.endpoints.join(", ") : "All"),
    dt("Max tokens", p.max_tokens ? fmtInt(p.max_tokens) : "No cap"),
    dt("Features", ["streaming", "tools", "vision"].filter((f) => p[f]).join(", ") || "None"),
    dt("HMAC signing", k.hmac ? "Required" : "Off"),
    dt("IP allowlist", k.ip_allowlist.length ? k.ip_allowlist.join(", ") : "Anywhere"),
    dt("CORS origins", k.cors_origins.length ? k.cors_origins.join(", ") : "None"),
    dt("Dedicated upstream", k.dedicated_upstream || "—"),
    dt("Region", k.region || "—"));

  const limits = h("div",
    h("p", limitsSummary(k.limits) || h("span.muted", "Tier defaults for every limit.")),
    budgetRow("Today", t.cost, k.budgets.daily),
    budgetRow("This month", mo.cost, k.budgets.monthly));

  const traffic = chartBox(`Requests, last ${DAYS} days`, "Calls per UTC day", "key-requests");
  const spend = chartBox(`Cost, last ${DAYS} days`, `${cur} per UTC day`, "key-cost");
  const latency = chartBox(`Latency, last ${DAYS} days`, "p50 / p99 per UTC day, milliseconds", "key-latency");
  const tokens = chartBox(`Tokens, last ${DAYS} days`, "Per UTC day", "key-tokens");

  const models = table([
    { label: "Model", value: (r) => mono(r.model ?? "(none)") },
    { label: "Requests", class: "num", value: (r) => fmtInt(r.requests) },
    { label: "Failed", class: "num", value: (r) => fmtInt(r.failures) },
    { label: "Tokens", class: "num", value: (r) => fmtCompact(r.prompt_tokens + r.completion_tokens) },
    { label: "p50", class: "num", value: (r) => fmtMs(r.p50_ms) },
    { label: "Cost", class: "num", value: (r) => fmtMoney(r.cost, cur) },
  ], d.models, { empty: h("p.muted.pad", `No calls in the last ${DAYS} days.`) });

  const calls = table([
    { label: "Time", value: (r) => fmtTime(r.created_at) },
    { label: "Status", value: (r) => httpStatusBadge(r.status) },
    { label: "Endpoint", value: (r) => mono(r.endpoint) },
    { label: "Model", value: (r) => r.model_served || r.model_requested || "—" },
    { label: "Latency", class: "num", value: (r) => fmtMs(r.latency_ms) },
    { label: "Tokens", class: "num", value: (r) => fmtInt(r.prompt_tokens + r.completion_tokens) },
    { label: "Cost", class: "num", value: (r) => fmtMoney(r.cost, cur) },
  ], d.logs, { empty: h("p.muted.pad", "No calls yet.") });

  mount(ctx.main, h("div.page",
    h("div.crumbs", link("#/keys", icon("back"), "All keys")),
    k.status !== "active" ? h(`div.alert.${k.status === "revoked" ? "alert-error" : "alert-warn"}`, icon("warn"),
      h("span", k.status === "revoked" ? "This key is revoked: every call with it is refused." : "This key is suspended: its calls get 403 until it is resumed.")) : null,
    h("div.stats",
      stat("Requests today", fmtInt(t.requests), `${fmtInt(t.failures)} failed`),
      stat("Spend today", fmtMoney(t.cost, cur), k.budgets.daily ? `of ${fmtMoney(k.budgets.daily, cur)} daily budget` : "no daily budget"),
      stat("Spend this month", fmtMoney(mo.cost, cur), k.budgets.monthly ? `of ${fmtMoney(k.budgets.monthly, cur)} monthly budget` : "no monthly budget"),
      stat("Latency p50 today", fmtMs(t.p50_ms), `p99 ${fmtMs(t.p99_ms)}`)),
    h("div.grid-2", traffic.box, spend.box),
    h("div.grid-2", latency.box, tokens.box),
    h("div.grid-2-1",
      card("Settings", info),
      card("Limits & budgets", limits, k.status !== "revoked" ? h("button.btn.btn-small", { type: "button", onclick: () => run("edit") }, "Edit") : null)),
    card(`Usage by model, last ${DAYS} days`, models),
    card("Latest calls", calls, link(`#/logs?key_id=${encodeURIComponent(k.id)}`, "All calls of this key →"))));

  const days = daysSince(utcDay(DAYS - 1));
  const byDay = new Map(d.daily.map((r) => [r.day, r]));
  const x = dayTimes(days);
  const col = (f, empty = 0) => days.map((day) => (byDay.has(day) ? f(byDay.get(day)) : empty));
  timeChart(traffic.el, {
    x, utc: true, stack: true, integer: true, yFmt: fmtInt, yLabel: "requests / day",
    series: [
      { label: "Succeeded", values: col((r) => r.successes), color: COLORS.ok, kind: "bar" },
      { label: "Failed", values: col((r) => r.failures), color: COLORS.bad, kind: "bar" },
    ],
  });
  timeChart(spend.el, {
    x, utc: true, yLabel: `${cur} / day`, yFmt: (v) => fmtMoney(v, cur),
    series: [{ label: "Cost", values: col((r) => r.cost), color: COLORS.spend, kind: "bar" }],
  });
  timeChart(latency.el, {
    x, utc: true, yLabel: "ms", yFmt: fmtMs, axisFmt: msAxis,
    series: [
      { label: "p50", values: col((r) => r.p50_ms, null), color: COLORS.p50, kind: "line" },
      { label: "p99", values: col((r) => r.p99_ms, null), color: COLORS.p99, kind: "line", dash: [4, 3] },
    ],
  });
  timeChart(tokens.el, {
    x, utc: true, stack: true, integer: true, yFmt: fmtInt, yLabel: "tokens / day",
    series: [
      { label: "Prompt", values: col((r) => r.prompt_tokens), color: COLORS.primary, kind: "bar" },
      { label: "Completion", values: col((r) => r.completion_tokens), color: COLORS.muted, kind: "bar" },
    ],
  });
}

function dt(label, value) {
  return h("div.fact-row", h("dt", label), h("dd", value));
}

async function fetchAll(id) {
  const key = await api(`keys/${encodeURIComponent(id)}`);
  const q = { key_id: id };
  const [today, month, daily, models, logs] = await Promise.all([
    api("usage", { query: { ...q, from: utcDay(0) } }),
    api("usage", { query: { ...q, from: utcMonthStart() } }),
    api("usage", { query: { ...q, group_by: "day", from: utcDay(DAYS - 1) } }),
    api("usage", { query: { ...q, group_by: "model", from: utcDay(DAYS - 1) } }),
    api("logs", { query: { ...q, limit: 15 } }),
  ]);
  const empty = { requests: 0, successes: 0, failures: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, p50_ms: null, p99_ms: null };
  return {
    key,
    currency: today.currency,
    today: today.data[0] || empty,
    month: month.data[0] || empty,
    daily: daily.data,
    models: models.data.slice().sort((a, b) => b.cost - a.cost || b.requests - a.requests),
    logs: logs.data,
  };
}
