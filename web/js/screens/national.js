// Cảnh báo toàn quốc (a national controller, -national): the provinces it
// pushes alerts to, the form that sends one to all or some of them, and
// the alerts sent, each with every province's push state (chờ gửi, đã
// nhận, không liên lạc được, từ chối, hết hạn) and its delivery report,
// read again every few seconds. Cards are patched in place by id, never
// rebuilt under focus.

import * as api from "../api.js";
import { dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const POLL_MS = 3000;
const EXPIRIES = [30, 60, 180, 360, 720, 1440]; // minutes

export default {
  path: "national",
  nav: "national.nav",
  allowed: (ctx) => Boolean(ctx.me.station && ctx.me.station.national) && ctx.can("read"),
  mount(root, ctx) {
    const stationWide = !ctx.area;
    const canSend = stationWide && ctx.can("session");
    const canManage = stationWide && ctx.role === "admin";

    // The identity provinces bind: sender and certificate fingerprint.
    const ident = el("p", { id: "national-identity", class: "meta ident" });

    // Send form.
    const title = el("input", { id: "national-title", name: "title", maxlength: "200", required: true, autocomplete: "off" });
    const level = options(el("select", { id: "national-level", name: "level" }),
      [["uu_tien", t("alerts.level.uu_tien")], ["khan_cap", t("alerts.level.khan_cap")]]);
    const text = el("textarea", { id: "national-text", name: "text", rows: "3", required: true, maxlength: "2000" });
    const expiry = options(el("select", { id: "national-expiry", name: "expires_at" }),
      EXPIRIES.map((m) => [String(m), m < 60 ? t("national.minutes", { n: m }) : t("national.hours", { n: m / 60 })]));
    expiry.value = "60";
    const targets = el("fieldset", { id: "national-targets", class: "national-targets" },
      el("legend", { text: t("national.targets") }),
      el("p", { class: "hint", text: t("national.targets.hint") }));
    const sendErr = el("p", { class: "action-error", id: "national-send-error", role: "alert", hidden: true });
    const send = el("button", { type: "submit", id: "national-send", class: "danger", text: t("national.send") });
    const sendForm = el("form", { id: "national-form", class: "card wide", "aria-labelledby": "h-national-send", hidden: !canSend },
      el("h2", { id: "h-national-send", text: t("national.new") }),
      field(t("national.title.field"), title), field(t("alerts.level"), level), field(t("national.text"), text),
      field(t("national.expiry"), expiry), targets, el("div", { class: "buttons" }, send), sendErr);

    // Province form (admins).
    const pid = el("input", { id: "province-id", name: "id", maxlength: "64", required: true, autocomplete: "off", spellcheck: "false" });
    const pname = el("input", { id: "province-name", name: "name", maxlength: "200", required: true, autocomplete: "off" });
    const pcode = el("input", { id: "province-code", name: "code", maxlength: "16", required: true, autocomplete: "off", inputmode: "numeric" });
    const purl = el("input", { id: "province-url", name: "url", type: "url", required: true, autocomplete: "off", spellcheck: "false", placeholder: "https://" });
    const pca = el("textarea", { id: "province-ca", name: "ca_pem", rows: "4", required: true, spellcheck: "false" });
    const provErr = el("p", { class: "action-error", id: "province-form-error", role: "alert", hidden: true });
    const provForm = el("form", { id: "province-form", class: "card wide", "aria-labelledby": "h-province-form", hidden: !canManage },
      el("h2", { id: "h-province-form", text: t("national.province.new") }),
      el("div", { class: "national-pair" }, field(t("national.province.id"), pid), field(t("national.province.code"), pcode)),
      field(t("national.province.name"), pname), field(t("national.province.url"), purl),
      field(t("national.province.ca"), pca), el("p", { class: "hint", text: t("national.province.ca.hint") }),
      el("div", { class: "buttons" }, el("button", { type: "submit", id: "province-save", text: t("national.province.save") })), provErr);

    const provBox = el("ul", { id: "provinces-list", class: "cards" });
    const alertBox = el("ul", { id: "national-alerts", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("national.title") }), ident, sendForm,
      el("section", { class: "panel", "aria-labelledby": "h-national-alerts" },
        el("h2", { id: "h-national-alerts", text: t("national.sent") }), alertBox),
      el("section", { class: "panel", "aria-labelledby": "h-provinces" },
        el("h2", { id: "h-provinces", text: t("national.provinces") }), provBox), provForm);

    // Provinces: cards, and a checkbox each in the send form.
    const provinces = new List(provBox, (p) => {
      const e = el("p", { class: "action-error", role: "alert", hidden: true });
      const del = el("button", { type: "button", class: "delete danger", text: t("national.province.delete"), hidden: !canManage });
      del.addEventListener("click", () => removeProvince(provinces.items.get(p.id), e));
      return el("li", { class: "card province" }, el("p", { class: "title" }), el("p", { class: "meta where" }),
        el("div", { class: "buttons" }, del), e);
    }, (li, p) => {
      li.querySelector(".title").textContent = p.name;
      li.querySelector(".where").textContent = t("national.province.meta", { code: p.code, url: p.url });
      li.querySelector("button.delete").setAttribute("aria-label", t("national.province.delete.named", { name: p.name }));
      let box = targets.querySelector(`input[value="${CSS.escape(p.id)}"]`);
      if (!box) {
        box = el("input", { type: "checkbox", id: "national-target-" + p.id, name: "provinces", value: p.id });
        targets.append(el("label", { class: "check", for: box.id }, box, el("span")));
      }
      box.nextElementSibling.textContent = p.name;
    }, t("national.provinces.empty"), (a, b) => a.name.localeCompare(b.name));
    const dropTarget = (id) => {
      const box = targets.querySelector(`input[value="${CSS.escape(id)}"]`);
      if (box) box.parentElement.remove();
    };

    // Alerts: one card each, a row per province inside, patched in place.
    const stateText = (p) => {
      const s = t("national.state." + p.state);
      const tot = p.totals || {};
      if (p.state === "delivered") {
        return s + " · " + t("national.report", { finished: tot.finished || 0, receivers: tot.receivers || 0, failed: tot.failed || 0 });
      }
      if (p.state === "unreachable") return s + " · " + t("national.attempts", { n: p.attempts });
      return s;
    };
    const alerts = new List(alertBox, (a) => {
      const e = el("p", { class: "action-error", role: "alert", hidden: true });
      const stop = el("button", { type: "button", class: "cancel danger", text: t("national.cancel"), hidden: true });
      stop.addEventListener("click", () => cancelAlert(alerts.items.get(a.id), e));
      return el("li", { class: "card national-alert" },
        el("p", { class: "title" }), el("p", { class: "meta when" }), el("p", { class: "total", "aria-live": "polite" }),
        el("p", { class: "cancelled", hidden: true }), el("ul", { class: "pushes" }), el("div", { class: "buttons" }, stop), e);
    },
    (li, a) => {
      li.querySelector(".title").textContent = t("alerts.level." + a.level) + ": " + a.title;
      li.querySelector(".when").textContent = t("national.when", { at: dateTime(a.created_at), until: dateTime(a.expires_at) }) +
        (a.source ? " · " + t("national.source", { source: a.source }) : "");
      const tot = a.totals || {};
      const total = t("national.total", { finished: tot.finished || 0, receivers: tot.receivers || 0,
        delivered: a.provinces.filter((p) => p.state === "delivered").length, provinces: a.provinces.length });
      const tl = li.querySelector(".total");
      if (tl.textContent !== total) tl.textContent = total;
      li.classList.toggle("emergency", a.level === "khan_cap");
      const cancelled = Boolean(a.cancelled_at);
      const cl = li.querySelector(".cancelled");
      cl.hidden = !cancelled;
      cl.textContent = cancelled ? t("national.cancelled", { at: dateTime(a.cancelled_at), reason: a.cancel_reason || "" }) : "";
      const stop = li.querySelector("button.cancel");
      stop.hidden = !canSend || cancelled || new Date(a.expires_at) <= new Date();
      stop.setAttribute("aria-label", t("national.cancel.named", { title: a.title }));
      const ul = li.querySelector(".pushes");
      for (const p of a.provinces) {
        let row = ul.querySelector(`li[data-province="${CSS.escape(p.province)}"]`);
        if (!row) {
          row = el("li", { class: "push" }, el("span", { class: "name" }), el("span", { class: "state" }), el("span", { class: "reason" }),
            el("ul", { class: "communes" }));
          row.dataset.province = p.province;
          ul.append(row);
        }
        row.className = "push " + p.state;
        row.querySelector(".name").textContent = p.name;
        let st = stateText(p);
        if (p.cancel_state) st += " · " + t("national.cancel." + p.cancel_state);
        if (row.querySelector(".state").textContent !== st) row.querySelector(".state").textContent = st;
        row.querySelector(".reason").textContent = [p.reason, p.cancel_reason].filter(Boolean).join(" · ");
        const cl = row.querySelector(".communes");
        for (const cm of p.communes || []) {
          let line = cl.querySelector(`li[data-id="${CSS.escape(cm.id)}"]`);
          if (!line) {
            line = el("li");
            line.dataset.id = cm.id;
            cl.append(line);
          }
          const txt = t("national.commune", { name: cm.name, finished: cm.totals.finished, receivers: cm.totals.receivers });
          if (line.textContent !== txt) line.textContent = txt;
        }
      }
    }, t("national.sent.empty"), (a, b) => b.id.localeCompare(a.id));

    const cancelAlert = async (a, errBox) => {
      clearErrors(errBox.parentElement);
      if (!window.confirm(t("national.cancel.confirm", { title: a.title }))) return;
      try {
        alerts.put(await api.post("/api/v1/national/alerts/" + encodeURIComponent(a.id) + "/cancel", {}));
        say(t("national.cancel.done", { title: a.title }));
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };
    const removeProvince = async (p, errBox) => {
      clearErrors(errBox.parentElement);
      try {
        await api.request("DELETE", "/api/v1/national/provinces/" + encodeURIComponent(p.id));
        provinces.remove(p.id);
        dropTarget(p.id);
        say(t("national.province.deleted", { name: p.name }));
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };

    provForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(provForm);
      try {
        const p = await api.post("/api/v1/national/provinces", {
          id: pid.value.trim(), name: pname.value.trim(), code: pcode.value.trim(), url: purl.value.trim(), ca_pem: pca.value,
        });
        provinces.put(p);
        say(t("national.province.saved", { name: p.name }));
        provForm.reset();
      } catch (e) {
        showError(provForm, e, { id: "province-id", name: "province-name", code: "province-code", url: "province-url", ca_pem: "province-ca" }, provErr);
      }
    });

    sendForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(sendForm);
      const chosen = [...targets.querySelectorAll("input:checked")].map((b) => b.value);
      try {
        const a = await api.post("/api/v1/national/alerts", {
          title: title.value.trim(), level: level.value, text: text.value.trim(),
          expires_at: new Date(Date.now() + Number(expiry.value) * 60000).toISOString().replace(/\.\d+Z$/, "Z"),
          provinces: chosen,
        });
        alerts.put(a);
        say(t("national.sent.one", { title: a.title, n: a.provinces.length }));
        sendForm.reset();
        expiry.value = "60";
      } catch (e) {
        showError(sendForm, e, { title: "national-title", level: "national-level", text: "national-text", expires_at: "national-expiry",
          provinces: "national-targets", "content.text": "national-text" }, sendErr);
      }
    });

    let timer = 0;
    let gone = false;
    const refresh = async () => {
      try {
        const list = await api.get("/api/v1/national/alerts");
        if (gone) return;
        for (const a of list.slice(0, 50)) alerts.put(a);
      } catch { /* the next round tries again */ }
      if (!gone) timer = setTimeout(refresh, POLL_MS);
    };
    (async () => {
      try {
        const [id, ps] = await Promise.all([api.get("/api/v1/national/identity"), api.get("/api/v1/national/provinces")]);
        if (gone) return;
        ident.textContent = t("national.identity", { sender: id.sender, sha: id.cert_sha256 });
        for (const p of ps) provinces.put(p);
      } catch (e) {
        say(errorText(e), true);
      }
      refresh();
    })();
    return () => { gone = true; clearTimeout(timer); };
  },
};
