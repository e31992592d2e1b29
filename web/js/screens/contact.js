// Where notifications reach me: a signed-in person's own e-mail and
// mobile number (PUT /api/v1/me/contact). A bearer token is no person
// and has none.

import * as api from "../api.js";
import { t } from "../i18n.js";
import { clearErrors, el, field, say, showError } from "../ui.js";

export default {
  path: "contact",
  nav: "nav.contact",
  allowed: (ctx) => !!ctx.me.csrf, // a sign-in session: a person
  mount(root, ctx) {
    const email = el("input", { id: "contact-email", name: "email", type: "email", autocomplete: "email", maxlength: "254", value: ctx.me.email || "" });
    const phone = el("input", { id: "contact-phone", name: "phone", type: "tel", autocomplete: "tel", maxlength: "16", placeholder: "+84912345678", value: ctx.me.phone || "" });
    const err = el("p", { class: "action-error", id: "contact-error", role: "alert", hidden: true });
    const button = el("button", { type: "submit", id: "contact-submit", text: t("contact.submit") });
    const form = el("form", { id: "contact-form", class: "card" }, el("p", { text: t("contact.intro") }),
      field(t("contact.email"), email), field(t("contact.phone"), phone), button, err);
    root.append(el("h1", { tabindex: "-1", text: t("contact.title") }), form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      button.disabled = true;
      try {
        const u = await api.request("PUT", "/api/v1/me/contact", { email: email.value.trim(), phone: phone.value.trim() });
        ctx.me.email = u.email;
        ctx.me.phone = u.phone;
        say(t("contact.saved"));
      } catch (e) {
        showError(form, e, { email: "contact-email", phone: "contact-phone" }, err);
      } finally {
        button.disabled = false;
      }
    });
    return null;
  },
};
