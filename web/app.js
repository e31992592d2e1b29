// Loa operator page. Plain JavaScript, no framework, no build step.
// Every value from the API is put into the page with textContent, never
// innerHTML, so names and ids cannot inject markup.
"use strict";

const TOKEN_KEY = "loa.token";
// Times show in the station's zone, whatever the browser's.
const ZONE = "Asia/Ho_Chi_Minh";
const LOG_EVENTS = {
  started: "bắt đầu", ended: "kết thúc", stopped: "dừng", failed: "lỗi", preempted: "bị chèn",
  resumed: "phát tiếp", missed: "bỏ lỡ", skipped: "bỏ qua",
};
const REFRESH_MS = 5000;
const ALARM_KINDS = {
  offline: "Mất kết nối", stream_loss: "Mất gói tin", amp_fault: "Lỗi bộ khuếch đại",
  temperature: "Quá nhiệt", test_failed: "Thử loa không đạt",
  plain_receivers: "Chưa mã hóa (không SRTP)",
};
const $ = (id) => document.getElementById(id);

let timer = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// api calls the JSON API and returns the decoded body, or throws an Error
// whose message is the API's error message.
async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + token() } };
  if (body instanceof FormData) {
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => null);
  if (res.status === 401) {
    logout("Mã truy cập không hợp lệ hoặc đã hết hạn.");
  }
  if (!res.ok) {
    throw new Error((data && data.error) || res.status + " " + res.statusText);
  }
  return data;
}

function say(text, isError) {
  const m = $("msg");
  m.textContent = text;
  m.className = isError ? "error" : "ok";
  m.hidden = !text;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows, render, emptyText, cols) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, emptyText, "empty");
    td.colSpan = cols;
    tbody.appendChild(tr);
    return;
  }
  for (const r of rows) {
    const tr = document.createElement("tr");
    render(tr, r);
    tbody.appendChild(tr);
  }
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? "" : d.toLocaleString("vi-VN", { timeZone: ZONE });
}

