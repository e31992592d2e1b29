// Lịch phát sóng: the week calendar of the schedules in scope. A week
// view (Monday to Sunday, hours in rows, 24 h, the station's zone) of the
// agenda's occurrences, a day list of cards on a phone, holidays marked
// on their day. A free slot opens the schedule form prefilled with its
// day and hour; an occurrence opens its schedule (edit, delete, or change
// that one date: skip it or replace it). Before saving, the form asks the
// API which occurrences of the next weeks would overlap other schedules
// (POST /api/v1/schedules/conflicts) and lists them; a second press saves.

import * as api from "../api.js";
import { band, duration, errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, options, say, showError } from "../ui.js";

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WORKDAYS = WEEKDAYS.slice(0, 5);
const DEFAULT_ZONE = "Asia/Ho_Chi_Minh";
const MAX_CONFLICTS_SHOWN = 6;

// Civil dates are "YYYY-MM-DD" strings; arithmetic on them is in UTC so
// no zone of the browser's gets in.
const toUTC = (ymd) => { const [y, m, d] = ymd.split("-").map(Number); return new Date(Date.UTC(y, m - 1, d)); };
const fromUTC = (d) => d.toISOString().slice(0, 10);
const addDays = (ymd, n) => { const d = toUTC(ymd); d.setUTCDate(d.getUTCDate() + n); return fromUTC(d); };
const weekday = (ymd) => (toUTC(ymd).getUTCDay() + 6) % 7; // 0 = Monday
const mondayOf = (ymd) => addDays(ymd, -weekday(ymd));
const dmy = (ymd) => ymd ? ymd.slice(8, 10) + "/" + ymd.slice(5, 7) + "/" + ymd.slice(0, 4) : "";
const pad = (n) => String(n).padStart(2, "0");

// ymdOf reads dd/mm/yyyy (or yyyy-mm-dd) typed by a person; anything
// else goes to the API as it is, which names the field it refuses.
function ymdOf(text) {
  const s = text.trim();
  let m = s.match(/^(\d{1,2})\/(\d{1,2})\/(\d{4})$/);
  if (m) return m[3] + "-" + pad(m[2]) + "-" + pad(m[1]);
  return s;
}

// local is a time's civil date, hour and HH:MM in zone.
function local(ts, zone) {
  const p = {};
  const f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  for (const x of f.formatToParts(new Date(ts))) p[x.type] = x.value;
  return { date: p.year + "-" + p.month + "-" + p.day, hour: Number(p.hour), time: p.hour + ":" + p.minute };
}

