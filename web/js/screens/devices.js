// Receivers: one page at a time from the server (GET /api/v1/devices with
// limit and cursor, X-Total-Count, X-Next-Cursor), filtered by search,
// presence, problem and area; rows patched in place by id from the event
// stream. Usable at 5,000 receivers: the screen reads 50 at a time.

import * as api from "../api.js";
import { treeOrder } from "../areas.js";
import * as events from "../events.js";
import { errorText, t } from "../i18n.js";
import { el, field, List, options } from "../ui.js";

const PROBLEMS = ["offline", "stream_loss", "amp_fault", "temperature", "test_failed", "plain_receivers", "out_of_sync", "mains_lost", "low_battery"];
const PAGE = 50;

export default {
  path: "devices",
  nav: "nav.devices",
  allowed: () => true,
  mount(root, ctx) {
    const q = el("input", { id: "devices-q", name: "q", type: "search", maxlength: "100", autocomplete: "off", placeholder: t("devices.search.hint") });
    const state = options(el("select", { id: "devices-state", name: "state" }),
      [["", t("devices.all")], ["online", t("devices.online")], ["offline", t("devices.offline")], ["unknown", t("devices.unknown")]]);
    const problem = options(el("select", { id: "devices-problem", name: "problem" }),
      [["", t("devices.all")], ["any", t("devices.any")], ...PROBLEMS.map((k) => [k, t("alarm." + k)])]);
    const area = options(el("select", { id: "devices-area", name: "area" }),
      [["", t("devices.area.all")], ...treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l])]);
    const err = el("p", { class: "action-error", id: "devices-error", role: "alert", hidden: true });
    const total = el("p", { id: "devices-total", class: "total", "aria-live": "polite" });
    const box = el("ul", { id: "devices-list", class: "cards" });
    const more = el("button", { type: "button", id: "devices-more", hidden: true, text: t("devices.more") });
    const form = el("form", { class: "card devices-filter", id: "devices-filter", role: "search" },
      field(t("devices.search"), q), field(t("devices.state"), state), field(t("devices.filter"), problem), field(t("devices.area"), area), err);
    root.append(el("h1", { tabindex: "-1", text: t("devices.title") }), form, total, box, more);

    const list = new List(box, (d) => {
      const link = el("a", { href: "#/device/" + encodeURIComponent(d.id) });
      return el("li", { class: "card device" }, el("p", { class: "title" }, link), el("p", { class: "state" }), el("p", { class: "meta" }), el("p", { class: "problems" }));
    }, (li, d) => deviceRow(li, d, ctx), t("devices.empty"), (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

    let next = "";
    let count = 0;
    let seq = 0; // answers to an older query are dropped
    const query = (cursor) => {
      const p = new URLSearchParams({ limit: String(PAGE) });
      if (q.value.trim()) p.set("q", q.value.trim());
      for (const [k, s] of [["state", state], ["problem", problem], ["area", area]]) if (s.value) p.set(k, s.value);
      if (cursor) p.set("cursor", cursor);
      return "/api/v1/devices?" + p;
    };
    const read = async (cursor) => {
      const mine = ++seq;
      err.hidden = true;
      try {
        const res = await fetch(query(cursor), { headers: api.authHeaders("GET"), credentials: "same-origin" });
        const body = await res.json().catch(() => null);
        if (res.status === 401) api.get("/api/v1/me").catch(() => {}); // the shell signs out
        if (!res.ok) throw new api.ApiError(res.status, body);
        if (mine !== seq) return;
        next = res.headers.get("X-Next-Cursor") || "";
        count = Number(res.headers.get("X-Total-Count")) || 0;
        if (cursor) body.forEach((d) => list.put(d));
        else list.reset(body);
        more.hidden = !next;
        total.textContent = t("devices.shown", { n: list.items.size, total: count });
      } catch (e) {
        if (mine !== seq) return;
        err.textContent = errorText(e);
        err.hidden = false;
      }
    };
    // A change of filter reads the first page again; rows that stay keep
    // their nodes (and focus).
    const load = () => read("");
    let typing = 0;
    q.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(load, 300); });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); clearTimeout(typing); load(); });
    for (const s of [state, problem, area]) s.addEventListener("change", load);
    more.addEventListener("click", () => read(next));
    load();

    // What is shown again, at most once a second, when a live change may
    // move receivers in or out of the filtered page.
    let again = 0;
    const soon = () => { if (!again) again = setTimeout(() => { again = 0; load(); }, 1000); };
    const reread = (id) => api.get("/api/v1/devices/" + encodeURIComponent(id)).then((d) => { if (list.items.has(d.id)) list.put(d); }).catch(() => {});
    const alarmDevice = new Map(); // alarm id → device, to place a clear
    let live = false;
    const offs = [
      events.on("devices", (ch) => {
        if (ch.reset && live) return soon(); // a reconnect may have missed changes
        for (const p of ch.changed || []) {
          const d = list.items.get(p.id);
          if (state.value) soon();
          if (!d) continue;
          list.put(Object.assign({}, d, { state: Object.assign({}, d.state, { online: p.online, presence: p.presence }) }));
        }
      }),
      events.on("alarms", (ch) => {
        const touched = new Set();
        for (const a of ch.changed || []) { alarmDevice.set(a.id, a.device); touched.add(a.device); }
        for (const id of ch.removed || []) { touched.add(alarmDevice.get(id)); alarmDevice.delete(id); }
        if (ch.reset) return;
        if (problem.value) return soon();
        for (const id of touched) if (id && list.items.has(id)) reread(id);
      }),
    ];
    live = true;
    return () => { offs.forEach((f) => f()); clearTimeout(typing); clearTimeout(again); seq++; };
  },
};

