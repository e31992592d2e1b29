// The console's shell: sign-in, navigation, routes per role, language,
// the one event stream. Each screen is a module under screens/ with
// { path, nav, allowed(ctx), mount(root, ctx) → unmount }.

import * as api from "./api.js";
import * as events from "./events.js";
import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { el, field, say, showError } from "./ui.js";
import overview from "./screens/overview.js";
import play from "./screens/play.js";
import media from "./screens/media.js";
import alerts from "./screens/alerts.js";
import devices from "./screens/devices.js";
import log from "./screens/log.js";
import users from "./screens/users.js";
import playlists from "./screens/playlists.js";
import drafts from "./screens/drafts.js";
import calendar from "./screens/calendar.js";
import device from "./screens/device.js";
import alarms from "./screens/alarms.js";
import firmware from "./screens/firmware.js";
import notify from "./screens/notify.js";
import contact from "./screens/contact.js";
import ack from "./screens/ack.js";
import reports from "./screens/reports.js";
import bulletins from "./screens/bulletins.js";
import liveMic from "./screens/live.js";
import relays from "./screens/relays.js";
import national from "./screens/national.js";

const SCREENS = [overview, play, liveMic, media, playlists, calendar, alerts, devices, device, alarms, firmware, log, users, drafts, reports, bulletins, notify, contact, ack, relays, national];

// What each role may do, as the API's loa.Token.Can says, for a /me that
// does not list its permissions.
const ROLE_ACTIONS = {
  admin: ["read", "media", "session", "device", "area", "firmware", "tokens", "users", "approve"],
  province: ["read", "media", "session", "device", "area"],
  operator: ["read", "media", "session"],
  technician: ["read", "device", "firmware"],
  approver: ["read", "approve"],
};

let ctx = null; // the signed-in user's context, null when signed out
let unmount = null;
let loginNote = ""; // why the user was signed out, shown on the sign-in screen

const $ = (id) => document.getElementById(id);

// newContext holds who is signed in and the lists every screen names
// things from (areas, media), read once per sign-in.
async function newContext(me) {
  const perms = me.permissions || ROLE_ACTIONS[me.role] || ["read"];
  const c = {
    me,
    role: me.role,
    area: me.area || me.area_id || "",
    can: (action) => perms.includes(action),
    areas: [],
    media: [],
    areaName: (id) => (c.areas.find((a) => a.id === id) || {}).name || id,
    mediaName: (id) => (c.media.find((m) => m.id === id) || {}).name || id,
    playlists: [],
    playlistName: (id) => (c.playlists.find((p) => p.id === id) || {}).name || id,
    async reloadMedia() { c.media = await api.get("/api/v1/media"); return c.media; },
  };
  i18n.setZone(me.station && me.station.zone);
  [c.areas, c.media, c.playlists] = await Promise.all([
    api.get("/api/v1/areas").catch(() => []),
    api.get("/api/v1/media").catch(() => []),
    api.get("/api/v1/playlists").catch(() => []),
  ]);
  return c;
}

function renderShell() {
  document.title = t("app.name") + " — " + t("app.tagline");
  $("brand").replaceChildren(t("app.name"), " ", el("small", { text: t("app.tagline") }));
  $("lang").textContent = t("lang.switch");
  $("lang").lang = i18n.language() === "vi" ? "en" : "vi";
  $("lang").title = t("lang.label");
  $("menu").textContent = "☰ " + t("nav.menu");
  $("nav").setAttribute("aria-label", t("nav.label"));
  $("logout").textContent = t("user.logout");
  const signedIn = !!ctx;
  renderCluster();
  $("menu").hidden = !signedIn;
  $("nav").hidden = !signedIn;
  $("who").hidden = !signedIn;
  if (!signedIn) return;
  const area = ctx.area ? " · " + ctx.areaName(ctx.area) : "";
  $("who-name").textContent = (ctx.me.name || ctx.me.user || ctx.me.id) + " · " + t("role." + ctx.role) + area;
  const list = el("ul");
  for (const s of SCREENS) {
    if (!s.allowed(ctx) || !s.nav) continue; // a screen without nav is opened from another (device/<id>)
    list.append(el("li", {}, el("a", { href: "#/" + s.path, "data-path": s.path, text: t(s.nav) }, s.badge && s.badge(ctx))));
  }
  $("nav").replaceChildren(list);
  markCurrent();
}

// renderCluster: on a cluster's follower the console is a read-only copy
// of the station's records; the banner names the node that runs the
// station, which every change is sent to, and says presence is known there.
function renderCluster() {
  const box = $("cluster");
  const c = ctx && ctx.me.station && ctx.me.station.cluster;
  if (!c || c.role === "leader") { box.hidden = true; box.replaceChildren(); return; }
  const text = c.leader ? t("cluster.follower", { node: c.node, leader: c.leader }) : t("cluster.noleader", { node: c.node });
  box.replaceChildren(text);
  if (c.leader && c.leader_api) box.append(" ", el("a", { href: c.leader_api + "/", text: t("cluster.open", { leader: c.leader }) }));
  box.hidden = false;
}

