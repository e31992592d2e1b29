// Broadcast log: filters (dates dd/MM/yyyy in the station's zone, area,
// device, event), pages of 50 newest first, and a CSV export of the same
// filters for the monthly report. The first page follows the event
// stream: a new entry reads it again.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, showError } from "../ui.js";

const PAGE = 50;
const EVENTS = ["started", "ended", "stopped", "failed", "preempted", "missed", "resumed", "skipped", "aired"];

export default {
  path: "log",
  nav: "nav.log",
  allowed: () => true,
  mount(root, ctx) {
    const from = el("input", { id: "log-from", name: "from", inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off", maxlength: "10" });
    const to = el("input", { id: "log-to", name: "to", inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off", maxlength: "10" });
    const area = options(el("select", { id: "log-area", name: "area" }),
      [["", t("log.filter.all")]].concat(treeOrder(ctx.areas).map(([id, label, depth]) => [id, "\u00a0".repeat(2 * depth) + label])));
    const device = el("input", { id: "log-device", name: "device", autocomplete: "off", spellcheck: "false", autocapitalize: "none" });
    const event = options(el("select", { id: "log-event", name: "event" }),
      [["", t("log.filter.all")]].concat(EVENTS.map((e) => [e, t("log.event." + e)])));
    const err = el("p", { class: "action-error", id: "log-filter-error", role: "alert", hidden: true });
    const csv = el("a", { id: "log-csv", class: "button", href: "/api/v1/playlog?format=csv", download: "nhat-ky-phat-thanh.csv", text: t("log.csv") });
    const form = el("form", { id: "log-filters", class: "card wide" },
      el("div", { class: "filter-row" }, field(t("log.from"), from), field(t("log.to"), to)),
      el("div", { class: "filter-row" }, field(t("log.area"), area), field(t("log.device"), device), field(t("log.event"), event)),
      el("div", { class: "buttons" }, el("button", { type: "submit", text: t("log.filter") }),
        el("button", { type: "button", class: "secondary", id: "log-clear", text: t("log.filter.clear") }), csv), err);
    const box = el("ul", { id: "log-list", class: "cards" });
    const status = el("p", { id: "log-page", class: "meta", "aria-live": "polite" });
    const prev = el("button", { type: "button", id: "log-prev", text: t("log.prev"), disabled: true });
    const next = el("button", { type: "button", id: "log-next", text: t("log.next"), disabled: true });
    root.append(el("h1", { tabindex: "-1", text: t("log.title") }), form, box,
      el("div", { class: "pager", role: "group", "aria-label": t("log.pages") }, prev, status, next));

    const asked = new Set(); // recordings newer than ctx.media: the library is read again once for each
    const recording = (e) => {
      if (!e.recording_id) return "";
      if (!ctx.media.some((m) => m.id === e.recording_id) && !asked.has(e.recording_id)) {
        asked.add(e.recording_id);
        ctx.reloadMedia().then(() => { if (list.items.has(e.id)) list.put(list.items.get(e.id)); }).catch(() => {});
      }
      return t("live.recording", { name: ctx.mediaName(e.recording_id) });
    };
    const key = (e) => e.at + "|" + e.event + "|" + (e.session_id || "") + "|" + (e.devices || []).join(",");
    const list = new List(box,
      () => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, e) => {
        const c = e.content || {};
        const what = c.playlist_id ? "▶ " + ctx.playlistName(c.playlist_id) : c.media_id ? ctx.mediaName(c.media_id) :
          (e.by || "").startsWith("alert:") ? t("log.alert") : e.origin === "live" ? t("live.session") : "";
        li.querySelector(".title").textContent = [dateTime(e.at), t("log.event." + e.event), what].filter(Boolean).join(" · ");
        const devs = e.devices || [];
        li.querySelector(".meta").textContent = [(e.areas || []).map(ctx.areaName).join(", "),
          devs.length ? t("log.devices", { n: devs.length, list: devs.slice(0, 5).join(", ") + (devs.length > 5 ? "…" : "") }) : "",
          e.by, e.detail, recording(e)].filter(Boolean).join(" · ");
      },
      t("log.empty"), (a, b) => b.at.localeCompare(a.at) || (a.n - b.n));

    let page = 0;
    let query = ""; // the filters as the API takes them
    let seq = 0; // answers older than the last request are dropped

    // filters reads the form: the API's query, or an error naming the field.
    const filters = () => {
      const q = new URLSearchParams();
      for (const [ctl, name] of [[from, "from"], [to, "to"]]) {
        const v = ctl.value.trim();
        if (!v) continue;
        const d = parseDate(v);
        if (!d) throw Object.assign(new Error(v), { code: "bad_date", field: name });
        q.set(name, d);
      }
      if (q.get("from") && q.get("to") && q.get("to") < q.get("from")) throw Object.assign(new Error(""), { code: "date_order", field: "to" });
      if (area.value) q.set("area", area.value);
      if (device.value.trim()) q.set("device", device.value.trim());
      if (event.value) q.set("event", event.value);
      return q.toString();
    };
    const load = async () => {
      const my = ++seq;
      const q = new URLSearchParams(query);
      q.set("limit", String(PAGE + 1)); // one more says whether a next page exists
      if (page) q.set("offset", String(page * PAGE));
      try {
        const got = await api.get("/api/v1/playlog?" + q);
        if (my !== seq) return;
        list.reset(got.slice(0, PAGE).map((e, n) => Object.assign({ id: key(e), n }, e)));
        box.dataset.query = query; // what the lines shown answer, until the next filter
        box.removeAttribute("aria-busy");
        prev.disabled = page === 0;
        next.disabled = got.length <= PAGE;
        status.textContent = t("log.page", { n: page + 1 });
      } catch (e) {
        if (my !== seq) return;
        box.removeAttribute("aria-busy");
        showError(form, e, { from: "log-from", to: "log-to", area: "log-area", device: "log-device", event: "log-event" }, err);
      }
    };
    const apply = (ev) => {
      if (ev) ev.preventDefault();
      clearErrors(form);
      try {
        query = filters();
      } catch (e) {
        showError(form, e, { from: "log-from", to: "log-to" }, err);
        return;
      }
      csv.href = "/api/v1/playlog?" + (query ? query + "&" : "") + "format=csv";
      page = 0;
      // The lines of the old filters must not pass for the new ones.
      box.setAttribute("aria-busy", "true");
      load();
    };
    form.addEventListener("submit", apply);
    form.querySelector("#log-clear").addEventListener("click", () => {
      from.value = to.value = device.value = "";
      area.value = event.value = "";
      apply();
    });
    prev.addEventListener("click", () => { if (page > 0) { page--; load(); } });
    next.addEventListener("click", () => { page++; load(); });
    // A token sign-in has no cookie for a plain link: fetch with its header.
    csv.addEventListener("click", async (ev) => {
      if (!api.bearer()) return;
      ev.preventDefault();
      const res = await fetch(csv.href, { headers: api.authHeaders("GET") });
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: csv.getAttribute("download") });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
    load();
    // New entries: the first page is read again (they may not match the filters).
    let timer = 0;
    const off = events.on("playlog", (ch) => {
      if (page !== 0 || (!ch.reset && !(ch.entries || []).length)) return;
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    });
    return () => { off(); clearTimeout(timer); };
  },
};

// parseDate reads dd/MM/yyyy (or d/M/yyyy) as the API's yyyy-MM-dd, a day
// in the station's zone; "" if it is not a real date.
export function parseDate(s) {
  const m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(s.trim());
  if (!m) return "";
  const [d, mo, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d) return "";
  return y + "-" + String(mo).padStart(2, "0") + "-" + String(d).padStart(2, "0");
}
