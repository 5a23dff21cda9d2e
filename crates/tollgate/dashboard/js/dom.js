// DOM building and formatting. Every piece of data reaches the page as a text node or
// an attribute value set through the DOM: nothing here parses HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * h("div.card#id", {onclick, class, dataset, ...attrs}, ...children)
 * Strings and numbers become text nodes; null/undefined/false are skipped; arrays
 * are flattened.
 */
export function h(spec, attrs, ...children) {
  const [tag, classes, id] = parseSpec(spec);
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id;
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

function parseSpec(spec) {
  const m = /^([a-z0-9-]+)?((?:\.[\w-]+)*)(?:#([\w-]+))?((?:\.[\w-]+)*)$/i.exec(spec);
  if (!m) throw new Error(`bad element spec ${spec}`);
  const classes = (m[2] + m[4]).split(".").filter(Boolean);
  return [m[1] || "div", classes, m[3]];
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === "class") {
      el.className = [el.className, v].filter(Boolean).join(" ");
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (k === "style") {
      // CSSOM, not the style attribute: allowed by the page's CSP.
      Object.assign(el.style, v);
    } else if (k === "value" || k === "checked" || k === "disabled" || k === "selected") {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace every child of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A small SVG icon from static path data (never data from the API). */
export function icon(name, size = 16) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", d);
    svg.append(p);
  }
  return svg;
}

const ICONS = {
  overview: ["M3 13h8V3H3z", "M13 21h8V11h-8z", "M3 21h8v-6H3z", "M13 9h8V3h-8z"],
  keys: ["M8 11a4 4 0 1 0 0 8a4 4 0 1 0 0-8", "M10.8 12.2L20 3", "M17 6l2.5 2.5", "M14.5 8.5l2 2"],
  upstreams: ["M4 6h16", "M4 12h16", "M4 18h16", "M7 6v.01", "M7 12v.01", "M7 18v.01"],
  costs: ["M12 2v20", "M17 6H9.5a3.5 3.5 0 0 0 0 7h5a3.5 3.5 0 0 1 0 7H6"],
  logs: ["M4 4h16v16H4z", "M8 9h8", "M8 13h8", "M8 17h5"],
  alerts: ["M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9", "M10 21h4"],
  logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"],
  plus: ["M12 5v14", "M5 12h14"],
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  refresh: ["M21 12a9 9 0 1 1-3-6.7L21 8", "M21 3v5h-5"],
  download: ["M12 3v12", "M7 10l5 5 5-5", "M5 21h14"],
  more: ["M12 6v.01", "M12 12v.01", "M12 18v.01"],
  back: ["M15 18l-6-6 6-6"],
  check: ["M5 12l5 5 9-11"],
  x: ["M6 6l12 12", "M18 6L6 18"],
  warn: ["M12 3l10 18H2z", "M12 10v4", "M12 17v.01"],
  gate: ["M3 21V8l9-5 9 5v13", "M3 12h18", "M8 12v9", "M16 12v9"],
};

// ---------------------------------------------------------------------------------
// Formatting

const nf = new Intl.NumberFormat("en-US");
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : nf.format(n);
}

export function fmtCompact(n) {
  if (n === null || n === undefined) return "—";
  return Math.abs(n) < 10000 ? nf.format(n) : compact.format(n);
}

/** Money: cents for ordinary amounts, significant digits for tiny ones. */
export function fmtMoney(x, currency = "USD") {
  if (x === null || x === undefined) return "—";
  const abs = Math.abs(x);
  const opts = { style: "currency", currency };
  if (abs > 0 && abs < 0.01) {
    opts.minimumSignificantDigits = 1;
    opts.maximumSignificantDigits = 3;
  } else {
    opts.minimumFractionDigits = 2;
    opts.maximumFractionDigits = 2;
  }
  try {
    return new Intl.NumberFormat("en-US", opts).format(x);
  } catch {
    return `${x.toFixed(4)} ${currency}`;
  }
}

export function fmtPct(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  return `${(x * 100).toFixed(digits)}%`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  return `${nf.format(Math.round(ms))} ms`;
}

export function fmtDuration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function fmtTime(t) {
  if (!t) return "—";
  const d = typeof t === "number" ? new Date(t) : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString("en-GB", {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function fmtDate(t) {
  if (!t) return "—";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleDateString("en-GB", { year: "numeric", month: "short", day: "2-digit" });
}

export function fmtAgo(t) {
  if (!t) return "never";
  const d = new Date(t).getTime();
  if (Number.isNaN(d)) return String(t);
  const s = (Date.now() - d) / 1000;
  if (s < -5) return `in ${fmtDuration(-s)}`;
  if (s < 5) return "just now";
  return `${fmtDuration(s)} ago`;
}

/** UTC day `YYYY-MM-DD`, `daysAgo` days before today. */
export function utcDay(daysAgo = 0) {
  const d = new Date(Date.now() - daysAgo * 86400000);
  return d.toISOString().slice(0, 10);
}

/** The first day of this UTC month. */
export function utcMonthStart() {
  return utcDay(0).slice(0, 8) + "01";
}

/** Every UTC day from `from` to today, inclusive. */
export function daysSince(from) {
  const out = [];
  const end = Date.parse(utcDay(0) + "T00:00:00Z");
  for (let t = Date.parse(from + "T00:00:00Z"); t <= end; t += 86400000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Small components

export function badge(text, kind = "neutral", title) {
  return h(`span.badge.badge-${kind}`, { title }, text);
}

const STATUS_KINDS = {
  active: "ok", ok: "ok", enabled: "ok",
  suspended: "warn", cooling_down: "warn",
  revoked: "bad", invalid: "bad", disabled: "muted", not_loaded: "muted",
};

export function statusBadge(status) {
  return badge(String(status).replace(/_/g, " "), STATUS_KINDS[status] || "neutral");
}

export function httpStatusBadge(code) {
  const kind = code < 400 ? "ok" : code === 429 || code === 499 ? "warn" : "bad";
  return badge(String(code), kind);
}

export function emptyState(title, text, action, iconName = "overview") {
  return h("div.empty", h("div.empty-icon", icon(iconName, 26)), h("h3", title), text && h("p", text), action);
}

export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h("div.alert.alert-error", { role: "alert" }, icon("warn"), h("span", msg));
}

export function spinner(label = "Loading…") {
  return h("div.loading", h("span.spinner"), label);
}

/** A stat card: label, big value, a line under it. */
export function stat(label, value, sub, opts = {}) {
  return h("div.stat", { dataset: { stat: opts.id || label } },
    h("div.stat-label", label),
    h("div.stat-value", value),
    sub && h("div.stat-sub", sub));
}

/** A horizontal bar showing `frac` (0..1) with warn/bad thresholds. */
export function meter(frac, { warn = 0.7, bad = 0.85, label, kind } = {}) {
  const f = Math.max(0, Math.min(1, frac || 0));
  kind = kind || (f >= bad ? "bad" : f >= warn ? "warn" : "ok");
  return h("div.meter", { title: label || fmtPct(frac), role: "meter",
    "aria-valuenow": (f * 100).toFixed(1), "aria-valuemin": 0, "aria-valuemax": 100 },
    h(`div.meter-fill.meter-${kind}`, { style: { width: `${(f * 100).toFixed(1)}%` } }));
}

export function card(title, body, actions) {
  return h("section.card",
    (title || actions) && h("header.card-head", title && h("h2", title), actions && h("div.card-actions", actions)),
    h("div.card-body", body));
}

/** A table from column specs {label, value(row) -> Node|string, class, align}. */
export function table(columns, rows, { empty, rowAttrs, className } = {}) {
  if (!rows.length && empty) return empty;
  return h("div.table-wrap", h(`table.table${className ? "." + className : ""}`,
    h("thead", h("tr", columns.map((c) => h("th", { class: c.class, scope: "col" }, c.label)))),
    h("tbody", rows.map((r) => {
      const tr = h("tr", rowAttrs ? rowAttrs(r) : null,
        columns.map((c) => h("td", { class: c.class, "data-label": c.label }, c.value(r))));
      return tr;
    }))));
}

export function mono(text) {
  return h("span.mono", text);
}

/** A link inside the app. */
export function link(hash, ...children) {
  return h("a", { href: hash }, ...children);
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
