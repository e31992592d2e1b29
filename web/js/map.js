// The overview's map of receivers: one circle marker per placed receiver
// in scope, styled by its state (online, playing, offline, alarm), from
// GET /api/v1/devices/positions once and then from the event stream's
// devices, sessions and alarms topics. Leaflet (vendor/leaflet, pinned)
// is loaded on first use. With a tile URL (/me station.map) the tiles
// are drawn; without one, or when they fail (an offline station), each
// commune is drawn as the outline around its receivers (the convex hull,
// areas having no geometry), labelled by name.
//
// Up to SVG_MAX markers are SVG paths carrying class rx-<state> and
// data-id; beyond, one canvas draws them all (Leaflet's preferCanvas), so
// 5,000 receivers pan and update without 5,000 DOM nodes. The legend
// says each state in words, with its count, and the markers differ by
// shape as well as colour (offline hollow, alarm ringed, playing larger).

import * as api from "./api.js";
import * as events from "./events.js";
import { t } from "./i18n.js";
import { el } from "./ui.js";

const SVG_MAX = 500;
export const STATES = ["online", "playing", "offline", "alarm"];

// STYLE is each state's marker; colours reach 3:1 against the tiles'
// and the outline's light ground.
const STYLE = {
  online: { radius: 6, color: "#0f5a1e", weight: 1, fillColor: "#1e7b30", fillOpacity: 0.9 },
  playing: { radius: 8, color: "#08306b", weight: 2, fillColor: "#1d5fbf", fillOpacity: 0.9 },
  offline: { radius: 6, color: "#4a545e", weight: 2, fillColor: "#ffffff", fillOpacity: 1 },
  alarm: { radius: 8, color: "#7a1410", weight: 3, fillColor: "#c62828", fillOpacity: 0.9 },
};

// FIT_OPTS frames the receivers with room for the communes' names above
// them, at once (a screenshot or a phone turning sees the end state).
const FIT_OPTS = { paddingTopLeft: [56, 40], paddingBottomRight: [56, 16], maxZoom: 15, animate: false };

let leaflet = null;

// loadLeaflet adds Leaflet's stylesheet and script to the page once
// (both from the console's own origin, as the CSP wants).
function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  if (!leaflet) {
    leaflet = new Promise((resolve, reject) => {
      document.head.append(el("link", { rel: "stylesheet", href: "vendor/leaflet/leaflet.css" }));
      const s = el("script", { src: "vendor/leaflet/leaflet.js" });
      s.addEventListener("load", () => resolve(window.L));
      s.addEventListener("error", () => { leaflet = null; reject(new Error("leaflet")); });
      document.head.append(s);
    });
  }
  return leaflet;
}

