// The alert desk: send an alert (spoken text or a programme) to chosen
// areas, follow its delivery report, cancel it. Admin and province only
// (the ones who may send khẩn cấp). The recent alerts and their totals
// come from the event stream; the report of the alert shown is read
// again when the stream says it changed. The area checkboxes are built
// once: no live update touches them.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, errorText, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const TEXT_MAX = 2000;

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
    const media = options(el("select", { id: "alert-media", name: "media_id" }), ctx.media.map((m) => [m.id, m.name]));
    const textRow = el("div", {}, field(t("alerts.text"), text), count);
    const mediaRow = el("div", { hidden: true }, field(t("alerts.media"), media));
    const areaBox = el("div", { class: "choices", id: "alert-areas" });
    for (const [id, label, depth] of treeOrder(ctx.areas)) {
      const i = el("input", { type: "checkbox", name: "area", value: id, id: "alert-area-" + id });
      areaBox.append(el("label", { class: "depth-" + Math.min(depth, 4), for: i.id }, i, " " + label));
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
    const form = el("form", { id: "alert-form", class: "card" },
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

    const report = el("section", { id: "alert-report", class: "panel", hidden: true, "aria-labelledby": "alert-report-title" },
      el("h2", { id: "alert-report-title" }), el("p", { id: "alert-report-state" }), el("p", { id: "alert-report-all" }),
      el("button", { type: "button", id: "alert-cancel", class: "stop", hidden: true, text: t("alerts.cancel") }),
      el("p", { class: "action-error", id: "alert-cancel-error", role: "alert", hidden: true }),
      el("ul", { id: "alert-areas-report", class: "cards" }),
      el("h3", { text: t("alerts.report.failed") }), el("ul", { id: "alert-failed", class: "cards" }));
    const recentBox = el("ul", { id: "alerts-recent", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("alerts.title") }), form, report,
      el("section", { class: "panel", "aria-labelledby": "h-recent" }, el("h2", { id: "h-recent", text: t("alerts.recent") }), recentBox));

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

    let current = ""; // the alert whose report is shown
    let recent = null; // the recent alerts, built below
    const stateText = (a) => t("alerts.state." + a.state) + (a.test ? " · " + t("alerts.drill") : "");
    const render = (a) => {
      report.hidden = false;
      // What the desk itself just did shows in the recent list at once.
      if (recent) recent.put({ id: a.id, title: a.title, level: a.level, state: a.state, test: a.test, created_at: a.created_at, totals: (a.totals && a.totals.all) || {} });
      report.querySelector("#alert-report-title").textContent = (a.title || a.id) + " — " + t("alerts.level." + a.level);
      report.querySelector("#alert-report-state").textContent = stateText(a) + (a.cap ? " · CAP " + a.cap.identifier : "") + (a.reason ? " · " + a.reason : "");
      const all = (a.totals && a.totals.all) || {};
      report.querySelector("#alert-report-all").textContent = t("alerts.report.total", {
        n: all.receivers || 0, finished: all.finished || 0, started: all.started || 0,
        waiting: (all.queued || 0) + (all.acked || 0), failed: all.failed || 0,
      });
      report.querySelector("#alert-cancel").hidden = a.state !== "active";
      const targets = new Set((a.targets && a.targets.areas) || []);
      const areas = Object.entries((a.totals && a.totals.areas) || {})
        .filter(([id]) => targets.has(id) || (a.report || []).some((d) => d.area === id));
      areaRows.reset(areas.map(([id, c]) => Object.assign({ id }, c)));
      failedRows.reset((a.report || []).filter((d) => d.state === "failed").map((d) => Object.assign({ id: d.device }, d)));
    };
    const areaRows = new List(report.querySelector("#alert-areas-report"),
      () => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, c) => {
        li.querySelector(".title").textContent = ctx.areaName(c.id) + " · " + c.receivers;
        li.querySelector(".meta").textContent = t("alerts.waiting") + " " + (c.queued + c.acked) + " · " + t("alerts.playing") + " " + c.started +
          " · " + t("alerts.done") + " " + c.finished + " · " + t("alerts.failed") + " " + c.failed;
      }, "", (x, y) => ctx.areaName(x.id).localeCompare(ctx.areaName(y.id), "vi"));
    const failedRows = new List(report.querySelector("#alert-failed"),
      () => el("li", { class: "card emergency" }, el("p", { class: "title" })),
      (li, d) => { li.querySelector(".title").textContent = d.device + " · " + ctx.areaName(d.area) + " · " + t("reason." + d.reason); },
      t("alerts.report.failed.empty"), (x, y) => x.id.localeCompare(y.id));

    const show = async (id, first) => {
      current = id;
      try {
        render(first || await api.get("/api/v1/alerts/" + encodeURIComponent(id)));
      } catch (e) {
        say(errorText(e), true);
      }
    };

    recent = new List(recentBox,
      (a) => el("li", { class: "card" }, el("p", { class: "title" }), el("p", { class: "meta" }),
        el("button", { type: "button", text: t("alerts.view"), onclick: () => show(a.id) })),
      (li, a) => {
        li.querySelector(".title").textContent = (a.title || a.id) + " — " + t("alerts.level." + a.level);
        li.classList.toggle("emergency", a.level === "khan_cap");
        const all = a.totals || {};
        li.querySelector(".meta").textContent = [dateTime(a.created_at), stateText(a), (all.finished || 0) + "/" + (all.receivers || 0)].join(" · ");
      },
      t("alerts.recent.empty"), (x, y) => (y.created_at || "").localeCompare(x.created_at || ""));

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const areas = [...areaBox.querySelectorAll("input:checked")].map((i) => i.value);
      if (areas.length === 0) {
        areasErr.textContent = t("alerts.noarea");
        areasErr.hidden = false;
        areaBox.querySelector("input")?.focus();
        return;
      }
      const content = { tone: tone.checked };
      if (kind() === "text") content.text = text.value.trim();
      else content.media_id = media.value;
      const body = {
        title: title.value.trim(), level: level.value, content, targets: { areas },
        repeats: Number(repeats.value) || 1, gap: (Number(gap.value) || 0) + "s", expires_in: expires.value, test: test.checked,
      };
      const what = t("alerts.level." + body.level).toUpperCase() + (body.test ? " (" + t("alerts.drill") + ")" : "");
      // How many targets run on battery, and for how long (best effort: the preview never blocks sending).
      const pv = await api.post("/api/v1/alerts/preview-targets", { targets: body.targets }).catch(() => null);
      const power = pv && pv.on_battery ? "\n" + t("alerts.confirm.battery", { n: pv.on_battery, online: pv.online, min: pv.min_runtime_min }) : "";
      if (!window.confirm(t("alerts.confirm", { level: what, areas: areas.map(ctx.areaName).join(", ") }) + power)) return;
      send.disabled = true;
      say(t("alerts.sending"));
      try {
        const a = await api.post("/api/v1/alerts", body);
        say(t("alerts.sent", { n: a.totals.all.receivers }));
        show(a.id, a);
      } catch (e) {
        say("");
        showError(form, e, { title: "alert-title", level: "alert-level", "content.text": "alert-text", content: "alert-text",
          "content.media_id": "alert-media", targets: "alert-areas", repeats: "alert-repeats", gap: "alert-gap", expires_in: "alert-expires" }, err);
      } finally {
        send.disabled = false;
      }
    });

    report.querySelector("#alert-cancel").addEventListener("click", async () => {
      const id = current;
      if (!id || !window.confirm(t("alerts.cancel.confirm"))) return;
      const cerr = report.querySelector("#alert-cancel-error");
      cerr.hidden = true;
      try {
        render(await api.post("/api/v1/alerts/" + encodeURIComponent(id) + "/cancel", { reason: "hủy từ bàn cảnh báo" }));
        say(t("alerts.cancelled"));
      } catch (e) {
        cerr.textContent = errorText(e);
        cerr.hidden = false;
      }
    });

    return events.on("alerts", (ch) => {
      recent.apply(ch);
      if (!ch.reset && current && (ch.changed || []).some((a) => a.id === current)) show(current);
    });
  },
};
