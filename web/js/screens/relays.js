// Relays (Tiếp sóng): external streams the station relays (the provincial
// station, VOV). Each card shows its live state from the event stream
// (the URL playing or the fallback, the source's codec and bitrate, its
// level, failovers); the form adds or changes one; "play now" relays it
// to an area. Cards are updated in place, never rebuilt under focus.

import * as api from "../api.js";
import * as events from "../events.js";
import { errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

export default {
  path: "relays",
  nav: "relays.nav",
  allowed: (ctx) => ctx.can("media") || ctx.can("session"),
  mount(root, ctx) {
    let editing = ""; // the id of the relay in the form; "" for a new one
    const canEdit = ctx.can("media");
    const canPlay = ctx.can("session");

    const name = el("input", { id: "relay-name", name: "name", maxlength: "200", required: true, autocomplete: "off" });
    const urls = el("textarea", { id: "relay-urls", name: "urls", rows: "3", required: true, spellcheck: "false" });
    const fallback = options(el("select", { id: "relay-fallback", name: "fallback_media_id" }),
      [["", t("relays.fallback.none")]].concat(ctx.media.map((m) => [m.id, m.name])));
    const silenceDB = el("input", { id: "relay-silence-db", name: "silence_db", type: "number", min: "-90", max: "0", step: "1", value: "-50", inputmode: "numeric" });
    const silenceS = el("input", { id: "relay-silence-s", name: "silence_s", type: "number", min: "1", max: "300", step: "1", value: "5", inputmode: "numeric" });
    const err = el("p", { class: "action-error", id: "relay-form-error", role: "alert", hidden: true });
    const save = el("button", { type: "submit", id: "relay-save", text: t("relays.save") });
    const cancel = el("button", { type: "button", id: "relay-cancel", text: t("relays.cancel"), hidden: true });
    const heading = el("h2", { id: "h-relay-form", text: t("relays.new") });
    const form = el("form", { id: "relay-form", class: "card wide", "aria-labelledby": "h-relay-form", hidden: !canEdit },
      heading, field(t("relays.name"), name), field(t("relays.urls"), urls),
      el("p", { class: "hint", id: "relay-urls-hint", text: t("relays.urls.hint") }),
      field(t("relays.fallback"), fallback),
      el("div", { class: "relay-thresholds" }, field(t("relays.silence_db"), silenceDB), field(t("relays.silence_s"), silenceS)),
      el("div", { class: "buttons" }, save, cancel), err);
    const area = options(el("select", { id: "relay-area", name: "area" }), treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l]));
    const box = el("ul", { id: "relays-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("relays.title") }), form,
      el("section", { class: "panel", "aria-labelledby": "h-relays" }, el("h2", { id: "h-relays", text: t("relays.list") }),
        canPlay ? field(t("play.area"), area) : "", box));

    const stateText = (r) => {
      const p = (r.playing || [])[0];
      if (!p) return t("relays.idle");
      const parts = [p.fallback ? t("relays.on.fallback") : t("relays.on.url", { url: p.url })];
      if (!p.fallback && p.source) parts.push(p.source + (p.kbit_s ? " " + p.kbit_s + " kbit/s" : ""));
      parts.push(t("relays.level", { db: p.level_db <= -120 ? "—" : Math.round(p.level_db) }));
      parts.push(t("relays.failovers", { n: p.failovers }));
      return parts.join(" · ");
    };
    const list = new List(box, (r) => {
      const e = el("p", { class: "action-error", role: "alert", hidden: true });
      const play = el("button", { type: "button", class: "play", text: t("relays.play"), hidden: !canPlay });
      const edit = el("button", { type: "button", class: "edit", text: t("relays.edit"), hidden: !canEdit });
      const del = el("button", { type: "button", class: "delete danger", text: t("relays.delete"), hidden: !canEdit });
      play.addEventListener("click", () => playNow(list.items.get(r.id), e));
      edit.addEventListener("click", () => startEdit(list.items.get(r.id)));
      del.addEventListener("click", () => remove(list.items.get(r.id), e));
      return el("li", { class: "card relay" }, el("p", { class: "title" }), el("p", { class: "meta urls" }),
        el("p", { class: "state", "aria-live": "polite" }), el("div", { class: "buttons" }, play, edit, del), e);
    }, (li, r) => {
      li.querySelector(".title").textContent = r.name;
      li.querySelector(".urls").textContent = r.urls.join(" · ");
      const st = li.querySelector(".state");
      const text = stateText(r);
      if (st.textContent !== text) st.textContent = text;
      li.classList.toggle("on-air", (r.playing || []).length > 0);
      li.classList.toggle("failed-over", (r.playing || []).some((p) => p.fallback || p.url !== r.urls[0]));
      li.querySelector("button.play").setAttribute("aria-label", t("relays.play.named", { name: r.name, area: ctx.areaName(area.value) }));
      li.querySelector("button.edit").setAttribute("aria-label", t("relays.edit.named", { name: r.name }));
      li.querySelector("button.delete").setAttribute("aria-label", t("relays.delete.named", { name: r.name }));
    }, t("relays.empty"), (a, b) => a.name.localeCompare(b.name));
    area.addEventListener("change", () => { for (const r of list.items.values()) list.put(r); });

    const playNow = async (r, errBox) => {
      clearErrors(errBox.parentElement);
      try {
        const s = await api.post("/api/v1/relays/" + encodeURIComponent(r.id) + "/play", { targets: { areas: [area.value] } });
        say(t("relays.playing", { name: r.name, n: (s.devices || []).length }));
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };
    const remove = async (r, errBox) => {
      clearErrors(errBox.parentElement);
      try {
        await api.request("DELETE", "/api/v1/relays/" + encodeURIComponent(r.id));
        list.remove(r.id);
        say(t("relays.deleted", { name: r.name }));
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };
    const reset = () => {
      editing = "";
      form.reset();
      heading.textContent = t("relays.new");
      cancel.hidden = true;
    };
    const startEdit = (r) => {
      editing = r.id;
      heading.textContent = t("relays.editing", { name: r.name });
      name.value = r.name;
      urls.value = r.urls.join("\n");
      fallback.value = r.fallback_media_id || "";
      silenceDB.value = String(r.silence_db || -50);
      silenceS.value = String(r.silence_s || 5);
      cancel.hidden = false;
      name.focus();
    };
    cancel.addEventListener("click", () => { reset(); name.focus(); });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const body = {
        name: name.value.trim(),
        urls: urls.value.split("\n").map((u) => u.trim()).filter((u) => u),
        fallback_media_id: fallback.value,
        silence_db: Number(silenceDB.value) || 0,
        silence_s: Math.round(Number(silenceS.value) || 0),
      };
      try {
        let r;
        if (editing) {
          r = await api.request("PUT", "/api/v1/relays/" + encodeURIComponent(editing), body);
        } else {
          body.id = "relay-" + Date.now().toString(36) + "-" + Math.floor(Math.random() * 1296).toString(36);
          r = await api.post("/api/v1/relays", body);
        }
        r.playing = (list.items.get(r.id) || {}).playing || [];
        list.put(r);
        say(t("relays.saved", { name: r.name }));
        reset();
      } catch (e) {
        const fields = { name: "relay-name", urls: "relay-urls", fallback_media_id: "relay-fallback", silence_db: "relay-silence-db", silence_s: "relay-silence-s" };
        for (let i = 0; i < 8; i++) fields["urls[" + i + "]"] = "relay-urls";
        showError(form, e, fields, err);
      }
    });

    const off = events.on("relays", (ch) => list.apply(ch));
    return () => { off(); };
  },
};
