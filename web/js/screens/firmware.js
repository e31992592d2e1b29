// Firmware: the signed images (upload for roles with `firmware`) and the
// rollouts: create (image, targets, waves), each wave's progress while it
// runs, pause, resume and abort. Rollouts have no event topic: while one
// is running or paused the list is read again every two seconds.

import * as api from "../api.js";
import { treeOrder } from "../areas.js";
import { dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";
import { who } from "./device.js";

const DONE = ["done", "skipped_current"];

export default {
  path: "firmware",
  nav: "nav.firmware",
  allowed: (ctx) => ctx.can("firmware"),
  mount(root, ctx) {
    let alive = true;
    root.append(el("h1", { tabindex: "-1", text: t("firmware.title") }));
    const imgBox = el("ul", { id: "firmware-list", class: "cards" });
    const roBox = el("ul", { id: "rollouts-list", class: "cards" });
    const images = new List(imgBox, () => el("li", { class: "card image" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, img) => {
        li.querySelector(".title").textContent = t("firmware.version", { v: img.version }) + (img.name ? " — " + img.name : "");
        li.querySelector(".meta").textContent = [Math.round(img.size / 1024) + " KiB", "SHA-256 " + img.sha256.slice(0, 12) + "…",
          dateTime(img.created_at), who(img.created_by)].filter(Boolean).join(" · ");
      }, t("firmware.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));

    // Upload: version and signature (from "loa firmware sign"), then the file.
    const version = el("input", { id: "fw-version", name: "version", required: true, autocomplete: "off", placeholder: "1.2.0" });
    const sig = el("input", { id: "fw-sig", name: "sig", required: true, autocomplete: "off", spellcheck: "false" });
    const file = el("input", { id: "fw-file", name: "file", type: "file", required: true });
    const uerr = el("p", { class: "action-error", id: "fw-form-error", role: "alert", hidden: true });
    const ubutton = el("button", { type: "submit", text: t("firmware.upload") });
    const uform = el("form", { id: "fw-form", class: "card", "aria-labelledby": "h-fw-upload" }, el("h2", { id: "h-fw-upload", text: t("firmware.upload.title") }),
      field(t("firmware.version.label"), version), field(t("firmware.sig"), sig), field(t("firmware.file"), file), ubutton, uerr);
    uform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(uform);
      const body = new FormData(); // version and sig before the file, as the API reads them
      body.append("version", version.value.trim());
      body.append("sig", sig.value.trim());
      if (file.files[0]) body.append("file", file.files[0], file.files[0].name);
      ubutton.disabled = true;
      try {
        const img = await api.request("POST", "/api/v1/firmware", body);
        images.put(img);
        imageChoices();
        image.value = img.id;
        uform.reset();
        say(t("firmware.uploaded", { v: img.version }));
      } catch (e) {
        showError(uform, e, { version: "fw-version", sig: "fw-sig", file: "fw-file" }, uerr);
      } finally {
        ubutton.disabled = false;
      }
    });

    // A new rollout.
    const image = el("select", { id: "rollout-image", name: "image_id", required: true });
    const imageChoices = () => options(image, [...images.items.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""))
      .map((i) => [i.id, t("firmware.version", { v: i.version }) + (i.name ? " — " + i.name : "")]));
    const areas = el("fieldset", { class: "choices", id: "rollout-areas" }, el("legend", { text: t("firmware.targets.areas") }),
      ...treeOrder(ctx.areas).map(([id, l, d]) => el("label", { class: "depth-" + d }, el("input", { type: "checkbox", value: id, id: "rollout-area-" + id }), l)));
    const devices = el("input", { id: "rollout-devices", name: "devices", autocomplete: "off", spellcheck: "false", placeholder: "bc-1, bc-2" });
    const waves = el("input", { id: "rollout-waves", name: "waves", value: "1, 10, 50, 100", autocomplete: "off", inputmode: "numeric" });
    const threshold = el("input", { id: "rollout-threshold", name: "fail_threshold", type: "number", min: "0", max: "100", value: "10", inputmode: "numeric" });
    const timeout = el("input", { id: "rollout-timeout", name: "wave_timeout", value: "30m", autocomplete: "off" });
    const rerr = el("p", { class: "action-error", id: "rollout-form-error", role: "alert", hidden: true });
    const rform = el("form", { id: "rollout-form", class: "card", "aria-labelledby": "h-rollout-new" }, el("h2", { id: "h-rollout-new", text: t("firmware.rollout.new") }),
      field(t("firmware.image"), image), areas, field(t("firmware.targets.devices"), devices), field(t("firmware.waves"), waves),
      field(t("firmware.threshold"), threshold), field(t("firmware.timeout"), timeout),
      el("button", { type: "submit", id: "rollout-start", text: t("firmware.rollout.start") }), rerr);
    const ids = (s) => s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
    rform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(rform);
      const targets = { areas: [...areas.querySelectorAll("input:checked")].map((c) => c.value), devices: ids(devices.value) };
      const body = { image_id: image.value, targets, waves: ids(waves.value).map(Number), fail_threshold: Number(threshold.value) / 100, wave_timeout: timeout.value.trim() };
      const img = images.items.get(image.value);
      if (!window.confirm(t("firmware.rollout.confirm", { v: img ? img.version : image.value }))) return;
      try {
        const ro = await api.post("/api/v1/rollouts", body);
        rollouts.put(ro);
        say(t("firmware.rollout.started", { v: ro.version, n: ro.devices.length }));
        poll();
      } catch (e) {
        showError(rform, e, { image_id: "rollout-image", targets: "rollout-devices", "targets.devices": "rollout-devices", waves: "rollout-waves",
          fail_threshold: "rollout-threshold", wave_timeout: "rollout-timeout" }, rerr);
      }
    });

    const rollouts = new List(roBox, (ro) => rolloutCard(ro, ctx, (v) => { rollouts.put(v); poll(); }), (li, ro) => fillRollout(li, ro, ctx),
      t("firmware.rollouts.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    const can = ctx.can("firmware");
    root.append(el("section", { class: "panel", "aria-labelledby": "h-rollouts" }, el("h2", { id: "h-rollouts", text: t("firmware.rollouts") }), roBox),
      el("div", { class: "grid" }, ...[can ? uform : null, can ? rform : null].filter(Boolean)),
      el("section", { class: "panel", "aria-labelledby": "h-fw-images" }, el("h2", { id: "h-fw-images", text: t("firmware.images") }), imgBox));

    // Live progress: read while a rollout runs (or waits paused).
    let timer = 0;
    const poll = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try {
          const list = await api.get("/api/v1/rollouts");
          if (!alive) return;
          for (const ro of list) {
            const li = rollouts.nodes.get(ro.id);
            const open = li && li.querySelector("details.devices").open;
            // The per-device list (every target) only while its fold is open.
            rollouts.put(open ? await api.get("/api/v1/rollouts/" + encodeURIComponent(ro.id)) : ro);
          }
          if (list.some((ro) => ro.state === "running" || ro.state === "paused")) poll();
        } catch (e) {
          if (alive) poll();
        }
      }, 2000);
    };
    api.get("/api/v1/firmware").then((l) => { if (!alive) return; images.reset(l); imageChoices(); }).catch((e) => say(errorText(e), true));
    api.get("/api/v1/rollouts").then((l) => {
      if (!alive) return;
      rollouts.reset(l);
      if (l.some((ro) => ro.state === "running" || ro.state === "paused")) poll();
    }).catch((e) => say(errorText(e), true));
    return () => { alive = false; clearTimeout(timer); };
  },
};

