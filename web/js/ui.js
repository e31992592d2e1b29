// Small DOM helpers. Values from the API go into the page as text
// (textContent, attributes), never as markup.

import { errorText } from "./i18n.js";

// el builds an element: attrs (class, id, for, type, text, on…) and
// children (nodes or strings).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "checked" || k === "disabled" || k === "required" || k === "selected") e[k] = true;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// field is a labelled input: a label, the control and the place its
// error message goes (aria-describedby), in one block.
export function field(label, control) {
  const id = control.id;
  const err = el("p", { class: "field-error", id: id + "-error", role: "alert", hidden: true });
  control.setAttribute("aria-describedby", id + "-error");
  return el("div", { class: "field" }, el("label", { for: id, text: label }), control, err);
}

// select builds a select; options are [value, label] pairs.
export function options(sel, pairs) {
  const keep = sel.value;
  sel.replaceChildren(...pairs.map(([v, l]) => el("option", { value: v, text: l })));
  if (pairs.some(([v]) => v === keep)) sel.value = keep;
  return sel;
}

// showError puts err's message next to the control it names (by the
// form's field map) or next to the action that caused it.
export function showError(form, err, fields, near) {
  clearErrors(form);
  const name = err && err.field;
  const ctl = name && fields && (fields[name] || fields[name.split(".")[0]]);
  let box = ctl ? document.getElementById(ctl + "-error") : null;
  if (ctl && box) {
    document.getElementById(ctl).setAttribute("aria-invalid", "true");
  } else {
    box = near;
  }
  if (!box) return;
  box.replaceChildren(errorText(err));
  if (err && err.message && err.code !== "network") {
    box.append(" ", el("small", { class: "detail", lang: "en", text: "(" + err.message + ")" }));
  }
  box.hidden = false;
}

export function clearErrors(form) {
  if (!form) return;
  for (const b of form.querySelectorAll(".field-error, .action-error")) { b.hidden = true; b.replaceChildren(); }
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

// say shows a status message in the shared live region.
let sayTimer = 0;

export function say(text, isError) {
  const m = document.getElementById("msg");
  m.textContent = text || "";
  m.className = isError ? "error" : "ok";
  m.hidden = !text;
  // A success note goes by itself, so it does not cover the page; an
  // error stays until the next message.
  clearTimeout(sayTimer);
  if (text && !isError) sayTimer = setTimeout(() => { m.hidden = true; }, 8000);
}

// List keeps a list of cards patched by id: a live update changes the
// cards that changed and never rebuilds the others, so focus and what
// the user typed or ticked stay where they are.
export class List {
  constructor(container, render, update, emptyText, order) {
    this.box = container;
    this.render = render; // item → node
    this.update = update; // (node, item) → void
    this.order = order; // (a, b) → number, optional
    this.items = new Map();
    this.nodes = new Map();
    this.empty = el("li", { class: "empty", text: emptyText });
    this.box.append(this.empty);
  }

  reset(items) {
    for (const id of [...this.items.keys()]) if (!items.some((i) => i.id === id)) this.remove(id);
    for (const it of items) this.put(it);
  }

  put(it) {
    this.items.set(it.id, it);
    let n = this.nodes.get(it.id);
    if (n) {
      this.update(n, it);
    } else {
      n = this.render(it);
      n.dataset.id = it.id;
      this.nodes.set(it.id, n);
      this.update(n, it);
      this.box.append(n);
    }
    this.sort();
  }

  remove(id) {
    const n = this.nodes.get(id);
    if (n) n.remove();
    this.nodes.delete(id);
    this.items.delete(id);
    this.sort();
  }

  apply(ch) {
    if (ch.reset) this.reset(ch.changed || []);
    else for (const it of ch.changed || []) this.put(it);
    for (const id of ch.removed || []) this.remove(id);
  }

  sort() {
    this.empty.hidden = this.items.size > 0;
    if (!this.order) return;
    const sorted = [...this.items.values()].sort(this.order);
    let prev = this.empty;
    for (const it of sorted) {
      const n = this.nodes.get(it.id);
      if (prev.nextSibling !== n) prev.after(n); // moves only what is out of place
      prev = n;
    }
  }
}
