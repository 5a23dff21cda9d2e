// Upstream pool health: per provider, each upstream key's state (with the cooldown
// counting down), quota utilization, error rate and traffic; enable, disable, add and
// remove stored keys.

import { h, mount, card, table, mono, statusBadge, badge, emptyState, errorBox, spinner, icon, meter,
  fmtInt, fmtCompact, fmtMoney, fmtPct, fmtAgo, fmtDuration } from "../js/dom.js";
import { api } from "../js/api.js";
import { modal, confirmDialog, toast, field, numberInput, textInput, readNumber, readText, formError,
  busy } from "../js/ui.js";

const REFRESH_MS = 5000;

export async function render(ctx) {
  const addBtn = h("button.btn", { type: "button" }, icon("plus"), "Add upstream key");
  ctx.setTitle("Upstreams", addBtn);
  const body = h("div.page");
  mount(ctx.main, body);
  mount(body, spinner());

  let data = null;
  async function load() {
    try {
      const [list, metrics] = await Promise.all([api("upstreams"), api("metrics")]);
      if (!ctx.isCurrent()) return;
      data = { keys: list.data, metrics };
      draw();
    } catch (e) {
      if (ctx.isCurrent() && e.status !== 401) mount(body, errorBox(e));
    }
  }

  function draw() {
    const { keys, metrics } = data;
    const cur = metrics.currency;
    const providers = metrics.providers.map((p) => {
      const health = p.keys === 0 ? "bad" : p.usable_keys === p.keys ? "ok" : p.usable_keys === 0 ? "bad" : "warn";
      return h(`div.provider.provider-${health}`, { dataset: { provider: p.name } },
        h("div.provider-head", h("h3", p.name), badge(p.kind, "neutral")),
        h("div.provider-usable", h("strong", `${p.usable_keys} / ${p.keys}`), " keys usable"),
        meter(p.keys ? p.usable_keys / p.keys : 0, { kind: health, label: "usable keys" }),
        h("dl.mini",
          h("div", h("dt", "Calls"), h("dd", fmtInt(p.requests))),
          h("div", h("dt", "Error rate"), h("dd", fmtPct(p.requests ? p.errors / p.requests : 0))),
          h("div", h("dt", "Tokens"), h("dd", fmtCompact(p.tokens))),
          h("div", h("dt", "Spend"), h("dd", fmtMoney(p.spend, cur)))));
    });

    const rows = table([
      { label: "Key", value: (u) => h("div.cell-main", mono(u.id),
        h("div.muted.small", u.masked ? `${u.masked} · ` : "", u.source === "stored" ? "stored" : "from config")) },
      { label: "Provider", value: (u) => u.provider },
      { label: "State", value: (u) => stateCell(u) },
      { label: "Utilization", class: "util", value: (u) => u.stats
        ? h("div.util-cell", meter(u.stats.utilization, { warn: 0.7, bad: 0.85 }), h("span.small", fmtPct(u.stats.utilization, 0)))
        : h("span.muted", "—") },
      { label: "Quota", value: (u) => quota(u, cur) },
      { label: "Calls", class: "num", value: (u) => (u.stats ? fmtInt(u.stats.requests) : "—") },
      { label: "Error rate", class: "num", value: (u) => (u.stats ? errorRate(u.stats) : "—") },
      { label: "Tokens", class: "num", value: (u) => (u.stats ? fmtCompact(u.stats.tokens) : "—") },
      { label: "Spend", class: "num", value: (u) => (u.stats ? fmtMoney(u.stats.spend, cur) : "—") },
      { label: "Last used", value: (u) => (u.stats && u.stats.last_used ? fmtAgo(u.stats.last_used) : h("span.muted", "never")) },
      { label: "", class: "actions", value: (u) => actions(u) },
    ], keys, {
      rowAttrs: (u) => ({ dataset: { upstream: u.id } }),
      empty: emptyState("No upstream keys", "Configure providers in tollgate.toml, or add a stored key.", null, "upstreams"),
    });

    mount(body,
      h("div.providers", providers.length ? providers : h("p.muted", "No providers configured.")),
      card("Upstream keys", rows, h("span.muted.small", `Live figures of this gateway since it started · refreshed every ${REFRESH_MS / 1000} s`)));
    tick();
  }

  function stateCell(u) {
    const el = h("div.state", statusBadge(u.state));
    if (u.state === "cooling_down" && u.cooldown_until) {
      el.append(h("span.countdown.small", { dataset: { until: u.cooldown_until } }));
    }
    return el;
  }

  function errorRate(s) {
    const types = Object.entries(s.errors_by_type || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
    const kind = s.error_rate >= 0.2 ? "bad" : s.error_rate >= 0.05 ? "warn" : "";
    return h(`span${kind ? ".text-" + kind : ""}`, { title: types || "No errors" }, fmtPct(s.error_rate));
  }

  function quota(u, cur) {
    const parts = [];
    if (u.rpm) parts.push(`${fmtCompact(u.rpm)} rpm`);
    if (u.tpm) parts.push(`${fmtCompact(u.tpm)} tpm`);
    if (u.daily_budget) parts.push(`${fmtMoney(u.daily_budget, cur)}/day`);
    if (u.weight && u.weight !== 1) parts.push(`weight ${u.weight}`);
    return parts.length ? parts.join(" · ") : h("span.muted", "Unlimited");
  }

  function actions(u) {
    const out = h("div.row-actions");
    const canDisable = u.source === "stored" && u.state !== "disabled";
    const canEnable = u.state === "disabled" || u.state === "invalid" || u.state === "cooling_down";
    if (canEnable) out.append(h("button.btn.btn-small", { type: "button", dataset: { act: "enable" }, onclick: () => act(u, "enable") }, u.state === "disabled" ? "Enable" : "Put back"));
    if (canDisable) out.append(h("button.btn.btn-small", { type: "button", dataset: { act: "disable" }, onclick: () => act(u, "disable") }, "Disable"));
    if (u.source === "stored") out.append(h("button.btn.btn-small.btn-danger-ghost", { type: "button", dataset: { act: "remove" }, onclick: () => act(u, "remove") }, "Remove"));
    return out;
  }

  async function act(u, action) {
    const id = encodeURIComponent(u.id);
    try {
      if (action === "remove") {
        if (!(await confirmDialog("Remove upstream key?", `“${u.id}” leaves the ${u.provider} pool and its sealed secret is deleted.`, { confirm: "Remove", danger: true }))) return;
        await api(`upstreams/${id}`, { method: "DELETE" });
        toast(`${u.id} removed`);
      } else {
        await api(`upstreams/${id}/${action}`, { method: "POST" });
        toast(action === "enable" ? `${u.id} is back in rotation` : `${u.id} disabled`);
      }
    } catch (e) {
      if (e.status !== 401) toast(e.message, "bad");
    }
    await load();
  }

  /** Counts cooldowns down every second between refreshes. */
  function tick() {
    for (const el of body.querySelectorAll(".countdown")) {
      const left = (Date.parse(el.dataset.until) - Date.now()) / 1000;
      el.textContent = left > 0 ? ` ${fmtDuration(left)} left` : " ending…";
    }
  }

  addBtn.addEventListener("click", async () => {
    const providers = data ? data.metrics.providers.map((p) => p.name) : [];
    const added = await addUpstream(providers);
    if (added && ctx.isCurrent()) await load();
  });

  await load();
  const refresh = setInterval(load, REFRESH_MS);
  const ticker = setInterval(tick, 1000);
  return () => {
    clearInterval(refresh);
    clearInterval(ticker);
  };
}

function addUpstream(providers) {
  return modal("Add upstream key", (body, close) => {
    const form = h("form.form", { novalidate: true },
      h("div.form-grid",
        field("Provider", h("select", { name: "provider" }, providers.map((p) => h("option", { value: p }, p)))),
        field("Id", textInput("id", "", { placeholder: "e.g. openai-team-2", required: true }), "Shown in stats, logs and metrics."),
        field("Secret", h("input", { type: "password", name: "key", autocomplete: "off", required: true }), "Sealed under the master key; never shown again."),
        field("Requests / minute", numberInput("rpm", null, { placeholder: "unlimited" })),
        field("Tokens / minute", numberInput("tpm", null, { placeholder: "unlimited" })),
        field("Daily budget", numberInput("daily_budget", null, { step: "0.01", placeholder: "none" })),
        field("Weight", numberInput("weight", null, { placeholder: "1" })),
        field("Region", textInput("region", "")),
        field("Tier", textInput("tier", ""))),
      h("div.form-error"),
      h("div.modal-actions",
        h("button.btn", { type: "button", onclick: () => close(null) }, "Cancel"),
        h("button.btn.btn-primary", { type: "submit" }, "Add key")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      busy(form, async () => {
        try {
          const payload = {
            provider: form.elements.provider.value,
            id: readText(form, "id") || "",
            key: form.elements.key.value,
            rpm: readNumber(form, "rpm"),
            tpm: readNumber(form, "tpm"),
            daily_budget: readNumber(form, "daily_budget", { integer: false }),
            weight: readNumber(form, "weight"),
            region: readText(form, "region"),
            tier: readText(form, "tier"),
          };
          for (const k of Object.keys(payload)) if (payload[k] === null) delete payload[k];
          const created = await api("upstreams", { method: "POST", body: payload });
          toast(`${created.id} added to the ${created.provider} pool`);
          close(created);
        } catch (err) {
          if (err.status !== 401) formError(form, err);
        }
      });
    });
    body.append(form);
  }, { wide: true });
}
