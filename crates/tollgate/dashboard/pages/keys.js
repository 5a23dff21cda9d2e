// Keys: the client keys, with search and filters, the create dialog, and per-key
// actions (edit limits and budgets, suspend, resume, regenerate, revoke, delete).

import { h, mount, table, link, mono, statusBadge, emptyState, errorBox, spinner, icon, fmtDate,
  debounce } from "../js/dom.js";
import { api } from "../js/api.js";
import { createKey, editKey, keyAction, actionsFor, ACTION_LABELS, limitsSummary, budgetsSummary } from "./key-actions.js";

const PAGE = 50;

export async function render(ctx) {
  let currency = "USD";
  const newBtn = h("button.btn.btn-primary", { type: "button", dataset: { action: "new-key" } }, icon("plus"), "New key");
  ctx.setTitle("Keys", newBtn);

  const q = h("input.search", { type: "search", placeholder: "Search name, id, owner, team or key…", "aria-label": "Search keys", value: ctx.query.get("q") || "" });
  const status = h("select", { "aria-label": "Status" },
    ["", "active", "suspended", "revoked"].map((s) => h("option", { value: s }, s ? s[0].toUpperCase() + s.slice(1) : "All statuses")));
  status.value = ctx.query.get("status") || "";
  const owner = h("input", { type: "text", placeholder: "Owner", "aria-label": "Owner", value: ctx.query.get("owner") || "" });
  const count = h("span.muted.small");
  const list = h("div");
  const more = h("div.more");
  mount(ctx.main, h("div.page",
    h("div.toolbar", q, status, owner, h("span.spacer"), count),
    h("section.card", list, more)));

  let cursor = null;
  let rows = [];

  async function load(append = false) {
    if (!append) {
      mount(list, spinner());
      rows = [];
      cursor = null;
    }
    try {
      const [page, metrics] = await Promise.all([
        api("keys", { query: { q: q.value.trim(), status: status.value, owner: owner.value.trim(), limit: PAGE, cursor } }),
        append ? null : api("metrics").catch(() => null),
      ]);
      if (!ctx.isCurrent()) return;
      if (metrics) currency = metrics.currency;
      rows = rows.concat(page.data);
      cursor = page.next_cursor;
      draw();
    } catch (e) {
      if (ctx.isCurrent() && e.status !== 401) mount(list, errorBox(e));
    }
  }

  function draw() {
    const filtered = q.value.trim() || status.value || owner.value.trim();
    count.textContent = `${rows.length}${cursor ? "+" : ""} key${rows.length === 1 ? "" : "s"}`;
    mount(list, table([
      { label: "Name", value: (k) => h("div.cell-main", link(`#/keys/${encodeURIComponent(k.id)}`, k.name), h("div.muted.small.mono", k.id)) },
      { label: "Key", class: "nowrap", value: (k) => mono(k.masked) },
      { label: "Owner", class: "nowrap", value: (k) => h("div", k.owner || h("span.muted", "—"), k.team ? h("div.muted.small", k.team) : null) },
      { label: "Tier", value: (k) => h("span.tag", k.tier) },
      { label: "Status", value: (k) => statusBadge(k.status) },
      { label: "Limits", value: (k) => limitsSummary(k.limits) || h("span.muted", "Tier defaults") },
      { label: "Budgets", value: (k) => budgetsSummary(k.budgets, currency) || h("span.muted", "None") },
      { label: "Created", class: "nowrap", value: (k) => fmtDate(k.created_at) },
      { label: "", class: "actions", value: (k) => actionMenu(k) },
    ], rows, {
      rowAttrs: (k) => ({ dataset: { keyId: k.id, keyName: k.name } }),
      empty: filtered
        ? emptyState("No keys match", "Change the search or the filters.", null, "keys")
        : emptyState("No client keys yet", "Create a key for each application or user that calls the gateway.",
          h("button.btn.btn-primary", { type: "button", onclick: onCreate }, icon("plus"), "Create the first key"), "keys"),
    }));
    mount(more, cursor ? h("button.btn", { type: "button", onclick: () => load(true) }, "Load more") : null);
  }

  function actionMenu(k) {
    const menu = h("details.menu",
      h("summary.icon-btn", { "aria-label": `Actions for ${k.name}`, dataset: { menu: k.id } }, icon("more")),
      h("div.menu-list", { role: "menu" },
        actionsFor(k.status).map((a) => h(`button.menu-item${a === "revoke" || a === "delete" ? ".danger" : ""}`,
          { type: "button", role: "menuitem", dataset: { act: a }, onclick: () => run(k, a, menu) }, ACTION_LABELS[a]))));
    return menu;
  }

  async function run(k, action, menu) {
    menu.open = false;
    const changed = action === "edit" ? await editKey(k, currency) : await keyAction(k, action);
    if (changed && ctx.isCurrent()) await load();
  }

  async function onCreate() {
    const created = await createKey(currency);
    if (created && ctx.isCurrent()) await load();
  }

  newBtn.addEventListener("click", onCreate);
  const reload = debounce(() => load(), 250);
  q.addEventListener("input", reload);
  owner.addEventListener("input", reload);
  status.addEventListener("change", () => load());
  const closeMenus = (e) => {
    for (const d of ctx.main.querySelectorAll("details.menu[open]")) if (!d.contains(e.target)) d.open = false;
  };
  document.addEventListener("click", closeMenus);
  await load();
  return () => document.removeEventListener("click", closeMenus);
}
