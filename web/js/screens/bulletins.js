// Bản tin tỉnh: province staff publish a bulletin (thông thường or ưu
// tiên) to their communes and follow each commune live: received →
// scheduled → aired (its receivers' own evidence) | declined | expired,
// and missed for an ưu tiên deadline passed undecided. A commune operator
// finds it in the inbox (a count beside the navigation link), listens,
// and accepts it into play now, a schedule or a playlist slot, or
// declines it with a reason. Both follow the event stream's bulletins
// topic.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const publisher = (ctx) => ctx.role === "admin" || ctx.role === "province";

// The bulletins waiting in the caller's communes, for the navigation's count.
const waiting = new Set();
const badgeEl = el("span", { class: "badge", id: "bulletins-badge", hidden: true });
function paintBadge() {
  badgeEl.textContent = String(waiting.size);
  badgeEl.hidden = waiting.size === 0;
  badgeEl.title = t("bulletins.badge", { n: waiting.size });
}
const isWaiting = (b) => (b.communes || []).some((c) => c.state === "received");
function count(b) {
  if (isWaiting(b)) waiting.add(b.id);
  else waiting.delete(b.id);
}
events.on("bulletins", (ch) => {
  if (ch.reset) waiting.clear();
  for (const b of ch.changed || []) count(b);
  for (const id of ch.removed || []) waiting.delete(id);
  paintBadge();
});

// zonedInstant is the instant the wall time date (YYYY-MM-DD) time
// (HH:MM) shows in zone.
function zonedInstant(date, time, zone) {
  const guess = Date.parse(date + "T" + time + ":00Z");
  const p = {};
  const f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  for (const x of f.formatToParts(new Date(guess))) p[x.type] = x.value;
  const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return new Date(guess - (shown - guess));
}

// stateText says one commune's state in words, with what it did.
function stateText(c) {
  const parts = [t("bulletins.state." + c.state)];
  if (c.state === "scheduled" && c.how) parts.push(t("bulletins.how." + c.how) + (c.at ? " " + dateTime(c.at) : ""));
  if (c.state === "aired") parts.push(t("bulletins.aired", { n: c.receivers || 0, when: dateTime(c.aired_at) }));
  if (c.state === "declined" && c.reason) parts.push(t("bulletins.reason", { reason: c.reason }));
  if (c.missed) parts.push(t("bulletins.missed"));
  return parts.join(" · ");
}

function meta(b) {
  const parts = [t("bulletins.level." + b.level)];
  if (b.category) parts.push(b.category);
  parts.push(t("bulletins.valid", { from: dateTime(b.valid_from), until: dateTime(b.valid_until) }));
  if (b.must_air_by) parts.push(t("bulletins.deadline", { when: dateTime(b.must_air_by) }));
  return parts.join(" · ");
}

