// Time-series charts on uPlot (vendor/uplot-*/, a global `uPlot`): bars (optionally
// stacked) and lines over a time axis, with labelled, unit-bearing y axes, a legend
// that shows the hovered values, and width that follows the container.

import { h, fmtCompact } from "./dom.js";

export const COLORS = {
  primary: "#4f46e5",
  ok: "#14b8a6",
  bad: "#ef4444",
  warn: "#f59e0b",
  spend: "#10b981",
  p50: "#6366f1",
  p95: "#f59e0b",
  p99: "#ef4444",
  muted: "#94a3b8",
};

const AXIS = {
  stroke: "#64748b",
  font: "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  labelFont: "600 11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  grid: { stroke: "#eef2f7", width: 1 },
  ticks: { stroke: "#e2e8f0", width: 1, size: 4 },
};

/** Axis steps for whole counts: no 0.2 requests. */
const INTEGER_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 2.5e4, 5e4,
  1e5, 2e5, 2.5e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 1e9, 1e10];

const DAY_INCRS = [1, 2, 3, 7, 14, 28, 56, 91, 182, 364].map((d) => d * 86400);

/** Latency axis ticks: `0.5`, `12`, `1.2k`. */
export function msAxis(v) {
  if (v === null || v === undefined) return "";
  return v < 10 ? String(+v.toFixed(1)) : fmtCompact(Math.round(v));
}

/** Live charts, so a page can destroy them when it goes. */
const live = new Set();

export function destroyCharts() {
  for (const c of live) c.destroy();
  live.clear();
}

/**
 * A chart over time in `el`.
 *  x:      times in Unix seconds, evenly spaced by `step` seconds
 *  series: [{label, values, color, kind: "bar"|"line", dash}]
 *  stack:  stack the bar series (bottom first)
 *  yLabel: the y axis title with its unit ("requests / day", "USD", "ms")
 *  yFmt:   formats y values on the axis and in the legend
 *  utc:    show times in UTC (for UTC-day buckets)
 */
export function timeChart(el, { x, series, stack = false, yLabel, yFmt = fmtCompact, axisFmt, integer = false, utc = false, step = 86400, height = 220 }) {
  axisFmt = axisFmt || yFmt;
  if (typeof uPlot === "undefined") {
    el.replaceChildren(h("div.chart-missing", "Charts are unavailable (uPlot did not load)."));
    return null;
  }
  const nonZero = series.some((s) => s.values.some((v) => v !== null && v !== 0));
  el.dataset.points = String(x.length);
  el.dataset.filled = nonZero ? "true" : "false";
  el.dataset.yLabel = yLabel || "";

  // Stacked bars: series i is drawn as the sum of series 0..i, topmost first, so each
  // visible band is that series' own value.
  let draw = series.map((s) => ({ ...s, shown: s.values }));
  if (stack) {
    const sums = [];
    let acc = x.map(() => 0);
    for (const s of series) {
      acc = acc.map((a, i) => a + (s.values[i] || 0));
      sums.push(acc);
    }
    draw = series.map((s, i) => ({ ...s, shown: sums[i] })).reverse();
  }

  const bars = uPlot.paths.bars({ size: [0.7, 48], align: 0 });
  const data = [x, ...draw.map((s) => s.shown)];
  const opts = {
    width: Math.max(200, el.clientWidth || 600),
    height,
    padding: [12, 28, 0, 4],
    tzDate: utc ? (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC") : undefined,
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true, range: (u, min, max) => [min - step / 2, max + step / 2] },
      y: { range: (u, min, max) => [0, max > 0 ? (integer ? Math.max(1, Math.ceil(max * 1.12)) : max * 1.12) : integer ? 5 : 1] },
    },
    axes: [
      // Day buckets get whole-day ticks, not 12-hour ones.
      { ...AXIS, space: 60, incrs: step >= 86400 ? DAY_INCRS : undefined },
      {
        ...AXIS,
        label: yLabel,
        labelSize: 18,
        size: 56,
        values: (u, vals) => vals.map((v) => axisFmt(v)),
        incrs: integer ? INTEGER_INCRS : undefined,
      },
    ],
    series: [
      { label: "Time", value: utc ? "{YYYY}-{MM}-{DD}" : "{MMM} {D} {HH}:{mm}" },
      ...draw.map((s) => ({
        label: s.label,
        stroke: s.color,
        fill: s.kind === "bar" ? s.color + "cc" : s.color + "14",
        width: s.kind === "bar" ? 0 : 2,
        dash: s.dash,
        paths: s.kind === "bar" ? bars : undefined,
        // Points where a line is too sparse to be seen as one.
        points: { show: s.kind !== "bar" && (x.length < 40 || sparse(s.values)) },
        spanGaps: false,
        value: (u, v, si, i) => (i === null || i === undefined ? "—" : yFmt(s.values[i])),
      })),
    ],
  };
  el.replaceChildren();
  const plot = new uPlot(opts, data, el);
  const ro = new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  ro.observe(el);
  const handle = {
    destroy() {
      ro.disconnect();
      plot.destroy();
      live.delete(handle);
    },
  };
  live.add(handle);
  return handle;
}

function sparse(values) {
  let n = 0;
  for (const v of values) if (v !== null && v !== undefined) n++;
  return n < values.length / 3;
}

/** A chart box: title, a line of context, the chart element. */
export function chartBox(title, sub, id) {
  const el = h("div.chart", { dataset: { chart: id || title } });
  const box = h("section.card.chart-card",
    h("header.card-head", h("div", h("h2", title), sub && h("p.card-sub", sub))),
    h("div.card-body", el));
  return { box, el };
}

/** Unix seconds of the UTC midnight of each `YYYY-MM-DD` day. */
export function dayTimes(days) {
  return days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
}
