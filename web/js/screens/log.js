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
        li.querySelector(".title").textContent = dateTime(e.at) + " · " + t("log.event." + e.event) + " · " +
          (c.playlist_id ? "▶ " + c.playlist_id : ctx.mediaName(c.media_id) || "");
        li.querySelector(".meta").textContent = [(e.areas || []).map(ctx.areaName).join(", "),
          (e.devices || []).length ? (e.devices || []).length + " ⋅ " + (e.devices || []).slice(0, 5).join(", ") : "",
          e.by, e.detail].filter(Boolean).join(" · ");
      },
      t("log.empty"), (a, b) => b.at.localeCompare(a.at));
    const add = (entries) => { for (const e of entries || []) list.put(Object.assign({ id: key(e) }, e)); };
    api.get("/api/v1/playlog?limit=50").then(add).catch(() => {});
    return events.on("playlog", (ch) => { if (!ch.reset) add(ch.entries); });
  },
};
