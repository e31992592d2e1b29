// Alarms: the active ones first (live from the event stream), then the
// latest cleared; roles with `device` acknowledge an active alarm with a
// note (POST /api/v1/alarms/{id}/ack): it stays until it clears, marked.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, say, showError } from "../ui.js";
import { who } from "./device.js";

export default {
  path: "alarms",
  nav: "nav.alarms",
  allowed: () => true,
  mount(root, ctx) {
    const activeBox = el("ul", { id: "alarms-active", class: "cards" });
    const clearedBox = el("ul", { id: "alarms-cleared", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("alarms.title") }),
      el("section", { class: "panel", "aria-labelledby": "h-alarms-active" }, el("h2", { id: "h-alarms-active", text: t("alarms.active") }), activeBox),
      el("section", { class: "panel", "aria-labelledby": "h-alarms-cleared" }, el("h2", { id: "h-alarms-cleared", text: t("alarms.cleared") }), clearedBox));
    const newest = (x, y) => (y.raised_at || "").localeCompare(x.raised_at || "");
    const fill = (li, a) => {
      const dev = a.device ? a.device : t("alarm.station");
      const link = li.querySelector(".title a");
      if (link) link.textContent = t("alarm." + a.kind) + " — " + dev;
      else li.querySelector(".title").textContent = t("alarm." + a.kind) + " — " + dev;
      li.classList.toggle("emergency", a.severity === "critical" && !a.cleared_at);
      li.querySelector(".meta").textContent = [a.area ? ctx.areaName(a.area) : "", t("alarms.raised", { t: dateTime(a.raised_at) }),
        a.cleared_at ? t("alarms.cleared.at", { t: dateTime(a.cleared_at) }) : ""].filter(Boolean).join(" · ");
      const ack = li.querySelector(".ack");
      ack.textContent = a.ack ? "✓ " + t("alarms.acked", { by: who(a.ack.by), t: dateTime(a.ack.at) }) + (a.ack.note ? ": " + a.ack.note : "") : "";
      ack.hidden = !a.ack;
      li.classList.toggle("acked", !!a.ack);
    };
    const card = (a, withAck) => {
      const title = el("p", { class: "title" }, a.device ? el("a", { href: "#/device/" + encodeURIComponent(a.device) }) : null);
      const li = el("li", { class: "card alarm" }, title, el("p", { class: "meta" }), el("p", { class: "ack on" }));
      if (withAck && ctx.can("device")) li.append(ackForm(a, li, (v) => active.put(v)));
      return li;
    };
    const active = new List(activeBox, (a) => card(a, true), fill, t("alarms.active.empty"), newest);
    const cleared = new List(clearedBox, (a) => card(a, false), fill, t("alarms.cleared.empty"), newest);
    let alive = true;
    const readCleared = () => api.get("/api/v1/alarms?active=false&limit=20").then((l) => { if (alive) cleared.reset(l); })
      .catch((e) => say(errorText(e), true));
    readCleared();
    let again = 0;
    const off = events.on("alarms", (ch) => {
      active.apply(ch);
      // A clear moves the alarm to the cleared list: read it again, once.
      if ((ch.removed || []).length && !again) again = setTimeout(() => { again = 0; readCleared(); }, 500);
    });
    return () => { alive = false; off(); clearTimeout(again); };
  },
};

// ackForm: a note and the acknowledge button, on an active alarm's card.
function ackForm(a, li, put) {
  const fid = "alarm-" + a.id;
  const note = el("input", { id: fid + "-note", name: "note", maxlength: "500", autocomplete: "off" });
  const err = el("p", { class: "action-error", id: fid + "-error", role: "alert", hidden: true });
  const button = el("button", { type: "submit", class: "ack-send", text: t("alarms.ack") });
  const form = el("form", { class: "ack-form" }, field(t("alarms.note"), note), button, err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    button.disabled = true;
    try {
      put(await api.post("/api/v1/alarms/" + encodeURIComponent(a.id) + "/ack", { note: note.value.trim() }));
      note.value = "";
      say(t("alarms.ack.done"));
    } catch (e) {
      showError(form, e, { note: fid + "-note" }, err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
