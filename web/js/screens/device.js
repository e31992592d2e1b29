// One receiver (route device/<id>): identity, state, firmware, sync
// quality, its delay offset, its active alarms, health history charts
// over 1, 7 or 30 days (inline SVG drawn here), and commands with their
// results for roles with `device`.

import * as api from "../api.js";
import * as events from "../events.js";
import { clock, dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, say, showError } from "../ui.js";
import { loss } from "./devices.js";

const FINAL = ["done", "failed", "expired", "timeout", "unavailable"];
// Range in days → the health step that keeps a chart to at most 168 points.
const RANGES = [[1, "1h", 3600], [7, "1h", 3600], [30, "6h", 6 * 3600]];

export default {
  path: "device",
  nav: null, // opened from the receivers' list
  allowed: () => true,
  mount(root, ctx) {
    const id = decodeURIComponent(location.hash.replace(/^#\/?device\/?/, "").split("?")[0]);
    let alive = true;
    const h1 = el("h1", { tabindex: "-1", id: "device-title", text: id });
    root.append(el("p", { class: "back" }, el("a", { href: "#/devices", text: "← " + t("devices.title") })), h1);
    const err = el("p", { class: "action-error", id: "device-error", role: "alert", hidden: true });
    root.append(err);

    // Identity and state, patched in place.
    const rows = {};
    const dl = el("dl", { class: "facts", id: "device-facts" });
    for (const k of ["id", "name", "area", "state", "firmware", "signal", "volume", "temp", "loss", "sync", "offset"]) {
      rows[k] = el("dd", { id: "device-" + k });
      dl.append(el("div", {}, el("dt", { text: t("device." + k) }), rows[k]));
    }
    const facts = el("section", { class: "panel", "aria-labelledby": "h-device-facts" }, el("h2", { id: "h-device-facts", text: t("device.facts") }), dl);
    const alarmBox = el("ul", { id: "device-alarms", class: "cards" });
    const alarmsPanel = el("section", { class: "panel", "aria-labelledby": "h-device-alarms" }, el("h2", { id: "h-device-alarms", text: t("device.alarms") }), alarmBox);
    root.append(el("div", { class: "grid" }, facts, alarmsPanel));

    let dev = null;
    const show = (d) => {
      dev = d;
      const st = d.state || {};
      const tl = st.telemetry;
      h1.textContent = d.name && d.name !== d.id ? d.name + " (" + d.id + ")" : d.id;
      rows.id.textContent = d.id;
      rows.name.textContent = d.name || "–";
      rows.area.textContent = ctx.areaName(d.area_id);
      rows.state.textContent = (st.online ? "● " + t("devices.online") : "○ " + t("devices.offline")) +
        (st.online && st.online_since ? " · " + t("device.since", { t: dateTime(st.online_since) }) : "") +
        (!st.online && st.last_seen ? " · " + t("device.lastseen", { t: dateTime(st.last_seen) }) : "");
      rows.state.className = st.online ? "on" : "off";
      rows.firmware.textContent = (tl && tl.fw) || "–";
      rows.signal.textContent = tl ? tl.rssi + " dBm" + (tl.net ? " (" + tl.net + ")" : "") : "–";
      rows.volume.textContent = tl ? (tl.muted ? t("devices.muted") + " · " : "") + tl.volume : "–";
      rows.temp.textContent = tl ? tl.temp_c.toFixed(1) + " °C" : "–";
      rows.loss.textContent = (tl && loss(tl.stream)) || "–";
      rows.sync.textContent = tl && tl.sync && tl.sync.source !== "none"
        ? "±" + tl.sync.sync_err_ms.toFixed(1) + " ms, " + tl.sync.drift_ppm.toFixed(1) + " ppm (" + tl.sync.source + ")" : t("device.sync.none");
      rows.offset.textContent = (d.offset_ms || 0) + " ms";
      if (offset && document.activeElement !== offset) offset.value = d.offset_ms || 0;
    };
    const reload = () => api.get("/api/v1/devices/" + encodeURIComponent(id)).then((d) => { if (alive) show(d); })
      .catch((e) => { if (alive) { err.textContent = errorText(e); err.hidden = false; } });

    // The delay offset (PATCH offset_ms).
    let offset = null;
    if (ctx.can("device")) {
      offset = el("input", { id: "device-offset-input", name: "offset_ms", type: "number", step: "1", inputmode: "numeric" });
      const oerr = el("p", { class: "action-error", id: "device-offset-form-error", role: "alert", hidden: true });
      const oform = el("form", { id: "device-offset-form", class: "inline-form" }, field(t("device.offset.edit"), offset),
        el("button", { type: "submit", text: t("device.offset.save") }), oerr);
      oform.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearErrors(oform);
        try {
          show(await api.request("PATCH", "/api/v1/devices/" + encodeURIComponent(id), { offset_ms: Number(offset.value) }));
          say(t("device.offset.saved", { ms: offset.value }));
        } catch (e) {
          showError(oform, e, { offset_ms: "device-offset-input" }, oerr);
        }
      });
      facts.append(oform);
    }

    // Active alarms of this receiver, from the event stream.
    const alarms = new List(alarmBox, () => el("li", { class: "card alarm" }, el("p", { class: "title" }), el("p", { class: "meta" })),
      (li, a) => {
        li.querySelector(".title").textContent = t("alarm." + a.kind);
        li.classList.toggle("emergency", a.severity === "critical");
        li.querySelector(".meta").textContent = [dateTime(a.raised_at), a.ack ? t("alarms.acked", { by: who(a.ack.by), t: dateTime(a.ack.at) }) + (a.ack.note ? ": " + a.ack.note : "") : ""]
          .filter(Boolean).join(" · ");
      }, t("device.alarms.empty"), (x, y) => (y.raised_at || "").localeCompare(x.raised_at || ""));
    const mine = new Set();

    // Health history.
    const range = el("fieldset", { class: "choices range", id: "device-range" }, el("legend", { text: t("device.range") }),
      ...RANGES.map(([d], i) => el("label", {}, el("input", { type: "radio", name: "device-range", value: String(d), checked: i === 0, id: "device-range-" + d }), t("device.days", { n: d }))));
    const charts = el("div", { class: "charts", id: "device-charts" });
    root.append(el("section", { class: "panel", "aria-labelledby": "h-device-health" }, el("h2", { id: "h-device-health", text: t("device.health") }), range, charts));
    const drawHealth = async () => {
      const days = Number((range.querySelector("input:checked") || {}).value || 1);
      const [, step, secs] = RANGES.find(([d]) => d === days);
      const to = new Date();
      const from = new Date(to.getTime() - days * 86400 * 1000);
      try {
        const hours = await api.get("/api/v1/devices/" + encodeURIComponent(id) + "/health?from=" + encodeURIComponent(from.toISOString()) +
          "&to=" + encodeURIComponent(to.toISOString()) + "&step=" + step);
        if (!alive) return;
        const at = (h) => new Date(h.hour).getTime();
        const series = [
          ["signal", "dBm", hours.filter((h) => h.samples > 0).map((h) => [at(h), h.rssi_avg])],
          ["loss", "%", hours.filter((h) => h.received + h.lost > 0).map((h) => [at(h), (100 * h.lost) / (h.received + h.lost)])],
          ["temp", "°C", hours.filter((h) => h.samples > 0).map((h) => [at(h), h.temp_max_c])],
          // Of the step's time so far: the step in progress is not over.
          ["online", "%", hours.map((h) => [at(h), Math.min(100, (100 * h.online_s) / Math.max(1, Math.min(secs, (to - at(h)) / 1000)))])],
        ];
        charts.replaceChildren(...series.map(([k, unit, pts]) => chart(k, t("device.chart." + k), unit, pts, from.getTime(), to.getTime(), days)));
      } catch (e) {
        charts.replaceChildren(el("p", { class: "action-error", role: "alert", text: errorText(e) }));
      }
    };
    range.addEventListener("change", drawHealth);

    if (ctx.can("device")) root.append(commandPanel(id, reload, () => alive));

    reload();
    drawHealth();
    const offs = [
      events.on("devices", (ch) => { if ((ch.changed || []).some((p) => p.id === id)) reload(); }),
      events.on("alarms", (ch) => {
        if (ch.reset) { mine.clear(); alarms.reset([]); }
        for (const a of ch.changed || []) if (a.device === id) { mine.add(a.id); alarms.put(a); }
        for (const aid of ch.removed || []) if (mine.has(aid)) { mine.delete(aid); alarms.remove(aid); }
      }),
    ];
    // Telemetry has no event: the facts are read again now and then, the
    // charts every minute (the hour in progress grows).
    let ticks = 0;
    const timer = setInterval(() => { reload(); if (++ticks % 4 === 0) drawHealth(); }, 15000);
    return () => { alive = false; offs.forEach((f) => f()); clearInterval(timer); };
  },
};