// deviceRow fills a receiver's card: name, presence, area and what its
// telemetry says, its problems.
export function deviceRow(li, d, ctx) {
  const st = d.state || {};
  const tl = st.telemetry;
  li.querySelector(".title a").textContent = d.name && d.name !== d.id ? d.id + " — " + d.name : d.id;
  const s = li.querySelector(".state");
  const unknown = st.presence === "unknown";
  s.textContent = st.online ? "● " + t("devices.online") : unknown ? "◌ " + t("devices.unknown") : "○ " + t("devices.offline");
  s.className = "state " + (st.online ? "on" : "off");
  li.querySelector(".meta").textContent = [ctx.areaName(d.area_id),
    tl ? t("devices.signal") + " " + tl.rssi + " dBm" : "",
    tl ? t("devices.volume") + " " + (tl.muted ? t("devices.muted") : tl.volume) : "",
    tl ? t("devices.temp") + " " + tl.temp_c.toFixed(1) + " °C" : "",
    tl ? loss(tl.stream) : "",
    // Sync quality (receivers with a timeline): how far out of step it may play, its drift.
    tl && tl.sync && tl.sync.source !== "none" ? t("devices.sync") + " ±" + tl.sync.sync_err_ms.toFixed(1) + " ms, " + tl.sync.drift_ppm.toFixed(1) + " ppm" : "",
    tl && tl.power ? t(tl.power.mains ? "devices.power.mains" : "devices.power.battery", { pct: tl.power.battery_pct, min: tl.power.runtime_min }) : "",
    tl && tl.session ? t("devices.playing") + " " + tl.session : ""].filter(Boolean).join(" · ");
  const p = (d.problems || []).map((k) => t("alarm." + k)).join(", ");
  li.querySelector(".problems").textContent = p;
  li.querySelector(".problems").hidden = !p;
}

export function loss(s) {
  if (!s) return "";
  const total = s.received + s.lost;
  return t("devices.loss") + " " + (total ? ((100 * s.lost) / total).toFixed(1) : "0") + " %";
}
