// People and machines: the users who sign in (create, role and scope,
// disable and enable, password reset) for roles with the `users`
// permission, and the API tokens with revocation for those with `tokens`.
// The API refuses a scope wider than the caller's; the console offers
// only the caller's own areas.

import * as api from "../api.js";
import { dateTime, errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const ROLES = ["admin", "province", "operator", "technician", "approver"];

export default {
  path: "users",
  nav: "nav.users",
  allowed: (ctx) => ctx.can("users") || ctx.can("tokens"),
  mount(root, ctx) {
    root.append(el("h1", { tabindex: "-1", text: t("users.title") }));
    const areaPairs = () => {
      const pairs = treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l]);
      return ctx.area ? pairs : [["", t("users.area.all")], ...pairs];
    };
    const rolePairs = ROLES.map((r) => [r, t("role." + r)]);
    let live = true;
    if (ctx.can("users")) mountUsers(root, ctx, areaPairs, rolePairs, () => live);
    if (ctx.can("tokens")) mountTokens(root, ctx, () => live);
    return () => { live = false; };
  },
};

function mountUsers(root, ctx, areaPairs, rolePairs, live) {
  const username = el("input", { id: "user-username", name: "username", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "32", required: true });
  const name = el("input", { id: "user-name", name: "name", autocomplete: "off", maxlength: "200", required: true });
  const password = el("input", { id: "user-password", name: "password", type: "password", autocomplete: "new-password", minlength: "10", required: true });
  const role = options(el("select", { id: "user-role", name: "role" }), rolePairs);
  role.value = "operator";
  const area = options(el("select", { id: "user-area", name: "area_id" }), areaPairs());
  const email = el("input", { id: "user-email", name: "email", type: "email", autocomplete: "off", maxlength: "254" });
  const phone = el("input", { id: "user-phone", name: "phone", type: "tel", autocomplete: "off", maxlength: "16", placeholder: "+84912345678" });
  const err = el("p", { class: "action-error", id: "user-form-error", role: "alert", hidden: true });
  const button = el("button", { type: "submit", text: t("users.submit") });
  const form = el("form", { id: "user-form", class: "card", "aria-labelledby": "h-user-new" },
    el("h2", { id: "h-user-new", text: t("users.create") }),
    field(t("users.username"), username), field(t("users.name"), name), field(t("users.password"), password),
    field(t("users.role"), role), field(t("users.area"), area), field(t("users.email"), email), field(t("users.phone"), phone), button, err);
  const box = el("ul", { id: "users-list", class: "cards" });
  root.append(form, el("section", { class: "panel", "aria-labelledby": "h-users" }, el("h2", { id: "h-users", text: t("users.list") }), box));

  const areaLabel = (id) => (id ? ctx.areaName(id) : t("users.area.all"));
  const list = new List(box, (u) => userCard(u, ctx, areaPairs, rolePairs, (v) => list.put(v)), (li, u) => {
    li.querySelector(".title").textContent = (u.name || u.username) + " (" + u.username + ")";
    li.querySelector(".meta").textContent = [t("role." + u.role), areaLabel(u.area_id), u.email, u.phone].filter(Boolean).join(" · ");
    for (const k of ["email", "phone"]) {
      const c = li.querySelector("input.contact-" + k);
      if (document.activeElement !== c) c.value = u[k] || "";
    }
    const st = li.querySelector(".state");
    st.textContent = u.disabled ? t("users.disabled") : t("users.active");
    st.className = "state " + (u.disabled ? "off" : "on");
    li.classList.toggle("disabled", u.disabled);
    const toggle = li.querySelector("button.toggle");
    toggle.textContent = u.disabled ? t("users.enable") : t("users.disable");
    toggle.classList.toggle("danger", !u.disabled);
    const r = li.querySelector("select.role");
    const a = li.querySelector("select.area");
    if (document.activeElement !== r) r.value = u.role;
    if (document.activeElement !== a) a.value = u.area_id || "";
  }, t("users.empty"), (a, b) => a.username.localeCompare(b.username));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { username: username.value.trim().toLowerCase(), name: name.value.trim(), password: password.value, role: role.value, area_id: area.value,
      email: email.value.trim(), phone: phone.value.trim() };
    button.disabled = true;
    try {
      const u = await api.post("/api/v1/users", body);
      list.put(asItem(u));
      say(t("users.created", { name: u.name || u.username }));
      form.reset();
      role.value = "operator";
    } catch (e) {
      if (e.code === "conflict" && !e.field) e.field = "username"; // the one thing that can already exist
      showError(form, e, { username: "user-username", name: "user-name", password: "user-password", role: "user-role", area_id: "user-area",
        email: "user-email", phone: "user-phone" }, err);
    } finally {
      button.disabled = false;
    }
  });
  api.get("/api/v1/users").then((us) => { if (live()) list.reset(us.map(asItem)); }).catch((e) => say(errorText(e), true));
}

const asItem = (u) => Object.assign({}, u, { id: u.username });

