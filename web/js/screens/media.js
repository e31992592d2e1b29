// Audio library: upload (with progress), listen, rename, delete when
// unused, and the list.
//
// Each card is built by card() with named parts other screens' features
// may fill: .title, .badges (e.g. a draft badge), .meta, .player, .edit.

import * as api from "../api.js";
import { ApiError, authHeaders, eventURL } from "../api.js";
import { dateTime, duration, t } from "../i18n.js";
import { clearErrors, el, field, List, say, showError } from "../ui.js";

export default {
  path: "media",
  nav: "nav.media",
  allowed: () => true,
  mount(root, ctx) {
    const list = el("ul", { id: "media-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("media.title") }));
    const canEdit = ctx.can("media");
    if (canEdit) root.append(uploadForm(ctx, (m) => items.put(m)));
    root.append(list);
    const items = new List(list, (m) => card(m, ctx, canEdit, items), update,
      t("media.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    items.reset(ctx.media);
    ctx.reloadMedia().then((ms) => items.reset(ms)).catch(() => {});
  },
};

function uploadForm(ctx, added) {
  const name = el("input", { id: "upload-name", name: "name", maxlength: "200" });
  // What phones and studios record: ffmpeg decodes what Loa does not itself (media/detect.go).
  const file = el("input", { id: "upload-file", name: "file", type: "file", required: true,
    accept: "audio/*,video/*,.wav,.mp3,.ogg,.oga,.opus,.m4a,.aac,.amr,.3gp,.flac,.wma,.aif,.aiff,.caf,.mp4,.mov,.mkv,.webm,.avi" });
  const progress = el("progress", { id: "upload-progress", max: "100", value: "0", hidden: true, "aria-label": t("media.upload") });
  const err = el("p", { class: "action-error", id: "upload-error", role: "alert", hidden: true });
  const note = el("p", { class: "note", id: "upload-note", role: "status", hidden: true });
  const button = el("button", { type: "submit", text: t("media.upload") });
  const form = el("form", { id: "upload-form", class: "card" }, field(t("media.name"), name), field(t("media.file"), file), button, progress, err, note);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    note.hidden = true;
    const f = file.files[0];
    if (!f) return;
    const body = new FormData(); // the name goes first: the server reads the form as a stream
    if (name.value.trim()) body.append("name", name.value.trim());
    body.append("file", f);
    button.disabled = true;
    say(t("media.uploading", { name: f.name }));
    try {
      const { status, data: m } = await upload(body, progress);
      if (m.kind === "media") { // 202: held as a draft until an approver approves it
        say(t("drafts.sent", { name: m.name }));
        form.reset();
        ctx.reloadMedia().then((ms) => ms.forEach(added)).catch(() => {});
        return;
      }
      if (status === 200) {
        // The same audio is in the library already: the server kept the one there.
        say("");
        note.textContent = t("media.duplicate", { name: m.name });
        note.hidden = false;
      } else {
        say(t("media.uploaded", { name: m.name, d: duration(m.duration_ns) }));
      }
      form.reset();
      if (!ctx.media.some((x) => x.id === m.id)) ctx.media.push(m);
      added(m);
    } catch (e) {
      say("");
      showError(form, e, { name: "upload-name", file: "upload-file" }, err);
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  });
  return form;
}

function card(m, ctx, canEdit, items) {
  const id = "media-" + m.id;
  const audio = el("audio", { controls: true, preload: "none", id: id + "-audio", "aria-label": t("media.listen.label", { name: m.name }) });
  const listen = el("button", { type: "button", class: "listen secondary", text: t("media.listen") });
  listen.addEventListener("click", () => {
    if (!audio.getAttribute("src")) audio.src = eventURL("/api/v1/media/" + encodeURIComponent(m.id) + "/audio");
    audio.play().catch(() => {}); // a browser without sound still loads it
  });
  const li = el("li", { class: "card media" },
    el("p", { class: "title" }), el("span", { class: "badges" }), el("p", { class: "meta" }),
    el("div", { class: "player" }, audio, listen));
  if (!canEdit) return li;
  const name = el("input", { id: id + "-name", name: "name", maxlength: "200", value: m.name });
  const err = el("p", { class: "action-error", id: id + "-error", role: "alert", hidden: true });
  const save = el("button", { type: "button", class: "rename", text: t("media.rename") });
  const del = el("button", { type: "button", class: "delete danger", text: t("media.delete") });
  const edit = el("details", { class: "edit" }, el("summary", { text: t("media.edit") }),
    el("div", { class: "edit-body" }, field(t("media.name"), name), el("div", { class: "buttons" }, save, del), err));
  li.append(edit);
  save.addEventListener("click", async () => {
    clearErrors(edit);
    try {
      const r = await api.request("PATCH", "/api/v1/media/" + encodeURIComponent(m.id), { name: name.value.trim() });
      Object.assign(ctx.media.find((x) => x.id === r.id) || {}, r);
      items.put(r);
      say(t("media.renamed", { name: r.name }));
    } catch (e) {
      showError(edit, e, { name: id + "-name" }, err);
    }
  });
  del.addEventListener("click", async () => {
    clearErrors(edit);
    const cur = items.items.get(m.id) || m;
    if (!window.confirm(t("media.delete.confirm", { name: cur.name }))) return;
    try {
      await api.request("DELETE", "/api/v1/media/" + encodeURIComponent(m.id));
      ctx.media = ctx.media.filter((x) => x.id !== m.id);
      items.remove(m.id);
      say(t("media.deleted", { name: cur.name }));
    } catch (e) {
      if (e.code === "in_use") {
        err.textContent = t("media.in_use", { list: usesText(e.usedBy, ctx) });
        err.hidden = false;
      } else {
        showError(edit, e, {}, err);
      }
    }
  });
  return li;
}

function update(li, m) {
  li.querySelector(".title").textContent = m.name;
  const loud = typeof m.loudness_db === "number" && isFinite(m.loudness_db)
    ? t("media.loudness", { db: m.loudness_db.toLocaleString("vi-VN", { maximumFractionDigits: 1 }) }) : "";
  const source = m.decoder ? t("media.decoded", { source: m.source, decoder: m.decoder }) : m.source;
  li.querySelector(".meta").textContent = [duration(m.duration_ns), loud, source, dateTime(m.created_at)].filter(Boolean).join(" · ");
  const badges = li.querySelector(".badges");
  badges.replaceChildren(...(m.state === "draft" ? [el("span", { class: "badge pending", text: t("drafts.pending") })] : []));
  const name = li.querySelector("input[name=name]");
  if (name && document.activeElement !== name) name.value = m.name;
}

// usesText names what uses a media item, in words: 'danh sách phát
// "Bản tin chiều", lịch phát "Chương trình sáng"'.
export function usesText(uses, ctx) {
  return (uses || []).map((u) => {
    const name = u.kind === "fallback" ? ctx.areaName(u.id) : u.name || u.id;
    return t("media.use." + u.kind) + " “" + name + "”";
  }).join(", ");
}

// upload posts the form with XMLHttpRequest, which reports progress.
function upload(body, progress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", "/api/v1/media");
    for (const [k, v] of Object.entries(authHeaders("POST"))) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      progress.hidden = false;
      progress.value = Math.round((100 * e.loaded) / e.total);
    };
    x.onload = () => {
      let data = null;
      try { data = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
      if (x.status >= 200 && x.status < 300) resolve({ status: x.status, data });
      else reject(new ApiError(x.status, data));
    };
    x.onerror = () => reject(new ApiError(0, null));
    x.send(body);
  });
}
