// The console's only way to the server: the documented JSON API under
// /api/v1. The API decides every authority; the console only hides what
// the user may not do.
//
// Credentials: people sign in with POST /api/v1/login (a session cookie,
// HttpOnly, so a reload keeps the sign-in; every change carries
// X-CSRF-Token, the csrf of /me); machines and admins may instead use an
// API token, kept in sessionStorage and sent as a bearer header.
// Everything that depends on which one is here: authHeaders and eventURL.

const TOKEN_KEY = "loa.token";

let csrf = "";
let onUnauthenticated = () => {};

// ApiError is an answer other than 2xx: status, the API's code and field
// (the input it refers to), its English message, and for a 429 the
// seconds its Retry-After asks to wait.
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.error) || String(status));
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? "network" : "");
    this.field = ((body && body.field) || "").replace(/\[\d+\]/g, "");
    this.retryAfter = Number(retryAfter) || 0;
    this.usedBy = (body && body.used_by) || []; // in_use: what keeps it
  }
}

export function whenUnauthenticated(fn) { onUnauthenticated = fn; }

export function bearer() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

export function authHeaders(method) {
  const h = {};
  const tok = bearer();
  if (tok) h.Authorization = "Bearer " + tok;
  else if (csrf && method !== "GET" && method !== "HEAD") h["X-CSRF-Token"] = csrf;
  return h;
}

// eventURL is the event stream's address: EventSource sends the cookie
// itself, but cannot send a bearer header, so a token goes in the query
// (accepted by the stream routes only).
export function eventURL(path) {
  const tok = bearer();
  if (!tok) return path;
  return path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(tok);
}

// request calls the API and returns the decoded body (null for 204).
export async function request(method, path, body, opts = {}) {
  const init = { method, headers: authHeaders(method), credentials: "same-origin" };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null);
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 403 && data && data.code === "csrf" && !bearer() && !opts.retried) {
    // This tab's CSRF token is stale (the cookie's session was started
    // again in another tab): take the session's own from /me, once.
    await me().catch(() => {});
    if (csrf) return request(method, path, body, Object.assign({}, opts, { retried: true }));
  }
  if (res.status === 401 && !opts.quiet) onUnauthenticated();
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get("Retry-After"));
  return data;
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body) => request("POST", path, body);

// signIn signs in with a username and password (the session cookie) and
// returns /me.
export async function signIn(username, password) {
  sessionStorage.removeItem(TOKEN_KEY);
  const r = await request("POST", "/api/v1/login", { username, password }, { quiet: true });
  csrf = (r && r.csrf) || "";
  return me();
}

// signInToken signs in with an API token and returns /me.
export async function signInToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    return await me();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw e;
  }
}

// me asks who is signed in, by token or by cookie.
export async function me() {
  const m = await request("GET", "/api/v1/me", undefined, { quiet: true });
  if (m && m.csrf) csrf = m.csrf;
  return m;
}

export async function signOut() {
  const tok = bearer();
  sessionStorage.removeItem(TOKEN_KEY);
  if (!tok) {
    await request("POST", "/api/v1/logout", undefined, { quiet: true }).catch(() => {});
  }
  csrf = "";
}
