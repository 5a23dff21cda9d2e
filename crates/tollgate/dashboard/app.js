// Tollgate dashboard: the shell (sidebar, header), hash routing, and the session.
// Pages live in pages/*.js; each exports `render(ctx)` and may return a cleanup.

import { h, icon, mount, errorBox } from "./js/dom.js";
import { api, login, logout, onUnauthorized, forgetKeys } from "./js/api.js";
import { destroyCharts } from "./js/charts.js";
import * as overview from "./pages/overview.js";
import * as keys from "./pages/keys.js";
import * as keyDetail from "./pages/key-detail.js";
import * as upstreams from "./pages/upstreams.js";
import * as costs from "./pages/costs.js";
import * as logs from "./pages/logs.js";
import * as alerts from "./pages/alerts.js";

const NAV = [
  { path: "overview", label: "Overview", icon: "overview", page: overview },
  { path: "keys", label: "Keys", icon: "keys", page: keys },
  { path: "upstreams", label: "Upstreams", icon: "upstreams", page: upstreams },
  { path: "costs", label: "Costs", icon: "costs", page: costs },
  { path: "logs", label: "Logs", icon: "logs", page: logs },
  { path: "alerts", label: "Alerts", icon: "alerts", page: alerts },
];

const root = document.getElementById("app");
let cleanup = null;
let shell = null;
let renderSeq = 0;
/** True once a call showed the session is live (so a first load asks once, not per widget). */
let sessionKnown = false;

/** `#/keys/key_1?x=y` → {parts: ["keys","key_1"], query: URLSearchParams}. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(qs || "") };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function teardown() {
  if (typeof cleanup === "function") {
    try {
      cleanup();
    } catch {
      /* a page's cleanup failing must not block the next page */
    }
  }
  cleanup = null;
  destroyCharts();
}

async function route() {
  const seq = ++renderSeq;
  const { parts, query } = parseHash();
  teardown();
  if (parts[0] === "login") {
    shell = null;
    renderLogin(query.get("next"), query.get("reason"));
    return;
  }
  let entry = NAV.find((n) => n.path === parts[0]);
  let page = entry && entry.page;
  if (parts[0] === "keys" && parts[1]) page = keyDetail;
  if (!entry) {
    navigate("#/overview");
    return;
  }
  if (!sessionKnown) {
    try {
      await api("users");
      sessionKnown = true;
    } catch (e) {
      if (seq === renderSeq && e.status !== 401) mount(root, h("div.login-page", errorBox(e)));
      return;
    }
    if (seq !== renderSeq) return;
  }
  ensureShell();
  for (const a of shell.nav.querySelectorAll("a")) {
    a.classList.toggle("active", a.dataset.nav === entry.path);
    if (a.dataset.nav === entry.path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = shell.main;
  mount(main);
  main.scrollTop = 0;
  const ctx = {
    main,
    params: parts.slice(1),
    query,
    isCurrent: () => seq === renderSeq,
    setTitle(title, ...actions) {
      document.title = `${title} · Tollgate`;
      mount(shell.title, h("h1", title));
      mount(shell.actions, actions);
    },
  };
  try {
    const done = await page.render(ctx);
    // A page left before it finished loading cleans up at once.
    if (seq === renderSeq) cleanup = done;
    else if (typeof done === "function") done();
  } catch (e) {
    if (seq === renderSeq && !(e && e.status === 401)) {
      mount(main, errorBox(e));
    }
  }
}

function ensureShell() {
  if (shell && root.contains(shell.el)) return;
  const nav = h("nav.nav", { "aria-label": "Main" },
    NAV.map((n) => h("a", { href: `#/${n.path}`, dataset: { nav: n.path } }, icon(n.icon, 18), h("span", n.label))));
  const user = sessionStorage.getItem("tollgate.user") || "admin";
  const side = h("aside.sidebar", h("div.sidebar-inner",
    h("a.brand", { href: "#/overview" }, h("span.brand-mark", icon("gate", 20)), h("span.brand-name", "Tollgate")),
    nav,
    h("div.sidebar-foot",
      h("div.user", h("span.avatar", user.slice(0, 1).toUpperCase()), h("span.user-name", user)),
      h("button.btn.logout", { type: "button", dataset: { logout: "" }, onclick: doLogout }, icon("logout"), h("span", "Log out")))));
  const title = h("div.page-title");
  const actions = h("div.page-actions");
  const main = h("main.content", { id: "main" });
  const el = h("div.layout", side, h("div.main-col", h("header.topbar", title, actions), main));
  mount(root, el);
  shell = { el, nav, main, title, actions };
}

async function doLogout() {
  try {
    await logout();
  } catch {
    /* the session may be gone already; the login page is right either way */
  }
  sessionStorage.removeItem("tollgate.user");
  sessionKnown = false;
  forgetKeys();
  navigate("#/login?reason=out");
}

function renderLogin(next, reason) {
  document.title = "Sign in · Tollgate";
  const error = h("div.form-error");
  const form = h("form.login-form", { novalidate: true },
    h("label.field", h("span.field-label", "Username"),
      h("input", { name: "username", autocomplete: "username", value: sessionStorage.getItem("tollgate.lastUser") || "admin", required: true })),
    h("label.field", h("span.field-label", "Password"),
      h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    error,
    h("button.btn.btn-primary.btn-block", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    const btn = form.querySelector("button");
    btn.disabled = true;
    error.replaceChildren();
    try {
      await login(username, password);
      sessionKnown = true;
      sessionStorage.setItem("tollgate.user", username);
      sessionStorage.setItem("tollgate.lastUser", username);
      navigate(next && next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/overview");
    } catch (err) {
      error.replaceChildren(errorBox(err));
      form.elements.password.select();
    } finally {
      btn.disabled = false;
    }
  });
  const notice = reason === "expired" ? "Your session has ended. Sign in again to continue."
    : reason === "out" ? "You have signed out." : null;
  mount(root, h("div.login-page",
    h("div.login-card",
      h("div.login-brand", h("span.brand-mark", icon("gate", 24)), h("span", "Tollgate")),
      h("h1", "Sign in to the dashboard"),
      h("p.muted", "Use an admin account of this gateway."),
      notice && h("div.alert.alert-info", h("span", notice)),
      form),
    h("p.login-foot", "Tollgate · LLM API gateway")));
  form.elements[form.elements.username.value ? "password" : "username"].focus();
}

onUnauthorized(() => {
  sessionKnown = false;
  const { parts } = parseHash();
  if (parts[0] === "login") return;
  sessionStorage.removeItem("tollgate.user");
  const next = location.hash || "#/overview";
  navigate(`#/login?reason=expired&next=${encodeURIComponent(next)}`);
});

window.addEventListener("hashchange", route);
if (!location.hash || location.hash === "#" || location.hash === "#/") {
  history.replaceState(null, "", "#/overview");
}
route();
