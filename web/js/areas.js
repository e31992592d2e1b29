// The area tree as the console lists it.

import { t } from "./i18n.js";

// treeOrder lists areas parents first, each followed by its children, as
// [id, label, depth].
export function treeOrder(areas) {
  const ids = new Set(areas.map((a) => a.id));
  const kids = {};
  for (const a of areas) {
    const p = ids.has(a.parent_id) ? a.parent_id : "";
    (kids[p] = kids[p] || []).push(a);
  }
  const out = [];
  const walk = (p, depth) => {
    for (const a of kids[p] || []) {
      out.push([a.id, t("area." + a.kind) + ": " + a.name, depth]);
      if (depth < 8) walk(a.id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}
