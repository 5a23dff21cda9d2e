// The dashboard in a real browser: the real `tollgate serve` binary (built mock
// provider, zero configuration) in a temp dir on a free port, driven by headless
// Debian Chromium through playwright-core. Client calls go from node's fetch.
//
//   npm ci && npm test            (in e2e/browser; scripts/test-all.sh does both)
//
// TOLLGATE_BIN names the binary; without it the test builds `cargo build -p tollgate`
// and uses target/debug/tollgate (or $CARGO_TARGET_DIR/debug/tollgate).
// CHROMIUM overrides /usr/bin/chromium. Screenshots of every page go to screenshots/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const SHOTS = path.join(HERE, "screenshots");
const PASSWORD = "dashboard-test-pw1";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

let gw; // { base, proc, dir, log }
let browser;
let page;
let adminToken;
/** Browser console errors and page errors, checked at the end. */
const problems = [];
/** The key created through the dashboard: { id, key, name }. */
const created = {};

// ------------------------------------------------------------------------------------
// The gateway

function tollgateBin() {
  if (process.env.TOLLGATE_BIN) return process.env.TOLLGATE_BIN;
  const build = spawnSync("cargo", ["build", "-p", "tollgate", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  assert.equal(build.status, 0, "cargo build -p tollgate failed");
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
  return path.join(target, "debug", "tollgate");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The environment without anything that would point the gateway elsewhere. */
function gatewayEnv(dir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(TOLLGATE_|OPENAI_|ANTHROPIC_)|^(http|https|all|no)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  env.TOLLGATE_ADMIN_PASSWORD = PASSWORD;
  env.TOLLGATE_STORAGE__DATABASE_URL = `sqlite://${path.join(dir, "tollgate.db")}`;
  env.NO_PROXY = "127.0.0.1,localhost";
  return env;
}

async function startGateway() {
  const bin = tollgateBin();
  assert.ok(existsSync(bin), `no gateway binary at ${bin}`);
  const dir = mkdtempSync(path.join(tmpdir(), "tollgate-dashboard-"));
  let lastLog = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = path.join(dir, `gateway-${port}.log`);
    const out = openSync(log, "w");
    const proc = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`], {
      cwd: dir, env: gatewayEnv(dir), stdio: ["ignore", out, out],
    });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        if ((await fetch(`${base}/health`)).ok) return { base, proc, dir, log };
      } catch {
        /* not up yet */
      }
      await sleep(100);
    }
    lastLog = readFileSync(log, "utf8");
    proc.kill("SIGKILL");
    if (!/in use/i.test(lastLog)) break;
  }
  throw new Error(`the gateway did not start:\n${lastLog.slice(-4000)}`);
}

async function stopGateway() {
  if (!gw) return;
  const { proc } = gw;
  if (proc.exitCode === null) {
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGTERM");
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 30000);
    });
    const first = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (first === "timeout") proc.kill("SIGKILL");
    else assert.equal(proc.exitCode, 0, `the gateway exited ${proc.exitCode} on SIGTERM`);
  }
  if (!process.env.KEEP_GATEWAY_DIR) rmSync(gw.dir, { recursive: true, force: true });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------
// Clients: the admin API with a bearer token (for checks), /v1 with a client key

async function admin(pathAndQuery, init = {}) {
  const res = await fetch(`${gw.base}/admin/api/${pathAndQuery}`, {
    ...init,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json", ...(init.headers || {}) },
  });
  const body = res.status === 204 ? null : await res.json();
  return { status: res.status, body };
}

async function chat(key, model = "mock-gpt") {
  const res = await fetch(`${gw.base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Hello from the dashboard test" }] }),
  });
  return { status: res.status, body: await res.json() };
}

/** Waits until `check()` is truthy (or throws the last failure after `ms`). */
async function eventually(check, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw last || new Error(`timed out waiting for ${what}`);
}

async function shot(name) {
  await page.waitForLoadState("networkidle");
  // Toasts of earlier steps would cover the page.
  await page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function go(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

// ------------------------------------------------------------------------------------

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  gw = await startGateway();
  const login = await fetch(`${gw.base}/admin/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: PASSWORD }),
  });
  assert.equal(login.status, 200);
  adminToken = (await login.json()).access_token;
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gw.base }).catch(() => {});
  page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // Answers the app expects (401 before login, 404 from a missing alerts API) are
    // logged by Chromium as failed loads; anything else (a CSP refusal, a script
    // error) is a problem.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
});

after(async () => {
  if (browser) await browser.close();
  await stopGateway();
});

test("the dashboard is served from the binary beside the admin API, which it never shadows", async () => {
  const index = await fetch(`${gw.base}/admin/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /^text\/html/);
  assert.equal(index.headers.get("cache-control"), "no-cache");
  assert.match(index.headers.get("content-security-policy"), /script-src 'self'/);
  const js = await fetch(`${gw.base}/admin/app.js`);
  assert.match(js.headers.get("content-type"), /^text\/javascript/);
  const etag = js.headers.get("etag");
  assert.equal((await fetch(`${gw.base}/admin/app.js`, { headers: { "if-none-match": etag } })).status, 304);
  const vendor = await fetch(`${gw.base}/admin/vendor/uplot-1.6.32/uPlot.iife.min.js`);
  assert.equal(vendor.status, 200);
  assert.match(vendor.headers.get("cache-control"), /immutable/);
  const deep = await fetch(`${gw.base}/admin/keys/key_x`);
  assert.equal(deep.status, 200);
  assert.match(deep.headers.get("content-type"), /^text\/html/);
  assert.equal((await fetch(`${gw.base}/admin/missing.js`)).status, 404);
  const api404 = await fetch(`${gw.base}/admin/api/no-such-route`);
  assert.equal(api404.status, 404);
  assert.equal((await api404.json()).error.code, "unknown_url");
  assert.equal((await fetch(`${gw.base}/admin/api/keys`)).status, 401);
  const redirect = await fetch(`${gw.base}/admin`, { redirect: "manual" });
  assert.equal(redirect.headers.get("location"), "/admin/");
});

test("login shows the API's error for a wrong password, then signs in with a session cookie", async () => {
  await page.goto(`${gw.base}/admin/`);
  await page.waitForSelector("form.login-form");
  await shot("login");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("form.login-form button[type=submit]");
  const error = await page.waitForSelector(".login-form .alert-error");
  assert.match(await error.textContent(), /incorrect username or password/i);

  await page.fill("input[name=password]", PASSWORD);
  await page.click("form.login-form button[type=submit]");
  await page.waitForSelector("[data-stat=requests]");
  assert.match(page.url(), /#\/overview$/);
  const cookie = (await page.context().cookies()).find((c) => c.name === "tollgate_session");
  assert.ok(cookie, "no tollgate_session cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.path, "/admin");
  assert.equal(await page.evaluate(() => document.cookie.includes("tollgate_session")), false);
});

test("a key created in the dashboard is shown once, and not again after a reload", async () => {
  await go("#/keys");
  await page.waitForSelector("[data-action=new-key]");
  await shot("keys-empty");
  await page.click("[data-action=new-key]");
  const form = "form[data-form=create-key]";
  await page.waitForSelector(form);
  created.name = "dashboard-e2e";
  await page.fill(`${form} input[name=name]`, created.name);
  await page.fill(`${form} input[name=owner]`, "qa-team");
  // A limit the API refuses: its message appears in the form.
  await page.fill(`${form} input[name="limits.rpm"]`, "0");
  await page.click(`${form} button[type=submit]`);
  const err = await page.waitForSelector(`${form} .form-error .alert-error`);
  assert.match(await err.textContent(), /limits\.rpm/);
  assert.ok(await page.$eval(`${form} input[name="limits.rpm"]`, (e) => e.classList.contains("invalid")));
  await page.fill(`${form} input[name="limits.rpm"]`, "600");
  await page.fill(`${form} input[name="budgets.daily"]`, "25");
  await shot("key-create");
  await page.click(`${form} button[type=submit]`);

  const secret = await page.waitForSelector("[data-secret=key]");
  created.key = await secret.inputValue();
  assert.match(created.key, /^tg-live-[A-Za-z0-9]{32,}$/);
  await shot("key-created-once");
  await page.click("[data-copy=key]");
  await page.waitForFunction(() => /Copied|Ctrl\+C/.test(document.querySelector(".copy-status")?.textContent || ""));
  await page.click("[data-done]");
  await page.waitForSelector("[data-secret=key]", { state: "detached" });

  const row = await page.waitForSelector(`tr[data-key-name="${created.name}"]`);
  created.id = await row.getAttribute("data-key-id");
  const rowText = await row.textContent();
  assert.ok(!rowText.includes(created.key), "the table shows the full key");
  assert.match(rowText, /600 rpm/);
  assert.match(rowText, /\$25\.00\/day/);
  assert.match(rowText, new RegExp(`${created.key.slice(0, 12)}…${created.key.slice(-4)}`));

  await page.reload();
  await page.waitForSelector(`tr[data-key-id="${created.id}"]`);
  const html = await page.content();
  assert.ok(!html.includes(created.key), "the key is in the page after a reload");
  assert.equal(await page.$("[data-secret]"), null);

  // The secret works.
  const ok = await chat(created.key);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
});

test("limits and budgets are edited in the dashboard", async () => {
  await page.click(`[data-menu="${created.id}"]`);
  await page.click(`tr[data-key-id="${created.id}"] [data-act=edit]`);
  const form = "form[data-form=edit-key]";
  await page.waitForSelector(form);
  assert.equal(await page.inputValue(`${form} input[name="limits.rpm"]`), "600");
  await page.fill(`${form} input[name="limits.rpm"]`, "900");
  await page.fill(`${form} input[name="limits.tpd"]`, "500000");
  await page.fill(`${form} input[name="budgets.monthly"]`, "300");
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(form, { state: "detached" });
  await page.waitForFunction((id) => /900 rpm/.test(document.querySelector(`tr[data-key-id="${id}"]`)?.textContent || ""), created.id);
  const { body } = await admin(`keys/${created.id}`);
  assert.equal(body.limits.rpm, 900);
  assert.equal(body.limits.tpd, 500000);
  assert.equal(body.budgets.daily, 25);
  assert.equal(body.budgets.monthly, 300);
});

test("a key suspended in the dashboard is refused with 403; resumed, it works again", async () => {
  await page.click(`[data-menu="${created.id}"]`);
  await page.click(`tr[data-key-id="${created.id}"] [data-act=suspend]`);
  await page.waitForFunction((id) => /suspended/i.test(document.querySelector(`tr[data-key-id="${id}"] .badge`)?.textContent || ""), created.id);
  await shot("keys-suspended");
  const refused = await chat(created.key);
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, "key_suspended");

  await page.click(`[data-menu="${created.id}"]`);
  await page.click(`tr[data-key-id="${created.id}"] [data-act=resume]`);
  await page.waitForFunction((id) => /active/i.test(document.querySelector(`tr[data-key-id="${id}"] .badge`)?.textContent || ""), created.id);
  assert.equal((await chat(created.key)).status, 200);
});

test("traffic fills the overview: figures and charts", async () => {
  const other = await admin("keys", { method: "POST", body: JSON.stringify({ name: "batch-worker", owner: "data-team", limits: { rpm: 600 } }) });
  assert.equal(other.status, 201);
  const calls = [];
  for (let i = 0; i < 24; i++) calls.push(chat(i % 3 ? created.key : other.body.key, i % 8 === 5 ? "no-such-model" : "mock-gpt"));
  const answers = await Promise.all(calls);
  assert.equal(answers.filter((a) => a.status === 200).length, 21);
  // At least 2 calls from the tests before, and the 24 here; the figures the page must
  // show are the API's once every row is written.
  const totals = await eventually(async () => {
    const row = (await admin(`usage?from=${today()}`)).body.data[0];
    return row && row.requests >= 26 ? row : null;
  }, 5000, "usage rows");
  const total = totals.requests;

  await go("#/keys");
  await page.waitForSelector("[data-action=new-key]");
  await go("#/overview");
  await page.waitForFunction((n) => document.querySelector("[data-stat=requests] .stat-value")?.textContent === String(n), total);
  const errorRate = await page.textContent("[data-stat=error_rate] .stat-value");
  assert.equal(errorRate, `${((totals.failures / total) * 100).toFixed(1)}%`);
  assert.ok(totals.failures >= 3);
  assert.match(await page.textContent("[data-stat=p50] .stat-value"), /\d+ ms/);
  assert.match(await page.textContent("[data-stat=spend] .stat-value"), /^\$/);
  for (const id of ["recent-traffic", "recent-latency", "daily-requests", "daily-tokens", "daily-latency", "daily-spend"]) {
    const chart = await page.waitForSelector(`[data-chart=${id}] canvas`);
    assert.ok(chart, id);
  }
  for (const id of ["recent-traffic", "recent-latency", "daily-requests", "daily-tokens"]) {
    assert.equal(await page.getAttribute(`[data-chart=${id}]`, "data-filled"), "true", `${id} has no data`);
  }
  // Axes carry units (drawn on the canvas; the chart element names them too).
  assert.equal(await page.getAttribute("[data-chart=daily-requests]", "data-y-label"), "requests / day");
  assert.equal(await page.getAttribute("[data-chart=recent-latency]", "data-y-label"), "ms");
  assert.match(await page.textContent("section.card:has([data-chart=daily-requests]) .u-legend"), /Succeeded/);
  // Top keys name the keys.
  assert.match(await page.textContent(".grid-2"), new RegExp(created.name));
  await shot("overview");
});

test("the key page charts that key's usage and cost", async () => {
  await go(`#/keys/${created.id}`);
  await page.waitForSelector("[data-chart=key-requests] canvas");
  assert.equal(await page.getAttribute("[data-chart=key-requests]", "data-filled"), "true");
  assert.equal(await page.getAttribute("[data-chart=key-tokens]", "data-filled"), "true");
  assert.ok(await page.$("[data-chart=key-cost] canvas"));
  const text = await page.textContent("main");
  assert.match(text, /mock-gpt/);
  assert.match(text, /qa-team/);
  assert.ok(!text.includes(created.key));
  await shot("key-detail");
});

test("upstream pool health shows the mock pool's key with its state and utilization", async () => {
  await go("#/upstreams");
  const row = await page.waitForSelector("tr[data-upstream=mock-default]");
  const text = await row.textContent();
  assert.match(text, /ok/i);
  assert.ok(await row.$(".meter"));
  assert.match(await page.textContent("[data-provider=mock]"), /1 \/ 1/);
  await shot("upstreams");
});

test("costs by model and by owner", async () => {
  await go("#/costs?range=7d");
  await page.waitForSelector("[data-section=by-model] table");
  assert.match(await page.textContent("[data-section=by-model]"), /mock-gpt/);
  const owners = await page.textContent("[data-section=by-owner]");
  assert.match(owners, /qa-team/);
  assert.match(owners, /data-team/);
  assert.ok(await page.$("[data-chart=costs-daily] canvas"));
  const csv = await page.getAttribute("[data-section=by-owner] a[download]", "href");
  const res = await fetch(`${gw.base}${csv}`, { headers: { authorization: `Bearer ${adminToken}` } });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /owner/);
  await shot("costs");
});

test("logs filter by key and status, page by cursor, and open a call's details", async () => {
  await go(`#/logs?key_id=${encodeURIComponent(created.id)}`);
  await page.waitForSelector("table.logs tbody tr[data-request]");
  const keys = await page.$$eval("table.logs tbody tr[data-request] td:nth-child(5)", (tds) => [...new Set(tds.map((t) => t.textContent))]);
  assert.deepEqual(keys, [created.name]);
  await page.click("table.logs tbody tr[data-request] td:first-child");
  const detail = await page.waitForSelector("table.logs tr.detail:not([hidden])");
  assert.match(await detail.textContent(), /Request id/);
  await shot("logs");

  await page.selectOption("form[data-form=log-filters] select[name=status]", "4xx");
  await page.click("form[data-form=log-filters] button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("status=4xx"));
  // The filtered rows replace the others once the page has fetched them: wait for
  // that, not for any row (the unfiltered ones may still be shown).
  await page.waitForFunction(() => {
    const tds = [...document.querySelectorAll("table.logs tbody tr[data-request] td:nth-child(2)")];
    return tds.length > 0 && tds.every((t) => /^4\d\d$/.test(t.textContent));
  });
  const statuses = await page.$$eval("table.logs tbody tr[data-request] td:nth-child(2)", (tds) => tds.map((t) => t.textContent));
  assert.ok(statuses.length > 0 && statuses.every((s) => /^4\d\d$/.test(s)), statuses.join(","));

  // Paging: 26+ calls at 50 a page is one page; ask the API the same way the page does.
  const page1 = await admin("logs?limit=10");
  assert.ok(page1.body.next_cursor);
});

test("alerts: what fires, the rules (edited in the dashboard), the history", async () => {
  await go("#/alerts");
  await page.waitForSelector("[data-section=rules] table");
  const rules = await page.textContent("[data-section=rules]");
  assert.match(rules, /error-rate/);
  assert.match(rules, /≥ 20%/);
  assert.ok(await page.$("[data-firing='0']"));
  await shot("alerts");

  await page.click("[data-action=edit-rules]");
  const form = "form[data-form=alert-rules]";
  await page.waitForSelector(form);
  const row = `${form} .rule-row[data-rule=error-rate]`;
  await page.fill(`${row} input[name=window]`, "5 minutes");
  await page.click(`${form} button[type=submit]`);
  const err = await page.waitForSelector(`${form} .form-error .alert-error`);
  assert.match(await err.textContent(), /not a duration/);
  await shot("alerts-edit-rules");
  await page.fill(`${row} input[name=window]`, "10m");
  await page.fill(`${row} input[name=threshold]`, "50");
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(form, { state: "detached" });
  await page.waitForFunction(() => /≥ 50% over 10m/.test(document.querySelector("[data-section=rules]")?.textContent || ""));
  const { body } = await admin("alerts/rules");
  const rule = body.data.find((r) => r.name === "error-rate");
  assert.equal(rule.threshold, 0.5);
  assert.equal(rule.window, "10m");
});

test("data from the API is shown as text, never run as markup", async () => {
  const name = `<img src=x onerror="window.__xss=1">`;
  const made = await admin("keys", { method: "POST", body: JSON.stringify({ name, owner: "<script>window.__xss=2</script>", team: "<b>t</b>" }) });
  assert.equal(made.status, 201);
  await go("#/keys");
  await page.waitForSelector(`tr[data-key-id="${made.body.id}"]`);
  assert.match(await page.textContent(`tr[data-key-id="${made.body.id}"]`), /<img src=x onerror=/);
  await go(`#/keys/${made.body.id}`);
  await page.waitForFunction((n) => document.querySelector(".page-title h1")?.textContent === n, name);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.$("main img, main script, main b"), null);
  await admin(`keys/${made.body.id}`, { method: "DELETE" });
});

test("logout ends the session", async () => {
  await go("#/overview");
  await page.waitForSelector("[data-logout]");
  await page.click("[data-logout]");
  await page.waitForSelector("form.login-form");
  assert.match(await page.textContent(".login-card"), /signed out/i);
  // The API refuses the old session, and a page of the app leads back to login.
  const status = await page.evaluate(async () => (await fetch("/admin/api/keys")).status);
  assert.equal(status, 401);
  await go("#/keys");
  await page.waitForFunction(() => location.hash.startsWith("#/login") && location.hash.includes("next="));
  await page.waitForSelector("form.login-form");
});

test("no script errors or refused resources in the browser", () => {
  assert.deepEqual(problems, []);
});

function today() {
  return new Date().toISOString().slice(0, 10);
}
