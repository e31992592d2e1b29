// The page an e-mail's or SMS's link opens (#/ack/<token>): once the
// person has signed in (the shell asks first and keeps the address), one
// press acknowledges the alarm the notification was about, which stops
// it going on to the next person (POST /api/v1/notify/ack); an alert's
// delivery notification is acknowledged itself.

import * as api from "../api.js";
import { t } from "../i18n.js";
import { clearErrors, el, field, say, showError } from "../ui.js";

export default {
  path: "ack",
  nav: null, // opened from a link, never from the menu
  allowed: () => true,
  mount(root) {
    const token = decodeURIComponent(location.hash.replace(/^#\/?ack\/?/, "").split("?")[0]);
    root.append(el("h1", { tabindex: "-1", text: t("ack.title") }));
    if (!token) {
      root.append(el("p", { class: "card", text: t("ack.missing") }));
      return null;
    }
    const note = el("input", { id: "ack-note", name: "note", maxlength: "400", autocomplete: "off" });
    const err = el("p", { class: "action-error", id: "ack-error", role: "alert", hidden: true });
    const button = el("button", { type: "submit", id: "ack-submit", text: t("ack.submit") });
    const done = el("p", { id: "ack-done", class: "state on", hidden: true });
    const form = el("form", { id: "ack-form", class: "card" }, el("p", { text: t("ack.intro") }), field(t("ack.note"), note), button, err);
    root.append(form, done, el("p", {}, el("a", { href: "#/alarms", text: t("ack.alarms") })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      button.disabled = true;
      try {
        const res = await api.post("/api/v1/notify/ack", { token, note: note.value.trim() });
        const a = res.alarm;
        const what = a ? t("alarm." + a.kind) + " — " + (a.device || t("alarm.station")) : t("ack.alert");
        done.textContent = "✓ " + t("ack.done", { what });
        done.hidden = false;
        form.hidden = true;
        say(t("ack.done", { what }));
      } catch (e) {
        showError(form, e, { note: "ack-note" }, err);
        button.disabled = false;
      }
    });
    return null;
  },
};
