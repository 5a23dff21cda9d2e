// Alerts (SPEC §9): what is firing now, the rules (editable: POST replaces the set),
// and the history of fired and resolved alerts. A gateway without the alerts API gets
// an empty state, not an error.

import { h, mount, card, table, mono, badge, emptyState, errorBox, spinner, icon, fmtTime, fmtAgo,
  fmtPct, fmtDuration } from "../js/dom.js";
import { api } from "../js/api.js";
import { modal, toast, formError, busy } from "../js/ui.js";

const REFRESH_MS = 15000;

const KINDS = {
  upstream_utilization: { label: "Upstream key utilization", share: true, window: "held for" },
  error_rate: { label: "Error rate", share: true, window: "over", min: true },
  budget: { label: "Budget use", share: true },
  unused_key: { label: "Upstream key unused", window: "for" },
  invalid_key: { label: "Upstream key invalid" },
};

export async function render(ctx) {
  const edit = h("button.btn", { type: "button", dataset: { action: "edit-rules" }, disabled: true }, "Edit rules");
  const refresh = h("button.btn", { type: "button" }, icon("refresh"), "Refresh");
  ctx.setTitle("Alerts", edit, refresh);
  const body = h("div.page");
  mount(ctx.main, body);
  mount(body, spinner());
  let rules = null;

  async function load() {
    let events;
    try {
      [rules, events] = await Promise.all([api("alerts/rules"), api("alerts/events", { query: { limit: 200 } })]);
    } catch (e) {
      if (!ctx.isCurrent() || e.status === 401) return;
      if (e.status === 404 && e.code === "unknown_url") {
        mount(body, h("section.card", emptyState("Alerting is not available",
          "This gateway does not serve /admin/api/alerts. Rules on upstream key utilization, error rates, budgets and invalid keys appear here once it does.", null, "alerts")));
      } else {
        mount(body, errorBox(e));
      }
      return;
    }
    if (!ctx.isCurrent()) return;
    edit.disabled = false;
    const list = events.data || [];
    mount(body,
      h("div.livebar",
        fact("Rules", String(rules.data.length)),
        fact("Evaluated every", fmtDuration(rules.evaluate_every_s)),
        fact("Sinks", rules.sinks.length ? rules.sinks.join(", ") : "none (history only)")),
      card("Firing now", firing(list)),
      h("div", { dataset: { section: "rules" } }, card("Rules", rulesTable(rules))),
      h("div", { dataset: { section: "events" } }, card("History", eventsTable(list), h("span.muted.small", "Newest first; each alert fires once per episode"))));
  }

  edit.addEventListener("click", async () => {
    if (!rules) return;
    const saved = await editRules(rules);
    if (saved && ctx.isCurrent()) await load();
  });
  refresh.addEventListener("click", load);
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

function fact(label, value) {
  return h("span.fact", h("span.fact-label", label), h("span.fact-value", value));
}

/** The episodes whose latest event is `fired`. */
function firing(events) {
  const latest = new Map();
  for (const e of events) {
    const k = `${e.rule}\u0000${e.subject}`;
    if (!latest.has(k)) latest.set(k, e); // newest first
  }
  const open = [...latest.values()].filter((e) => e.state === "fired");
  if (!open.length) {
    return h("div.all-clear", { dataset: { firing: "0" } }, icon("check", 18), h("span", "No alert is firing."));
  }
  const t = table([
    { label: "Since", class: "nowrap", value: (e) => h("span", { title: fmtTime(e.at) }, fmtAgo(e.at)) },
    { label: "Rule", value: (e) => h("strong", e.rule) },
    { label: "Subject", value: (e) => mono(e.subject) },
    { label: "What happened", value: (e) => e.message },
  ], open);
  t.dataset.firing = String(open.length);
  return t;
}

function rulesTable(r) {
  return table([
    { label: "Name", value: (x) => h("strong", x.name) },
    { label: "Kind", value: (x) => (KINDS[x.kind] ? KINDS[x.kind].label : x.kind) },
    { label: "Fires when", value: (x) => condition(x) },
    { label: "Sinks", value: (x) => (x.sinks === null || x.sinks === undefined ? "all" : x.sinks.length ? x.sinks.join(", ") : h("span.muted", "none (history only)")) },
  ], r.data, { empty: emptyState("No alert rules", "Alerts are off. Add rules with Edit rules, or in [[alerts.rules]] of tollgate.toml.", null, "alerts") });
}

function condition(x) {
  const k = KINDS[x.kind] || {};
  const parts = [];
  if (x.threshold !== null && x.threshold !== undefined) parts.push(k.share ? `≥ ${fmtPct(x.threshold, 0)}` : String(x.threshold));
  if (x.window && x.window !== "0s" && k.window) parts.push(`${k.window} ${x.window}`);
  if (x.min_requests) parts.push(`(at least ${x.min_requests} calls)`);
  if (x.kind === "invalid_key") parts.push("a key answers 401/403");
  return parts.join(" ") || "—";
}

function eventsTable(events) {
  return table([
    { label: "Time", class: "nowrap", value: (e) => h("span", { title: e.at }, fmtTime(e.at)) },
    { label: "State", value: (e) => badge(e.state, e.state === "fired" ? "bad" : "ok") },
    { label: "Rule", value: (e) => e.rule },
    { label: "Subject", value: (e) => mono(e.subject) },
    { label: "Message", value: (e) => e.message },
    { label: "Value", class: "num", value: (e) => figure(e, e.value) },
    { label: "Threshold", class: "num", value: (e) => figure(e, e.threshold) },
  ], events, { empty: emptyState("No alert has fired", "Fired and resolved alerts are listed here.", null, "check") });
}

function figure(e, v) {
  if (v === null || v === undefined) return h("span.muted", "—");
  return e.kind === "unused_key" ? fmtDuration(v) : fmtPct(v, 1);
}

/** The rule editor: every rule in a row; saving replaces the set. */
function editRules(current) {
  return modal("Alert rules", (body, close) => {
    const rows = h("div.rule-rows",
      h("div.rule-head", ["Name", "Kind", "Threshold %", "Window", "Min calls", "Sinks", ""].map((l) => h("span", l))));
    const addRow = (rule) => rows.append(ruleRow(rule, current.sinks));
    current.data.forEach(addRow);
    const form = h("form.form", { novalidate: true, dataset: { form: "alert-rules" } },
      h("p.muted.small", "Thresholds are percentages; windows are durations like 30s, 5m, 24h. Sinks: comma-separated names, empty for history only, “all” for every sink. Rules saved here last until the gateway restarts; tollgate.toml holds the lasting ones."),
      rows,
      h("div", h("button.btn.btn-small", { type: "button", onclick: () => addRow({ name: "", kind: "error_rate", threshold: 0.2, window: "5m", min_requests: 10, sinks: null }) }, icon("plus"), "Add rule")),
      h("div.form-error"),
      h("div.modal-actions",
        h("button.btn", { type: "button", onclick: () => close(null) }, "Cancel"),
        h("button.btn.btn-primary", { type: "submit" }, "Save rules")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      busy(form, async () => {
        try {
          const payload = [...rows.querySelectorAll(".rule-row")].map(readRule);
          const saved = await api("alerts/rules", { method: "POST", body: { rules: payload } });
          toast(`${saved.data.length} alert rule${saved.data.length === 1 ? "" : "s"} saved`);
          close(saved);
        } catch (err) {
          if (err.status !== 401) formError(form, err);
        }
      });
    });
    body.append(form);
  }, { wide: "x", id: "alert-rules" });
}

function ruleRow(rule, sinks) {
  const kind = h("select", { name: "kind", "aria-label": "Kind" },
    Object.entries(KINDS).map(([k, v]) => h("option", { value: k, selected: k === rule.kind }, v.label)));
  const threshold = h("input", { name: "threshold", type: "number", min: "0", max: "100", step: "1", "aria-label": "Threshold (%)",
    placeholder: "%", value: rule.threshold === null || rule.threshold === undefined ? "" : String(Math.round(rule.threshold * 1000) / 10) });
  const row = h("div.rule-row", { dataset: { rule: rule.name } },
    h("input", { name: "name", value: rule.name, placeholder: "name", "aria-label": "Name" }),
    kind,
    threshold,
    h("input", { name: "window", value: rule.window || "", placeholder: "window", "aria-label": "Window" }),
    h("input", { name: "min_requests", type: "number", min: "1", value: rule.min_requests ?? "", placeholder: "min calls", "aria-label": "Minimum calls" }),
    h("input", { name: "sinks", value: rule.sinks === null || rule.sinks === undefined ? "all" : rule.sinks.join(", "), list: "alert-sinks", "aria-label": "Sinks" }),
    h("datalist", { id: "alert-sinks" }, ["all", ...sinks].map((s) => h("option", { value: s }))),
    h("button.icon-btn", { type: "button", "aria-label": "Remove rule", onclick: () => row.remove() }, icon("x")));
  const sync = () => {
    const k = KINDS[kind.value] || {};
    threshold.disabled = !k.share;
    row.querySelector("[name=window]").disabled = !k.window;
    row.querySelector("[name=min_requests]").disabled = !k.min;
  };
  kind.addEventListener("change", sync);
  sync();
  return row;
}

function readRule(row) {
  const v = (n) => row.querySelector(`[name=${n}]`);
  const text = (n) => (v(n).disabled || v(n).value.trim() === "" ? null : v(n).value.trim());
  const rule = { name: v("name").value.trim(), kind: v("kind").value };
  const t = text("threshold");
  if (t !== null) rule.threshold = Number(t) / 100;
  const w = text("window");
  if (w !== null) rule.window = w;
  const m = text("min_requests");
  if (m !== null) rule.min_requests = Number(m);
  const s = v("sinks").value.trim();
  if (s.toLowerCase() !== "all") rule.sinks = s === "" ? [] : s.split(/[\s,]+/).filter(Boolean);
  return rule;
}