function duration(ns) {
  const s = Math.round((ns || 0) / 1e9);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function band(p) {
  if (p >= 224) return "Khẩn cấp";
  if (p >= 128) return "Ưu tiên";
  if (p >= 32) return "Thông thường";
  return "Nền";
}

function loss(stream) {
  if (!stream) return "";
  const total = stream.received + stream.lost;
  return total ? (100 * stream.lost / total).toFixed(1) + " %" : "0 %";
}

let mediaNames = {};

const KINDS = { province: "Tỉnh", commune: "Xã", cluster: "Cụm loa" };
const STATES = { playing: "đang phát", ended: "đã xong", stopped: "đã dừng", failed: "lỗi" };

// treeOrder lists areas parents first, each followed by its children, as
// [id, label] pairs with the label indented by depth.
function treeOrder(areas) {
  const ids = new Set(areas.map((a) => a.id));
  const kids = {};
  for (const a of areas) {
    const p = ids.has(a.parent_id) ? a.parent_id : "";
    (kids[p] = kids[p] || []).push(a);
  }
  const out = [];
  const walk = (p, depth) => {
    for (const a of kids[p] || []) {
      out.push([a.id, "\u00a0\u00a0".repeat(depth) + (KINDS[a.kind] || a.kind) + ": " + a.name]);
      if (depth < 8) walk(a.id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

// Active alarms arrive as server-sent events: the stream first sends every
// active alarm as "raised", then each raise and clear as it happens.
// EventSource cannot send an Authorization header, so the token goes in
// ?access_token= (accepted on this route only); on a dropped connection
// the browser reconnects and the active set is sent again.
let alarmStream = null;
let alarmAreaNames = {};
const activeAlarms = new Map();

function watchAlarms() {
  if (alarmStream) alarmStream.close();
  activeAlarms.clear();
  const es = new EventSource("/api/v1/alarms/stream?access_token=" + encodeURIComponent(token()));
  alarmStream = es;
  const live = (on) => {
    $("alarms-live").textContent = on ? "● trực tiếp" : "○ mất kết nối, đang thử lại";
    $("alarms-live").className = on ? "on" : "off";
  };
  es.onopen = () => { activeAlarms.clear(); live(true); renderAlarms(); };
  es.onerror = () => live(false);
  es.addEventListener("raised", (ev) => {
    const a = JSON.parse(ev.data);
    activeAlarms.set(a.id, a);
    renderAlarms();
  });
  es.addEventListener("cleared", (ev) => {
    activeAlarms.delete(JSON.parse(ev.data).id);
    renderAlarms();
  });
}

// renderAlarms lists active alarms grouped by area, newest first within one.
function renderAlarms() {
  const rows = [...activeAlarms.values()].sort((x, y) =>
    (x.area || "").localeCompare(y.area || "") || (y.raised_at || "").localeCompare(x.raised_at || ""));
  fill($("alarms-body"), rows, (tr, a) => {
    cell(tr, alarmAreaNames[a.area] || a.area || "—");
    cell(tr, a.device);
    cell(tr, ALARM_KINDS[a.kind] || a.kind, a.severity === "critical" ? "emergency" : "");
    cell(tr, when(a.raised_at));
    cell(tr, a.msg);
  }, "Không có sự cố.", 5);
}

async function refresh() {
  try {
    const [devices, sessions, media, areas] = await Promise.all([
      api("GET", "/api/v1/devices" + ($("devices-problem").value ? "?problem=" + encodeURIComponent($("devices-problem").value) : "")),
      api("GET", "/api/v1/sessions"),
      api("GET", "/api/v1/media"),
      api("GET", "/api/v1/areas"),
    ]);
    // The agenda and the log are extras: a failure there keeps the rest.
    const [agenda, playlog] = await Promise.all([
      api("GET", "/api/v1/agenda").catch(() => []),
      api("GET", "/api/v1/playlog?limit=20").catch(() => []),
    ]);
    mediaNames = {};
    for (const m of media) mediaNames[m.id] = m.name;
    const areaNames = {};
    for (const a of areas) areaNames[a.id] = a.name;
    alarmAreaNames = areaNames;
    renderAlarms();

    fill($("devices-body"), devices, (tr, d) => {
      const st = d.state, t = st && st.telemetry;
      cell(tr, d.name ? d.id + " — " + d.name : d.id);
      cell(tr, areaNames[d.area_id] || d.area_id);
      cell(tr, st && st.online ? "● Có" : "○ Không", st && st.online ? "on" : "off");
      cell(tr, t ? t.rssi + " dBm" : "");
      cell(tr, t ? (t.muted ? "tắt tiếng" : t.volume) : "");
      cell(tr, t ? t.temp_c.toFixed(1) + " °C" : "");
      cell(tr, t && t.session ? t.session : "");
      cell(tr, t ? loss(t.stream) : "");
      const problems = (d.problems || []).map((k) => ALARM_KINDS[k] || k).join(", ");
      cell(tr, problems, problems ? "emergency" : "");
    }, "Không có thiết bị nào.", 9);

    const content = (c) => (c && c.playlist_id) ? "▶ " + c.playlist_id : (c && (mediaNames[c.media_id] || c.media_id)) || "";
    const clock = (t) => new Date(t).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: ZONE });
    fill($("agenda-body"), agenda || [], (tr, o) => {
      cell(tr, clock(o.at));
      cell(tr, o.schedule_id);
      cell(tr, content(o.content) + (o.replaced ? " (thay thế)" : ""));
      cell(tr, band(o.priority) + " (" + o.priority + ")", o.priority >= 224 ? "emergency" : "");
      cell(tr, ((o.targets && o.targets.areas) || []).map((a) => areaNames[a] || a).join(", "));
    }, "Không có chương trình nào được lên lịch hôm nay.", 5);

    fill($("playlog-body"), playlog || [], (tr, e) => {
      cell(tr, when(e.at));
      cell(tr, LOG_EVENTS[e.event] || e.event);
      cell(tr, e.session_id || "");
      cell(tr, content(e.content));
      cell(tr, (e.devices || []).length || "");
      cell(tr, e.schedule_id ? "lịch " + e.schedule_id : e.by || "");
      cell(tr, e.detail || "");
    }, "Chưa có gì trong nhật ký.", 7);

    sessions.sort((a, b) => (b.started_at || "").localeCompare(a.started_at || ""));
    fill($("sessions-body"), sessions, (tr, s) => {
      cell(tr, s.id);
      cell(tr, s.playlist_id ? "▶ " + s.playlist_id : mediaNames[s.media_id] || s.media_id);
      cell(tr, band(s.priority) + " (" + s.priority + ")", s.priority >= 224 ? "emergency" : "");
      cell(tr, STATES[s.state] || s.state);
      cell(tr, (s.devices || []).length);
      cell(tr, when(s.started_at));
      const td = cell(tr, "");
      if (s.state === "playing") {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Dừng";
        b.className = "stop";
        b.addEventListener("click", () => stop(s.id));
        td.appendChild(b);
      }
    }, "Không có phiên phát nào.", 7);

    fill($("media-body"), media, (tr, m) => {
      cell(tr, m.name);
      cell(tr, duration(m.duration_ns));
      cell(tr, m.source);
      cell(tr, when(m.created_at));
    }, "Thư viện trống.", 4);

    options($("play-media"), media.map((m) => [m.id, m.name]));
    options($("play-area"), treeOrder(areas));
    if (typeof alertDesk !== "undefined") alertDesk.refresh(areas, media);
  } catch (e) {
    if (token()) say(e.message, true);
  }
}

// options replaces a select's options, keeping the current choice.
function options(sel, pairs) {
  const keep = sel.value;
  sel.replaceChildren();
  for (const [value, label] of pairs) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    sel.appendChild(o);
  }
  if (pairs.some(([v]) => v === keep)) sel.value = keep;
}

async function stop(id) {
  if (!confirm("Dừng phiên " + id + "?")) return;
  try {
    await api("POST", "/api/v1/sessions/" + encodeURIComponent(id) + "/stop");
    say("Đã dừng phiên " + id + ".");
  } catch (e) {
    say(e.message, true);
  }
  refresh();
}

async function play(ev) {
  ev.preventDefault();
  const body = {
    media_id: $("play-media").value,
    targets: { areas: [$("play-area").value] },
    priority: Number($("play-priority").value),
  };
  const max = $("play-max").value.trim();
  if (max) body.max_duration = max;
  if (body.priority >= 224 && !confirm("Phát KHẨN CẤP tới " + $("play-area").selectedOptions[0].textContent + "?")) return;
  try {
    const s = await api("POST", "/api/v1/sessions", body);
    say("Đang phát: phiên " + s.id + " tới " + (s.devices || []).length + " thiết bị.");
  } catch (e) {
    say(e.message, true);
  }
  refresh();
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  // The name field goes first: the server reads the form as a stream.
  const form = new FormData();
  const name = $("upload-name").value.trim();
  if (name) form.append("name", name);
  form.append("file", file);
  const button = ev.submitter || $("upload-form").querySelector("button");
  button.disabled = true;
  say("Đang tải lên và mã hoá " + file.name + "…");
  try {
    const m = await api("POST", "/api/v1/media", form);
    say("Đã thêm " + m.name + " (" + duration(m.duration_ns) + ").");
    $("upload-form").reset();
  } catch (e) {
    say(e.message, true);
  } finally {
    button.disabled = false;
  }
  refresh();
}

async function login(ev) {
  if (ev) ev.preventDefault();
  const input = $("token");
  if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  if (!token()) return;
  let me;
  try {
    me = await api("GET", "/api/v1/me");
    $("who-name").textContent = me.name + " · " + me.role + (me.area_id ? " · " + me.area_id : "");
    const emergency = me.role === "admin" || me.role === "province";
    $("play-priority").querySelector('option[value="240"]').hidden = !emergency;
    $("play-priority").querySelector('option[value="240"]').disabled = !emergency;
  } catch (e) {
    say(e.message, true);
    return;
  }
  say("");
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  await refresh();
  watchAlarms();
  if (typeof alertDesk !== "undefined") alertDesk.start(me); // alerts.js
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function logout(text) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (alarmStream) alarmStream.close();
  alarmStream = null;
  if (typeof alertDesk !== "undefined") alertDesk.stop();
  clearInterval(timer);
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  say(typeof text === "string" ? text : "", typeof text === "string");
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  $("play-form").addEventListener("submit", play);
  $("upload-form").addEventListener("submit", upload);
  $("devices-problem").addEventListener("change", refresh);
  if (token()) login();
});