function markCurrent() {
  const path = currentPath();
  for (const a of $("nav").querySelectorAll("a")) {
    if (a.dataset.path === path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function currentPath() { return (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0]; }

function route() {
  if (unmount) unmount();
  unmount = null;
  say("");
  const view = $("view");
  view.replaceChildren();
  closeMenu();
  if (!ctx) { loginScreen(view); return; }
  const p = currentPath();
  let s = SCREENS.find((x) => (x.path === p || p.startsWith(x.path + "/")) && x.allowed(ctx));
  if (!s) {
    if (currentPath() !== "overview") { location.hash = "#/overview"; return; }
    s = overview;
  }
  markCurrent();
  unmount = s.mount(view, ctx) || null;
  const h = view.querySelector("h1");
  if (h && document.activeElement && document.activeElement.closest("nav")) h.focus();
}

// loginScreen: username and password first (people); an API token
// under a fold (machines, admins).
function loginScreen(view) {
  const user = el("input", { id: "login-user", name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true });
  const pass = el("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
  const err = el("p", { class: "action-error", id: "login-error", role: "alert", hidden: true });
  const button = el("button", { type: "submit", text: t("login.submit") });
  const form = el("form", { id: "login-form", class: "card" },
    field(t("login.username"), user), field(t("login.password"), pass), button, err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      await signedIn(await api.signIn(user.value.trim(), pass.value));
    } catch (e) {
      pass.value = "";
      showError(form, loginError(e), { username: "login-user", password: "login-pass" }, err);
      (e.field === "username" ? user : pass).focus();
    } finally {
      button.disabled = false;
    }
  });
  const tok = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true });
  const terr = el("p", { class: "action-error", id: "token-form-error", role: "alert", hidden: true });
  const tform = el("form", { id: "token-form" }, field(t("login.token"), tok),
    el("button", { type: "submit", text: t("login.token.submit") }), terr);
  tform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = tok.value.trim();
    tok.value = "";
    try {
      await signedIn(await api.signInToken(v));
    } catch (e) {
      showError(tform, e.status === 401 ? Object.assign(e, { code: "bad_token", field: "" }) : e, {}, terr);
    }
  });
  const note = loginNote ? el("p", { class: "action-error", id: "login-note", role: "alert", text: loginNote }) : null;
  loginNote = "";
  view.append(...[el("h1", { tabindex: "-1", text: t("login.title") }), note, form,
    el("details", { class: "card", id: "token-fold" }, el("summary", { text: t("login.token.summary") }), tform)].filter(Boolean));
}

// loginError names a refused sign-in in the glossary's words: a wrong
// username or password (never which), the account's back-off with its
// wait, a disabled account; other codes (csrf, invalid with its field)
// as everywhere.
function loginError(e) {
  if (e.code === "unauthorized") return Object.assign(e, { code: "bad_credentials", field: "" });
  if (e.code === "forbidden") return Object.assign(e, { code: "account_disabled", field: "" });
  if (e.code === "login_backoff") return Object.assign(e, { field: "" });
  return e;
}

async function signedIn(me) {
  ctx = await newContext(me);
  events.start(live, streamClosed);
  renderShell();
  if (currentPath() === "login") location.hash = "#/overview";
  else route();
}

// streamClosed: the server refused the event stream. A 401 from /me
// signs out (api.whenUnauthenticated); otherwise the stream is opened
// again after a pause, as EventSource itself would for a dropped one.
let retry = 0;
let retries = 0;
function streamClosed() {
  clearTimeout(retry);
  retry = setTimeout(async () => {
    if (!ctx) return;
    try {
      const me = await api.get("/api/v1/me");
      if (ctx) {
        ctx.me.station = me.station; // a failover may have changed who leads
        renderCluster();
        events.start(live, streamClosed);
      }
    } catch (e) {
      if (ctx && e.status !== 401) streamClosed();
    }
  }, retries++ ? 5000 : 0); // the first check at once: a refusal is most often an ended sign-in
}

function live(on) {
  if (on) retries = 0;
  $("live").textContent = on ? t("live.on") : t("live.off");
  $("live").className = on ? "on" : "off";
}

async function signOut(text) {
  clearTimeout(retry);
  events.stop();
  if (ctx) await api.signOut();
  ctx = null;
  loginNote = text || "";
  renderShell();
  if (currentPath() !== "login") location.hash = "#/login";
  else route();
}

function closeMenu() {
  document.body.classList.remove("menu-open");
  $("menu").setAttribute("aria-expanded", "false");
}

async function setLanguage(lang) {
  await i18n.load(lang);
  renderShell();
  route(); // a user's choice, not a live update: the screen is drawn again in the new language
}

document.addEventListener("DOMContentLoaded", async () => {
  await i18n.load();
  api.whenUnauthenticated(() => { if (ctx) signOut(t("login.expired")); });
  $("lang").addEventListener("click", () => setLanguage(i18n.language() === "vi" ? "en" : "vi"));
  $("logout").addEventListener("click", () => signOut());
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  $("nav").addEventListener("click", (ev) => { if (ev.target.closest("a")) closeMenu(); });
  window.addEventListener("hashchange", route);
  // Back to a tab signed out elsewhere (another tab's sign-out ends the
  // same cookie session): ask at once rather than at the stream's next round.
  document.addEventListener("visibilitychange", () => {
    if (ctx && document.visibilityState === "visible") api.me().catch((e) => { if (e.status === 401 && ctx) signOut(t("login.expired")); });
  });
  renderShell();
  try {
    // A bearer token kept in this tab, or a session cookie.
    await signedIn(await api.me());
  } catch (e) {
    route();
  }
});