export default {
  path: "calendar",
  nav: "nav.calendar",
  allowed: (ctx) => ctx.can("session"),
  mount(root, ctx) {
    const zone = (ctx.me.station && ctx.me.station.zone) || DEFAULT_ZONE;
    const today = () => local(Date.now(), zone).date;
    let week = mondayOf(today());
    let schedules = []; // in scope, as GET /api/v1/schedules answers
    let calendars = {}; // name → calendar
    let occs = []; // the week's occurrences
    let live = true;
    let loading = 0;

    const dayName = (ymd) => t("calendar.day." + (weekday(ymd) + 1));
    const dayOn = (ymd) => t("calendar.on." + (weekday(ymd) + 1));
    const scheduleOf = (id) => schedules.find((s) => s.id === id);
    const nameOf = (id) => (scheduleOf(id) || {}).name || id;
    const mediaLen = (id) => (ctx.media.find((m) => m.id === id) || {}).duration_ns || 0;
    const contentLen = (c) => {
      if (c.media_id) return mediaLen(c.media_id);
      const p = ctx.playlists.find((x) => x.id === c.playlist_id);
      return p ? p.items.reduce((s, it) => s + mediaLen(it.media_id) + (it.gap_ns || 0), 0) : 0;
    };
    // Relays (Tiếp sóng) a schedule may play; read with the library.
    let relays = [];
    const relayName = (id) => (relays.find((r) => r.id === id) || { name: id }).name;
    const contentName = (c) => c.relay_id ? t("calendar.content.relay", { name: relayName(c.relay_id) })
      : c.playlist_id ? "▶ " + ctx.playlistName(c.playlist_id) : ctx.mediaName(c.media_id);
    const holidays = (ymd) => Object.values(calendars).filter((c) => (c.dates || []).some((d) => d === ymd || d === ymd.slice(5))).map((c) => c.name);

    // The toolbar: the week, previous, today, next, a new schedule.
    const title = el("h2", { id: "cal-week-title", "aria-live": "polite" });
    const prev = el("button", { type: "button", id: "cal-prev", text: "← " + t("calendar.prev") });
    const todayB = el("button", { type: "button", id: "cal-today", text: t("calendar.today") });
    const next = el("button", { type: "button", id: "cal-next", text: t("calendar.next") + " →" });
    const add = el("button", { type: "button", id: "cal-add", text: "+ " + t("calendar.add") });
    prev.addEventListener("click", () => { week = addDays(week, -7); load(); });
    next.addEventListener("click", () => { week = addDays(week, 7); load(); });
    todayB.addEventListener("click", () => { week = mondayOf(today()); load(); });
    add.addEventListener("click", () => openForm(null, { date: week <= today() && today() < addDays(week, 7) ? today() : week, time: "06:00" }));
    const grid = el("table", { id: "cal-grid", class: "cal-grid" });
    const days = el("ol", { id: "cal-days", class: "cal-days", "aria-label": t("calendar.days") });
    const list = el("ul", { id: "cal-schedules", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("calendar.title") }),
      el("div", { class: "cal-bar" }, title, el("div", { class: "buttons" }, prev, todayB, next, add)),
      el("p", { class: "hint", text: t("calendar.hint") }),
      el("div", { class: "cal-scroll" }, grid), days,
      el("section", { class: "panel", "aria-labelledby": "h-cal-all" }, el("h2", { id: "h-cal-all", text: t("calendar.all") }), list));

    // occButton is one occurrence: its time, name and what it plays.
    const occButton = (o) => {
      const at = local(o.at, zone);
      const end = o.end ? local(o.end, zone).time : local(new Date(o.at).getTime() + Math.max(contentLen(o.content), 60e9) / 1e6, zone).time;
      const name = nameOf(o.schedule_id);
      const shown = at.time + "–" + end + " " + name + (o.replaced ? " · " + t("calendar.replaced") : "");
      const label = shown + ", " + t("calendar.occ.label", { day: dayOn(at.date), date: dmy(at.date), what: contentName(o.content),
        areas: (o.targets.areas || []).map(ctx.areaName).concat(o.targets.devices || []).join(", ") });
      const b = el("button", { type: "button", class: "occ " + (o.priority >= 224 ? "emergency" : o.priority >= 128 ? "priority" : ""),
        "data-schedule": o.schedule_id, "data-name": name, "data-date": at.date, "data-time": at.time, "aria-label": label, title: label },
      el("span", { class: "occ-time", text: at.time + "–" + end }), " ", el("span", { class: "occ-name", text: name }),
      o.replaced ? el("span", { class: "occ-note", text: " · " + t("calendar.replaced") }) : null);
      b.addEventListener("click", () => { const s = scheduleOf(o.schedule_id); if (s) openForm(s, null, { date: at.date, at: o.at, replaced: o.replaced }); });
      return b;
    };

    // draw lays the week out again: a user's choice of week or a change
    // the user just made, never a live update under a focused control.
    const draw = () => {
      const dates = [0, 1, 2, 3, 4, 5, 6].map((i) => addDays(week, i));
      title.textContent = t("calendar.week", { from: dmy(dates[0]), to: dmy(dates[6]) });
      const byCell = new Map();
      const byDay = new Map();
      for (const o of occs) {
        const at = local(o.at, zone);
        const k = at.date + "|" + at.hour;
        byCell.set(k, (byCell.get(k) || []).concat(o));
        byDay.set(at.date, (byDay.get(at.date) || []).concat(o));
      }
      const now = today();
      const head = el("tr", {}, el("th", { scope: "col", class: "cal-hour", text: t("calendar.hour") }),
        ...dates.map((d) => {
          const hs = holidays(d);
          return el("th", { scope: "col", class: d === now ? "today" : "", "aria-current": d === now ? "date" : null, "data-date": d },
            el("span", { class: "cal-dayname", text: dayName(d) }), " ", el("span", { class: "cal-date", text: dmy(d).slice(0, 5) }),
            hs.length ? el("span", { class: "holiday", text: t("calendar.holiday", { name: hs.join(", ") }) }) : null);
        }));
      const rows = [];
      for (let h = 0; h < 24; h++) {
        const hh = pad(h) + ":00";
        rows.push(el("tr", {}, el("th", { scope: "row", class: "cal-hour", text: hh }), ...dates.map((d) => {
          const slot = el("button", { type: "button", class: "slot", tabindex: "-1", "data-date": d, "data-time": hh,
            "aria-label": t("calendar.slot", { time: hh, day: dayOn(d), date: dmy(d) }) });
          slot.addEventListener("click", () => openForm(null, { date: d, time: hh }));
          return el("td", { class: holidays(d).length ? "holiday-day" : "" }, ...(byCell.get(d + "|" + h) || []).map(occButton), slot);
        })));
      }
      grid.replaceChildren(el("caption", { class: "sr-only", text: title.textContent }), el("thead", {}, head), el("tbody", {}, ...rows));
      days.replaceChildren(...dates.map((d) => {
        const hs = holidays(d);
        const addDay = el("button", { type: "button", class: "day-add", "aria-label": t("calendar.add.day") + ", " + t("calendar.add.on", { day: dayOn(d), date: dmy(d) }) },
          el("span", { "aria-hidden": "true", text: "+ " }), t("calendar.add.day"));
        addDay.addEventListener("click", () => openForm(null, { date: d, time: "06:00" }));
        const its = byDay.get(d) || [];
        return el("li", { class: "card" + (d === now ? " today" : ""), "data-date": d },
          el("h3", {}, dayName(d) + " " + dmy(d)),
          hs.length ? el("p", { class: "holiday", text: t("calendar.holiday", { name: hs.join(", ") }) }) : null,
          its.length ? el("ul", { class: "day-occs" }, ...its.map((o) => el("li", {}, occButton(o)))) : el("p", { class: "hint", text: t("calendar.day.empty") }),
          addDay);
      }));
    };

    const drawList = () => {
      list.replaceChildren(...(schedules.length ? schedules.slice().sort((a, b) => a.rule.time.localeCompare(b.rule.time) || a.name.localeCompare(b.name)).map((s) => {
        const b = el("button", { type: "button", class: "edit", text: t("calendar.edit"), "aria-label": t("calendar.edit.named", { name: s.name }) });
        b.addEventListener("click", () => openForm(s, null, null));
        return el("li", { class: "card" + (s.enabled ? "" : " disabled"), "data-id": s.id },
          el("p", { class: "title", text: s.name }),
          el("p", { class: "meta", text: ruleText(s.rule) + " · " + contentName(s.content) + " · " + (s.targets.areas || []).map(ctx.areaName).join(", ") +
            (s.enabled ? "" : " · " + t("calendar.disabled")) }), b);
      }) : [el("li", { class: "empty", text: t("calendar.none") })]));
    };

    const ruleText = (r) => {
      const at = r.time.slice(0, 5) + (r.zone && r.zone !== zone ? " (" + r.zone + ")" : "");
      switch (r.kind) {
        case "once": return t("calendar.rule.once.text", { date: dmy(r.date), time: at });
        case "daily": return t("calendar.rule.daily.text", { time: at });
        case "weekly":
          if ((r.weekdays || []).join() === WORKDAYS.join()) return t("calendar.rule.weekdays.text", { time: at });
          return t("calendar.rule.weekly.text", { days: (r.weekdays || []).map((d) => t("calendar.on." + (WEEKDAYS.indexOf(d) + 1))).join(", "), time: at });
        case "every_n_days": return t("calendar.rule.every_n_days.text", { n: r.interval, time: at });
        case "every_n_weeks": return t("calendar.rule.every_n_weeks.text", { n: r.interval, time: at });
        case "monthly": return t("calendar.rule.monthly.text", { d: r.month_day, time: at });
      }
      return r.kind + " " + at;
    };

    // The week is drawn again after a change made in the dialog: focus
    // goes back to what opened it (its new node), or to the add button.
    let opener = [];
    const openerOf = (n) => {
      if (!n || !n.dataset) return [];
      const d = n.dataset;
      if (n.classList.contains("occ")) return [`button.occ[data-schedule="${d.schedule}"][data-date="${d.date}"]`, `button.slot[data-date="${d.date}"][data-time="${d.time.slice(0, 2)}:00"]`];
      if (n.classList.contains("slot")) return [`button.slot[data-date="${d.date}"][data-time="${d.time}"]`];
      if (n.classList.contains("day-add")) return [`li[data-date="${n.closest("li").dataset.date}"] button.day-add`];
      if (n.classList.contains("edit")) return [`li[data-id="${n.closest("li").dataset.id}"] button.edit`];
      return [];
    };
    const refocus = () => {
      const want = opener;
      if (!want.length || dialog.open) return;
      opener = [];
      if (document.activeElement && document.activeElement !== document.body) return;
      const shown = (sel) => [...root.querySelectorAll(sel)].find((n) => n.getClientRects().length > 0);
      (want.map(shown).find(Boolean) || add).focus();
    };

    const load = async () => {
      const mine = ++loading;
      try {
        const [sc, cals, ag] = await Promise.all([api.get("/api/v1/schedules"), api.get("/api/v1/calendars"), api.get("/api/v1/agenda?week=" + week)]);
        if (!live || mine !== loading) return;
        schedules = sc;
        calendars = cals || {};
        occs = ag;
        draw();
        drawList();
        drawHolidays();
        refocus();
        grid.dataset.week = week; // what the page shows, for whoever waits on it
      } catch (e) {
        if (live) say(errorText(e), true);
      }
    };

    // ---- The schedule form, in a dialog built once per visit. ----
    const f = {};
    const input = (id, attrs) => (f[id] = el("input", Object.assign({ id: "cal-" + id, name: id }, attrs || {})));
    input("name", { maxlength: "200", required: true });
    f.content = el("select", { id: "cal-content", name: "content", required: true });
    // fillContent lists the library as it is now (an upload or a
    // playlist may have come since sign-in).
    const fillContent = () => {
      f.content.replaceChildren(
        el("optgroup", { label: t("calendar.content.media") }, ...ctx.media.map((m) => el("option", { value: "m:" + m.id, text: m.name + " (" + duration(m.duration_ns) + ")" }))),
        ctx.playlists.length ? el("optgroup", { label: t("calendar.content.playlists") }, ...ctx.playlists.map((p) => el("option", { value: "p:" + p.id, text: p.name }))) : "",
        relays.length ? el("optgroup", { label: t("calendar.content.relays") }, ...relays.map((r) => el("option", { value: "r:" + r.id, text: r.name }))) : "");
      options(oneContent, [["", t("calendar.one.same")]].concat(ctx.media.map((m) => ["m:" + m.id, m.name]), ctx.playlists.map((p) => ["p:" + p.id, "▶ " + p.name])));
    };
    const areaBoxes = treeOrder(ctx.areas).map(([id, l, d]) => {
      const cb = el("input", { type: "checkbox", id: "cal-area-" + id, name: "areas", value: id });
      return el("label", { class: "depth-" + Math.min(d, 4), for: "cal-area-" + id }, cb, l);
    });
    const areasSet = el("fieldset", { id: "cal-areas", class: "choices", "aria-describedby": "cal-areas-error" }, el("legend", { text: t("calendar.areas") }), ...areaBoxes,
      el("p", { class: "field-error", id: "cal-areas-error", role: "alert", hidden: true }));
    f.kind = options(el("select", { id: "cal-kind", name: "kind" }), ["once", "daily", "weekdays", "weekly", "every_n_days", "every_n_weeks", "monthly"].map((k) => [k, t("calendar.rule." + k)]));
    input("time", { inputmode: "numeric", placeholder: "06:00", required: true, autocomplete: "off" });
    input("end", { inputmode: "numeric", placeholder: "06:30", autocomplete: "off" });
    input("from", { inputmode: "numeric", placeholder: "dd/mm/yyyy", required: true, autocomplete: "off" });
    input("until", { inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off" });
    input("interval", { type: "number", min: "1", max: "366", inputmode: "numeric" });
    input("monthday", { type: "number", min: "-7", max: "31", inputmode: "numeric" });
    const dayBoxes = WEEKDAYS.map((d, i) => el("label", { for: "cal-wd-" + d }, el("input", { type: "checkbox", id: "cal-wd-" + d, name: "weekdays", value: d }), t("calendar.day." + (i + 1))));
    const daysSet = el("fieldset", { id: "cal-weekdays", class: "choices cal-wd", "aria-describedby": "cal-weekdays-error" }, el("legend", { text: t("calendar.weekdays") }), ...dayBoxes,
      el("p", { class: "field-error", id: "cal-weekdays-error", role: "alert", hidden: true }));
    const calSet = el("fieldset", { id: "cal-skip", class: "choices", "aria-describedby": "cal-skip-error" }, el("legend", { text: t("calendar.skip") }));
    f.priority = el("select", { id: "cal-priority", name: "priority" });
    f.overrun = options(el("select", { id: "cal-overrun", name: "overrun" }), [["interrupt", t("calendar.overrun.interrupt")], ["wait", t("calendar.overrun.wait")]]);
    input("maxwait", { type: "number", min: "1", max: "1440", inputmode: "numeric" });
    f.enabled = el("input", { type: "checkbox", id: "cal-enabled", name: "enabled" });
    const blocks = {
      end: field(t("calendar.end"), f.end), until: field(t("calendar.until"), f.until), interval: field(t("calendar.interval"), f.interval),
      monthday: field(t("calendar.monthday"), f.monthday), maxwait: field(t("calendar.maxwait"), f.maxwait),
    };
    const fromField = field(t("calendar.from"), f.from);
    const conflictsBox = el("div", { id: "cal-conflicts", class: "cal-conflicts", role: "alert", hidden: true });
    const err = el("p", { class: "action-error", id: "cal-form-error", role: "alert", hidden: true });
    const save = el("button", { type: "submit", id: "cal-save", text: t("calendar.save") });
    const cancel = el("button", { type: "button", id: "cal-cancel", class: "secondary", text: t("calendar.cancel") });
    const del = el("button", { type: "button", id: "cal-delete", class: "danger", text: t("calendar.delete") });
    const formTitle = el("h2", { id: "cal-dialog-title" });
    // One date of an existing schedule: skip it, or play something else
    // or at another time that day.
    const oneTitle = el("h3", { id: "cal-one-title" });
    const oneContent = el("select", { id: "cal-one-content", name: "one_content" });
    const oneTime = el("input", { id: "cal-one-time", name: "one_time", inputmode: "numeric", placeholder: "06:00", autocomplete: "off" });
    const oneSkip = el("button", { type: "button", id: "cal-one-skip", class: "danger", text: t("calendar.one.skip") });
    const oneReplace = el("button", { type: "button", id: "cal-one-replace", text: t("calendar.one.replace") });
    const oneRestore = el("button", { type: "button", id: "cal-one-restore", text: t("calendar.one.restore") });
    const oneErr = el("p", { class: "action-error", id: "cal-one-error", role: "alert", hidden: true });
    const one = el("section", { id: "cal-one", class: "cal-one", "aria-labelledby": "cal-one-title" }, oneTitle, el("p", { class: "hint", text: t("calendar.one.hint") }),
      field(t("calendar.one.content"), oneContent), field(t("calendar.one.time"), oneTime), el("div", { class: "buttons" }, oneReplace, oneSkip, oneRestore), oneErr);
    const form = el("form", { id: "cal-form", class: "cal-form", novalidate: true },
      formTitle, field(t("calendar.name"), f.name), field(t("calendar.content"), f.content), areasSet,
      field(t("calendar.kind"), f.kind), daysSet, blocks.interval, blocks.monthday,
      el("div", { class: "cal-row" }, field(t("calendar.time"), f.time), blocks.end),
      el("div", { class: "cal-row" }, fromField, blocks.until), calSet,
      el("div", { class: "cal-row" }, field(t("calendar.priority"), f.priority), field(t("calendar.overrun"), f.overrun)), blocks.maxwait,
      el("label", { class: "check", for: "cal-enabled" }, f.enabled, t("calendar.enabled")),
      conflictsBox, el("div", { class: "buttons" }, save, cancel, del), err, one);
    const dialog = el("dialog", { id: "cal-dialog", class: "cal-dialog", "aria-labelledby": "cal-dialog-title" }, form);
    root.append(dialog);
    cancel.addEventListener("click", () => dialog.close());

    let editing = null; // the schedule being changed, null for a new one
    let occurrence = null; // {date (in the rule's zone), at, replaced} when opened from one
    let warned = ""; // the body whose conflicts were shown: a second save stores it
    let newID = ""; // the id a new schedule will have, one per opening of the form

    const showKind = () => {
      const k = f.kind.value;
      daysSet.hidden = k !== "weekly" && k !== "every_n_weeks";
      blocks.interval.hidden = k !== "every_n_days" && k !== "every_n_weeks";
      blocks.monthday.hidden = k !== "monthly";
      blocks.until.hidden = k === "once";
      fromField.querySelector("label").textContent = k === "once" ? t("calendar.on.date") : t("calendar.from");
    };
    f.kind.addEventListener("change", showKind);
    const showOverrun = () => { blocks.maxwait.hidden = f.overrun.value !== "wait"; };
    f.overrun.addEventListener("change", showOverrun);
    form.addEventListener("input", () => { if (warned) { warned = ""; conflictsBox.hidden = true; save.textContent = t("calendar.save"); } });
    form.addEventListener("change", () => { if (warned) { warned = ""; conflictsBox.hidden = true; save.textContent = t("calendar.save"); } });

    const bands = () => {
      const b = [["16", t("band.background")], ["64", t("band.normal")], ["160", t("band.priority")]];
      if (ctx.role === "admin" || ctx.role === "province") b.push(["240", t("band.emergency")]);
      return b;
    };

    // openForm fills the dialog: a new schedule at slot {date, time}, or
    // schedule s (opened from an occurrence on one date, or from the list).
    function openForm(s, slot, occ) {
      editing = s || null;
      opener = openerOf(document.activeElement);
      newID = "lich-" + Date.now().toString(36) + Math.floor(Math.random() * 1296).toString(36);
      occurrence = s && occ ? occ : null;
      warned = "";
      clearErrors(form);
      conflictsBox.hidden = true;
      save.textContent = t("calendar.save");
      const r = s ? s.rule : { kind: "weekdays", date: slot.date, time: slot.time };
      formTitle.textContent = s ? t("calendar.form.edit", { name: s.name }) : t("calendar.form.new", { day: dayOn(slot.date), date: dmy(slot.date), time: slot.time });
      f.name.value = s ? s.name : "";
      fillContent();
      const c = s ? s.content : {};
      f.content.value = c.relay_id ? "r:" + c.relay_id : c.playlist_id ? "p:" + c.playlist_id : c.media_id ? "m:" + c.media_id : (ctx.media[0] ? "m:" + ctx.media[0].id : "");
      const areas = s ? s.targets.areas || [] : ctx.area ? [ctx.area] : [];
      for (const lb of areaBoxes) { const cb = lb.querySelector("input"); cb.checked = areas.includes(cb.value); }
      let kind = r.kind;
      if (kind === "weekly" && (r.weekdays || []).join() === WORKDAYS.join()) kind = "weekdays";
      f.kind.value = kind;
      const wd = kind === "weekdays" ? WORKDAYS : r.weekdays || [WEEKDAYS[weekday(r.date || slot.date)]];
      for (const lb of dayBoxes) { const cb = lb.querySelector("input"); cb.checked = wd.includes(cb.value); }
      f.time.value = (r.time || "").slice(0, 5);
      f.end.value = (r.end || "").slice(0, 5);
      f.from.value = dmy(r.date || "");
      f.until.value = dmy(r.until || "");
      f.interval.value = String(r.interval || 2);
      f.monthday.value = String(r.month_day || Number((r.date || slot.date).slice(8)));
      const skipCals = s ? (s.exceptions && s.exceptions.calendars) || [] : [];
      calSet.replaceChildren(el("legend", { text: t("calendar.skip") }), ...Object.keys(calendars).sort().map((name, i) =>
        el("label", { for: "cal-skip-" + i }, el("input", { type: "checkbox", id: "cal-skip-" + i, name: "calendars", value: name, checked: skipCals.includes(name) }),
          name + " (" + t("calendar.dates.count", { n: (calendars[name].dates || []).length }) + ")")),
      el("p", { class: "field-error", id: "cal-skip-error", role: "alert", hidden: true }));
      calSet.hidden = Object.keys(calendars).length === 0;
      const b = bands();
      if (s && !b.some(([v]) => Number(v) === s.priority)) b.push([String(s.priority), band(s.priority) + " (" + s.priority + ")"]);
      options(f.priority, b);
      f.priority.value = String(s ? s.priority : 64);
      f.overrun.value = s && s.overrun === "wait" ? "wait" : "interrupt";
      f.maxwait.value = String(s && s.max_wait_ns ? Math.round(s.max_wait_ns / 60e9) : 10);
      f.enabled.checked = s ? s.enabled : true;
      del.hidden = !s;
      one.hidden = !occurrence;
      if (occurrence) {
        oneTitle.textContent = t("calendar.one.title", { day: dayOn(occurrence.date), date: dmy(occurrence.date) });
        const rep = ((s.exceptions || {}).replace || {})[occurrence.date];
        oneContent.value = rep ? (rep.playlist_id ? "p:" + rep.playlist_id : rep.media_id ? "m:" + rep.media_id : "") : "";
        oneTime.value = rep && rep.time ? rep.time.slice(0, 5) : "";
        oneRestore.hidden = !rep;
      }
      showKind();
      showOverrun();
      if (!dialog.open) dialog.showModal();
      f.name.focus();
    }

    const contentOf = (v) => v.startsWith("r:") ? { relay_id: v.slice(2) } : v.startsWith("p:") ? { playlist_id: v.slice(2) } : v.startsWith("m:") ? { media_id: v.slice(2) } : {};

    // body is the schedule the form describes, as the API takes it.
    const body = () => {
      const k = f.kind.value;
      const rule = { kind: k === "weekdays" ? "weekly" : k, time: f.time.value.trim(), date: ymdOf(f.from.value) };
      if (editing && editing.rule.zone) rule.zone = editing.rule.zone;
      if (f.end.value.trim()) rule.end = f.end.value.trim();
      if (k !== "once" && f.until.value.trim()) rule.until = ymdOf(f.until.value);
      if (k === "weekdays") rule.weekdays = WORKDAYS.slice();
      if (k === "weekly" || k === "every_n_weeks") rule.weekdays = dayBoxes.map((lb) => lb.querySelector("input")).filter((cb) => cb.checked).map((cb) => cb.value);
      if (k === "every_n_days" || k === "every_n_weeks") rule.interval = Number(f.interval.value) || 0;
      if (k === "monthly") rule.month_day = Number(f.monthday.value) || 0;
      const old = (editing && editing.exceptions) || {};
      const exceptions = {};
      if (old.skip && old.skip.length) exceptions.skip = old.skip;
      if (old.replace && Object.keys(old.replace).length) exceptions.replace = old.replace;
      const cals = [...calSet.querySelectorAll("input:checked")].map((cb) => cb.value);
      if (cals.length) exceptions.calendars = cals;
      const b = {
        id: editing ? editing.id : newID,
        name: f.name.value.trim(), rule, exceptions, content: contentOf(f.content.value),
        targets: { areas: areaBoxes.map((lb) => lb.querySelector("input")).filter((cb) => cb.checked).map((cb) => cb.value) },
        priority: Number(f.priority.value), overrun: f.overrun.value, enabled: f.enabled.checked,
      };
      if (b.overrun === "wait") b.max_wait = (Number(f.maxwait.value) || 10) + "m";
      return b;
    };
    const fields = {
      name: "cal-name", content: "cal-content", "content.media_id": "cal-content", "content.playlist_id": "cal-content", "content.relay_id": "cal-content", targets: "cal-areas",
      "rule.kind": "cal-kind", "rule.time": "cal-time", "rule.end": "cal-end", "rule.date": "cal-from", "rule.until": "cal-until",
      "rule.weekdays": "cal-weekdays", "rule.interval": "cal-interval", "rule.month_day": "cal-monthday", "exceptions.calendars": "cal-skip",
      priority: "cal-priority", overrun: "cal-overrun", max_wait: "cal-maxwait",
    };

    const showConflicts = (found) => {
      const shown = found.slice(0, MAX_CONFLICTS_SHOWN).map((c) => {
        const at = local(c.other_at, zone);
        return el("li", { text: t("calendar.conflict", { name: c.name || t("calendar.conflict.other"), time: at.time, day: dayOn(at.date), date: dmy(at.date) }) });
      });
      if (found.length > MAX_CONFLICTS_SHOWN) shown.push(el("li", { text: t("calendar.conflict.more", { n: found.length - MAX_CONFLICTS_SHOWN }) }));
      conflictsBox.replaceChildren(el("p", { class: "title", text: t("calendar.conflicts", { n: found.length }) }), el("ul", {}, ...shown),
        el("p", { class: "hint", text: t("calendar.conflicts.hint") }));
      conflictsBox.hidden = false;
      save.textContent = t("calendar.save.anyway");
      conflictsBox.scrollIntoView({ block: "nearest" });
    };

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const b = body();
      const key = JSON.stringify(b);
      save.disabled = true;
      try {
        if (warned !== key && b.enabled) { // a disabled one plays nothing to overlap
          const found = (await api.post("/api/v1/schedules/conflicts", b)).conflicts;
          if (found.length) {
            warned = key;
            showConflicts(found);
            return;
          }
        }
        const saved = editing ? await api.request("PUT", "/api/v1/schedules/" + encodeURIComponent(b.id), b) : await api.post("/api/v1/schedules", b);
        // 202: held as a draft until an approver of the area approves it.
        if (saved.kind === "schedule" && saved.state) say(t("drafts.sent", { name: saved.name }));
        else say(t(editing ? "calendar.saved.edit" : "calendar.saved.new", { name: saved.name }));
        dialog.close();
        load();
      } catch (e) {
        showError(form, e, fields, err);
      } finally {
        save.disabled = false;
      }
    });

    del.addEventListener("click", async () => {
      if (!editing || !window.confirm(t("calendar.delete.confirm", { name: editing.name }))) return;
      try {
        await api.request("DELETE", "/api/v1/schedules/" + encodeURIComponent(editing.id));
        say(t("calendar.deleted", { name: editing.name }));
        dialog.close();
        load();
      } catch (e) {
        showError(form, e, {}, err);
      }
    });

    // changeOne stores the schedule as it is with its exceptions for the
    // occurrence's date changed by fn.
    const changeOne = async (fn, done) => {
      clearErrors(one);
      const s = editing;
      const exc = JSON.parse(JSON.stringify(s.exceptions || {}));
      exc.skip = exc.skip || [];
      exc.replace = exc.replace || {};
      fn(exc, occurrence.date);
      if (!exc.skip.length) delete exc.skip;
      if (!Object.keys(exc.replace).length) delete exc.replace;
      const b = { name: s.name, rule: s.rule, exceptions: exc, content: s.content, targets: s.targets, priority: s.priority, overrun: s.overrun || "interrupt", enabled: s.enabled };
      if (s.max_wait) b.max_wait = s.max_wait;
      try {
        await api.request("PUT", "/api/v1/schedules/" + encodeURIComponent(s.id), b);
        say(done);
        dialog.close();
        load();
      } catch (e) {
        showError(one, e, { "exceptions.replace": "cal-one-time" }, oneErr);
      }
    };
    oneSkip.addEventListener("click", () => changeOne((exc, d) => { delete exc.replace[d]; if (!exc.skip.includes(d)) exc.skip.push(d); },
      t("calendar.one.skipped", { date: dmy(occurrence.date) })));
    oneReplace.addEventListener("click", () => changeOne((exc, d) => {
      const rep = contentOf(oneContent.value);
      if (oneTime.value.trim()) rep.time = oneTime.value.trim();
      exc.replace[d] = rep;
      exc.skip = exc.skip.filter((x) => x !== d);
    }, t("calendar.one.replaced", { date: dmy(occurrence.date) })));
    oneRestore.addEventListener("click", () => changeOne((exc, d) => { delete exc.replace[d]; }, t("calendar.one.restored", { date: dmy(occurrence.date) })));

    // ---- Holiday calendars, for those who keep an area's (permission area). ----
    const holidaysBox = el("ul", { id: "cal-holidays", class: "cards" });
    let drawHolidays = () => {};
    if (ctx.can("area")) {
      const newName = el("input", { id: "cal-hol-name", name: "calendar", maxlength: "100", required: true });
      const newDate = el("input", { id: "cal-hol-date", name: "date", inputmode: "numeric", placeholder: "dd/mm/yyyy", required: true, autocomplete: "off" });
      const newErr = el("p", { class: "action-error", id: "cal-hol-error", role: "alert", hidden: true });
      const newForm = el("form", { id: "cal-hol-form", class: "add-row" }, field(t("calendar.hol.name"), newName), field(t("calendar.hol.date"), newDate),
        el("button", { type: "submit", text: t("calendar.hol.create") }), newErr);
      const put = async (name, dates, errBox, form) => {
        clearErrors(form);
        try {
          await api.request("PUT", "/api/v1/calendars/" + encodeURIComponent(name), { dates });
          say(t("calendar.hol.saved", { name }));
          await load();
          return true;
        } catch (e) {
          showError(form, e, { dates: form.querySelector("input[name=date]") ? form.querySelector("input[name=date]").id : "" }, errBox);
          return false;
        }
      };
      newForm.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        if (await put(newName.value.trim(), [ymdOf(newDate.value)], newErr, newForm)) newForm.reset();
      });
      root.append(el("section", { class: "panel", "aria-labelledby": "h-cal-hol" }, el("h2", { id: "h-cal-hol", text: t("calendar.hol.title") }),
        el("p", { class: "hint", text: t("calendar.hol.hint") }), holidaysBox, newForm));
      drawHolidays = () => {
        const keep = document.activeElement && holidaysBox.contains(document.activeElement) ? document.activeElement.id : "";
        holidaysBox.replaceChildren(...Object.values(calendars).filter((c) => c.area_id || (ctx.role === "admin" && !ctx.area)).sort((a, b) => a.name.localeCompare(b.name)).map((c, i) => {
          const id = "cal-hol-" + i;
          const dates = (c.dates || []).slice().sort();
          const addIn = el("input", { id: id + "-date", name: "date", inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off", "aria-label": t("calendar.hol.add.named", { name: c.name }) });
          const addErr = el("p", { class: "action-error", role: "alert", hidden: true });
          const addB = el("button", { type: "submit", text: t("calendar.hol.add") });
          const f2 = el("form", { class: "add-row" }, el("div", { class: "field" }, addIn, el("p", { class: "field-error", id: id + "-date-error", role: "alert", hidden: true })), addB, addErr);
          f2.addEventListener("submit", (ev) => { ev.preventDefault(); put(c.name, dates.concat(ymdOf(addIn.value)), addErr, f2); });
          return el("li", { class: "card", "data-id": c.name }, el("p", { class: "title", text: c.name }),
            el("ul", { class: "hol-dates" }, ...dates.map((d) => {
              const rm = el("button", { type: "button", class: "remove danger", text: "✕", "aria-label": t("calendar.hol.remove", { date: d.length === 5 ? d.slice(3) + "/" + d.slice(0, 2) : dmy(d), name: c.name }) });
              rm.addEventListener("click", () => put(c.name, dates.filter((x) => x !== d), addErr, f2));
              return el("li", { "data-date": d }, el("span", { text: d.length === 5 ? d.slice(3) + "/" + d.slice(0, 2) + " " + t("calendar.hol.yearly") : dmy(d) }), rm);
            })), f2);
        }));
        if (keep && document.getElementById(keep)) document.getElementById(keep).focus();
      };
    }

    // The library and playlists may have changed since sign-in.
    Promise.all([ctx.reloadMedia(), api.get("/api/v1/playlists").then((p) => { ctx.playlists = p; }),
      api.get("/api/v1/relays").then((r) => { relays = r || []; }).catch(() => {})]).catch(() => {}).then(() => { if (live) load(); });
    return () => { live = false; if (dialog.open) dialog.close(); };
  },
};
