// Overview: what plays where now, the next programmes, receivers online
// and offline, open alarms, and the map of receivers by state (map.js).
// Everything live comes from the event stream; the agenda is read once
// (it changes when schedules do).

import * as api from "../api.js";
import * as events from "../events.js";
import { band, dateTime, t } from "../i18n.js";
import { mountMap } from "../map.js";
import { el, List } from "../ui.js";
import { sessionList } from "./sessions.js";

export default {
  path: "overview",
  nav: "nav.overview",
  allowed: () => true,
  mount(root, ctx) {
    const counts = {
      online: el("strong", { id: "count-online", text: "–" }),
      offline: el("strong", { id: "count-offline", text: "–" }),
      total: el("strong", { id: "count-total", text: "–" }),
    };
    const now = el("ul", { id: "now-playing", class: "cards" });
    const next = el("ul", { id: "next-programmes", class: "cards" });
    const alarms = el("ul", { id: "open-alarms", class: "cards" });
    root.append(
      el("h1", { tabindex: "-1", text: t("overview.title") }),
      el("div", { class: "grid" },
        el("section", { class: "panel", "aria-labelledby": "h-now" }, el("h2", { id: "h-now", text: t("overview.now") }), now),
        el("section", { class: "panel", "aria-labelledby": "h-rx" }, el("h2", { id: "h-rx", text: t("overview.receivers") }),
          el("dl", { class: "counts" },
            el("div", { class: "on" }, el("dt", { text: t("overview.online") }), el("dd", {}, counts.online)),
            el("div", { class: "off" }, el("dt", { text: t("overview.offline") }), el("dd", {}, counts.offline)),
            el("div", {}, el("dt", { text: t("overview.total") }), el("dd", {}, counts.total)))),
        el("section", { class: "panel", "aria-labelledby": "h-next" }, el("h2", { id: "h-next", text: t("overview.next") }), next),
        el("section", { class: "panel", "aria-labelledby": "h-alarms" }, el("h2", { id: "h-alarms", text: t("overview.alarms") }), alarms)));
    const mapPanel = el("section", { class: "panel map-panel", "aria-labelledby": "h-map" }, el("h2", { id: "h-map", text: t("map.title") }));
    root.append(mapPanel);

    const sessions = sessionList(now, ctx);
    const alarmList = new List(alarms,
      () => el("li", { class: "card alarm" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, a) => {
        li.querySelector(".title").textContent = t("alarm." + a.kind) + " — " + (a.device || t("alarm.station"));
        li.classList.toggle("emergency", a.severity === "critical");
        li.querySelector(".meta").textContent = [a.area ? ctx.areaName(a.area) : "", dateTime(a.raised_at)].filter(Boolean).join(" · ");
      },
      t("overview.alarms.empty"), (x, y) => (y.raised_at || "").localeCompare(x.raised_at || ""));

    const offs = [
      events.on("sessions", (ch) => sessions.apply(ch)),
      events.on("alarms", (ch) => alarmList.apply(ch)),
      events.on("devices", (ch) => {
        if (!ch.counts) return;
        counts.online.textContent = ch.counts.online;
        counts.offline.textContent = ch.counts.offline;
        counts.total.textContent = ch.counts.total;
      }),
    ];

    const agenda = new List(next,
      () => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, o) => {
        const c = o.content || {};
        li.querySelector(".title").textContent = dateTime(o.at) + " · " + (c.playlist_id ? "▶ " + c.playlist_id : ctx.mediaName(c.media_id)) +
          (o.replaced ? " " + t("session.replaced") : "");
        li.querySelector(".meta").textContent = [band(o.priority), ((o.targets && o.targets.areas) || []).map(ctx.areaName).join(", ")]
          .filter(Boolean).join(" · ");
      },
      t("overview.next.empty"), (x, y) => x.at.localeCompare(y.at));
    let upcoming = [];
    const showNext = () => {
      const at = new Date().toISOString();
      agenda.reset(upcoming.filter((o) => new Date(o.at) >= new Date(at)).slice(0, 8));
    };
    // The next 24 hours, across midnight.
    const from = new Date();
    const to = new Date(from.getTime() + 24 * 3600 * 1000);
    api.get("/api/v1/agenda?from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString())).then((list) => {
      upcoming = (list || []).map((o) => Object.assign({ id: o.schedule_id + "@" + o.at }, o));
      showNext();
    }).catch(() => {});
    const timer = setInterval(showNext, 60000); // drops programmes that started; no request
    const unmap = mountMap(mapPanel, ctx); // after the counts' listeners: the map's come second
    return () => { offs.forEach((f) => f()); clearInterval(timer); unmap(); };
  },
};
