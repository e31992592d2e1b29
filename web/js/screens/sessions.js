// Session cards, shared by the overview and "play now": what plays,
// where, since when, and a stop button for those who may stop it.

import * as api from "../api.js";
import { band, dateTime, errorText, t } from "../i18n.js";
import { el, List, say } from "../ui.js";

export function sessionList(box, ctx) {
  const content = (s) => (s.playlist_id ? "▶ " + ctx.playlistName(s.playlist_id) :
    s.media_id ? ctx.mediaName(s.media_id) : s.origin && s.origin.kind === "live" ? t("live.session") : "");
  const render = (s) => {
    const li = el("li", { class: "card session" },
      el("p", { class: "title" }), el("p", { class: "meta" }), el("p", { class: "action-error", role: "alert", hidden: true }));
    if (ctx.can("session")) {
      const b = el("button", { type: "button", class: "stop", text: t("session.stop") });
      b.addEventListener("click", async () => {
        if (!window.confirm(t("session.stop.confirm"))) return;
        const err = li.querySelector(".action-error");
        try {
          await api.post("/api/v1/sessions/" + encodeURIComponent(s.id) + "/stop");
          say(t("session.stopped"));
        } catch (e) {
          err.textContent = errorText(e);
          err.hidden = false;
        }
      });
      li.append(b);
    }
    return li;
  };
  const update = (li, s) => {
    li.querySelector(".title").textContent = content(s);
    li.classList.toggle("emergency", s.priority >= 224);
    const areas = ((s.targets && s.targets.areas) || []).map(ctx.areaName).join(", ");
    li.querySelector(".meta").textContent = [band(s.priority), areas, t("session.devices", { n: (s.devices || []).length }),
      t("session.since", { t: dateTime(s.started_at) })].filter(Boolean).join(" · ");
  };
  return new List(box, render, update, t("overview.now.empty"),
    (a, b) => (b.started_at || "").localeCompare(a.started_at || ""));
}