// rolloutCard: a rollout with its waves, its devices under a fold, and
// pause, resume and abort.
function rolloutCard(ro, ctx, put) {
  const rid = "rollout-" + ro.id;
  const err = el("p", { class: "action-error", id: rid + "-error", role: "alert", hidden: true });
  const li = el("li", { class: "card rollout" }, el("p", { class: "title" }), el("p", { class: "meta" }), el("ol", { class: "waves" }));
  const act = (action) => async () => {
    if (action === "abort" && !window.confirm(t("firmware.abort.confirm"))) return;
    clearErrors(li);
    try {
      put(await api.post("/api/v1/rollouts/" + encodeURIComponent(ro.id) + "/" + action, {}));
      say(t("firmware." + action + ".done"));
    } catch (e) {
      showError(li, e, {}, err);
    }
  };
  if (ctx.can("firmware")) {
    const buttons = el("div", { class: "buttons" });
    for (const a of ["pause", "resume", "abort"]) {
      const b = el("button", { type: "button", class: a + (a === "abort" ? " danger" : ""), text: t("firmware." + a) });
      b.addEventListener("click", act(a));
      buttons.append(b);
    }
    li.append(buttons);
  }
  const devs = el("ul", { class: "rollout-devices" });
  const details = el("details", { class: "devices" }, el("summary", { text: t("firmware.devices") }), devs);
  details.addEventListener("toggle", () => {
    if (details.open) api.get("/api/v1/rollouts/" + encodeURIComponent(ro.id)).then(put).catch(() => {});
  });
  li.append(details, err);
  return li;
}

function fillRollout(li, ro, ctx) {
  const title = li.querySelector(".title");
  title.textContent = t("firmware.version", { v: ro.version }) + " · " + t("firmware.state." + ro.state);
  title.dataset.state = ro.state;
  const tg = ro.targets || {};
  li.querySelector(".meta").textContent = [[...(tg.areas || []).map(ctx.areaName), ...(tg.devices || [])].join(", "),
    dateTime(ro.created_at), who(ro.created_by), ro.reason === "paused by an operator" ? t("firmware.paused.operator") : ro.reason || ""].filter(Boolean).join(" · ");
  const ol = li.querySelector("ol.waves");
  const totals = ro.totals || [];
  while (ol.children.length > totals.length) ol.lastChild.remove();
  totals.forEach((w, i) => {
    let item = ol.children[i];
    if (!item) {
      item = el("li", { class: "wave" }, el("span", { class: "wave-text" }), el("progress", { max: "1", value: "0" }));
      ol.append(item);
    }
    const st = w.states || {};
    const done = DONE.reduce((n, k) => n + (st[k] || 0), 0);
    const failed = st.failed || 0;
    const text = t("firmware.wave", { n: i + 1, p: w.percent, done, total: w.devices, failed, offline: st.offline || 0 }) +
      (ro.state === "running" && i === ro.wave ? " ◀" : "");
    item.querySelector(".wave-text").textContent = text;
    const bar = item.querySelector("progress");
    bar.max = Math.max(1, w.devices);
    bar.value = done + failed + (st.offline || 0);
    bar.setAttribute("aria-label", text);
  });
  for (const b of li.querySelectorAll(".buttons button")) {
    b.hidden = (b.classList.contains("pause") && ro.state !== "running") || (b.classList.contains("resume") && ro.state !== "paused") ||
      (b.classList.contains("abort") && (ro.state === "completed" || ro.state === "aborted"));
  }
  const devs = li.querySelector(".rollout-devices");
  if (ro.devices && ro.devices.length) {
    devs.replaceChildren(...ro.devices.map((d) => el("li", { "data-device": d.device },
      d.device + " · " + t("firmware.wave.short", { n: d.wave + 1 }) + " · " + t("firmware.dev." + d.state) + (d.version ? " · " + d.version : "") + (d.msg ? " · " + d.msg : ""))));
  }
}