// who names an actor of the audit log: a person by username.
export function who(actor) { return String(actor || "").replace(/^user:/, ""); }

// chart draws one series as an inline SVG: a line through its points,
// a dot on each, the y range and the time range as labels.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function chart(key, title, unit, pts, x0, x1, days) {
  const W = 600, H = 200, L = 64, R = 12, T = 16, B = 32;
  const id = "chart-" + key;
  const fig = el("figure", { class: "chart", id });
  const cap = el("figcaption", { id: id + "-title", text: title + " (" + unit + ")" });
  if (!pts.length) {
    fig.append(cap, el("p", { class: "hint", text: t("device.chart.empty") }));
    return fig;
  }
  const ys = pts.map((p) => p[1]);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (unit === "%") { lo = 0; hi = Math.max(hi, key === "online" ? 100 : 1); }
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const x = (v) => L + ((v - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const fmt = (v) => (Number.isInteger(v) || Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(1));
  const when = (ms) => { const d = dateTime(ms); return d.slice(0, 5) + (days === 1 ? " " + d.slice(11) : ""); }; // dd/MM (HH:mm)
  const last = pts[pts.length - 1];
  const desc = t("device.chart.desc", { n: pts.length, min: fmt(Math.min(...ys)), max: fmt(Math.max(...ys)), last: fmt(last[1]), unit });
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": id + "-title " + id + "-desc", class: "chart-svg" },
    svg("desc", { id: id + "-desc" }, desc),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("text", { x: L - 8, y: T + 14, "text-anchor": "end", class: "label" }, fmt(hi)),
    svg("text", { x: L - 6, y: H - B, "text-anchor": "end", class: "label" }, fmt(lo)),
    svg("text", { x: L, y: H - 8, class: "label" }, when(x0)),
    svg("text", { x: W - R, y: H - 8, "text-anchor": "end", class: "label" }, when(x1)),
    svg("polyline", { points: pts.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "), class: "line" }),
    ...pts.map((p) => svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 4, class: "point" },
      svg("title", {}, dateTime(p[0]) + ": " + fmt(p[1]) + " " + unit))));
  fig.append(cap, g, el("p", { class: "hint", text: desc }));
  return fig;
}

