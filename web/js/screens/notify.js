// People told: notification rules (which alarms, after how many minutes
// unacknowledged, reach whom by e-mail, SMS or webhook, and the chain of
// people after them) and the log of what was sent, failed and
// acknowledged. For those who manage areas (admins, province staff);
// the API keeps a scoped caller to rules of its own areas.

import * as api from "../api.js";
import { treeOrder } from "../areas.js";
import { dateTime, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, options, say, showError } from "../ui.js";

const KINDS = ["offline", "stream_loss", "amp_fault", "temperature", "test_failed", "mains_lost", "low_battery",
  "out_of_sync", "no_audience", "disk_space", "broker_link", "clock_step", "plain_receivers", "bulletin_deadline_missed",
  "backup_failed", "relay_failover", "cluster_node", "blob_missing", "no_quorum"];
const CHANNELS = ["email", "sms", "webhook"];
const LOG_EVERY = 15000; // ms: the log has no event topic; read again while the screen is open

export default {
  path: "notify",
  nav: "nav.notify",
  allowed: (ctx) => ctx.can("area"),
  mount(root, ctx) {
    let live = true;
    const areaPairs = () => {
      const pairs = treeOrder(ctx.areas).map(([id, l, d]) => [id, "\u00a0\u00a0".repeat(d) + l]);
      return ctx.area ? pairs : [["", t("notify.rule.area.all")], ...pairs];
    };
    const rulesBox = el("ul", { id: "notify-rules", class: "cards" });
    const logBox = el("ul", { id: "notify-log", class: "cards" });
    const rules = new List(rulesBox, (r) => ruleCard(r, ctx, (v) => rules.put(v), (id) => rules.remove(id)), (li, r) => fillRule(li, r, ctx),
      t("notify.rules.empty"), (a, b) => (a.name || a.id).localeCompare(b.name || b.id));
    root.append(el("h1", { tabindex: "-1", text: t("notify.title") }),
      ruleForm(ctx, areaPairs, (r) => rules.put(r)),
      el("section", { class: "panel", "aria-labelledby": "h-notify-rules" }, el("h2", { id: "h-notify-rules", text: t("notify.rules") }), rulesBox),
      el("section", { class: "panel", "aria-labelledby": "h-notify-log" }, el("h2", { id: "h-notify-log", text: t("notify.log") }), logBox));
    const log = new List(logBox, () => el("li", { class: "card notify-entry" }, el("p", { class: "title" }), el("p", { class: "meta" }), el("p", { class: "detail" })),
      (li, e) => fillEntry(li, e, ctx), t("notify.log.empty"), (a, b) => Number(b.id) - Number(a.id));
    api.get("/api/v1/notify/rules").then((rs) => { if (live) rules.reset(rs); }).catch((e) => say(errorText(e), true));
    const readLog = () => api.get("/api/v1/notify/log?limit=50").then((es) => { if (live) log.reset(es); }).catch((e) => say(errorText(e), true));
    readLog();
    const timer = setInterval(readLog, LOG_EVERY);
    return () => { live = false; clearInterval(timer); };
  },
};

