// The admin API client. The session is the HttpOnly `tollgate_session` cookie that
// login sets (Path=/admin): the app never sees or stores the token.

export class ApiError extends Error {
  constructor(status, message, param, code) {
    super(message);
    this.status = status;
    this.param = param || null;
    this.code = code || null;
  }
}

const listeners = { unauthorized: [] };

/** Called with the error when any call but login answers 401. */
export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

/** `/admin/api/<path>?<query>` as a URL string; empty query values are left out. */
export function apiUrl(path, query) {
  const url = new URL(`/admin/api/${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url.pathname + url.search;
}

/**
 * Calls the admin API. Resolves to the parsed JSON (null for 204); rejects with an
 * ApiError carrying the API's `error.message`.
 */
export async function api(path, { method = "GET", body, query } = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path, query), {
      method,
      credentials: "same-origin",
      headers: body !== undefined ? { "content-type": "application/json" } : {},
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, `The gateway cannot be reached (${e.message}).`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = data && data.error;
    const err = new ApiError(
      res.status,
      (e && e.message) || `The gateway answered ${res.status} ${res.statusText}.`,
      e && e.param,
      e && e.code,
    );
    if (res.status === 401 && path !== "login") {
      for (const fn of listeners.unauthorized) fn(err);
    }
    throw err;
  }
  return data;
}

export const login = (username, password) =>
  api("login", { method: "POST", body: { username, password } });
export const logout = () => api("logout", { method: "POST" });

/** Every page of a list, up to `max` items. */
export async function listAll(path, query = {}, max = 2000) {
  const out = [];
  let cursor;
  do {
    const page = await api(path, { query: { ...query, cursor } });
    out.push(...(page.data || []));
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

/** Key id → key record, for showing names where the API gives ids. */
let keyCache = null;
let keyCacheAt = 0;
export async function keyNames({ fresh = false } = {}) {
  if (fresh || !keyCache || Date.now() - keyCacheAt > 15000) {
    const keys = await listAll("keys", { limit: 500 });
    keyCache = new Map(keys.map((k) => [k.id, k]));
    keyCacheAt = Date.now();
  }
  return keyCache;
}
export function forgetKeys() {
  keyCache = null;
}
