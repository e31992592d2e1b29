// The tab's one event stream (GET /api/v1/events): every live topic the
// console shows comes over it, dispatched to the screens that listen.
// Browsers allow six HTTP/1.1 connections per origin; a stream per
// screen would starve the rest. EventSource reconnects by itself, and
// each topic's first event after that has reset set.

import { eventURL } from "./api.js";

const TOPICS = ["sessions", "devices", "alarms", "alerts", "playlog", "drafts", "bulletins", "relays"];
const listeners = new Map(); // topic → Set of fn(change)
const last = new Map(); // topic → state kept for screens that open later
let source = null;
let onLive = () => {};
let onClosed = () => {};

// start opens the stream. liveFn(on) hears when it is up or down;
// closedFn runs when the browser gave up (the server refused it, as when
// the sign-in ended): the shell checks the sign-in and starts it again.
export function start(liveFn, closedFn) {
  stop();
  onLive = liveFn || onLive;
  onClosed = closedFn || onClosed;
  const es = new EventSource(eventURL("/api/v1/events?topics=" + TOPICS.join(",")));
  source = es;
  es.onopen = () => onLive(true);
  es.onerror = () => {
    onLive(false);
    if (es.readyState === EventSource.CLOSED && source === es) onClosed();
  };
  for (const topic of TOPICS) {
    es.addEventListener(topic, (ev) => {
      const ch = JSON.parse(ev.data);
      remember(topic, ch);
      for (const fn of listeners.get(topic) || []) fn(ch);
    });
  }
}

export function stop() {
  if (source) source.close();
  source = null;
  last.clear();
}

// on subscribes fn to a topic and first replays what the stream already
// said, as one reset change; it returns the unsubscribe function.
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  const st = last.get(topic);
  if (st) fn(snapshot(topic, st));
  return () => listeners.get(topic).delete(fn);
}

// remember keeps each topic's current state: items by id, counts, log.
function remember(topic, ch) {
  let st = last.get(topic);
  if (!st || ch.reset) {
    st = { items: new Map(), counts: null, entries: [] };
    last.set(topic, st);
  }
  for (const it of ch.changed || []) st.items.set(it.id, it);
  for (const id of ch.removed || []) st.items.delete(id);
  if (ch.counts) st.counts = ch.counts;
  if (ch.entries) st.entries = ch.entries.concat(st.entries).slice(0, 50);
}

function snapshot(topic, st) {
  return { reset: true, changed: [...st.items.values()], counts: st.counts, entries: st.entries };
}
