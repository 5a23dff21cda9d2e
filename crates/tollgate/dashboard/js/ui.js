// Dialogs, toasts and form helpers shared by the pages.

import { h, icon, errorBox } from "./dom.js";

/** Shows a modal dialog; resolves with what `close(value)` is called with. */
export function modal(title, build, { wide = false, id } = {}) {
  // wide: true (forms) or "x" (tables of inputs).
  return new Promise((resolve) => {
    const previous = document.activeElement;
    let done = false;
    const close = (value) => {
      if (done) return;
      done = true;
      backdrop.remove();
      document.removeEventListener("keydown", onKey);
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    const onKey = (e) => {
      if (e.key === "Escape") close(undefined);
    };
    const body = h("div.modal-body");
    const dialog = h(`div.modal${wide === "x" ? ".modal-xwide" : wide ? ".modal-wide" : ""}`,
      { role: "dialog", "aria-modal": "true", "aria-label": title, dataset: { modal: id || "" } },
      h("header.modal-head", h("h2", title),
        h("button.icon-btn", { type: "button", "aria-label": "Close", onclick: () => close(undefined) }, icon("x"))),
      body);
    const backdrop = h("div.backdrop", dialog);
    backdrop.addEventListener("mousedown", (e) => {
      if (e.target === backdrop) close(undefined);
    });
    document.addEventListener("keydown", onKey);
    build(body, close);
    document.body.append(backdrop);
    const first = dialog.querySelector("input:not([type=hidden]):not([readonly]), select, textarea, button.btn-primary");
    if (first) first.focus();
  });
}

/** A yes/no question; resolves true when confirmed. */
export function confirmDialog(title, text, { confirm = "Confirm", danger = false } = {}) {
  return modal(title, (body, close) => {
    body.append(
      h("p.modal-text", text),
      h("div.modal-actions",
        h("button.btn", { type: "button", onclick: () => close(false) }, "Cancel"),
        h(`button.btn.${danger ? "btn-danger" : "btn-primary"}`, { type: "button", dataset: { confirm: "" }, onclick: () => close(true) }, confirm)));
  }).then(Boolean);
}

/**
 * Shows a secret once, with a copy button. The value lives only in this dialog's
 * DOM and is gone when it closes.
 */
export function showSecret(title, intro, secrets) {
  return modal(title, (body, close) => {
    body.append(h("div.alert.alert-warn", icon("warn"), h("span", intro)));
    for (const { label, value, name } of secrets) {
      const input = h("input.secret-input.mono", { type: "text", readonly: true, value, "aria-label": label, dataset: { secret: name } });
      const status = h("span.copy-status", { "aria-live": "polite" });
      const copy = h("button.btn", {
        type: "button",
        dataset: { copy: name },
        onclick: async () => {
          const ok = await copyText(value, input);
          status.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
          setTimeout(() => (status.textContent = ""), 2500);
        },
      }, icon("copy"), "Copy");
      body.append(h("label.field", h("span.field-label", label), h("div.secret-row", input, copy), status));
    }
    body.append(h("div.modal-actions",
      h("button.btn.btn-primary", { type: "button", dataset: { done: "" }, onclick: () => close(true) }, "I have saved it")));
  }, { id: "secret" });
}

async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

let toastRoot = null;
/** A short message at the bottom right. */
export function toast(message, kind = "ok") {
  if (!toastRoot) {
    toastRoot = h("div.toasts", { role: "status", "aria-live": "polite" });
    document.body.append(toastRoot);
  }
  const t = h(`div.toast.toast-${kind}`, icon(kind === "ok" ? "check" : "warn"), h("span", message));
  toastRoot.append(t);
  setTimeout(() => t.classList.add("toast-out"), 3200);
  setTimeout(() => t.remove(), 3600);
}

/** A labelled input. */
export function field(label, input, hint) {
  return h("label.field", h("span.field-label", label), input, hint && h("span.field-hint", hint));
}

/** A number input named `name` with `value` (null: empty). */
export function numberInput(name, value, { step = "1", min = "0", placeholder } = {}) {
  return h("input", { type: "number", name, step, min, placeholder, value: value === null || value === undefined ? "" : String(value) });
}

export function textInput(name, value, attrs = {}) {
  return h("input", { type: "text", name, value: value ?? "", ...attrs });
}

/** `null` for an empty input, else the number (throws on a bad one). */
export function readNumber(form, name, { integer = true } = {}) {
  const el = form.elements[name];
  const raw = el.value.trim();
  if (raw === "") return null;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw Object.assign(new Error(`${el.closest(".field")?.querySelector(".field-label")?.textContent || name} must be ${integer ? "a whole number" : "a number"}.`), { param: name });
  }
  return n;
}

export function readText(form, name) {
  const v = form.elements[name].value.trim();
  return v === "" ? null : v;
}

export function readList(form, name) {
  const v = form.elements[name].value.trim();
  return v === "" ? null : v.split(/[\s,]+/).filter(Boolean);
}

/**
 * Shows an error in the form's error slot and marks the field the API named
 * (`param`, e.g. `limits.rpm`) as invalid.
 */
export function formError(form, err) {
  const slot = form.querySelector(".form-error");
  slot.replaceChildren(errorBox(err));
  form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  if (err && err.param) {
    const name = err.param;
    const el = form.elements[name] || form.elements[name.split(".").pop()];
    if (el && el.classList) {
      el.classList.add("invalid");
      el.addEventListener("input", () => el.classList.remove("invalid"), { once: true });
      el.focus();
    }
  }
}

/** Disables a form's submit button while `work` runs. */
export async function busy(form, work) {
  const btn = form.querySelector("button[type=submit]");
  if (btn) btn.disabled = true;
  try {
    return await work();
  } finally {
    if (btn) btn.disabled = false;
  }
}
