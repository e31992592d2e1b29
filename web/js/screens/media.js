// Audio library: upload (with progress) and the list.

import { ApiError, authHeaders } from "../api.js";
import { dateTime, duration, t } from "../i18n.js";
import { clearErrors, el, field, List, say, showError } from "../ui.js";

export default {
  path: "media",
  nav: "nav.media",
  allowed: () => true,
  mount(root, ctx) {
    const list = el("ul", { id: "media-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("media.title") }));
    if (ctx.can("media")) {
      const name = el("input", { id: "upload-name", name: "name", maxlength: "200" });
      const file = el("input", { id: "upload-file", name: "file", type: "file", accept: "audio/*", required: true });
      const progress = el("progress", { id: "upload-progress", max: "100", value: "0", hidden: true, "aria-label": t("media.upload") });
      const err = el("p", { class: "action-error", id: "upload-error", role: "alert", hidden: true });
      const button = el("button", { type: "submit", text: t("media.upload") });
      const form = el("form", { id: "upload-form", class: "card" }, field(t("media.name"), name), field(t("media.file"), file), button, progress, err);
      root.append(form);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        const f = file.files[0];
        if (!f) return;
        const body = new FormData(); // the name goes first: the server reads the form as a stream
        if (name.value.trim()) body.append("name", name.value.trim());
        body.append("file", f);
        button.disabled = true;
        say(t("media.uploading", { name: f.name }));
        try {
          const m = await upload(body, progress);
          if (m.kind === "media") { // held: it waits for an approver
            say(t("drafts.sent", { name: m.name }));
            form.reset();
            ctx.reloadMedia().then((ms) => items.reset(ms)).catch(() => {});
            return;
          }
          say(t("media.uploaded", { name: m.name, d: duration(m.duration_ns) }));
          form.reset();
          ctx.media.push(m);
          items.put(m);
        } catch (e) {
          say("");
          showError(form, e, { name: "upload-name", file: "upload-file" }, err);
        } finally {
          button.disabled = false;
          progress.hidden = true;
        }
      });
    }
    root.append(list);
    const items = new List(list,
      () => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, m) => {
        li.querySelector(".title").textContent = m.name;
        li.querySelector(".meta").textContent = [m.state === "draft" ? t("drafts.pending") : "", duration(m.duration_ns), m.source, dateTime(m.created_at)].filter(Boolean).join(" · ");
      },
      t("media.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    items.reset(ctx.media);
    ctx.reloadMedia().then((ms) => items.reset(ms)).catch(() => {});
  },
};

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
      if (x.status >= 200 && x.status < 300) resolve(data);
      else reject(new ApiError(x.status, data));
    };
    x.onerror = () => reject(new ApiError(0, null));
    x.send(body);
  });
}
