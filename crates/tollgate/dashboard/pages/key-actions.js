// What can be done to a client key, shared by the key list and the key page: the
// create/edit form, the one-time secret, suspend, resume, revoke, regenerate, delete.

import { h, icon, fmtMoney } from "../js/dom.js";
import { api, forgetKeys } from "../js/api.js";
import { modal, confirmDialog, showSecret, toast, field, numberInput, textInput, readNumber,
  readText, readList, formError, busy } from "../js/ui.js";

const BUILTIN_TIERS = ["free", "standard", "premium"];

const LIMITS = [
  ["rpm", "Requests / minute"],
  ["rph", "Requests / hour"],
  ["rpd", "Requests / day"],
  ["tpm", "Tokens / minute"],
  ["tpd", "Tokens / day"],
  ["tokens_per_month", "Tokens / month"],
];

/** "60 rpm · 100k tpd", or "Tier defaults". */
export function limitsSummary(limits) {
  const short = { rpm: "rpm", rph: "rph", rpd: "rpd", tpm: "tpm", tpd: "tpd", tokens_per_month: "tok/mo" };
  const parts = Object.entries(short)
    .filter(([k]) => limits[k] !== null && limits[k] !== undefined)
    .map(([k, label]) => `${compactNum(limits[k])} ${label}`);
  return parts.length ? parts.join(" · ") : null;
}

export function budgetsSummary(budgets, currency) {
  const parts = [];
  if (budgets.daily !== null && budgets.daily !== undefined) parts.push(`${fmtMoney(budgets.daily, currency)}/day`);
  if (budgets.monthly !== null && budgets.monthly !== undefined) parts.push(`${fmtMoney(budgets.monthly, currency)}/mo`);
  return parts.length ? parts.join(" · ") : null;
}

function compactNum(n) {
  return new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 }).format(n);
}

/** The key form's fields, filled from `key` (null: a new key). */
function keyForm(key, tiers, currency) {
  const k = key || { permissions: {}, limits: {}, budgets: {} };
  const p = k.permissions || {};
  const tierList = h("datalist", { id: "tier-options" }, tiers.map((t) => h("option", { value: t })));
  const check = (name, label, on) =>
    h("label.check", h("input", { type: "checkbox", name, checked: on }), h("span", label));
  const form = h("form.form", { novalidate: true, dataset: { form: key ? "edit-key" : "create-key" } },
    h("fieldset",
      h("legend", "Key"),
      h("div.form-grid",
        field("Name", textInput("name", k.name, { required: true, placeholder: "e.g. checkout-service" })),
        field("Owner", textInput("owner", k.owner, { placeholder: "user or service id" }), "Owner budgets and reports group by it."),
        field("Team", textInput("team", k.team)),
        field("Tier", textInput("tier", k.tier || "", { list: "tier-options", placeholder: "standard" }), "Limits not set below come from the tier."),
        !key && field("Environment", h("select", { name: "env" }, h("option", { value: "live" }, "live (tg-live-…)"), h("option", { value: "test" }, "test (tg-test-…)"))),
        field("Expires", textInput("expires_at", k.expires_at || "", { placeholder: "never · 30d · 2026-12-31" }), "A duration from now, a date, or RFC 3339."),
        tierList)),
    h("fieldset",
      h("legend", "Access"),
      h("div.form-grid",
        field("Models", textInput("permissions.models", (p.models || []).join(", "), { placeholder: "every model of its tier" }), "Comma-separated names or aliases."),
        field("Max tokens per call", numberInput("permissions.max_tokens", p.max_tokens, { placeholder: "no cap" }))),
      h("div.checks",
        check("permissions.streaming", "Streaming", p.streaming !== false),
        check("permissions.tools", "Tools", p.tools !== false),
        check("permissions.vision", "Vision", p.vision !== false),
        !key && check("hmac", "Require HMAC-signed requests", false))),
    h("fieldset",
      h("legend", "Rate limits"),
      h("div.form-grid.form-grid-3",
        LIMITS.map(([name, label]) => field(label, numberInput(`limits.${name}`, k.limits[name], { placeholder: "tier default" }))))),
    h("fieldset",
      h("legend", `Budgets (${currency})`),
      h("div.form-grid",
        field("Daily budget", numberInput("budgets.daily", k.budgets.daily, { step: "0.01", placeholder: "none" })),
        field("Monthly budget", numberInput("budgets.monthly", k.budgets.monthly, { step: "0.01", placeholder: "none" })))),
    h("div.form-error"),
    h("div.modal-actions"));
  return form;
}

/** Every field of the form as the API's body (nulls for empty values). */
function collect(form, creating) {
  const body = {
    name: readText(form, "name"),
    owner: readText(form, "owner"),
    team: readText(form, "team"),
    tier: readText(form, "tier"),
    expires_at: readText(form, "expires_at"),
    permissions: {
      models: readList(form, "permissions.models"),
      max_tokens: readNumber(form, "permissions.max_tokens"),
      streaming: form.elements["permissions.streaming"].checked,
      tools: form.elements["permissions.tools"].checked,
      vision: form.elements["permissions.vision"].checked,
    },
    limits: Object.fromEntries(LIMITS.map(([n]) => [n, readNumber(form, `limits.${n}`)])),
    budgets: {
      daily: readNumber(form, "budgets.daily", { integer: false }),
      monthly: readNumber(form, "budgets.monthly", { integer: false }),
    },
  };
  if (creating) {
    body.env = form.elements.env.value;
    body.hmac = form.elements.hmac.checked;
  }
  return body;
}

