// Reports upward (báo cáo): choose an area and a month (or a range of
// days dd/MM/yyyy), see the report's numbers (docs/reports.md), and
// download it as CSV, XLSX or the printable PDF. The numbers are read once
// per request: a report is of a past period, nothing follows live.

import * as api from "../api.js";
import { dateTime, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { parseDate } from "./log.js";
import { clearErrors, el, field, options, showError } from "../ui.js";

const FORMATS = ["pdf", "xlsx", "csv"];

export default {
  path: "reports",
  nav: "reports.nav",
  allowed: (ctx) => ctx.can("read"),
  mount(root, ctx) {
    const tree = treeOrder(ctx.areas).filter(([id]) => {
      const a = ctx.areas.find((x) => x.id === id);
      return a && a.kind !== "cluster";
    });
    const area = options(el("select", { id: "reports-area", name: "area" }),
      tree.map(([id, label, depth]) => [id, "\u00a0".repeat(2 * depth) + label]));
    if (ctx.area && tree.some(([id]) => id === ctx.area)) area.value = ctx.area;
    // This month and the last twelve, last month chosen (the report a
    // commune sends up); months are the station's (its zone).
    const zone = (ctx.me.station && ctx.me.station.zone) || "Asia/Ho_Chi_Minh";
    const p = {};
    for (const x of new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit" }).formatToParts(new Date())) p[x.type] = x.value;
    const months = [];
    for (let i = 0; i <= 12; i++) {
      const d = new Date(Date.UTC(Number(p.year), Number(p.month) - 1 - i, 1));
      const mm = String(d.getUTCMonth() + 1).padStart(2, "0");
      months.push([d.getUTCFullYear() + "-" + mm, i === 0 ? t("reports.month.current") : t("reports.month.label", { m: mm, y: d.getUTCFullYear() })]);
    }
    const month = options(el("select", { id: "reports-month", name: "month" }), months);
    month.value = months[1][0];
    const from = el("input", { id: "reports-from", name: "from", inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off", maxlength: "10" });
    const to = el("input", { id: "reports-to", name: "to", inputmode: "numeric", placeholder: "dd/mm/yyyy", autocomplete: "off", maxlength: "10" });
    const err = el("p", { class: "action-error", id: "reports-error", role: "alert", hidden: true });
    const links = FORMATS.map((f) => el("a", { id: "reports-" + f, class: "button", href: "#", text: t("reports.download." + f), hidden: true }));
    const form = el("form", { id: "reports-form", class: "card wide" },
      el("div", { class: "filter-row" }, field(t("reports.area"), area), field(t("reports.month"), month)),
      el("p", { class: "meta", text: t("reports.range.hint") }),
      el("div", { class: "filter-row" }, field(t("reports.from"), from), field(t("reports.to"), to)),
      el("div", { class: "buttons" }, el("button", { type: "submit", id: "reports-show", text: t("reports.show") }), ...links), err);
    const out = el("div", { id: "reports-result", "aria-live": "polite" });
    root.append(el("h1", { tabindex: "-1", text: t("reports.title") }), form, out);

    let seq = 0;
    const query = () => {
      const q = new URLSearchParams();
      if (!area.value) throw Object.assign(new Error(""), { code: "invalid", field: "area" });
      q.set("area", area.value);
      const f = from.value.trim(), e = to.value.trim();
      if (f || e) {
        for (const [ctl, name, v] of [[from, "from", f], [to, "to", e]]) {
          const d = parseDate(v);
          if (!d) throw Object.assign(new Error(v), { code: "bad_date", field: name });
          ctl.dataset.iso = d;
          q.set(name, d);
        }
        if (q.get("to") < q.get("from")) throw Object.assign(new Error(""), { code: "date_order", field: "to" });
      } else {
        q.set("month", month.value);
      }
      return q;
    };
    const show = async (ev) => {
      if (ev) ev.preventDefault();
      clearErrors(form);
      let q;
      try {
        q = query();
      } catch (e) {
        showError(form, e, { area: "reports-area", from: "reports-from", to: "reports-to" }, err);
        return;
      }
      const my = ++seq;
      try {
        const rep = await api.get("/api/v1/reports/broadcast?" + q);
        if (my !== seq) return;
        for (const a of links) {
          const f = a.id.slice("reports-".length);
          a.href = "/api/v1/reports/broadcast?" + q + "&format=" + f;
          a.setAttribute("download", "bao-cao-" + rep.area.id + "-" + rep.from + "-" + rep.to + "." + f);
          a.hidden = false;
        }
        out.replaceChildren(...render(rep, ctx));
      } catch (e) {
        if (my === seq) showError(form, e, { area: "reports-area", from: "reports-from", to: "reports-to", month: "reports-month" }, err);
      }
    };
    form.addEventListener("submit", show);
    // A token sign-in has no cookie for a plain link: fetch with its header.
    for (const a of links) {
      a.addEventListener("click", async (ev) => {
        if (!api.bearer()) return;
        ev.preventDefault();
        const res = await fetch(a.href, { headers: api.authHeaders("GET") });
        const url = URL.createObjectURL(await res.blob());
        const tmp = el("a", { href: url, download: a.getAttribute("download") });
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      });
    }
    show();
    return () => { seq++; };
  },
};

// num shows a number the Vietnamese way (decimal comma); -1 is "no value".
function num(x, unit) {
  if (x === undefined || x === null || x < 0) return "—";
  return x.toLocaleString("vi-VN", { maximumFractionDigits: 2 }) + (unit || "");
}

function facts(pairs) {
  return el("dl", { class: "facts" }, ...pairs.map(([k, v, id]) => el("div", id ? { "data-fact": id } : {}, el("dt", { text: k }), el("dd", { text: v }))));
}

// section is a titled card holding a list of cards (one per row): tables
// do not fit a phone.
function section(id, title, rows, line, empty) {
  const list = el("ul", { class: "cards" });
  if (!rows.length) list.append(el("li", { class: "empty", text: empty || t("reports.none") }));
  for (const r of rows) {
    const [head, meta] = line(r);
    list.append(el("li", { class: "card" }, el("p", { class: "title", text: head }), el("p", { class: "meta", text: meta })));
  }
  return el("section", { id: "reports-" + id, class: "report-section" }, el("h2", { text: title }), list);
}

function render(r, ctx) {
  const why = (w) => t("reports.why." + w);
  const cat = (c) => t("reports.category." + c);
  return [
    el("section", { class: "card wide", id: "reports-summary" },
      el("h2", { text: t("reports.heading", { area: r.area.name, from: r.from.split("-").reverse().join("/"), to: r.to.split("-").reverse().join("/") }) }),
      el("p", { class: "meta", text: r.station + " · " + t("reports.generated", { t: dateTime(r.generated_at) }) }),
      facts([
        [t("reports.aired.programmes"), num(r.aired.programmes), "programmes"],
        [t("reports.aired.hours"), num(r.aired.hours), "hours"],
        [t("reports.missed"), num(r.missed.total), "missed"],
        [t("reports.cut"), num(r.cut), "cut"],
        [t("reports.alerts"), t("reports.alerts.value", { n: r.alerts.count, pct: num(r.alerts.rate_pct, " %") }), "alerts"],
        [t("reports.availability"), num(r.availability.pct, " %"), "availability"],
        [t("reports.alarms"), t("reports.alarms.value", { raised: r.alarms.raised, repaired: r.alarms.repaired }), "alarms"],
        [t("reports.mttr"), num(r.alarms.mttr_minutes, " " + t("reports.minutes")), "mttr"],
        [t("reports.data"), num(r.data.bytes / 1e6, " MB"), "data"],
      ])),
    section("categories", t("reports.by.category"), r.aired.by_category.concat(r.aired.by_band.map((b) => Object.assign({ band: true }, b))),
      (b) => [(b.band ? t("band." + b.key) : cat(b.key)), t("reports.bucket", { n: b.programmes, h: num(b.hours) })]),
    r.communes.length ? section("communes", t("reports.communes"), r.communes, (c) => [c.name,
      t("reports.commune.line", { n: c.programmes, h: num(c.hours), missed: c.missed, cut: c.cut, alerts: num(c.alert_rate_pct, " %"), avail: num(c.availability_pct, " %") })]) : null,
    section("lost", t("reports.lost"), r.missed.list.concat(r.cut_list), (p) => [dateTime(p.at) + " · " + why(p.why),
      [cat(p.category), p.content || ""].filter(Boolean).join(" · ")]),
    section("alerts", t("reports.alerts.list"), r.alerts.list, (a) => [dateTime(a.at) + " · " + a.title,
      t("reports.alert.line", { got: a.delivered, n: a.receivers, pct: num(a.rate_pct, " %") })]),
    section("villages", t("reports.villages"), r.availability.villages, (v) => [v.name,
      t("reports.avail.line", { pct: num(v.pct, " %"), on: num(v.hours_online), exp: num(v.hours_expected), n: v.receivers })]),
    section("receivers", t("reports.receivers"), r.availability.receivers, (x) => {
      const d = r.data.receivers.find((y) => y.device === x.device) || { bytes: 0 };
      return [x.name === x.device ? x.name : x.name + " (" + x.device + ")", t("reports.receiver.line", { pct: num(x.pct, " %"), on: num(x.hours_online), mb: num(d.bytes / 1e6) })];
    }),
    section("alarms", t("reports.alarms.kinds"), r.alarms.by_kind, (k) => [t("reports.alarm." + k.kind),
      t("reports.alarm.line", { raised: k.raised, repaired: k.repaired, mttr: num(k.mttr_minutes) })]),
    el("p", { class: "meta", text: t("reports.notes") }),
  ].filter(Boolean);
}