// userCard is one person: state, role and scope to change, a new
// password, and disable or enable. Ids carry the username (a-z, 0-9,
// '.', '_', '-'), unique on the page.
function userCard(u, ctx, areaPairs, rolePairs, put) {
  const id = "user-" + u.username;
  const err = el("p", { class: "action-error", id: id + "-error", role: "alert", hidden: true });
  const role = options(el("select", { id: id + "-role", class: "role", name: "role" }), rolePairs);
  const area = options(el("select", { id: id + "-area", class: "area", name: "area_id" }), areaPairs());
  const pass = el("input", { id: id + "-password", name: "password", type: "password", autocomplete: "new-password", minlength: "10" });
  const fail = (e, fields) => showError(li, e, fields, err);
  const call = async (fn, done, fields) => {
    clearErrors(li);
    try {
      const v = await fn();
      if (v) put(asItem(v));
      say(done(v));
    } catch (e) {
      fail(e, fields);
    }
  };
  const save = el("button", { type: "button", class: "save", text: t("users.save") });
  save.addEventListener("click", () => call(() => api.request("PUT", "/api/v1/users/" + u.username, { role: role.value, area_id: area.value }),
    (v) => t("users.saved", { name: v.name || v.username }), { role: id + "-role", area_id: id + "-area" }));
  const email = el("input", { id: id + "-email", class: "contact-email", name: "email", type: "email", autocomplete: "off", maxlength: "254" });
  const phone = el("input", { id: id + "-phone", class: "contact-phone", name: "phone", type: "tel", autocomplete: "off", maxlength: "16" });
  const saveContact = el("button", { type: "button", class: "save-contact", text: t("users.contact.save") });
  saveContact.addEventListener("click", () => call(() => api.request("PUT", "/api/v1/users/" + u.username, { email: email.value.trim(), phone: phone.value.trim() }),
    (v) => t("users.saved", { name: v.name || v.username }), { email: id + "-email", phone: id + "-phone" }));
  const reset = el("button", { type: "button", class: "reset", text: t("users.reset") });
  reset.addEventListener("click", () => call(async () => {
    await api.post("/api/v1/users/" + u.username + "/password", { password: pass.value });
    pass.value = "";
    return null;
  }, () => t("users.reset.done", { name: u.name || u.username }), { password: id + "-password" }));
  const toggle = el("button", { type: "button", class: "toggle" });
  toggle.addEventListener("click", () => {
    const cur = li.classList.contains("disabled");
    if (!cur && !window.confirm(t("users.disable.confirm", { name: u.name || u.username }))) return;
    call(() => api.post("/api/v1/users/" + u.username + (cur ? "/enable" : "/disable")),
      (v) => t(cur ? "users.enabled.done" : "users.disabled.done", { name: v.name || v.username }));
  });
  const li = el("li", { class: "card user" },
    el("p", { class: "title" }), el("p", { class: "meta" }), el("p", { class: "state" }), toggle,
    el("details", { class: "edit" }, el("summary", { text: t("users.edit") }),
      el("div", { class: "edit-body" },
        field(t("users.role"), role), field(t("users.area"), area), save,
        field(t("users.email"), email), field(t("users.phone"), phone), saveContact,
        field(t("users.newpass"), pass), reset)),
    err);
  return li;
}

function mountTokens(root, ctx, live) {
  const box = el("ul", { id: "tokens-list", class: "cards" });
  root.append(el("section", { class: "panel", "aria-labelledby": "h-tokens" }, el("h2", { id: "h-tokens", text: t("tokens.title") }), box));
  const list = new List(box, (tok) => {
    const err = el("p", { class: "action-error", id: "token-" + tok.id + "-error", role: "alert", hidden: true });
    const revoke = el("button", { type: "button", class: "revoke danger", text: t("tokens.revoke") });
    const li = el("li", { class: "card token" }, el("p", { class: "title" }), el("p", { class: "meta" }), el("p", { class: "state" }), revoke, err);
    revoke.addEventListener("click", async () => {
      if (!window.confirm(t("tokens.revoke.confirm", { name: tok.name || tok.id }))) return;
      clearErrors(li);
      try {
        list.put(await api.request("DELETE", "/api/v1/tokens/" + encodeURIComponent(tok.id)));
        say(t("tokens.revoked.done", { name: tok.name || tok.id }));
      } catch (e) {
        showError(li, e, {}, err);
      }
    });
    return li;
  }, (li, tok) => {
    li.querySelector(".title").textContent = tok.name || tok.id;
    li.querySelector(".meta").textContent = [t("role." + tok.role), tok.area_id ? ctx.areaName(tok.area_id) : t("users.area.all"),
      t("tokens.created", { t: dateTime(tok.created_at) }), tok.expires_at ? t("tokens.expires", { t: dateTime(tok.expires_at) }) : ""].filter(Boolean).join(" · ");
    const revoked = !!tok.revoked_at;
    const st = li.querySelector(".state");
    st.textContent = revoked ? t("tokens.revoked", { t: dateTime(tok.revoked_at) }) : t("tokens.active");
    st.className = "state " + (revoked ? "off" : "on");
    li.querySelector("button.revoke").hidden = revoked;
  }, t("tokens.empty"), (a, b) => (!!a.revoked_at - !!b.revoked_at) || (b.created_at || "").localeCompare(a.created_at || ""));
  api.get("/api/v1/tokens").then((ts) => { if (live()) list.reset(ts); }).catch((e) => say(errorText(e), true));
}