/** Fields of `now` that differ from `was` (nested one level), for a PATCH. */
function changes(was, now) {
  const out = {};
  for (const [k, v] of Object.entries(now)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const sub = changes(was[k] || {}, v);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (JSON.stringify(v) !== JSON.stringify(was[k])) {
      out[k] = v;
    }
  }
  return out;
}

/** Drops nulls (a create leaves unset fields out). */
function compact(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null) continue;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const sub = compact(v);
      if (Object.keys(sub).length) out[k] = sub;
    } else out[k] = v;
  }
  return out;
}

async function knownTiers() {
  try {
    const page = await api("keys", { query: { limit: 500 } });
    return [...new Set([...BUILTIN_TIERS, ...page.data.map((k) => k.tier)])].sort();
  } catch {
    return BUILTIN_TIERS;
  }
}

/** The create dialog; resolves with the new key's record, after its secret was shown. */
export async function createKey(currency) {
  const tiers = await knownTiers();
  const created = await modal("New client key", (body, close) => {
    const form = keyForm(null, tiers, currency);
    form.querySelector(".modal-actions").append(
      h("button.btn", { type: "button", onclick: () => close(null) }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, icon("plus"), "Create key"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      busy(form, async () => {
        try {
          const payload = compact(collect(form, true));
          if (!payload.hmac) delete payload.hmac;
          close(await api("keys", { method: "POST", body: payload }));
        } catch (err) {
          if (err.status !== 401) formError(form, err);
        }
      });
    });
    body.append(form);
  }, { wide: true, id: "create-key" });
  if (!created) return null;
  forgetKeys();
  await revealSecret(created, "Key created");
  return created;
}

/** The one-time display of a key's secret (and HMAC secret). */
function revealSecret(record, title) {
  const secrets = [{ label: "Client key", value: record.key, name: "key" }];
  if (record.hmac_secret) secrets.push({ label: "HMAC signing secret", value: record.hmac_secret, name: "hmac" });
  return showSecret(title,
    `Copy the key for “${record.name}” now. Tollgate stores only its hash: it cannot be shown again.`,
    secrets);
}

/** The edit dialog; resolves with the updated record, or null. */
export async function editKey(key, currency) {
  const tiers = await knownTiers();
  const updated = await modal(`Edit “${key.name}”`, (body, close) => {
    const form = keyForm(key, tiers, currency);
    const initial = collect(form, false);
    form.querySelector(".modal-actions").append(
      h("button.btn", { type: "button", onclick: () => close(null) }, "Cancel"),
      h("button.btn.btn-primary", { type: "submit" }, "Save changes"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      busy(form, async () => {
        try {
          const patch = changes(initial, collect(form, false));
          if (!Object.keys(patch).length) return close(null);
          close(await api(`keys/${encodeURIComponent(key.id)}`, { method: "PATCH", body: patch }));
        } catch (err) {
          if (err.status !== 401) formError(form, err);
        }
      });
    });
    body.append(form);
  }, { wide: true, id: "edit-key" });
  if (updated) {
    forgetKeys();
    toast("Key updated");
  }
  return updated;
}

/**
 * Runs `action` on `key` (suspend, resume, revoke, regenerate, delete), asking first
 * where it cannot be undone. Resolves true when something changed.
 */
export async function keyAction(key, action) {
  const id = encodeURIComponent(key.id);
  try {
    switch (action) {
      case "suspend":
        await api(`keys/${id}/suspend`, { method: "POST" });
        toast(`“${key.name}” suspended: its calls now get 403`);
        break;
      case "resume":
        await api(`keys/${id}/resume`, { method: "POST" });
        toast(`“${key.name}” is active again`);
        break;
      case "revoke":
        if (!(await confirmDialog("Revoke key?", `“${key.name}” stops working for good. Its history stays. This cannot be undone.`, { confirm: "Revoke key", danger: true }))) return false;
        await api(`keys/${id}/revoke`, { method: "POST" });
        toast(`“${key.name}” revoked`);
        break;
      case "regenerate": {
        if (!(await confirmDialog("Regenerate secret?", `“${key.name}” gets a new secret; the current one stops working at once. Id, limits and history stay.`, { confirm: "Regenerate" }))) return false;
        const record = await api(`keys/${id}/regenerate`, { method: "POST" });
        await revealSecret(record, "New secret");
        break;
      }
      case "delete":
        if (!(await confirmDialog("Delete key?", `“${key.name}” and its settings are removed. Logged calls stay in the reports. This cannot be undone.`, { confirm: "Delete key", danger: true }))) return false;
        await api(`keys/${id}`, { method: "DELETE" });
        toast(`“${key.name}” deleted`);
        break;
      default:
        return false;
    }
  } catch (err) {
    if (err.status !== 401) toast(err.message, "bad");
    return false;
  }
  forgetKeys();
  return true;
}

/** The actions a key in `status` offers, in menu order. */
export function actionsFor(status) {
  if (status === "revoked") return ["delete"];
  return ["edit", status === "suspended" ? "resume" : "suspend", "regenerate", "revoke", "delete"];
}

export const ACTION_LABELS = {
  edit: "Edit limits & settings",
  suspend: "Suspend",
  resume: "Resume",
  regenerate: "Regenerate secret",
  revoke: "Revoke",
  delete: "Delete",
};