// csvLink downloads a bulletin's tracking; a token sign-in fetches it
// with its bearer header (a plain link carries no credentials then).
function csvLink(b) {
  const a = el("a", { class: "button csv", href: "/api/v1/bulletins/" + encodeURIComponent(b.id) + "/tracking?format=csv", download: "ban-tin-" + b.id + ".csv", text: t("bulletins.csv") });
  a.addEventListener("click", async (ev) => {
    if (!api.bearer()) return;
    ev.preventDefault();
    const res = await fetch(a.href, { headers: api.authHeaders("GET") });
    const url = URL.createObjectURL(await res.blob());
    const tmp = el("a", { href: url, download: a.getAttribute("download") });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  return a;
}

const newestFirst = (a, b) => (b.created_at || "").localeCompare(a.created_at || "");

export default {
  path: "bulletins",
  nav: "nav.bulletins",
  allowed: (ctx) => publisher(ctx) || ctx.role === "operator",
  badge: (ctx) => (publisher(ctx) ? null : (paintBadge(), badgeEl)),
  mount(root, ctx) {
    return publisher(ctx) ? mountProvince(root, ctx) : mountInbox(root, ctx);
  },
};

// mountProvince: the publish form and the live tracking of every bulletin.
function mountProvince(root, ctx) {
  const title = el("input", { id: "bulletin-title", name: "title", maxlength: "200", required: true, autocomplete: "off" });
  const category = el("input", { id: "bulletin-category", name: "category", maxlength: "200", autocomplete: "off" });
  const level = options(el("select", { id: "bulletin-level", name: "level" }), [["normal", t("bulletins.level.normal")], ["priority", t("bulletins.level.priority")]]);
  const mediaSel = options(el("select", { id: "bulletin-media", name: "media_id" }),
    [["", t("bulletins.media.text")], ...ctx.media.filter((m) => m.state !== "draft").map((m) => [m.id, m.name])]);
  const text = el("textarea", { id: "bulletin-text", name: "text", rows: "3", maxlength: "5000" });
  const textField = field(t("bulletins.text"), text);
  const valid = options(el("select", { id: "bulletin-valid", name: "valid" }), [6, 24, 72, 168].map((h) => [String(h), t("bulletins.hours", { n: h })]));
  valid.value = "24";
  const deadline = options(el("select", { id: "bulletin-deadline", name: "must_air_by" }), [1, 2, 4, 8, 24].map((h) => [String(h), t("bulletins.within", { n: h })]));
  deadline.value = "4";
  const deadlineField = field(t("bulletins.deadline.label"), deadline);
  const communes = ctx.areas.filter((a) => a.kind === "commune");
  const boxes = communes.map((a) => el("input", { type: "checkbox", id: "bulletin-area-" + a.id, value: a.id }));
  const areasSet = el("fieldset", { id: "bulletin-areas", class: "areas", "aria-describedby": "bulletin-areas-error" },
    el("legend", { text: t("bulletins.areas") }),
    communes.map((a, i) => el("label", { class: "check", for: boxes[i].id }, boxes[i], " " + a.name)),
    el("p", { class: "field-error", id: "bulletin-areas-error", role: "alert", hidden: true }));
  const err = el("p", { class: "action-error", id: "bulletin-error", role: "alert", hidden: true });
  const send = el("button", { type: "submit", id: "bulletin-send", text: t("bulletins.send") });
  const form = el("form", { id: "bulletin-form", class: "card" },
    el("h2", { text: t("bulletins.new") }),
    field(t("bulletins.title.label"), title), field(t("bulletins.category"), category), field(t("bulletins.level"), level),
    field(t("bulletins.media"), mediaSel), textField, field(t("bulletins.valid.label"), valid), deadlineField, areasSet, send, err);
  const paintForm = () => {
    deadlineField.hidden = level.value !== "priority";
    textField.hidden = mediaSel.value !== "";
  };
  level.addEventListener("change", paintForm);
  mediaSel.addEventListener("change", paintForm);
  paintForm();

  const box = el("ul", { id: "bulletins-list", class: "cards" });
  root.append(el("h1", { tabindex: "-1", text: t("bulletins.title") }), el("p", { class: "hint", text: t("bulletins.hint.province") }),
    form, el("h2", { text: t("bulletins.tracking") }), box);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const now = Date.now();
    const body = {
      title: title.value.trim(), category: category.value.trim(), level: level.value,
      valid_until: new Date(now + Number(valid.value) * 3600e3).toISOString(),
      areas: boxes.filter((b) => b.checked).map((b) => b.value),
    };
    if (mediaSel.value) body.media_id = mediaSel.value;
    else body.text = text.value.trim();
    if (level.value === "priority") body.must_air_by = new Date(now + Math.min(Number(deadline.value), Number(valid.value)) * 3600e3).toISOString();
    send.disabled = true;
    try {
      const b = await api.post("/api/v1/bulletins", body);
      list.put(b);
      title.value = "";
      text.value = "";
      for (const x of boxes) x.checked = false;
      say(t("bulletins.published", { title: b.title, n: b.areas.length }));
    } catch (e) {
      showError(form, e, { title: "bulletin-title", category: "bulletin-category", level: "bulletin-level", media_id: "bulletin-media", text: "bulletin-text", areas: "bulletin-areas", must_air_by: "bulletin-deadline", valid_until: "bulletin-valid" }, err);
    } finally {
      send.disabled = false;
    }
  });

  const list = new List(box, (b) => {
    const id = "bl-" + b.id;
    return el("li", { class: "card bulletin", "aria-labelledby": id + "-title" },
      el("p", { class: "title", id: id + "-title" }), el("p", { class: "meta" }), el("p", { class: "totals" }),
      el("ul", { class: "communes", "aria-label": t("bulletins.communes") }), el("p", {}, csvLink(b)));
  }, (li, b) => {
    li.querySelector(".title").textContent = b.title;
    li.querySelector(".meta").textContent = meta(b);
    const tt = b.totals || {};
    li.querySelector(".totals").textContent = t("bulletins.totals", tt) + (tt.missed ? " · " + t("bulletins.totals.missed", tt) : "");
    const ul = li.querySelector("ul.communes");
    for (const c of b.communes || []) {
      let row = ul.querySelector(`li[data-area="${CSS.escape(c.area_id)}"]`);
      if (!row) {
        row = el("li", { "data-area": c.area_id }, el("span", { class: "name", text: ctx.areaName(c.area_id) }), ": ", el("span", { class: "state" }));
        ul.append(row);
      }
      row.className = "commune state-" + c.state + (c.missed && c.state === "received" ? " missed" : "");
      row.querySelector(".state").textContent = stateText(c);
    }
  }, t("bulletins.empty.province"), newestFirst);

  let live = true;
  api.get("/api/v1/bulletins").then((bs) => { if (live) list.reset(bs); }).catch((e) => say(errorText(e), true));
  const off = events.on("bulletins", (ch) => { if (!ch.reset) list.apply(ch); else for (const b of ch.changed || []) list.put(b); });
  return () => { live = false; off(); };
}