// hull is the convex hull (Andrew's monotone chain) of points [x, y],
// counter-clockwise.
export function hull(points) {
  const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

// outline is a commune's outline: the hull of its receivers, each
// widened to a small square (about 300 m) so one or two receivers still
// make an area and none sits on the edge. Points are [lat, lon]. Of all
// the receivers, it bounds what the map frames.
export function outline(latlons) {
  const d = 0.003;
  const pts = [];
  for (const [lat, lon] of latlons) {
    const dl = d / Math.max(0.2, Math.cos((lat * Math.PI) / 180));
    pts.push([lon - dl, lat - d], [lon + dl, lat - d], [lon + dl, lat + d], [lon - dl, lat + d]);
  }
  return hull(pts).map(([x, y]) => [y, x]);
}

// communeOf is the commune an area belongs to (itself, or its nearest
// commune ancestor among the areas the caller sees), else the area.
function communeOf(ctx, id) {
  const byId = new Map(ctx.areas.map((a) => [a.id, a]));
  return (areaID) => {
    for (let a = byId.get(areaID), n = 0; a && n < 16; a = byId.get(a.parent_id), n++) {
      if (a.kind === "commune") return a.id;
    }
    return areaID;
  };
}

// mountMap draws the map into root (a section of the overview) and keeps
// it live; it returns the function that takes it down.
export function mountMap(root, ctx) {
  const box = el("div", { id: "overview-map", class: "map", role: "region", "aria-label": t("map.label"), "data-state": "loading" });
  const counts = {};
  const legend = el("ul", { class: "map-legend", id: "map-legend" },
    STATES.map((s) => el("li", {}, el("span", { class: "swatch rx-" + s, "aria-hidden": "true" }),
      el("span", { text: t("map.state." + s) + " " }), counts[s] = el("strong", { id: "map-count-" + s, text: "0" }))));
  const note = el("p", { class: "hint", id: "map-note" });
  root.append(box, legend, note);

  let gone = false;
  let map = null;
  let resize = null;
  let outlines = null;
  let labels = []; // the outlines' names
  const rx = new Map(); // id → { marker, area, lat, lon, presence, state }
  const alarmOf = new Map(); // alarm id → device id
  const alarmed = new Map(); // device id → open alarms
  const playingIn = new Map(); // session id → its devices
  const playing = new Map(); // device id → sessions playing to it

  const stateOf = (r) => {
    if (r.presence !== "online") return "offline";
    if (alarmed.get(r.id)) return "alarm";
    if (playing.get(r.id)) return "playing";
    return "online";
  };
  const recount = () => {
    const n = { online: 0, playing: 0, offline: 0, alarm: 0 };
    for (const r of rx.values()) n[r.state]++;
    for (const s of STATES) counts[s].textContent = String(n[s]);
  };
  const restyle = (r) => {
    const s = stateOf(r);
    if (s === r.state) return;
    r.state = s;
    if (!r.marker) return;
    r.marker.setStyle(STYLE[s]);
    r.marker.setRadius(STYLE[s].radius);
    const path = r.marker.getElement && r.marker.getElement();
    if (path) path.setAttribute("class", "leaflet-interactive rx rx-" + s);
  };
  let pending = null; // restyles after a burst of changes, once a frame
  const touch = (ids) => {
    if (!pending) {
      pending = new Set();
      requestAnimationFrame(() => {
        const ids = pending;
        pending = null;
        if (gone) return;
        for (const id of ids) { const r = rx.get(id); if (r) restyle(r); }
        recount();
      });
    }
    for (const id of ids) pending.add(id);
  };
  const count = (m, id, by) => { const v = (m.get(id) || 0) + by; if (v > 0) m.set(id, v); else m.delete(id); };

  // A fault in the map must not keep a change from the screen's other
  // listeners of the same topic.
  const safe = (fn) => (ch) => { try { fn(ch); } catch (e) { console.warn("map", e); } };
  const offs = [
    events.on("devices", safe((ch) => {
      const ids = [];
      for (const d of ch.changed || []) {
        const r = rx.get(d.id);
        if (!r) continue; // not placed (or new since the positions were read)
        r.presence = d.presence || (d.online ? "online" : "offline");
        ids.push(d.id);
      }
      for (const id of ch.removed || []) {
        const r = rx.get(id);
        if (!r) continue;
        if (r.marker) r.marker.remove();
        rx.delete(id);
      }
      touch(ids);
      // Receivers registered (or placed) since: read the positions again.
      if (ch.counts && total >= 0 && ch.counts.total !== total) refresh();
    })),
    events.on("alarms", safe((ch) => {
      const ids = [];
      if (ch.reset) { ids.push(...alarmed.keys()); alarmOf.clear(); alarmed.clear(); }
      for (const a of ch.changed || []) {
        if (!a.device || alarmOf.has(a.id)) continue;
        alarmOf.set(a.id, a.device);
        count(alarmed, a.device, 1);
        ids.push(a.device);
      }
      for (const id of ch.removed || []) {
        const dev = alarmOf.get(id);
        if (!dev) continue;
        alarmOf.delete(id);
        count(alarmed, dev, -1);
        ids.push(dev);
      }
      touch(ids);
    })),
    events.on("sessions", safe((ch) => {
      const ids = [];
      const drop = (sid) => {
        for (const d of playingIn.get(sid) || []) { count(playing, d, -1); ids.push(d); }
        playingIn.delete(sid);
      };
      if (ch.reset) for (const sid of [...playingIn.keys()]) drop(sid);
      for (const s of ch.changed || []) {
        drop(s.id);
        const devs = s.state === "playing" ? s.devices || [] : [];
        playingIn.set(s.id, devs);
        for (const d of devs) { count(playing, d, 1); ids.push(d); }
      }
      for (const sid of ch.removed || []) drop(sid);
      touch(ids);
    })),
  ];

  let total = -1; // receivers in scope as the positions counted them
  let L = null;
  let group = null;
  let canvas = false;
  const place = (r) => {
    r.marker = L.circleMarker([r.lat, r.lon], Object.assign({ className: "rx rx-" + r.state, rxId: r.id }, STYLE[r.state]));
    group.addLayer(r.marker);
    if (!canvas) r.marker.getElement().setAttribute("data-id", r.id);
  };
  const read = (pos) => {
    const rows = pos.devices || [];
    const seen = new Set();
    for (const [id, area, lat, lon, presence] of rows) {
      seen.add(id);
      let r = rx.get(id);
      if (r && (r.lat !== lat || r.lon !== lon)) { r.marker.remove(); r.marker = null; }
      if (!r) rx.set(id, r = { id, state: "" });
      Object.assign(r, { area, lat, lon, presence });
      r.state = stateOf(r);
      if (group && !r.marker) place(r);
      else if (r.marker) { r.state = ""; restyle(r); }
    }
    for (const [id, r] of rx) if (!seen.has(id)) { if (r.marker) r.marker.remove(); rx.delete(id); }
    total = rows.length + (pos.unplaced || 0);
    note.textContent = [rx.size ? "" : t("map.none"), pos.unplaced ? t("map.unplaced", { n: pos.unplaced }) : ""].filter(Boolean).join(" ");
    note.hidden = !note.textContent;
    box.dataset.markers = String(rx.size);
    return rows;
  };
  let refreshing = null;
  const refresh = () => {
    if (!group || refreshing) return;
    refreshing = api.get("/api/v1/devices/positions").then((pos) => {
      if (gone) return;
      read(pos);
      if (outlines) { outlines.remove(); drawOutlines(L); }
      recount();
    }).catch(() => {}).finally(() => { refreshing = null; });
  };

  const tiles = ctx.me && ctx.me.station && ctx.me.station.map;
  Promise.all([api.get("/api/v1/devices/positions"), loadLeaflet()]).then(([pos, leafletL]) => {
    if (gone) return;
    L = leafletL;
    const rows = read(pos);
    canvas = rows.length > SVG_MAX;
    map = L.map(box, {
      preferCanvas: canvas, zoomSnap: 0.25, attributionControl: !!tiles, zoomControl: false,
      // Without tiles there is nothing to see beyond the outlines.
      minZoom: tiles ? 0 : 5, maxZoom: 18,
    });
    L.control.zoom({ zoomInTitle: t("map.zoom.in"), zoomOutTitle: t("map.zoom.out") }).addTo(map);
    // A view first: Leaflet adds layers (and their paths) once it has one.
    // The receivers with their outlines' margin.
    const bounds = rx.size ? L.latLngBounds(outline(rows.map((r) => [r[2], r[3]]))) : null;
    if (bounds) map.fitBounds(bounds, FIT_OPTS);
    else map.setView([16, 107.5], 5); // Việt Nam, until a receiver has a position
    if (tiles) {
      map.attributionControl.setPrefix("Leaflet");
      const layer = L.tileLayer(tiles.tiles, { attribution: textOnly(tiles.attribution || new URL(tiles.tiles.replace(/\{s\}/, "a")).host), maxZoom: 19 });
      // Tiles that do not come (an offline station) give way to the outlines.
      let failed = 0;
      layer.on("tileerror", () => { if (++failed === 4 && !outlines) drawOutlines(L); });
      layer.addTo(map);
    } else {
      drawOutlines(L);
    }
    // A new size (a phone turned, the window narrowed) fits the receivers
    // again, until the user moves the map.
    let moved = false;
    map.on("dragstart", () => { moved = true; });
    for (const ev of ["wheel", "keydown"]) box.addEventListener(ev, () => { moved = true; }, { passive: true });
    box.addEventListener("click", (e) => { if (e.target.closest(".leaflet-control-zoom")) moved = true; });
    resize = new ResizeObserver(() => {
      if (!map) return;
      map.invalidateSize();
      if (bounds && !moved) map.fitBounds(bounds, FIT_OPTS);
    });
    resize.observe(box);
    map.on("zoomend", () => { if (outlines) declutter(); });
    group = L.featureGroup().addTo(map);
    for (const r of rx.values()) place(r);
    group.on("click", (e) => {
      const r = rx.get(e.layer.options.rxId);
      if (r) L.popup().setLatLng([r.lat, r.lon]).setContent(el("p", { class: "map-popup" }, el("strong", { text: r.id }), " · " + ctx.areaName(r.area) + " · " + t("map.state." + r.state))).openOn(map);
    });
    recount();
    box.dataset.renderer = canvas ? "canvas" : "svg";
    box.dataset.tiles = tiles ? "yes" : "no";
    box.dataset.state = "ready";
  }).catch((e) => {
    if (gone) return;
    box.dataset.state = "failed";
    box.dataset.error = String((e && e.message) || e); // for the tests' failure messages
    note.textContent = t("map.failed");
    note.hidden = false;
    console.warn("map", e);
  });

  // declutter hides the names that would cover one already shown (the
  // bigger communes' first), so a province's 50 outlines stay readable;
  // zooming in shows them again.
  function declutter() {
    const shown = [];
    for (const label of labels) {
      const e = label.getElement();
      if (!e) continue;
      e.classList.remove("map-label-hidden");
      const r = e.getBoundingClientRect();
      const hit = shown.some((o) => r.left < o.right && o.left < r.right && r.top < o.bottom && o.top < r.bottom);
      if (hit) e.classList.add("map-label-hidden");
      else shown.push(r);
    }
  }

  // drawOutlines draws each commune's outline, labelled by its name.
  function drawOutlines(L) {
    const commune = communeOf(ctx);
    const by = new Map();
    for (const r of rx.values()) {
      const c = commune(r.area);
      if (!by.has(c)) by.set(c, []);
      by.get(c).push([r.lat, r.lon]);
    }
    outlines = L.layerGroup();
    labels = [];
    for (const [c, pts] of [...by].sort((a, b) => b[1].length - a[1].length)) {
      const ring = outline(pts);
      outlines.addLayer(L.polygon(ring, { className: "map-area", color: "#0a5fb4", weight: 2, fillColor: "#0a5fb4", fillOpacity: 0.06, interactive: false }));
      // The name above the outline, clear of the markers inside it.
      const north = Math.max(...ring.map((p) => p[0]));
      const lons = ring.map((p) => p[1]);
      const label = L.tooltip({ permanent: true, direction: "top", className: "map-area-label", interactive: false })
        .setLatLng([north, (Math.min(...lons) + Math.max(...lons)) / 2]).setContent(el("span", { text: ctx.areaName(c) }));
      outlines.addLayer(label);
      labels.push(label); // the communes with more receivers first
    }
    outlines.addTo(map);
    declutter();
    outlines.eachLayer((p) => p.bringToBack && p.bringToBack()); // under the markers, when the tiles failed after them
    box.dataset.outlines = String(by.size);
  }

  return () => {
    gone = true;
    offs.forEach((f) => f());
    if (resize) resize.disconnect();
    if (map) map.remove();
  };
}

// textOnly escapes text for Leaflet's attribution, which it writes as
// markup: the configured credit is shown as written.
function textOnly(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
