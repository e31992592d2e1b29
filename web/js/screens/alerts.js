// The alert desk: write an alert (spoken text, with a preview, or a
// programme), choose its areas on the tree (with their receivers), check
// it with the server (errors next to their fields), confirm how many
// receivers will sound, send; follow its delivery report by area with
// drill-down to each receiver (cancelled shown as cancelled, failures
// with their reasons); import a CAP file; the history, paged, with its CSV.
// Admin and province only (the ones who may send khẩn cấp).
//
// Live updates never rebuild the form: the area boxes are built once and
// only their counts change; lists are patched by id.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const TEXT_MAX = 2000;
const HISTORY_PAGE = 10;

// FIELDS maps the API's fields to the form's controls.
const FIELDS = { title: "alert-title", level: "alert-level", "content.text": "alert-text", content: "alert-text", text: "alert-text",
  "content.media_id": "alert-media", targets: "alert-areas", "targets.areas": "alert-areas", repeats: "alert-repeats", gap: "alert-gap",
  expires_in: "alert-expires" };

export default {
  path: "alerts",
  nav: "nav.alerts",
  allowed: (ctx) => ctx.role === "admin" || ctx.role === "province",
  mount(root, ctx) {
    const title = el("input", { id: "alert-title", name: "title", maxlength: "200", required: true });
    const level = options(el("select", { id: "alert-level", name: "level" }),
      [["khan_cap", t("alerts.level.khan_cap")], ["uu_tien", t("alerts.level.uu_tien")]]);
    const kindText = el("input", { type: "radio", name: "alert-kind", value: "text", id: "alert-kind-text", checked: true });
    const kindMedia = el("input", { type: "radio", name: "alert-kind", value: "media", id: "alert-kind-media" });
    const text = el("textarea", { id: "alert-text", name: "text", rows: "4" });
    const count = el("small", { id: "alert-count", "aria-live": "polite" });
    const preview = el("button", { type: "button", id: "alert-preview", class: "secondary", text: t("alerts.preview") });
    const player = el("audio", { id: "alert-preview-audio", controls: true, hidden: true, "aria-label": t("alerts.preview.player") });
    const media = options(el("select", { id: "alert-media", name: "media_id" }), ctx.media.map((m) => [m.id, m.name]));
    const textRow = el("div", {}, field(t("alerts.text"), text), count, el("div", { class: "preview" }, preview, player));
    const mediaRow = el("div", { hidden: true }, field(t("alerts.media"), media));
    const areaBox = el("div", { class: "choices", id: "alert-areas" });
    const areaCount = {}; // area id → the span that shows its receivers
    for (const [id, label, depth] of treeOrder(ctx.areas)) {
      const i = el("input", { type: "checkbox", name: "area", value: id, id: "alert-area-" + id });
      areaCount[id] = el("span", { class: "count" });
      areaBox.append(el("label", { class: "depth-" + Math.min(depth, 4), for: i.id }, i, " " + label, areaCount[id]));
    }
    const repeats = el("input", { id: "alert-repeats", name: "repeats", type: "number", min: "1", max: "10", value: "2" });
    const gap = el("input", { id: "alert-gap", name: "gap", type: "number", min: "0", max: "60", value: "5" });
    const expires = options(el("select", { id: "alert-expires", name: "expires_in" }),
      ["15m", "1h", "3h", "6h", "24h"].map((v) => [v, t("expires." + v)]));
    expires.value = "1h";
    const tone = el("input", { type: "checkbox", id: "alert-tone", checked: true });
    const test = el("input", { type: "checkbox", id: "alert-test" });
    const err = el("p", { class: "action-error", id: "alert-error", role: "alert", hidden: true });
    const areasErr = el("p", { class: "field-error", id: "alert-areas-error", role: "alert", hidden: true });
    const send = el("button", { type: "submit", class: "danger", text: t("alerts.send") });
    const form = el("form", { id: "alert-form", class: "card", novalidate: true },
      field(t("alerts.form.title"), title), field(t("alerts.level"), level),
      el("fieldset", {}, el("legend", { text: t("alerts.kind") }),
        el("label", { for: kindText.id }, kindText, " " + t("alerts.kind.text")),
        el("label", { for: kindMedia.id }, kindMedia, " " + t("alerts.kind.media"))),
      textRow, mediaRow,
      el("fieldset", { "aria-describedby": areasErr.id }, el("legend", { text: t("alerts.areas") }), areaBox, areasErr),
      field(t("alerts.repeats"), repeats), field(t("alerts.gap"), gap), field(t("alerts.expires"), expires),
      el("fieldset", {}, el("legend", { text: t("alerts.options") }),
        el("label", { for: tone.id }, tone, " " + t("alerts.tone")), el("label", { for: test.id }, test, " " + t("alerts.test"))),
      send, err);

    // The confirmation: what the server's dry run says will sound.
    const confirmBox = el("section", { id: "alert-confirm", class: "panel confirm", hidden: true, tabindex: "-1", "aria-labelledby": "alert-confirm-title" },
      el("h2", { id: "alert-confirm-title", text: t("alerts.confirm.title") }),
      el("p", { id: "alert-confirm-count", class: "big" }), el("p", { id: "alert-confirm-what" }),
      // A place for more lines about the receivers (issue 17: batteries), filled by confirmExtras.
      el("div", { id: "alert-confirm-extra" }),
      el("div", { class: "buttons" },
        el("button", { type: "button", id: "alert-confirm-send", class: "danger", text: t("alerts.confirm.send") }),
        el("button", { type: "button", id: "alert-confirm-back", class: "secondary", text: t("alerts.confirm.back") })),
      el("p", { class: "action-error", id: "alert-confirm-error", role: "alert", hidden: true }));

    // CAP import by file.
    const capFile = el("input", { id: "cap-file", name: "cap", type: "file", accept: ".xml,.cap,application/cap+xml,application/xml,text/xml" });
    const capErr = el("p", { class: "action-error", id: "cap-error", role: "alert", hidden: true });
    const capNote = el("p", { class: "note", id: "cap-note", role: "status", hidden: true });
    const capForm = el("form", { id: "cap-form", class: "card" }, el("h2", { text: t("alerts.cap.title") }),
      field(t("alerts.cap.file"), capFile), el("button", { type: "submit", text: t("alerts.cap.import") }), capErr, capNote);

    const report = el("section", { id: "alert-report", class: "panel", hidden: true, "aria-labelledby": "alert-report-title" },
      el("h2", { id: "alert-report-title" }), el("p", { id: "alert-report-state" }), el("p", { id: "alert-report-all" }),
      el("button", { type: "button", id: "alert-cancel", class: "stop", hidden: true, text: t("alerts.cancel") }),
      el("p", { class: "action-error", id: "alert-cancel-error", role: "alert", hidden: true }),
      el("h3", { text: t("alerts.report.areas") }), el("ul", { id: "alert-areas-report", class: "cards tree" }),
      el("h3", { text: t("alerts.report.failed") }), el("ul", { id: "alert-failed", class: "cards" }),
      el("h3", { id: "alert-cancelled-title", text: t("alerts.report.cancelled"), hidden: true }), el("ul", { id: "alert-cancelled", class: "cards" }));

    const historyBox = el("ul", { id: "alerts-recent", class: "cards" });
    const prev = el("button", { type: "button", id: "alerts-prev", text: t("log.prev"), disabled: true });
    const next = el("button", { type: "button", id: "alerts-next", text: t("log.next"), disabled: true });
    const pageText = el("p", { class: "meta", "aria-live": "polite" });
    const csv = el("a", { id: "alerts-csv", class: "button", href: "/api/v1/alerts?format=csv", download: "lich-su-canh-bao.csv", text: t("alerts.history.csv") });
    root.append(el("h1", { tabindex: "-1", text: t("alerts.title") }), form, confirmBox, report, capForm,
      el("section", { class: "panel", "aria-labelledby": "h-recent" }, el("h2", { id: "h-recent", text: t("alerts.recent") }),
        el("p", {}, csv), historyBox,
        el("div", { class: "pager", role: "group", "aria-label": t("alerts.history.pages") }, prev, pageText, next)));

    const kind = () => (kindText.checked ? "text" : "media");
    const kindChanged = () => { textRow.hidden = kind() !== "text"; mediaRow.hidden = kind() === "text"; };
    kindText.addEventListener("change", kindChanged);
    kindMedia.addEventListener("change", kindChanged);
    const counter = () => {
      const n = [...text.value].length;
      count.textContent = n + "/" + TEXT_MAX;
      count.className = n > TEXT_MAX ? "over" : "";
    };
    text.addEventListener("input", counter);
    counter();

    // Receivers per area, shown beside each box; a test alert counts
    // only those in areas marked for tests.
    const loadCounts = async () => {
      try {
        const a = await api.get("/api/v1/alerts/audience" + (test.checked ? "?test=true" : ""));
        for (const [id, span] of Object.entries(areaCount)) {
          const n = (a.areas[id] || {}).receivers || 0;
          span.textContent = t("alerts.area.receivers", { n });
        }
      } catch (e) { /* the counts are a help; the check says the truth */ }
    };
    test.addEventListener("change", loadCounts);
    loadCounts();

    // The spoken preview: what the receivers will say, before sending.
    let previewURL = "";
    preview.addEventListener("click", async () => {
      clearErrors(textRow);
      if (!text.value.trim()) {
        showError(textRow, { code: "required", field: "text" }, { text: "alert-text" }, err);
        return;
      }
      preview.disabled = true;
      say(t("alerts.preview.making"));
      try {
        const res = await fetch("/api/v1/alerts/preview", {
          method: "POST", credentials: "same-origin",
          headers: Object.assign({ "Content-Type": "application/json" }, api.authHeaders("POST")),
          body: JSON.stringify({ text: text.value, language: "vi", tone: tone.checked }),
        });
        if (!res.ok) throw new api.ApiError(res.status, await res.json().catch(() => null), res.headers.get("Retry-After"));
        if (previewURL) URL.revokeObjectURL(previewURL);
        previewURL = URL.createObjectURL(await res.blob());
        player.src = previewURL;
        player.hidden = false;
        say("");
        player.play().catch(() => {}); // a browser without sound still loads it
      } catch (e) {
        say("");
        showError(textRow, e, { text: "alert-text", "content.text": "alert-text" }, err);
      } finally {
        preview.disabled = false;
      }
    });

    // body reads the form as POST /alerts takes it.
    const body = () => {
      const areas = [...areaBox.querySelectorAll("input:checked")].map((i) => i.value);
      const content = { tone: tone.checked };
      if (kind() === "text") content.text = text.value.trim();
      else content.media_id = media.value;
      return {
        title: title.value.trim(), level: level.value, content, targets: { areas },
        repeats: Number(repeats.value) || 1, gap: (Number(gap.value) || 0) + "s", expires_in: expires.value, test: test.checked,
      };
    };
    // validate checks what the page can before asking the server.
    const validate = (b) => {
      if (!b.title) return { code: "required", field: "title" };
      if (b.content.text !== undefined && !b.content.text) return { code: "required", field: "content.text" };
      if (b.content.text && [...b.content.text].length > TEXT_MAX) return { code: "too_long", field: "content.text" };
      if (b.content.media_id === "") return { code: "required", field: "content.media_id" };
      if (b.targets.areas.length === 0) return { code: "required", field: "targets" };
      return null;
    };
    const fail = (e) => {
      if (e.field === "targets" || e.field === "targets.areas") {
        areasErr.textContent = e.code === "required" ? t("alerts.noarea") : errorText(e);
        areasErr.hidden = false;
        areaBox.querySelector("input")?.focus();
        return;
      }
      showError(form, e, FIELDS, err);
      const ctl = FIELDS[e.field] && document.getElementById(FIELDS[e.field]);
      if (ctl) ctl.focus();
    };

    let pending = null; // the alert checked and waiting for its confirmation
    let page = 0; // of the history
    let history = null; // its list, built below
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      confirmBox.hidden = true;
      const b = body();
      const bad = validate(b);
      if (bad) { fail(bad); return; }
      send.disabled = true;
      try {
        const check = await api.post("/api/v1/alerts/check", b);
        pending = b;
        const what = t("alerts.level." + b.level).toUpperCase() + (b.test ? " (" + t("alerts.drill") + ")" : "");
        confirmBox.querySelector("#alert-confirm-count").textContent = t("alerts.confirm.count", { n: check.receivers, online: check.online });
        confirmBox.querySelector("#alert-confirm-what").textContent = t("alerts.confirm.what", {
          level: what, title: b.title, areas: b.targets.areas.map(ctx.areaName).join(", "),
        });
        // How many targets run on battery, and for how long (a help: it never blocks sending).
        const power = await api.post("/api/v1/alerts/preview-targets", { targets: b.targets }).catch(() => null);
        confirmExtras(confirmBox.querySelector("#alert-confirm-extra"), power);
        confirmBox.querySelector("#alert-confirm-error").hidden = true;
        confirmBox.hidden = false;
        confirmBox.focus();
      } catch (e) {
        fail(e);
      } finally {
        send.disabled = false;
      }
    });
    confirmBox.querySelector("#alert-confirm-back").addEventListener("click", () => {
      confirmBox.hidden = true;
      pending = null;
      send.focus();
    });
    const confirmSend = confirmBox.querySelector("#alert-confirm-send");
    confirmSend.addEventListener("click", async () => {
      if (!pending) return;
      confirmSend.disabled = true;
      say(t("alerts.sending"));
      try {
        const a = await api.post("/api/v1/alerts", pending);
        pending = null;
        confirmBox.hidden = true;
        say(t("alerts.sent", { n: a.totals.all.receivers }));
        show(a.id, a);
      } catch (e) {
        say("");
        const cerr = confirmBox.querySelector("#alert-confirm-error");
        cerr.textContent = errorText(e);
        cerr.hidden = false;
      } finally {
        confirmSend.disabled = false;
      }
    });

    // The report.
    let current = ""; // the alert whose report is shown
    let shown = null;
    const stateText = (a) => t("alerts.state." + a.state) + (a.test ? " · " + t("alerts.drill") : "");
    const cancelled = (d) => d.state === "failed" && d.reason === "cancelled";
    const deliveryText = (d) => cancelled(d) ? t("alerts.delivery.cancelled")
      : d.state === "failed" ? t("alerts.delivery.failed", { reason: t("reason." + d.reason) }) : t("alerts.delivery." + d.state);
    const parentOf = {};
    for (const a of ctx.areas) parentOf[a.id] = a.parent_id || "";
    const order = treeOrder(ctx.areas);
    const rank = new Map(order.map(([id], i) => [id, i]));
    const depthOf = new Map(order.map(([id, , depth]) => [id, depth]));
    const open = new Set(); // areas whose receivers are shown

    const areaRows = new List(report.querySelector("#alert-areas-report"),
      (c) => {
        const li = el("li", { class: "card area depth-" + Math.min(depthOf.get(c.id) || 0, 4) },
          el("p", { class: "title" }), el("p", { class: "meta" }));
        const toggle = el("button", { type: "button", class: "drill secondary", "aria-expanded": "false", "aria-controls": "alert-drill-" + c.id, text: t("alerts.drill.open") });
        const box = el("ul", { class: "drill-list", id: "alert-drill-" + c.id, hidden: true });
        toggle.addEventListener("click", () => {
          const on = !open.has(c.id);
          if (on) open.add(c.id); else open.delete(c.id);
          toggle.setAttribute("aria-expanded", String(on));
          toggle.textContent = t(on ? "alerts.drill.close" : "alerts.drill.open");
          box.hidden = !on;
          if (on && shown) fillDrill(li, c.id, shown);
        });
        li.append(toggle, box);
        return li;
      },
      (li, c) => {
        li.querySelector(".title").textContent = ctx.areaName(c.id) + " · " + t("alerts.area.receivers", { n: c.receivers });
        li.querySelector(".meta").textContent = [t("alerts.waiting") + " " + c.waiting, t("alerts.playing") + " " + c.started,
          t("alerts.done") + " " + c.finished, t("alerts.failed") + " " + c.failed, t("alerts.cancelled.short") + " " + c.cancelled].join(" · ");
        if (open.has(c.id) && shown) fillDrill(li, c.id, shown);
      }, "", (x, y) => (rank.get(x.id) ?? 1e9) - (rank.get(y.id) ?? 1e9));
    // fillDrill lists the receivers of area id (and below) in li, patched by device.
    const drills = new Map();
    const fillDrill = (li, id, a) => {
      let rows = drills.get(id);
      if (!rows || !li.contains(rows.box)) {
        const box = li.querySelector(".drill-list");
        box.replaceChildren();
        rows = new List(box, () => el("li", { class: "device" }), (r, d) => {
          r.textContent = d.device + " · " + deliveryText(d) + (d.repeats ? " · " + t("alerts.repeats.played", { n: d.repeats }) : "");
          r.className = "device " + (cancelled(d) ? "cancelled" : d.state);
        }, t("alerts.drill.empty"), (x, y) => x.id.localeCompare(y.id));
        drills.set(id, rows);
      }
      rows.reset((a.report || []).filter((d) => within(d.area, id)).map((d) => Object.assign({ id: d.device }, d)));
    };
    const within = (area, scope) => {
      for (let id = area, n = 0; id && n < 16; id = parentOf[id], n++) if (id === scope) return true;
      return false;
    };
    const failedRows = new List(report.querySelector("#alert-failed"),
      () => el("li", { class: "card emergency" }, el("p", { class: "title" })),
      (li, d) => { li.querySelector(".title").textContent = d.device + " · " + ctx.areaName(d.area) + " · " + t("reason." + d.reason); },
      t("alerts.report.failed.empty"), (x, y) => x.id.localeCompare(y.id));
    const cancelledRows = new List(report.querySelector("#alert-cancelled"),
      () => el("li", { class: "card cancelled" }, el("p", { class: "title" })),
      (li, d) => { li.querySelector(".title").textContent = d.device + " · " + ctx.areaName(d.area) + " · " + t("alerts.delivery.cancelled"); },
      "", (x, y) => x.id.localeCompare(y.id));

    const render = (a) => {
      shown = a;
      report.hidden = false;
      if (history && page === 0) history.put(summary(a));
      report.querySelector("#alert-report-title").textContent = (a.title || a.id) + " — " + t("alerts.level." + a.level);
      report.querySelector("#alert-report-state").textContent = stateText(a) + (a.cap ? " · CAP " + a.cap.identifier : "") + (a.reason ? " · " + a.reason : "");
      // Counted from the report: a cancelled receiver is cancelled, not failed.
      const byArea = new Map();
      const all = tally();
      for (const d of a.report || []) {
        add(all, d);
        for (let id = d.area, n = 0; id && n < 16; id = parentOf[id], n++) {
          if (!rank.has(id)) continue;
          if (!byArea.has(id)) byArea.set(id, tally());
          add(byArea.get(id), d);
        }
      }
      report.querySelector("#alert-report-all").textContent = t("alerts.report.total", {
        n: all.receivers, finished: all.finished, started: all.started, waiting: all.waiting, failed: all.failed,
      }) + (all.cancelled ? t("alerts.report.total.cancelled", { n: all.cancelled }) : "");
      report.querySelector("#alert-cancel").hidden = a.state !== "active";
      areaRows.reset([...byArea].map(([id, c]) => Object.assign({ id }, c)));
      failedRows.reset((a.report || []).filter((d) => d.state === "failed" && !cancelled(d)).map((d) => Object.assign({ id: d.device }, d)));
      const gone = (a.report || []).filter(cancelled).map((d) => Object.assign({ id: d.device }, d));
      cancelledRows.reset(gone);
      report.querySelector("#alert-cancelled-title").hidden = gone.length === 0;
    };

    // An active alert's report comes from its own stream
    // (GET /alerts/{id}/events: the report on every change, until it
    // ends); the page's one stream only says which alerts changed.
    let watch = null;
    const unwatch = () => { if (watch) watch.close(); watch = null; };
    const follow = (a) => {
      if (a.state !== "active") { unwatch(); return; }
      if (watch && watch.alertID === a.id) return;
      unwatch();
      watch = new EventSource(api.eventURL("/api/v1/alerts/" + encodeURIComponent(a.id) + "/events"));
      watch.alertID = a.id;
      watch.addEventListener("report", (ev) => {
        const r = JSON.parse(ev.data);
        if (r.id !== current) return;
        render(r);
        if (r.state !== "active") unwatch();
      });
    };
    const show = async (id, first) => {
      if (id !== current) { open.clear(); drills.clear(); areaRows.reset([]); unwatch(); }
      current = id;
      try {
        const a = first || await api.get("/api/v1/alerts/" + encodeURIComponent(id));
        if (id !== current) return;
        render(a);
        follow(a);
      } catch (e) {
        say(errorText(e), true);
      }
    };

    report.querySelector("#alert-cancel").addEventListener("click", async () => {
      const id = current;
      if (!id || !window.confirm(t("alerts.cancel.confirm"))) return;
      const cerr = report.querySelector("#alert-cancel-error");
      cerr.hidden = true;
      try {
        const a = await api.post("/api/v1/alerts/" + encodeURIComponent(id) + "/cancel", { reason: "hủy từ bàn cảnh báo" });
        render(a);
        follow(a);
        say(t("alerts.cancelled"));
      } catch (e) {
        cerr.textContent = errorText(e);
        cerr.hidden = false;
      }
    });

    capForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(capForm);
      capNote.hidden = true;
      const f = capFile.files[0];
      if (!f) { showError(capForm, { code: "required", field: "cap" }, { cap: "cap-file" }, capErr); return; }
      try {
        const res = await fetch("/api/v1/alerts/cap", {
          method: "POST", credentials: "same-origin",
          headers: Object.assign({ "Content-Type": "application/cap+xml" }, api.authHeaders("POST")),
          body: await f.text(),
        });
        const data = await res.json().catch(() => null);
        if (!res.ok) throw new api.ApiError(res.status, data, res.headers.get("Retry-After"));
        capForm.reset();
        if (res.status === 202) {
          capNote.textContent = t("alerts.cap.notsounded", { reason: (data && data.reason) || "" });
          capNote.hidden = false;
          return;
        }
        capNote.textContent = t(res.status === 201 ? "alerts.cap.sent" : "alerts.cap.cancelled", { title: data.title || data.id });
        capNote.hidden = false;
        show(data.id, data);
      } catch (e) {
        showError(capForm, e, {}, capErr);
      }
    });

    // The history: pages of the past alerts, newest first; the first
    // page follows the event stream.
    history = new List(historyBox,
      (a) => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" }),
        el("button", { type: "button", class: "view", text: t("alerts.view"), "aria-label": t("alerts.view.named", { title: a.title || a.id }), onclick: () => show(a.id) })),
      (li, a) => {
        li.querySelector(".title").textContent = (a.title || a.id) + " — " + t("alerts.level." + a.level);
        li.classList.toggle("emergency", a.level === "khan_cap");
        const all = a.totals || {};
        li.querySelector(".meta").textContent = [dateTime(a.created_at), stateText(a), (all.finished || 0) + "/" + (all.receivers || 0)].join(" · ");
      },
      t("alerts.recent.empty"), (x, y) => (y.created_at || "").localeCompare(x.created_at || ""));
    let seq = 0;
    const loadHistory = async () => {
      const my = ++seq;
      try {
        const got = await api.get("/api/v1/alerts?report=false&limit=" + (HISTORY_PAGE + 1) + "&offset=" + page * HISTORY_PAGE);
        if (my !== seq) return;
        history.reset(got.slice(0, HISTORY_PAGE).map(summary));
        prev.disabled = page === 0;
        next.disabled = got.length <= HISTORY_PAGE;
        pageText.textContent = t("log.page", { n: page + 1 });
      } catch (e) {
        say(errorText(e), true);
      }
    };
    prev.addEventListener("click", () => { if (page > 0) { page--; loadHistory(); } });
    next.addEventListener("click", () => { page++; loadHistory(); });
    csv.addEventListener("click", async (ev) => {
      if (!api.bearer()) return; // a token sign-in has no cookie for a plain link
      ev.preventDefault();
      const res = await fetch(csv.href, { headers: api.authHeaders("GET") });
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: csv.getAttribute("download") });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
    loadHistory();

    const off = events.on("alerts", (ch) => {
      if (page === 0) for (const a of ch.changed || []) history.put(a);
      // Without its own stream (it ended, or the stream came back after a
      // gap), the shown alert is read again when it changed.
      if (current && !watch && (ch.reset || (ch.changed || []).some((a) => a.id === current))) show(current);
    });
    return () => { off(); unwatch(); if (previewURL) URL.revokeObjectURL(previewURL); };
  },
};

// confirmExtras adds lines the dry run's answer carries beyond the
// receiver counts (issue 17 adds the receivers on battery here).
function confirmExtras(box, power) {
  box.replaceChildren();
  if (power && power.on_battery) {
    box.append(el("p", { class: "battery", text: t("alerts.confirm.battery", { n: power.on_battery, online: power.online, min: power.min_runtime_min }) }));
  }
}

function tally() { return { receivers: 0, waiting: 0, started: 0, finished: 0, failed: 0, cancelled: 0 }; }

function add(c, d) {
  c.receivers++;
  if (d.state === "queued" || d.state === "acked") c.waiting++;
  else if (d.state === "started") c.started++;
  else if (d.state === "finished") c.finished++;
  else if (d.state === "failed" && d.reason === "cancelled") c.cancelled++;
  else if (d.state === "failed") c.failed++;
}

// summary is an alert as the history lists it.
function summary(a) {
  return { id: a.id, title: a.title, level: a.level, state: a.state, test: a.test, created_at: a.created_at,
    totals: (a.totals && a.totals.all) || a.totals || {} };
}