// ruleForm adds a rule: what, where, after how long, and the chain.
function ruleForm(ctx, areaPairs, put) {
  const name = el("input", { id: "notify-name", name: "name", autocomplete: "off", maxlength: "200" });
  const area = options(el("select", { id: "notify-area", name: "area_id" }), areaPairs());
  const event = options(el("select", { id: "notify-event", name: "event" }), ["alarm", "alert_delivery"].map((e) => [e, t("notify.event." + e)]));
  const kinds = el("fieldset", { id: "notify-kinds", class: "kinds" }, el("legend", { text: t("notify.rule.kinds") }),
    ...KINDS.map((k) => el("label", { class: "check" }, el("input", { type: "checkbox", name: "alarm_kinds", value: k }), " ", t("alarm." + k))));
  const severity = options(el("select", { id: "notify-severity", name: "min_severity" }),
    [["", t("notify.severity.any")], ["warning", t("notify.severity.warning")], ["critical", t("notify.severity.critical")]]);
  const after = el("input", { id: "notify-after", name: "after_minutes", type: "number", min: "0", max: "10080", value: "10", inputmode: "numeric" });
  const below = el("input", { id: "notify-below", name: "below_percent", type: "number", min: "1", max: "100", value: "90", inputmode: "numeric" });
  const belowField = field(t("notify.rule.below"), below);
  const alarmOnly = [kinds, field(t("notify.rule.severity"), severity)];
  const showEvent = () => {
    const alarm = event.value === "alarm";
    for (const n of alarmOnly) n.hidden = !alarm;
    belowField.hidden = alarm;
  };
  event.addEventListener("change", showEvent);
  const steps = el("ol", { id: "notify-steps", class: "steps" });
  let next = 0;
  const addStep = (channel, minutes) => {
    const n = next++;
    const id = "notify-step-" + n;
    const user = el("input", { id: id + "-user", class: "step-user", name: "username", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "32", required: true });
    const ch = options(el("select", { id: id + "-channel", class: "step-channel", name: "channel" }), CHANNELS.map((c) => [c, t("notify.channel." + c)]));
    ch.value = channel;
    const min = el("input", { id: id + "-after", class: "step-after", name: "after_minutes", type: "number", min: "0", max: "10080", value: String(minutes), inputmode: "numeric" });
    const remove = el("button", { type: "button", class: "step-remove secondary", text: t("notify.step.remove") });
    const li = el("li", { class: "step" }, field(t("notify.step.user"), user), field(t("notify.step.channel"), ch), field(t("notify.step.after"), min), remove);
    remove.addEventListener("click", () => { if (steps.children.length > 1) li.remove(); });
    steps.append(li);
    return user;
  };
  addStep("email", 0);
  const add = el("button", { type: "button", id: "notify-step-add", class: "secondary", text: t("notify.step.add") });
  add.addEventListener("click", () => addStep("sms", 15).focus());
  const err = el("p", { class: "action-error", id: "notify-form-error", role: "alert", hidden: true });
  const button = el("button", { type: "submit", id: "notify-submit", text: t("notify.rule.submit") });
  const form = el("form", { id: "notify-form", class: "card", "aria-labelledby": "h-notify-new" },
    el("h2", { id: "h-notify-new", text: t("notify.rule.new") }),
    field(t("notify.rule.name"), name), field(t("notify.rule.area"), area), field(t("notify.rule.event"), event), ...alarmOnly, belowField,
    field(t("notify.rule.after"), after),
    el("fieldset", { class: "chain" }, el("legend", { text: t("notify.chain") }), steps, add), button, err);
  showEvent();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const alarm = event.value === "alarm";
    const body = {
      name: name.value.trim(), area_id: area.value, event: event.value, after_minutes: Number(after.value || 0),
      chain: [...steps.querySelectorAll("li.step")].map((li) => ({
        username: li.querySelector(".step-user").value.trim().toLowerCase(),
        channel: li.querySelector(".step-channel").value,
        after_minutes: Number(li.querySelector(".step-after").value || 0),
      })),
    };
    if (alarm) {
      body.alarm_kinds = [...kinds.querySelectorAll("input:checked")].map((c) => c.value);
      body.min_severity = severity.value;
    } else {
      body.below_percent = Number(below.value || 0);
    }
    button.disabled = true;
    try {
      const r = await api.post("/api/v1/notify/rules", body);
      put(r);
      say(t("notify.rule.created", { name: r.name || r.id }));
      name.value = "";
    } catch (e) {
      const first = steps.querySelector("li.step");
      const stepIds = first ? { chain: first.querySelector(".step-user").id } : {};
      showError(form, e, Object.assign({ name: "notify-name", area_id: "notify-area", event: "notify-event", after_minutes: "notify-after",
        below_percent: "notify-below", min_severity: "notify-severity", "chain.username": stepIds.chain }, stepIds), err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// ruleCard shows a rule with enable/disable and delete.
function ruleCard(r, ctx, put, drop) {
  const id = "notify-rule-" + r.id;
  const err = el("p", { class: "action-error", id: id + "-error", role: "alert", hidden: true });
  const toggle = el("button", { type: "button", class: "toggle" });
  const del = el("button", { type: "button", class: "delete danger", text: t("notify.rule.delete") });
  const li = el("li", { class: "card notify-rule" }, el("p", { class: "title" }), el("p", { class: "meta" }), el("ol", { class: "chain" }),
    el("p", { class: "state" }), toggle, del, err);
  toggle.addEventListener("click", async () => {
    clearErrors(li);
    const cur = JSON.parse(li.dataset.rule);
    const body = { name: cur.name || "", area_id: cur.area_id || "", event: cur.event, alarm_kinds: cur.alarm_kinds || [],
      min_severity: cur.min_severity || "", after_minutes: cur.after_minutes, chain: cur.chain, enabled: !cur.enabled };
    if (cur.event !== "alarm") { delete body.alarm_kinds; delete body.min_severity; body.below_percent = cur.below_percent; }
    try {
      const v = await api.request("PUT", "/api/v1/notify/rules/" + encodeURIComponent(cur.id), body);
      put(v);
      say(t("notify.rule.saved", { name: v.name || v.id }));
    } catch (e) {
      showError(li, e, {}, err);
    }
  });
  del.addEventListener("click", async () => {
    const cur = JSON.parse(li.dataset.rule);
    if (!window.confirm(t("notify.rule.delete.confirm", { name: cur.name || cur.id }))) return;
    clearErrors(li);
    try {
      await api.request("DELETE", "/api/v1/notify/rules/" + encodeURIComponent(cur.id));
      drop(cur.id);
      say(t("notify.rule.deleted", { name: cur.name || cur.id }));
    } catch (e) {
      showError(li, e, {}, err);
    }
  });
  return li;
}

function fillRule(li, r, ctx) {
  li.dataset.rule = JSON.stringify(r);
  li.querySelector(".title").textContent = r.name || t("notify.rule.unnamed", { id: r.id });
  const what = r.event === "alarm"
    ? ((r.alarm_kinds || []).length ? r.alarm_kinds.map((k) => t("alarm." + k)).join(", ") : t("notify.kinds.all"))
    : t("notify.event.alert_delivery") + " " + r.below_percent + " %";
  li.querySelector(".meta").textContent = [r.area_id ? ctx.areaName(r.area_id) : t("notify.rule.area.all"), what,
    t("notify.rule.summary.after", { n: r.after_minutes })].join(" · ");
  li.querySelector(".chain").replaceChildren(...r.chain.map((s) => el("li", {
    text: t("notify.chain.step", { user: s.username, channel: t("notify.channel." + s.channel), min: s.after_minutes }),
  })));
  const st = li.querySelector(".state");
  st.textContent = r.enabled ? t("notify.rule.on") : t("notify.rule.off");
  st.className = "state " + (r.enabled ? "on" : "off");
  li.querySelector(".toggle").textContent = r.enabled ? t("notify.rule.disable") : t("notify.rule.enable");
}

function fillEntry(li, e, ctx) {
  const status = t("notify.status." + e.status);
  const who = e.username ? e.username + (e.channel ? " · " + t("notify.channel." + e.channel) : "") : "";
  li.querySelector(".title").textContent = [status, who].filter(Boolean).join(" — ");
  li.classList.toggle("failed", e.status === "failed");
  li.querySelector(".meta").textContent = [dateTime(e.at), e.area_id ? ctx.areaName(e.area_id) : "", e.to || "",
    e.by ? t("notify.log.by", { by: e.by.replace(/^user:/, "") }) : ""].filter(Boolean).join(" · ");
  li.querySelector(".detail").textContent = e.error || e.text || "";
}
