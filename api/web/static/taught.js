// Taught axes: kept in this browser (localStorage), sent to /edit as custom axes, exported
// as JSON for `tlgan axes import`, deleted.

import { state } from "./state.js";
import { el, notice, pretty, showError } from "./ui.js";
import { buildAxes, scheduleEdit, syncSliders, updateProbabilities } from "./editor.js";

const TAUGHT_STORAGE = "tlgan.taughtAxes";  // {name: {direction, head, stats}}

export function loadTaught() {
  state.taught.clear();
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(TAUGHT_STORAGE) || "{}") || {};
  } catch {
    stored = {};
  }
  const bundle = new Set(state.axes.map((a) => a.name));
  const skipped = [];
  for (const [name, t] of Object.entries(stored)) {
    const ok = t && Array.isArray(t.direction) && t.direction.length === state.latentSize
      && t.direction.every((x) => typeof x === "number" && Number.isFinite(x));
    if (ok && !bundle.has(name)) state.taught.set(name, t);
    else skipped.push(name);
  }
  if (skipped.length) {
    notice(`Taught axes not usable with these models (other latent size or a bundle axis's name): ${skipped.join(", ")}.`, 8000);
  }
}

function saveTaught() {
  try {
    localStorage.setItem(TAUGHT_STORAGE, JSON.stringify(Object.fromEntries(state.taught)));
    return true;
  } catch (err) {
    showError("Saving taught axes", new Error(`this browser did not keep them (${err.message || err})`));
    return false;
  }
}

// The taught axes as /edit's custom_axes: those the request moves or locks, and every one that
// carries a head (from /axes/fit), sent with it so that the answer's features include its
// probability and a lock on it is held per face. At most 32 (the API's bound): moved and locked ones first.
const MAX_CUSTOM_AXES = 32;
export function customAxesFor(moves, locked) {
  const custom = {};
  const wanted = [...Object.keys(moves), ...locked].filter((n) => state.taught.has(n));
  const headed = [...state.taught.keys()].filter((n) => state.taught.get(n).head);
  for (const name of [...wanted, ...headed]) {
    if (name in custom || Object.keys(custom).length >= MAX_CUSTOM_AXES) continue;
    const t = state.taught.get(name);
    custom[name] = t.head ? { direction: t.direction, head: t.head } : t.direction;
  }
  return custom;
}

export function addTaught(name, entry) {
  state.taught.set(name, entry);
  if (!saveTaught()) return;
  buildAxes();
  syncSliders();
  updateProbabilities();
}

export function exportTaught(name) {
  const t = state.taught.get(name);
  if (!t) return;
  // The shape `tlgan axes import NAME --direction FILE --bundle DIR` reads.
  const text = JSON.stringify({ name, direction: t.direction, head: t.head || null, stats: t.stats || {} }, null, 2);
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = el("a", { href: url, download: `tlgan-axis-${name.replace(/[^a-z0-9_-]+/gi, "-")}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  notice(`Exported ${pretty(name)}: add it to a bundle with tlgan axes import ${name} --direction FILE --bundle DIR.`, 8000);
}

export function deleteTaught(name) {
  if (!state.taught.has(name)) return;
  const hadEffect = (state.moves.get(name) || 0) !== 0 || state.locked.has(name);
  state.taught.delete(name);
  state.moves.delete(name);
  state.locked.delete(name);
  saveTaught();
  buildAxes();
  syncSliders();
  updateProbabilities();
  if (hadEffect) scheduleEdit(0);
  notice(`Deleted the taught axis ${pretty(name)}.`);
}

// A name for a new axis: not empty, not a bundle axis's.
export function checkAxisName(raw, action) {
  const name = raw.trim().replace(/\s+/g, "_");
  if (!name) {
    showError(action, new Error("name: give the feature a name first"));
    return null;
  }
  if (state.axes.some((a) => a.name === name)) {
    showError(action, new Error(`name: ${name} is an axis of the loaded bundle; pick another name`));
    return null;
  }
  return name;
}
