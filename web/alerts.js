// Loa alert desk (Cảnh báo khẩn): send an alert (spoken text or a media
// item) to chosen areas, watch its delivery report live, cancel it.
// Shown to admin and province tokens only: they are the ones who may send
// khẩn cấp. Uses app.js's helpers ($, api, say, cell, fill, when,
// treeOrder, options, token). Values go into the page with textContent.
"use strict";

const ALERT_STATES = { active: "đang phát", finished: "đã xong", cancelled: "đã hủy", expired: "hết hạn" };
const ALERT_LEVELS = { khan_cap: "Khẩn cấp", uu_tien: "Ưu tiên" };
const DELIVERY_REASONS = {
  offline: "mất kết nối", no_ack: "không phản hồi lệnh", no_stream: "không nhận được âm thanh",
  cancelled: "đã hủy", refused: "thiết bị từ chối", interrupted: "bị cảnh báo khác chèn",
  expired: "hết hạn", failed: "lỗi phiên phát",
};
const ALERT_TEXT_MAX = 2000;

const alertDesk = {
  areaNames: {},
  current: "", // the alert whose report is shown
  watch: null, // AbortController of the live report

  // start shows the desk to a token that may send emergencies.
  async start(me) {
    const allowed = me.role === "admin" || me.role === "province";
    $("alert-desk").hidden = !allowed;
    if (!allowed) return;
    await this.refresh();
  },

  stop() {
    if (this.watch) this.watch.abort();
    this.watch = null;
    this.current = "";
    $("alert-desk").hidden = true;
    $("alert-report").hidden = true;
  },

  // refresh reloads the area checkboxes, media choices and recent alerts;
  // app.js passes the areas and media it has just loaded.
  async refresh(areas, media) {
    if ($("alert-desk").hidden) return;
    try {
      const [as, ms, alerts] = await Promise.all([
        areas || api("GET", "/api/v1/areas"), media || api("GET", "/api/v1/media"), api("GET", "/api/v1/alerts"),
      ]);
      areas = as;
      media = ms;
      this.areaNames = {};
      for (const a of areas) this.areaNames[a.id] = a.name;
      this.areaBoxes(treeOrder(areas));
      options($("alert-media"), media.map((m) => [m.id, m.name]));
      fill($("alerts-body"), alerts.slice(0, 10), (tr, a) => {
        cell(tr, when(a.created_at));
        cell(tr, a.title || a.id);
        cell(tr, ALERT_LEVELS[a.level] || a.level, a.level === "khan_cap" ? "emergency" : "");
        cell(tr, (ALERT_STATES[a.state] || a.state) + (a.test ? " (diễn tập)" : ""));
        cell(tr, a.totals ? a.totals.all.finished + "/" + a.totals.all.receivers : "");
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Xem";
        b.addEventListener("click", () => this.show(a.id));
        cell(tr, "").appendChild(b);
      }, "Chưa có cảnh báo nào.", 6);
    } catch (e) {
      say(e.message, true);
    }
  },

  // areaBoxes lists the areas as checkboxes, keeping what is ticked.
  areaBoxes(pairs) {
    const box = $("alert-areas");
    const ticked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
    box.replaceChildren();
    for (const [id, label] of pairs) {
      const l = document.createElement("label");
      const i = document.createElement("input");
      i.type = "checkbox";
      i.name = "area";
      i.value = id;
      i.checked = ticked.has(id);
      l.append(i, " " + label.trim());
      l.style.paddingLeft = (label.length - label.trimStart().length) / 2 + "rem";
      box.appendChild(l);
    }
  },

  contentKind() {
    return document.querySelector('input[name="alert-kind"]:checked').value;
  },

  kindChanged() {
    const text = this.contentKind() === "text";
    $("alert-text-row").hidden = !text;
    $("alert-media-row").hidden = text;
  },

  counter() {
    const n = [...$("alert-text").value].length;
    $("alert-count").textContent = n + "/" + ALERT_TEXT_MAX;
    $("alert-count").className = n > ALERT_TEXT_MAX ? "over" : "";
  },

  async send(ev) {
    ev.preventDefault();
    const areas = [...$("alert-areas").querySelectorAll("input:checked")].map((i) => i.value);
    if (areas.length === 0) {
      say("Chọn ít nhất một khu vực nhận cảnh báo.", true);
      return;
    }
    const content = { tone: $("alert-tone").checked };
    if (this.contentKind() === "text") {
      content.text = $("alert-text").value.trim();
    } else {
      content.media_id = $("alert-media").value;
    }
    const body = {
      title: $("alert-title").value.trim(),
      level: $("alert-level").value,
      content,
      targets: { areas },
      repeats: Number($("alert-repeats").value) || 1,
      gap: (Number($("alert-gap").value) || 0) + "s",
      expires_in: $("alert-expires").value,
      test: $("alert-test").checked,
    };
    const names = areas.map((a) => this.areaNames[a] || a).join(", ");
    const what = (ALERT_LEVELS[body.level] || body.level).toUpperCase() + (body.test ? " (diễn tập)" : "");
    if (!confirm("Gửi cảnh báo " + what + " tới " + names + "?")) return;
    const button = ev.submitter || $("alert-form").querySelector("button[type=submit]");
    button.disabled = true;
    say("Đang gửi cảnh báo…");
    try {
      const a = await api("POST", "/api/v1/alerts", body);
      say("Đã gửi cảnh báo tới " + a.totals.all.receivers + " thiết bị.");
      this.show(a.id, a);
    } catch (e) {
      say(e.message, true);
    } finally {
      button.disabled = false;
    }
    this.refresh();
  },

  async cancel() {
    const id = this.current;
    if (!id || !confirm("Hủy cảnh báo này? Loa sẽ dừng phát ngay.")) return;
    try {
      const a = await api("POST", "/api/v1/alerts/" + encodeURIComponent(id) + "/cancel", { reason: "hủy từ bàn cảnh báo" });
      this.render(a);
      say("Đã hủy cảnh báo.");
    } catch (e) {
      say(e.message, true);
    }
    this.refresh();
  },

  // show renders an alert's report and follows it live until it ends.
  async show(id, first) {
    if (this.watch) this.watch.abort();
    this.current = id;
    try {
      this.render(first || await api("GET", "/api/v1/alerts/" + encodeURIComponent(id)));
    } catch (e) {
      say(e.message, true);
      return;
    }
    this.follow(id);
  },

  // follow reads the report's server-sent events with fetch, which, unlike
  // EventSource, sends the token in the Authorization header.
  async follow(id) {
    const ctl = new AbortController();
    this.watch = ctl;
    const live = (text, on) => {
      $("alert-live").textContent = text;
      $("alert-live").className = on ? "on" : "off";
    };
    live("○ đang kết nối", false);
    try {
      const res = await fetch("/api/v1/alerts/" + encodeURIComponent(id) + "/events", {
        headers: { "Authorization": "Bearer " + token() }, signal: ctl.signal,
      });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      live("● trực tiếp", true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, "\n");
        for (let i; (i = buf.indexOf("\n\n")) >= 0;) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = "message";
          const data = [];
          for (const line of frame.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (event === "report" && data.length && this.current === id) this.render(JSON.parse(data.join("\n")));
        }
      }
      live("○ đã kết thúc", false);
    } catch (e) {
      if (e.name === "AbortError") return;
      live("○ mất kết nối", false);
    }
    if (this.watch === ctl) this.refresh();
  },

  // render shows the alert, its totals per area and its failed receivers.
  render(a) {
    $("alert-report").hidden = false;
    $("alert-report-title").textContent = (a.title || a.id) + " — " + (ALERT_LEVELS[a.level] || a.level);
    $("alert-report-state").textContent = (ALERT_STATES[a.state] || a.state) + (a.test ? " · diễn tập" : "") +
      (a.cap ? " · CAP " + a.cap.identifier : "") + (a.reason ? " · " + a.reason : "");
    const all = (a.totals && a.totals.all) || {};
    $("alert-report-all").textContent = "Tổng " + (all.receivers || 0) + " thiết bị: " + (all.finished || 0) + " đã phát xong, " +
      (all.started || 0) + " đang phát, " + ((all.queued || 0) + (all.acked || 0)) + " đang chờ, " + (all.failed || 0) + " lỗi" +
      (all.late ? " (" + all.late + " nhận muộn)" : "");
    const targets = new Set((a.targets && a.targets.areas) || []);
    const areas = Object.entries((a.totals && a.totals.areas) || {})
      .filter(([id]) => targets.has(id) || (a.report || []).some((d) => d.area === id))
      .sort(([x], [y]) => (this.areaNames[x] || x).localeCompare(this.areaNames[y] || y, "vi"));
    fill($("alert-areas-body"), areas, (tr, [id, t]) => {
      cell(tr, this.areaNames[id] || id);
      cell(tr, t.receivers);
      cell(tr, t.queued + t.acked);
      cell(tr, t.started);
      cell(tr, t.finished, "on");
      cell(tr, t.failed, t.failed ? "emergency" : "");
    }, "Không có khu vực nào.", 6);
    const failed = (a.report || []).filter((d) => d.state === "failed");
    fill($("alert-failed-body"), failed, (tr, d) => {
      cell(tr, d.device);
      cell(tr, this.areaNames[d.area] || d.area);
      cell(tr, DELIVERY_REASONS[d.reason] || d.reason, "emergency");
    }, "Không có thiết bị lỗi.", 3);
    $("alert-cancel").hidden = a.state !== "active";
  },
};

document.addEventListener("DOMContentLoaded", () => {
  $("alert-form").addEventListener("submit", (ev) => alertDesk.send(ev));
  for (const r of document.querySelectorAll('input[name="alert-kind"]')) {
    r.addEventListener("change", () => alertDesk.kindChanged());
  }
  $("alert-text").addEventListener("input", () => alertDesk.counter());
  $("alert-cancel").addEventListener("click", () => alertDesk.cancel());
  alertDesk.kindChanged();
  alertDesk.counter();
});
