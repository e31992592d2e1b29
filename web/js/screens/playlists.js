// Playlists: the operator builds one from the library (add, reorder by
// buttons or by dragging, a silence after each item, the total length),
// saves it, and plays it now to an area. The API has no playlist
// change: a saved playlist is played or used as it is.

import * as api from "../api.js";
import { duration, errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

export default {
  path: "playlists",
  nav: "nav.playlists",
  allowed: (ctx) => ctx.can("media"),
  mount(root, ctx) {
    let items = []; // {key, media_id, gap} (gap in seconds)
    let nextKey = 1;
    let dragging = null; // the key of the item being dragged

    const name = el("input", { id: "playlist-name", name: "name", maxlength: "200", required: true });
    const addSel = options(el("select", { id: "playlist-add-media", name: "media_id" }), ctx.media.map((m) => [m.id, m.name + " (" + duration(m.duration_ns) + ")"]));
    const add = el("button", { type: "button", id: "playlist-add", text: t("playlists.add") });
    const ol = el("ol", { id: "playlist-items", class: "cards playlist-items" });
    const empty = el("p", { class: "hint", id: "playlist-empty", text: t("playlists.items.empty") });
    const total = el("p", { id: "playlist-total", class: "total", "aria-live": "polite" });
    const area = options(el("select", { id: "playlist-area", name: "area" }), treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l]));
    const err = el("p", { class: "action-error", id: "playlist-form-error", role: "alert", hidden: true });
    const save = el("button", { type: "submit", id: "playlist-save", text: t("playlists.save") });
    const savePlay = el("button", { type: "button", id: "playlist-save-play", text: t("playlists.save.play") });
    const form = el("form", { id: "playlist-form", class: "card wide", "aria-labelledby": "h-playlist-new" },
      el("h2", { id: "h-playlist-new", text: t("playlists.new") }),
      field(t("playlists.name"), name),
      el("div", { class: "add-row" }, field(t("playlists.add.media"), addSel), add),
      el("h3", { id: "h-playlist-items", text: t("playlists.items") }), el("p", { class: "hint", text: t("playlists.items.hint") }),
      empty, ol, total, field(t("play.area"), area), el("div", { class: "buttons" }, save, savePlay), err);
    const box = el("ul", { id: "playlists-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("playlists.title") }), form,
      el("section", { class: "panel", "aria-labelledby": "h-playlists" }, el("h2", { id: "h-playlists", text: t("playlists.saved") }), box));
    ol.setAttribute("aria-labelledby", "h-playlist-items");

    const media = (id) => ctx.media.find((m) => m.id === id) || { name: id, duration_ns: 0 };
    const lengthNs = (its) => its.reduce((s, it) => s + (it.duration_ns !== undefined ? it.duration_ns : media(it.media_id).duration_ns) + (it.gap_ns !== undefined ? it.gap_ns : it.gap * 1e9), 0);

    // draw lays the items out again (the list is the user's own, not
    // live) and puts focus back on the control that moved.
    const draw = (focusKey, focusClass) => {
      ol.replaceChildren(...items.map((it, i) => itemNode(it, i)));
      empty.hidden = items.length > 0;
      total.textContent = t("playlists.total", { d: duration(lengthNs(items)), n: items.length });
      if (focusKey) {
        // The same button of the moved item; at an end, where it is
        // disabled, the other way.
        const li = ol.querySelector(`li[data-key="${focusKey}"]`);
        const other = focusClass === "up" ? "down" : "up";
        const n = [focusClass, other, "remove"].map((c) => li.querySelector("button." + c)).find((b) => b && !b.disabled);
        if (n) n.focus();
      }
    };
    const move = (key, to) => {
      const from = items.findIndex((x) => x.key === key);
      if (from < 0 || to < 0 || to >= items.length || to === from) return;
      const [it] = items.splice(from, 1);
      items.splice(to, 0, it);
    };
    const itemNode = (it, i) => {
      const m = media(it.media_id);
      const id = "playlist-item-" + it.key;
      const gap = el("input", { id: id + "-gap", class: "gap", type: "number", min: "0", max: "3600", step: "1", inputmode: "numeric", value: String(it.gap) });
      gap.addEventListener("input", () => { it.gap = Math.max(0, Number(gap.value) || 0); total.textContent = t("playlists.total", { d: duration(lengthNs(items)), n: items.length }); });
      const up = el("button", { type: "button", class: "up", "aria-label": t("playlists.up", { name: m.name }), text: "↑", disabled: i === 0 });
      const down = el("button", { type: "button", class: "down", "aria-label": t("playlists.down", { name: m.name }), text: "↓", disabled: i === items.length - 1 });
      const rm = el("button", { type: "button", class: "remove danger", "aria-label": t("playlists.remove", { name: m.name }), text: "✕" });
      up.addEventListener("click", () => { move(it.key, i - 1); draw(it.key, "up"); });
      down.addEventListener("click", () => { move(it.key, i + 1); draw(it.key, "down"); });
      rm.addEventListener("click", () => { items = items.filter((x) => x.key !== it.key); draw(); add.focus(); });
      const li = el("li", { class: "card item", draggable: "true", "data-key": String(it.key) },
        el("p", { class: "title" }, el("span", { class: "handle", "aria-hidden": "true", text: "⠿ " }), (i + 1) + ". " + m.name),
        el("p", { class: "meta", text: duration(m.duration_ns) }),
        el("div", { class: "field gap-field" }, el("label", { for: id + "-gap", text: t("playlists.gap") }), gap),
        el("div", { class: "buttons" }, up, down, rm));
      li.addEventListener("dragstart", (ev) => { dragging = it.key; li.classList.add("dragging"); if (ev.dataTransfer) { ev.dataTransfer.effectAllowed = "move"; ev.dataTransfer.setData("text/plain", String(it.key)); } });
      li.addEventListener("dragend", () => { dragging = null; li.classList.remove("dragging"); });
      li.addEventListener("dragover", (ev) => { if (dragging !== null) ev.preventDefault(); });
      li.addEventListener("drop", (ev) => {
        ev.preventDefault();
        if (dragging === null || dragging === it.key) return;
        const k = dragging;
        dragging = null;
        move(k, items.findIndex((x) => x.key === it.key));
        draw();
      });
      return li;
    };
    add.addEventListener("click", () => {
      if (!addSel.value) return;
      items.push({ key: nextKey++, media_id: addSel.value, gap: 2 });
      draw();
    });

    const saved = new List(box, (p) => {
      const b = el("button", { type: "button", class: "play", text: t("playlists.play") });
      const e = el("p", { class: "action-error", role: "alert", hidden: true });
      b.addEventListener("click", () => playNow(p, e));
      return el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" }), b, e);
    }, (li, p) => {
      li.querySelector(".title").textContent = p.name;
      li.querySelector(".meta").textContent = (p.pending ? t("drafts.pending") + " · " : "") + t("playlists.summary", { n: p.items.length, d: duration(lengthNs(p.items)) });
      li.querySelector("button.play").hidden = !!p.pending;
      li.querySelector("button.play").setAttribute("aria-label", t("playlists.play.named", { name: p.name, area: ctx.areaName(area.value) }));
    }, t("playlists.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    area.addEventListener("change", () => { for (const p of saved.items.values()) saved.put(p); });

    const playNow = async (p, errBox) => {
      clearErrors(errBox.parentElement);
      try {
        const s = await api.post("/api/v1/sessions", { playlist_id: p.id, targets: { areas: [area.value] } });
        say(t("playlists.playing", { name: p.name, n: (s.devices || []).length }));
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };

    const submit = async (andPlay) => {
      clearErrors(form);
      const body = {
        id: "pl-" + Date.now().toString(36) + "-" + Math.floor(Math.random() * 1296).toString(36),
        name: name.value.trim(),
        items: items.map((it) => ({ media_id: it.media_id, gap: Math.round(it.gap) + "s" })),
      };
      try {
        const p = await api.post("/api/v1/playlists", body);
        if (p.kind === "playlist") { // held: it waits for an approver
          saved.put(Object.assign({}, p.playlist, { pending: true }));
          say(t("drafts.sent", { name: p.name }));
          items = [];
          form.reset();
          draw();
          return;
        }
        ctx.playlists.push(p);
        saved.put(p);
        say(t("playlists.saved.done", { name: p.name }));
        items = [];
        form.reset();
        draw();
        if (andPlay) await playNow(p, err);
      } catch (e) {
        showError(form, e, { name: "playlist-name", items: "playlist-add-media" }, err);
      }
    };
    form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(false); });
    savePlay.addEventListener("click", () => { if (form.reportValidity()) submit(true); });
    draw();
    let live = true;
    // The user's own playlists waiting for approval are listed as such.
    const held = ctx.role === "operator" ? api.get("/api/v1/drafts?state=pending").catch(() => []) : Promise.resolve([]);
    Promise.all([api.get("/api/v1/playlists"), held]).then(([ps, ds]) => {
      ctx.playlists = ps;
      const waiting = ds.filter((d) => d.kind === "playlist" && d.playlist).map((d) => Object.assign({}, d.playlist, { pending: true }));
      if (live) saved.reset(ps.concat(waiting));
    }).catch((e) => say(errorText(e), true));
    return () => { live = false; };
  },
};
