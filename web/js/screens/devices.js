// Receivers: the list (filtered by problem), presence patched live by id
// from the event stream.

import * as api from "../api.js";
import * as events from "../events.js";
import { errorText, t } from "../i18n.js";
import { el, field, List, options } from "../ui.js";

const PROBLEMS = ["offline", "stream_loss", "amp_fault", "temperature", "test_failed", "plain_receivers", "out_of_sync", "mains_lost", "low_battery"];

export default {
  path: "devices",
  nav: "nav.devices",
  allowed: () => true,
  mount(root, ctx) {
    const filter = el("select", { id: "devices-problem", name: "problem" });
    options(filter, [["", t("devices.all")], ["any", t("devices.any")], ...PROBLEMS.map((k) => [k, t("alarm." + k)])]);
    const err = el("p", { class: "action-error", id: "devices-error", role: "alert", hidden: true });
    const box = el("ul", { id: "devices-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("devices.title") }),
      el("form", { class: "card inline", id: "devices-filter" }, field(t("devices.filter"), filter), err), box);
    const loss = (s) => {
      if (!s) return "";
      const total = s.received + s.lost;
      return t("devices.loss") + " " + (total ? ((100 * s.lost) / total).toFixed(1) : "0") + " %";
    };
    const list = new List(box,
      () => el("li", { class: "card device" }, el("p", { class: "title" }), el("p", { class: "state" }), el("p", { class: "meta" }), el("p", { class: "problems" })),
      (li, d) => {
        const st = d.state || {};
        const tl = st.telemetry;
        li.querySelector(".title").textContent = d.name && d.name !== d.id ? d.id + " — " + d.name : d.id;
        const s = li.querySelector(".state");
        s.textContent = st.online ? "● " + t("devices.online") : "○ " + t("devices.offline");
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
      },
      t("devices.empty"), (a, b) => a.id.localeCompare(b.id));
    const load = async () => {
      err.hidden = true;
      try {
        list.reset(await api.get("/api/v1/devices" + (filter.value ? "?problem=" + encodeURIComponent(filter.value) : "")));
      } catch (e) {
        err.textContent = errorText(e);
        err.hidden = false;
      }
    };
    filter.addEventListener("change", load);
    load();
    // Presence changes patch the receivers shown; alarms change who has a
    // problem, so a filtered list is read again (one filtered page).
    // A reset after a reconnect may have missed changes: read again.
    let live = false;
    const offs = [
      events.on("devices", (ch) => {
        if (ch.reset && live) load();
        for (const p of ch.changed || []) {
          const d = list.items.get(p.id);
          if (!d) continue;
          list.put(Object.assign({}, d, { state: Object.assign({}, d.state, { online: p.online, presence: p.presence }) }));
        }
      }),
      events.on("alarms", (ch) => { if (!ch.reset && filter.value) load(); }),
    ];
    live = true;
    return () => offs.forEach((f) => f());
  },
};
