// Play now: a programme to an area at once, and what plays now with a
// stop button always in view.

import * as api from "../api.js";
import * as events from "../events.js";
import { t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, options, say, showError } from "../ui.js";
import { sessionList } from "./sessions.js";

export default {
  path: "play",
  nav: "nav.play",
  allowed: (ctx) => ctx.can("session"),
  mount(root, ctx) {
    const mediaSel = options(el("select", { id: "play-media", name: "media_id", required: true }), ctx.media.map((m) => [m.id, m.name]));
    const areaSel = options(el("select", { id: "play-area", name: "area", required: true }), treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l]));
    const prio = el("select", { id: "play-priority", name: "priority" });
    const bands = [["16", t("band.background")], ["64", t("band.normal")], ["160", t("band.priority")]];
    if (ctx.role === "admin" || ctx.role === "province") bands.push(["240", t("band.emergency")]);
    options(prio, bands);
    prio.value = "64";
    const max = el("input", { id: "play-max", name: "max_duration", placeholder: "30m" });
    const err = el("p", { class: "action-error", id: "play-error", role: "alert", hidden: true });
    const form = el("form", { id: "play-form", class: "card" },
      field(t("play.media"), mediaSel), field(t("play.area"), areaSel), field(t("play.priority"), prio),
      field(t("play.max"), max), el("button", { type: "submit", text: t("play.submit") }), err);
    const now = el("ul", { id: "play-sessions", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("play.title") }),
      el("section", { class: "panel", "aria-labelledby": "h-playing" }, el("h2", { id: "h-playing", text: t("play.sessions") }), now),
      form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const body = { media_id: mediaSel.value, targets: { areas: [areaSel.value] }, priority: Number(prio.value) };
      if (max.value.trim()) body.max_duration = max.value.trim();
      if (body.priority >= 224 && !window.confirm(t("play.emergency.confirm", { area: ctx.areaName(areaSel.value) }))) return;
      try {
        const s = await api.post("/api/v1/sessions", body);
        say(t("play.started", { n: (s.devices || []).length }));
      } catch (e) {
        showError(form, e, { media_id: "play-media", targets: "play-area", priority: "play-priority", max_duration: "play-max" }, err);
      }
    });
    const list = sessionList(now, ctx);
    const off = events.on("sessions", (ch) => list.apply(ch));
    return off;
  },
};
