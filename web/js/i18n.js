// One glossary per language (web/i18n/vi.json, en.json), Vietnamese by
// default, the choice remembered in localStorage. Dates show as
// dd/MM/yyyy HH:mm (24 h) in the station's zone, whatever the browser's.

const LANG_KEY = "loa.lang";
let dict = {};
let lang = "vi";
let zone = "Asia/Ho_Chi_Minh";

export function language() { return lang; }

export async function load(want) {
  lang = want || localStorage.getItem(LANG_KEY) || "vi";
  if (lang !== "vi" && lang !== "en") lang = "vi";
  const res = await fetch("i18n/" + lang + ".json");
  dict = await res.json();
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
}

export function setZone(z) { if (z) zone = z; }

// t returns the text for key with {name} filled from params; a missing
// key shows the key itself, so a gap in the glossary is visible.
export function t(key, params) {
  let s = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

export function has(key) { return Object.prototype.hasOwnProperty.call(dict, key); }

// errorText turns an API error into a message in the user's language: the
// code's text for that field, else the field's own, else the code's (with {wait}, the Retry-After in
// words), else the server's words.
export function errorText(err) {
  if (err && err.field && has("error." + err.code + "." + err.field)) return t("error." + err.code + "." + err.field);
  if (err && err.field && has("error.field." + err.field)) return t("error.field." + err.field);
  if (err && err.code && has("error." + err.code)) return t("error." + err.code, { wait: waitText(err.retryAfter || 1) });
  return (err && err.message) || String(err);
}

// waitText says a wait of s seconds in words: "1 phút 30 giây".
export function waitText(s) {
  s = Math.max(1, Math.ceil(s));
  const m = Math.floor(s / 60);
  const parts = [];
  if (m) parts.push(t(m === 1 ? "wait.minute" : "wait.minutes", { n: m }));
  if (s % 60) parts.push(t(s % 60 === 1 ? "wait.second" : "wait.seconds", { n: s % 60 }));
  return parts.join(" ");
}

function parts(ts, withDate, withTime) {
  const d = ts instanceof Date ? ts : new Date(ts);
  if (!ts || isNaN(d)) return "";
  const opts = { timeZone: zone, hourCycle: "h23" };
  if (withDate) Object.assign(opts, { day: "2-digit", month: "2-digit", year: "numeric" });
  if (withTime) Object.assign(opts, { hour: "2-digit", minute: "2-digit" });
  const p = {};
  for (const x of new Intl.DateTimeFormat("en-GB", opts).formatToParts(d)) p[x.type] = x.value;
  const date = withDate ? p.day + "/" + p.month + "/" + p.year : "";
  const time = withTime ? p.hour + ":" + p.minute : "";
  return [date, time].filter(Boolean).join(" ");
}

export const dateTime = (ts) => parts(ts, true, true);
export const clock = (ts) => parts(ts, false, true);

// duration shows nanoseconds as m:ss.
export function duration(ns) {
  const s = Math.round((ns || 0) / 1e9);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

export function band(p) {
  if (p >= 224) return t("band.emergency");
  if (p >= 128) return t("band.priority");
  if (p >= 32) return t("band.normal");
  return t("band.background");
}