// mountInbox: the operator's bulletins, those waiting first, each with
// its decision for every commune of the operator's it is for.
function mountInbox(root, ctx) {
  const box = el("ul", { id: "bulletins-inbox", class: "cards" });
  root.append(el("h1", { tabindex: "-1", text: t("bulletins.inbox") }), el("p", { class: "hint", text: t("bulletins.hint.operator") }), box);
  const zone = (ctx.me.station && ctx.me.station.zone) || "Asia/Ho_Chi_Minh";
  // defaultAt proposes a time to schedule b: in half an hour (five
  // minutes when its deadline is nearer), within its validity, in the
  // station's zone.
  const defaultAt = (b) => {
    const step = 5 * 60e3;
    let at = Math.ceil((Date.now() + 30 * 60e3) / step) * step;
    if (b.must_air_by && Date.parse(b.must_air_by) < at) at = Math.ceil((Date.now() + step) / step) * step;
    if (b.valid_until) at = Math.min(at, Date.parse(b.valid_until) - 60e3);
    const d = new Date(at);
    const hm = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", hour: "2-digit", minute: "2-digit" }).format(d);
    return { date: new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(d), time: hm };
  };

  const decide = async (b, c, verb, body, errBox) => {
    clearErrors(errBox.closest("form"));
    try {
      const got = await api.post("/api/v1/bulletins/" + encodeURIComponent(b.id) + "/" + verb, Object.assign({ area_id: c.area_id }, body));
      list.put(got);
      count(got);
      paintBadge();
      say(t("bulletins.done." + verb, { title: b.title, area: ctx.areaName(c.area_id) }));
      (root.querySelector("#bulletins-inbox form:not([hidden]) select") || root.querySelector("h1")).focus();
    } catch (e) {
      const f = errBox.closest("form");
      const key = f.dataset.key;
      showError(f, e, { at: key + "-date", playlist_id: key + "-playlist", reason: key + "-reason", how: key + "-how" }, errBox);
    }
  };

  // decision is the form of one commune's entry, built once.
  const decision = (b, c) => {
    const key = "bl-" + b.id + "-" + c.area_id;
    const how = options(el("select", { id: key + "-how", name: "how" }), ["schedule", "play_now", "playlist"].map((h) => [h, t("bulletins.how." + h)]));
    const at = defaultAt(b);
    const date = el("input", { id: key + "-date", name: "date", type: "date", value: at.date });
    const time = el("input", { id: key + "-time", name: "time", type: "time", value: at.time });
    const playlist = options(el("select", { id: key + "-playlist", name: "playlist_id" }), ctx.playlists.map((p) => [p.id, p.name]));
    const position = el("input", { id: key + "-position", name: "position", type: "number", min: "1", value: "1", inputmode: "numeric" });
    const when = el("div", { class: "when" }, field(t("bulletins.date"), date), field(t("bulletins.time"), time));
    const slot = el("div", { class: "slot" }, field(t("bulletins.playlist"), playlist), field(t("bulletins.position"), position));
    const accept = el("button", { type: "submit", class: "accept", text: t("bulletins.accept") });
    const reason = el("input", { id: key + "-reason", name: "reason", maxlength: "500", autocomplete: "off" });
    const decline = el("button", { type: "button", class: "decline danger", text: t("bulletins.decline") });
    const err = el("p", { class: "action-error", id: key + "-error", role: "alert", hidden: true });
    const f = el("form", { class: "decision", "data-key": key, "data-area": c.area_id },
      el("p", { class: "for", text: t("bulletins.for", { area: ctx.areaName(c.area_id) }) }),
      field(t("bulletins.how"), how), when, slot, el("div", { class: "buttons" }, accept),
      field(t("bulletins.reason.label"), reason), el("div", { class: "buttons" }, decline), err);
    const paint = () => {
      when.hidden = how.value !== "schedule";
      slot.hidden = how.value !== "playlist";
    };
    how.addEventListener("change", paint);
    paint();
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = { how: how.value };
      if (how.value === "schedule") body.at = zonedInstant(date.value, time.value, zone).toISOString();
      if (how.value === "playlist") Object.assign(body, { playlist_id: playlist.value, position: Math.max(0, Number(position.value) - 1) });
      decide(b, c, "accept", body, err);
    });
    decline.addEventListener("click", () => decide(b, c, "decline", { reason: reason.value.trim() }, err));
    return f;
  };

  const list = new List(box, (b) => {
    const id = "inbox-" + b.id;
    const li = el("li", { class: "card bulletin", "aria-labelledby": id + "-title" },
      el("p", { class: "title", id: id + "-title" }), el("p", { class: "meta" }), el("div", { class: "listen" }), el("ul", { class: "communes" }));
    const src = "/api/v1/media/" + encodeURIComponent(b.media_id) + "/audio";
    fetch(src, { method: "HEAD", credentials: "same-origin", headers: api.authHeaders("HEAD") }).then((res) => {
      if (res.ok) li.querySelector(".listen").append(el("audio", { controls: "", preload: "none", src, "aria-label": t("bulletins.listen", { title: b.title }) }));
    }).catch(() => {});
    return li;
  }, (li, b) => {
    li.querySelector(".title").textContent = b.title;
    li.querySelector(".meta").textContent = meta(b) + (b.text ? " · " + b.text : "");
    li.classList.toggle("waiting", isWaiting(b));
    const ul = li.querySelector("ul.communes");
    for (const c of b.communes || []) {
      let row = ul.querySelector(`li[data-area="${CSS.escape(c.area_id)}"]`);
      if (!row) {
        row = el("li", { "data-area": c.area_id }, el("p", { class: "state" }));
        ul.append(row);
      }
      row.querySelector(".state").textContent = ctx.areaName(c.area_id) + ": " + stateText(c);
      let f = row.querySelector("form.decision");
      if (c.state === "received" && !f) row.append(f = decision(b, c));
      if (f) f.hidden = c.state !== "received";
    }
  }, t("bulletins.empty.operator"), (a, b) => (isWaiting(b) - isWaiting(a)) || newestFirst(a, b));

  let live = true;
  api.get("/api/v1/bulletins").then((bs) => { if (live) list.reset(bs); }).catch((e) => say(errorText(e), true));
  const off = events.on("bulletins", (ch) => { for (const b of ch.changed || []) list.put(b); });
  return () => { live = false; off(); };
}
