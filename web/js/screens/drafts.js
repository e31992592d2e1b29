// Chờ duyệt: in areas that need approval an operator's new schedule,
// playlist or upload waits as a draft. An approver sees those of its
// areas (what, who, when, a preview) and approves or rejects each with a
// note; an operator sees its own and may withdraw them. The list and the
// navigation's count follow the event stream's drafts topic.

import * as api from "../api.js";
import * as events from "../events.js";
import { dateTime, duration, errorText, t } from "../i18n.js";
import { clearErrors, el, field, List, say } from "../ui.js";

// The pending drafts the stream told of, for the navigation's count.
const pending = new Map();
const badgeEl = el("span", { class: "badge", id: "drafts-badge", hidden: true });
function paintBadge() {
  badgeEl.textContent = String(pending.size);
  badgeEl.hidden = pending.size === 0;
  badgeEl.title = t("drafts.badge", { n: pending.size });
}
events.on("drafts", (ch) => {
  if (ch.reset) pending.clear();
  for (const d of ch.changed || []) pending.set(d.id, d);
  for (const id of ch.removed || []) pending.delete(id);
  paintBadge();
});

// who shows a proposer: a person's username, or a token's id.
const who = (id) => (id || "").replace(/^user:/, "");

// ruleText says a schedule's rule in words.
export function ruleText(r) {
  if (!r) return "";
  const date = (d) => (d ? d.split("-").reverse().join("/") : "");
  const days = (r.weekdays || []).map((d) => t("drafts.day." + d)).join(", ");
  const p = { time: (r.time || "").slice(0, 5), date: date(r.date), days, n: r.interval || 1, day: r.month_day === -1 ? t("drafts.lastday") : r.month_day };
  let s = t("drafts.rule." + r.kind, p);
  if (r.until) s += " " + t("drafts.until", { date: date(r.until) });
  if (r.end) s += " " + t("drafts.end", { time: r.end });
  return s;
}

export default {
  path: "drafts",
  nav: "nav.drafts",
  allowed: (ctx) => ctx.can("approve") || ctx.role === "operator",
  // badge is the count beside the navigation link, for approvers.
  badge: (ctx) => (ctx.can("approve") ? (paintBadge(), badgeEl) : null),
  mount(root, ctx) {
    const approver = ctx.can("approve");
    const box = el("ul", { id: "drafts-list", class: "cards" });
    root.append(el("h1", { tabindex: "-1", text: t("drafts.title") }),
      el("p", { class: "hint", text: t(approver ? "drafts.hint.approver" : "drafts.hint.operator") }), box);
    const media = (id) => ctx.media.find((m) => m.id === id);
    const content = (c) => {
      if (!c) return "";
      if (c.playlist_id) return "▶ " + ctx.playlistName(c.playlist_id);
      const m = media(c.media_id);
      return m ? m.name + " (" + duration(m.duration_ns) + ")" : c.media_id;
    };

    // preview: what the draft would change, drawn once (a draft's
    // content never changes).
    const preview = (d) => {
      const p = el("div", { class: "preview" });
      if (d.kind === "media") {
        const m = media(d.media_id) || { name: d.name, duration_ns: 0 };
        p.append(el("p", { text: t("drafts.preview.media", { name: m.name, d: duration(m.duration_ns) }) }));
        // Listen when the server serves the item's audio.
        const src = "/api/v1/media/" + encodeURIComponent(d.media_id) + "/audio";
        fetch(src, { method: "HEAD", credentials: "same-origin", headers: api.authHeaders("HEAD") }).then((res) => {
          if (res.ok) p.append(el("audio", { controls: "", preload: "none", src, "aria-label": t("drafts.listen", { name: m.name }) }));
        }).catch(() => {});
      } else if (d.kind === "playlist" && d.playlist) {
        const items = d.playlist.items || [];
        const total = items.reduce((s, it) => s + ((media(it.media_id) || {}).duration_ns || 0) + (it.gap_ns || 0), 0);
        p.append(el("p", { text: t("playlists.summary", { n: items.length, d: duration(total) }) }),
          el("ol", { class: "items" }, items.map((it) => el("li", { text: content({ media_id: it.media_id }) }))));
      } else if (d.kind === "schedule" && d.schedule) {
        const sc = d.schedule;
        const targets = [...((sc.targets || {}).areas || []).map(ctx.areaName), ...((sc.targets || {}).devices || [])];
        p.append(el("p", { class: "rule", text: ruleText(sc.rule) }),
          el("p", { text: t("drafts.content", { what: content(sc.content) }) }),
          el("p", { text: t("drafts.targets", { areas: targets.join(", ") }) }));
      }
      return p;
    };

    const decide = async (d, verb, note, errBox) => {
      clearErrors(errBox.parentElement);
      try {
        await api.post("/api/v1/drafts/" + encodeURIComponent(d.id) + "/" + verb, verb === "withdraw" ? undefined : { note: note ? note.value.trim() : "" });
        list.remove(d.id);
        pending.delete(d.id);
        paintBadge();
        say(t("drafts.done." + verb, { name: d.name }));
        if (verb === "approve") {
          if (d.kind === "media") ctx.reloadMedia().catch(() => {});
          if (d.kind === "playlist") api.get("/api/v1/playlists").then((ps) => { ctx.playlists = ps; }).catch(() => {});
        }
        const next = box.querySelector("li[data-id] button");
        (next || root.querySelector("h1")).focus();
      } catch (e) {
        errBox.replaceChildren(errorText(e));
        errBox.hidden = false;
      }
    };

    const list = new List(box, (d) => {
      const id = "draft-" + d.id;
      const err = el("p", { class: "action-error", id: id + "-error", role: "alert", hidden: true });
      const li = el("li", { class: "card draft", "aria-labelledby": id + "-title" },
        el("p", { class: "title", id: id + "-title" }), el("p", { class: "meta" }), preview(d));
      if (approver) {
        const note = el("input", { id: id + "-note", class: "note", name: "note", maxlength: "500", autocomplete: "off" });
        const ok = el("button", { type: "button", class: "approve", text: t("drafts.approve") });
        const no = el("button", { type: "button", class: "reject danger", text: t("drafts.reject") });
        ok.addEventListener("click", () => decide(d, "approve", note, err));
        no.addEventListener("click", () => decide(d, "reject", note, err));
        li.append(field(t("drafts.note"), note), el("div", { class: "buttons" }, ok, no), err);
      } else {
        const back = el("button", { type: "button", class: "withdraw", text: t("drafts.withdraw") });
        back.addEventListener("click", () => decide(d, "withdraw", null, err));
        li.append(el("div", { class: "buttons" }, back), err);
      }
      return li;
    }, (li, d) => {
      const op = d.op === "replace" ? " " + t("drafts.op.replace") : "";
      li.querySelector(".title").textContent = t("drafts.kind." + d.kind) + ": " + d.name + op;
      li.querySelector(".meta").textContent = [t("drafts.by", { who: who(d.created_by), when: dateTime(d.created_at) }),
        (d.areas || []).map(ctx.areaName).join(", ")].filter(Boolean).join(" · ");
      for (const b of li.querySelectorAll("button")) b.setAttribute("aria-describedby", "draft-" + d.id + "-title");
    }, t("drafts.empty"), (a, b) => (b.created_at || "").localeCompare(a.created_at || ""));

    let live = true;
    api.get("/api/v1/drafts?state=pending").then((ds) => { if (live) list.reset(ds); }).catch((e) => say(errorText(e), true));
    const off = events.on("drafts", (ch) => list.apply(ch));
    return () => { live = false; off(); };
  },
};