// commandPanel: volume, mute, amplifier, speaker test, reboot and config,
// each result listed and followed (GET /commands/{id}) until final.
function commandPanel(id, reload, alive) {
  const results = el("ul", { id: "device-commands", class: "cards" });
  const err = el("p", { class: "action-error", id: "device-command-error", role: "alert", hidden: true });
  const list = new List(results, () => el("li", { class: "card command" }, el("p", { class: "title" }), el("p", { class: "meta" })),
    (li, r) => {
      li.querySelector(".title").textContent = r.label + ": " + t("device.cmd.state." + r.state);
      li.classList.toggle("failed", ["failed", "expired", "timeout", "unavailable"].includes(r.state));
      li.querySelector(".meta").textContent = [clock(r.sent_at), r.code, r.msg].filter(Boolean).join(" · ");
    }, t("device.cmd.none"), (a, b) => (b.sent_at || "").localeCompare(a.sent_at || ""));
  const panel = el("section", { class: "panel", "aria-labelledby": "h-device-cmd" }, el("h2", { id: "h-device-cmd", text: t("device.commands") }));
  const follow = async (r, label) => {
    r = Object.assign({}, r, { label });
    list.put(r);
    for (let wait = 500; alive() && !FINAL.includes(r.state); wait = Math.min(wait * 2, 4000)) {
      await new Promise((ok) => setTimeout(ok, wait));
      try { r = Object.assign(await api.get("/api/v1/commands/" + encodeURIComponent(r.id)), { label }); } catch (e) { break; }
      if (alive()) list.put(r);
    }
    if (alive() && r.state === "done") reload();
  };
  const send = async (op, args, label, fields) => {
    clearErrors(panel);
    try {
      await follow(await api.post("/api/v1/devices/" + encodeURIComponent(id) + "/commands", args === undefined ? { op } : { op, args }), label);
    } catch (e) {
      showError(panel, e, fields || {}, err);
    }
  };
  const button = (bid, text, fn, cls) => {
    const b = el("button", { type: "button", id: bid, class: cls, text });
    b.addEventListener("click", fn);
    return b;
  };
  const volume = el("input", { id: "cmd-volume", name: "level", type: "number", min: "0", max: "100", step: "1", value: "70", inputmode: "numeric" });
  const vform = el("form", { class: "inline-form", id: "cmd-volume-form" }, field(t("device.cmd.volume"), volume),
    el("button", { type: "submit", id: "cmd-volume-send", text: t("device.cmd.volume.send") }));
  vform.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send("volume", { level: Number(volume.value) }, t("device.cmd.volume.label", { n: volume.value }), { args: "cmd-volume", "args.level": "cmd-volume" });
  });
  const tele = el("input", { id: "cmd-tele", name: "tele_interval_s", type: "number", min: "5", max: "3600", value: "10", inputmode: "numeric" });
  const delay = el("input", { id: "cmd-delay", name: "delay_ms", type: "number", min: "0", max: "10000", value: "200", inputmode: "numeric" });
  const bootVol = el("input", { id: "cmd-bootvol", name: "boot_volume", type: "number", min: "0", max: "100", inputmode: "numeric" });
  const cform = el("form", { class: "edit-body", id: "cmd-config-form" }, field(t("device.cmd.tele"), tele), field(t("device.cmd.delay"), delay),
    field(t("device.cmd.bootvol"), bootVol), el("button", { type: "submit", id: "cmd-config-send", text: t("device.cmd.config.send") }));
  cform.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const args = { tele_interval_s: Number(tele.value), delay_ms: Number(delay.value) };
    if (bootVol.value !== "") args.boot_volume = Number(bootVol.value);
    send("config", args, t("device.cmd.config"), { args: "cmd-tele" });
  });
  panel.append(vform,
    el("div", { class: "buttons" },
      button("cmd-mute", t("device.cmd.mute"), () => send("mute", { muted: true }, t("device.cmd.mute"))),
      button("cmd-unmute", t("device.cmd.unmute"), () => send("mute", { muted: false }, t("device.cmd.unmute"))),
      button("cmd-amp-on", t("device.cmd.amp.on"), () => send("amp", { on: true }, t("device.cmd.amp.on"))),
      button("cmd-amp-off", t("device.cmd.amp.off"), () => send("amp", { on: false }, t("device.cmd.amp.off"))),
      button("cmd-test", t("device.cmd.test"), () => send("test", undefined, t("device.cmd.test"))),
      button("cmd-reboot", t("device.cmd.reboot"), () => { if (window.confirm(t("device.cmd.reboot.confirm", { id }))) send("reboot", undefined, t("device.cmd.reboot")); }, "danger")),
    el("details", { class: "edit", id: "cmd-config" }, el("summary", { text: t("device.cmd.config") }), cform),
    err, el("h3", { text: t("device.cmd.results") }), results);
  return panel;
}
