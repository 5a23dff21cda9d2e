// Overview: today's figures, the gateway's live state, and charts over time.

import { h, mount, stat, card, table, link, mono, fmtInt, fmtCompact, fmtMoney, fmtPct, fmtMs,
  fmtDuration, utcDay, daysSince, icon, errorBox, spinner } from "../js/dom.js";
import { api, listAll, keyNames } from "../js/api.js";
import { timeChart, chartBox, dayTimes, destroyCharts, msAxis, COLORS } from "../js/charts.js";

const REFRESH_MS = 30000;
const DAYS = 30;
const RECENT_MINUTES = 60;
/** At most this many calls are read from the log for the last-hour charts. */
const RECENT_MAX_ROWS = 5000;

export async function render(ctx) {
  const body = h("div.page");
  const refreshBtn = h("button.btn", { type: "button", onclick: () => load() }, icon("refresh"), "Refresh");
  ctx.setTitle("Overview", refreshBtn);
  mount(ctx.main, body);
  mount(body, spinner());

  let timer = null;
  async function load() {
    let data;
    try {
      data = await fetchAll();
    } catch (e) {
      if (!ctx.isCurrent()) return;
      if (e.status !== 401) mount(body, errorBox(e));
      return;
    }
    if (!ctx.isCurrent()) return;
    destroyCharts();
    mount(body, ...view(data));
    drawCharts(data);
  }
  await load();
  timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);

  function view(d) {
    const cur = d.currency;
    const t = d.today;
    const errorRate = t.requests ? t.failures / t.requests : 0;
    const topErrors = Object.entries(t.errors || {}).sort((a, b) => b[1] - a[1]).slice(0, 2)
      .map(([k, v]) => `${k} ${fmtInt(v)}`).join(" · ");
    const m = d.metrics;
    const keysTotal = m.providers.reduce((a, p) => a + p.keys, 0);
    const keysUsable = m.providers.reduce((a, p) => a + p.usable_keys, 0);

    const stats = h("div.stats", { dataset: { section: "today" } },
      stat("Requests today", fmtInt(t.requests), `${fmtInt(t.successes)} succeeded · ${fmtInt(t.failures)} failed`, { id: "requests" }),
      stat("Error rate today", fmtPct(errorRate), topErrors || "No failed calls", { id: "error_rate" }),
      stat("Latency p50", fmtMs(t.p50_ms), `p95 ${fmtMs(t.p95_ms)}`, { id: "p50" }),
      stat("Latency p99", fmtMs(t.p99_ms), "slowest 1% of calls today", { id: "p99" }),
      stat("Spend today", fmtMoney(t.cost, cur), `${fmtCompact(t.prompt_tokens + t.completion_tokens)} tokens`, { id: "spend" }));

    const live = h("div.livebar", { dataset: { section: "live" } },
      h("span.live-dot", { title: "Live figures of this gateway" }),
      fact("Up", fmtDuration(m.uptime_s)),
      fact("Client keys", fmtInt(m.client_keys)),
      fact("Upstream keys usable", `${keysUsable} / ${keysTotal}`, keysUsable < keysTotal ? "warn" : null),
      fact("Upstream calls since start", fmtInt(m.requests)),
      fact("Upstream error rate", fmtPct(m.error_rate), m.error_rate > 0.2 ? "bad" : null),
      fact("Usage queue", fmtInt(m.usage_queue_depth)));

    const charts = h("div.chart-grid");
    d.chartSlots = {};
    for (const [id, title, sub] of [
      ["recent-traffic", "Traffic, last hour", `Calls per minute (local time)${d.recentCapped ? `, latest ${fmtInt(RECENT_MAX_ROWS)} calls` : ""}`],
      ["recent-latency", "Latency, last hour", "Per minute, milliseconds"],
      ["daily-requests", `Requests, last ${DAYS} days`, "Calls per UTC day"],
      ["daily-spend", `Spend, last ${DAYS} days`, `${cur} per UTC day`],
      ["daily-latency", `Latency, last ${DAYS} days`, "p50 / p95 / p99 per UTC day, milliseconds"],
      ["daily-tokens", `Tokens, last ${DAYS} days`, "Prompt and completion tokens per UTC day"],
    ]) {
      const { box, el } = chartBox(title, sub, id);
      d.chartSlots[id] = el;
      charts.append(box);
    }

    const models = table([
      { label: "Model", value: (r) => mono(r.model ?? "(none)") },
      { label: "Requests", class: "num", value: (r) => fmtInt(r.requests) },
      { label: "Tokens", class: "num", value: (r) => fmtCompact(r.prompt_tokens + r.completion_tokens) },
      { label: "Cost", class: "num", value: (r) => fmtMoney(r.cost, cur) },
    ], d.models.slice(0, 8), { empty: h("p.muted.pad", "No calls today.") });

    const keysTable = table([
      { label: "Key", value: (r) => keyLabel(r.key_id, d.names) },
      { label: "Requests", class: "num", value: (r) => fmtInt(r.requests) },
      { label: "Failed", class: "num", value: (r) => fmtInt(r.failures) },
      { label: "p50", class: "num", value: (r) => fmtMs(r.p50_ms) },
      { label: "Cost", class: "num", value: (r) => fmtMoney(r.cost, cur) },
    ], d.keys.slice(0, 8), { empty: h("p.muted.pad", "No calls today.") });

    const hint = t.requests === 0 && d.daily.length === 0
      ? h("div.alert.alert-info", icon("keys"), h("span", "No traffic yet. Create a key on the Keys page and send a request to /v1/chat/completions to see it here."))
      : null;

    return [hint, stats, live, charts,
      h("div.grid-2",
        card("Top models today", models, link("#/costs", "All costs →")),
        card("Top keys today", keysTable, link("#/keys", "All keys →")))];
  }

  function drawCharts(d) {
    const days = daysSince(utcDay(DAYS - 1));
    const byDay = new Map(d.daily.map((r) => [r.day, r]));
    const x = dayTimes(days);
    const col = (f, empty = 0) => days.map((day) => (byDay.has(day) ? f(byDay.get(day)) : empty));
    const s = d.chartSlots;
    timeChart(s["daily-requests"], {
      x, utc: true, stack: true, integer: true, yFmt: fmtInt, yLabel: "requests / day",
      series: [
        { label: "Succeeded", values: col((r) => r.successes), color: COLORS.ok, kind: "bar" },
        { label: "Failed", values: col((r) => r.failures), color: COLORS.bad, kind: "bar" },
      ],
    });
    timeChart(s["daily-spend"], {
      x, utc: true, yLabel: `${d.currency} / day`, yFmt: (v) => fmtMoney(v, d.currency),
      series: [{ label: "Spend", values: col((r) => r.cost), color: COLORS.spend, kind: "bar" }],
    });
    timeChart(s["daily-latency"], {
      x, utc: true, yLabel: "ms", yFmt: fmtMs, axisFmt: msAxis,
      series: [
        { label: "p50", values: col((r) => r.p50_ms, null), color: COLORS.p50, kind: "line" },
        { label: "p95", values: col((r) => r.p95_ms, null), color: COLORS.p95, kind: "line" },
        { label: "p99", values: col((r) => r.p99_ms, null), color: COLORS.p99, kind: "line", dash: [4, 3] },
      ],
    });
    timeChart(s["daily-tokens"], {
      x, utc: true, stack: true, integer: true, yFmt: fmtInt, yLabel: "tokens / day",
      series: [
        { label: "Prompt", values: col((r) => r.prompt_tokens), color: COLORS.primary, kind: "bar" },
        { label: "Completion", values: col((r) => r.completion_tokens), color: COLORS.muted, kind: "bar" },
      ],
    });

    const r = d.recent;
    timeChart(s["recent-traffic"], {
      x: r.x, step: 60, stack: true, integer: true, yFmt: fmtInt, yLabel: "calls / min",
      series: [
        { label: "Succeeded", values: r.ok, color: COLORS.ok, kind: "bar" },
        { label: "Failed", values: r.failed, color: COLORS.bad, kind: "bar" },
      ],
    });
    timeChart(s["recent-latency"], {
      x: r.x, step: 60, yLabel: "ms", yFmt: fmtMs, axisFmt: msAxis,
      series: [
        { label: "p50", values: r.p50, color: COLORS.p50, kind: "line" },
        { label: "p95", values: r.p95, color: COLORS.p95, kind: "line" },
      ],
    });
  }
}

