// Costs: spend over a period, per day, by model and by owner, with CSV exports.

import { h, mount, card, table, mono, stat, errorBox, spinner, icon, fmtInt, fmtCompact, fmtMoney,
  utcDay, utcMonthStart, daysSince } from "../js/dom.js";
import { api, apiUrl } from "../js/api.js";
import { timeChart, chartBox, dayTimes, COLORS } from "../js/charts.js";

const RANGES = [
  { id: "today", label: "Today", from: () => utcDay(0) },
  { id: "7d", label: "7 days", from: () => utcDay(6) },
  { id: "30d", label: "30 days", from: () => utcDay(29) },
  { id: "month", label: "This month", from: () => utcMonthStart() },
];

export async function render(ctx) {
  const rangeId = RANGES.some((r) => r.id === ctx.query.get("range")) ? ctx.query.get("range") : "30d";
  const range = RANGES.find((r) => r.id === rangeId);
  const from = range.from();
  const seg = h("div.segmented", { role: "group", "aria-label": "Period" },
    RANGES.map((r) => h(`a${r.id === rangeId ? ".active" : ""}`, { href: `#/costs?range=${r.id}`, "aria-pressed": String(r.id === rangeId) }, r.label)));
  ctx.setTitle("Costs", seg);
  mount(ctx.main, spinner());

  let d;
  try {
    const [total, daily, byModel, byOwner] = await Promise.all([
      api("usage", { query: { from } }),
      api("usage", { query: { from, group_by: "day" } }),
      api("costs", { query: { from, group_by: "model" } }),
      api("costs", { query: { from, group_by: "owner" } }),
    ]);
    d = { total: total.data[0], daily: daily.data, byModel: byModel.data, byOwner: byOwner.data, currency: total.currency };
  } catch (e) {
    if (ctx.isCurrent() && e.status !== 401) mount(ctx.main, errorBox(e));
    return;
  }
  if (!ctx.isCurrent()) return;
  const cur = d.currency;
  const t = d.total || { requests: 0, cost: 0, prompt_tokens: 0, completion_tokens: 0 };
  const days = daysSince(from);
  const sumCost = d.byModel.reduce((a, r) => a + r.cost, 0);
  const sumCalls = d.byModel.reduce((a, r) => a + r.requests, 0);
  // With nothing spent (free models), the share is of calls instead.
  const byCost = sumCost > 0;

  const breakdown = (rows, key, label, empty) => table([
    { label, class: "nowrap", value: (r) => (r[key] === null || r[key] === undefined ? h("span.muted", empty) : key === "model" ? mono(r[key]) : r[key]) },
    { label: "Requests", class: "num", value: (r) => fmtInt(r.requests) },
    { label: "Tokens", class: "num", value: (r) => h("span", { title: `${fmtInt(r.prompt_tokens)} prompt · ${fmtInt(r.completion_tokens)} completion` },
      fmtCompact(r.prompt_tokens + r.completion_tokens),
      h("div.muted.small", `${fmtCompact(r.prompt_tokens)} in · ${fmtCompact(r.completion_tokens)} out`)) },
    { label: "Cost", class: "num", value: (r) => fmtMoney(r.cost, cur) },
    { label: byCost ? "Share of cost" : "Share of calls", class: "share", value: (r) => (byCost ? share(r.cost, sumCost) : share(r.requests, sumCalls)) },
  ], rows, { empty: h("p.muted.pad", "No calls in this period.") });

  const exportLink = (group) => h("a.btn.btn-small", {
    href: apiUrl("costs", { from, group_by: group, format: "csv" }),
    download: `tollgate-costs-by-${group}-${from}.csv`,
  }, icon("download"), "CSV");

  const chart = chartBox("Spend per day", `${cur} per UTC day, ${range.label.toLowerCase()}`, "costs-daily");
  mount(ctx.main, h("div.page",
    h("div.stats",
      stat("Spend", fmtMoney(t.cost, cur), `since ${from} (UTC)`, { id: "spend" }),
      stat("Requests", fmtInt(t.requests), `${fmtMoney(t.requests ? t.cost / t.requests : 0, cur)} per call on average`),
      stat("Tokens", fmtCompact(t.prompt_tokens + t.completion_tokens), `${fmtCompact(t.prompt_tokens)} prompt · ${fmtCompact(t.completion_tokens)} completion`),
      stat("Models used", fmtInt(d.byModel.length), `${fmtInt(d.byOwner.length)} owner${d.byOwner.length === 1 ? "" : "s"}`)),
    chart.box,
    h("div.grid-2",
      h("div", { dataset: { section: "by-model" } }, card("By model", breakdown(d.byModel, "model", "Model", "(none)"), exportLink("model"))),
      h("div", { dataset: { section: "by-owner" } }, card("By owner", breakdown(d.byOwner, "owner", "Owner", "(no owner)"), exportLink("owner"))))));

  const byDay = new Map(d.daily.map((r) => [r.day, r]));
  timeChart(chart.el, {
    x: dayTimes(days), utc: true, yLabel: `${cur} / day`, yFmt: (v) => fmtMoney(v, cur),
    series: [{ label: "Spend", values: days.map((day) => (byDay.get(day) || {}).cost || 0), color: COLORS.spend, kind: "bar" }],
  });
}

function share(value, total) {
  const f = total > 0 ? value / total : 0;
  return h("div.share-cell", h("div.share-bar", h("div.share-fill", { style: { width: `${(f * 100).toFixed(1)}%` } })),
    h("span.small", `${(f * 100).toFixed(f < 0.1 && f > 0 ? 1 : 0)}%`));
}
