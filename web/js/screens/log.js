// Broadcast log: the newest entries, new ones prepended live.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, t } from "../i18n.js";
import { el, List } from "../ui.js";

export default {
  path: "log",
  nav: "nav.log",
  allowed: () => true,
  mount(root, ctx) {
    const box = el("ul", { id: "log-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("log.title") }), box);
    const key = (e) => e.at + "|" + e.event + "|" + (e.session_id || "");
    const list = new List(box,
      () => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, e) => {
        const c = e.content || {};
        const what = c.playlist_id ? "▶ " + c.playlist_id : c.media_id ? ctx.mediaName(c.media_id) :
          (e.by || "").startsWith("alert:") ? t("log.alert") : "";
        li.querySelector(".title").textContent = [dateTime(e.at), t("log.event." + e.event), what].filter(Boolean).join(" · ");
        const devs = e.devices || [];
        li.querySelector(".meta").textContent = [(e.areas || []).map(ctx.areaName).join(", "),
          devs.length ? t("log.devices", { n: devs.length, list: devs.slice(0, 5).join(", ") + (devs.length > 5 ? "…" : "") }) : "",
          e.by, e.detail].filter(Boolean).join(" · ");
      },
      t("log.empty"), (a, b) => b.at.localeCompare(a.at));
    const add = (entries) => { for (const e of entries || []) list.put(Object.assign({ id: key(e) }, e)); };
    const load = () => api.get("/api/v1/playlog?limit=50").then(add).catch(() => {});
    load();
    // A reset after a reconnect may have missed entries: read again.
    let live = false;
    const off = events.on("playlog", (ch) => { if (!ch.reset) add(ch.entries); else if (live) load(); });
    live = true;
    return off;
  },
};