function fact(label, value, kind) {
  return h(`span.fact${kind ? ".fact-" + kind : ""}`, h("span.fact-label", label), h("span.fact-value", value));
}

export function keyLabel(id, names) {
  if (!id) return h("span.muted", "—");
  const k = names.get(id);
  return link(`#/keys/${encodeURIComponent(id)}`, k ? k.name : id, k && k.owner ? h("span.muted.small", ` · ${k.owner}`) : null);
}

async function fetchAll() {
  const today = utcDay(0);
  const since = Date.now() - RECENT_MINUTES * 60000;
  let [metrics, todayRep, daily, models, keys, recentRows, names] = await Promise.all([
    api("metrics"),
    api("usage", { query: { from: today } }),
    api("usage", { query: { group_by: "day", from: utcDay(DAYS - 1) } }),
    api("costs", { query: { group_by: "model", from: today } }),
    api("usage", { query: { group_by: "key", from: today } }),
    listAll("logs", { from: String(since), limit: 1000 }, RECENT_MAX_ROWS),
    keyNames(),
  ]);
  if (keys.data.some((r) => r.key_id && !names.has(r.key_id))) names = await keyNames({ fresh: true });
  const empty = { requests: 0, successes: 0, failures: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, p50_ms: null, p95_ms: null, p99_ms: null, errors: {} };
  return {
    currency: todayRep.currency || metrics.currency,
    metrics,
    today: todayRep.data[0] || empty,
    daily: daily.data,
    models: models.data,
    keys: keys.data.slice().sort((a, b) => b.requests - a.requests),
    recent: perMinute(recentRows),
    recentCapped: recentRows.length >= RECENT_MAX_ROWS,
    names,
  };
}

/** Calls per minute over the last hour, and latency percentiles per minute. */
function perMinute(rows) {
  const minute = 60000;
  const end = Math.floor(Date.now() / minute) * minute;
  const start = end - (RECENT_MINUTES - 1) * minute;
  const n = RECENT_MINUTES;
  const ok = new Array(n).fill(0);
  const failed = new Array(n).fill(0);
  const lat = Array.from({ length: n }, () => []);
  for (const r of rows) {
    const i = Math.floor((r.created_at - start) / minute);
    if (i < 0 || i >= n) continue;
    if (r.status < 400) ok[i]++;
    else failed[i]++;
    lat[i].push(r.latency_ms);
  }
  const pct = (arr, p) => {
    if (!arr.length) return null;
    const s = arr.slice().sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  };
  return {
    x: Array.from({ length: n }, (_, i) => (start + i * minute) / 1000),
    ok, failed,
    p50: lat.map((a) => pct(a, 0.5)),
    p95: lat.map((a) => pct(a, 0.95)),
  };
}
