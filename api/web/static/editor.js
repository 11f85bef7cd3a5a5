// The editor: sliders, -/+ and locks (POST /edit on every change), and the axes table with
// each attribute's probability and the feature-conditioned generation choices.
//
// Editing model: the page keeps the *base* latent of the current face and one absolute
// distance per axis (the sliders). Every change sends POST /edit with the base latent, all
// non-zero moves and the locked axes, so sliders are reversible. Requests that would replace
// the face are numbered; an answer that is not the latest is dropped.

import { FACE_SIZE, state } from "./state.js";
import { $, dataUrl, el, faceRequest, notice, pretty, signed } from "./ui.js";
import { describeMoves, showFace, showRealism } from "./face.js";
import { customAxesFor, deleteTaught, exportTaught } from "./taught.js";
import { editPhoto, photoActive } from "./photo.js";

const STEP = 0.5;           // distance added by the -/+ buttons
const RANGE = 4;            // sliders go from -RANGE to +RANGE
const WANT = { yes: 0.9, no: 0.1 };
export const DEBOUNCE_MS = 120;

// ---------------------------------------------------------------------------------------
// Editing
export function activeMoves() {
  const moves = {};
  for (const [name, d] of state.moves) if (d !== 0 && !state.locked.has(name)) moves[name] = d;
  return moves;
}

let editTimer = null;
export function scheduleEdit(delay = DEBOUNCE_MS) {
  clearTimeout(editTimer);
  editTimer = setTimeout(() => { editTimer = null; renderEdit(); }, delay);
}

async function renderEdit() {
  if (photoActive()) return editPhoto();  // a face of a whole photo: the photo is edited
  if (!state.base) return null;
  clearTimeout(editTimer);
  editTimer = null;
  const body = {
    latent: state.base, moves: activeMoves(), locked: [...state.locked],
    format: "png", size: FACE_SIZE, with_features: true,
  };
  // Local edits: the server's default (on when its bundle ships masks) unless turned off.
  if (!$("locality-toggle").checked) body.locality = false;
  if (state.adapter) body.adapter = state.adapter;  // an uploaded face: rendered as encoded
  const custom = customAxesFor(body.moves, body.locked);
  if (Object.keys(custom).length) body.custom_axes = custom;
  const data = await faceRequest("Edit", "edit", body);
  if (!data) return null;
  showFace({ latent: data.latent, image: dataUrl(data.image), features: data.features });
  state.local = Boolean(data.locality);
  showRealism(data.realism);
  if (data.unheld && data.unheld.length) {
    notice(`Could not hold ${data.unheld.map(pretty).join(", ")} within 0.05 for this face; `
      + "try a smaller move.");
  }
  return data;
}

function setMove(name, value) {
  const d = Math.round(Math.max(-RANGE, Math.min(RANGE, value)) * 100) / 100;
  state.moves.set(name, d);
  syncSliders();
}

export function syncSliders() {
  for (const row of document.querySelectorAll('[data-testid="axis-row"]')) {
    const name = row.dataset.axis;
    const d = state.moves.get(name) || 0;
    const slider = row.querySelector('[data-testid="axis-slider"]');
    if (Number(slider.value) !== d) slider.value = String(d);
    row.querySelector('[data-testid="axis-value"]').textContent = signed(d);
    row.classList.toggle("moved", d !== 0);
  }
}

// Make the face shown the new base (sliders back to 0); used before (un)locking so the face
// does not jump: locks apply to the whole summed move.
async function commitEdits() {
  if (photoActive()) return true;  // moves stay relative to the photo face's own latent
  if (Object.keys(activeMoves()).length > 0) {
    const data = await renderEdit();
    if (!data) return false;
    state.base = data.latent;
  }
  clearTimeout(editTimer);
  editTimer = null;
  state.moves.clear();
  syncSliders();
  return true;
}

async function toggleLock(name, button) {
  if (!(await commitEdits())) return;
  if (state.locked.has(name)) state.locked.delete(name);
  else state.locked.add(name);
  const on = state.locked.has(name);
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.title = on ? `Unlock ${pretty(name)}` : `Lock ${pretty(name)}`;
  const row = button.closest('[data-testid="axis-row"]');
  row.classList.toggle("locked", on);
  for (const control of row.querySelectorAll("[data-move]")) control.disabled = on || !state.base;
  if (state.current) $("face-label").textContent = state.label + describeMoves();
  if (photoActive()) scheduleEdit(0);
  notice(on ? `${pretty(name)} locked: other moves keep this face's ${pretty(name)} probability where it is.`
    : `${pretty(name)} unlocked.`);
}

export async function resetEdits() {
  if (!state.origin) return;
  state.base = state.origin;
  state.moves.clear();
  syncSliders();
  await renderEdit();
}

// ---------------------------------------------------------------------------------------
// Axes table and feature-conditioned generation
function lockIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "lock-icon");
  const body = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ x: 3, y: 7, width: 10, height: 8, rx: 1.5 })) body.setAttribute(k, v);
  const shackle = document.createElementNS(ns, "path");
  shackle.setAttribute("d", "M5 7V5a3 3 0 0 1 6 0v2");
  shackle.setAttribute("class", "shackle");
  svg.append(shackle, body);
  return svg;
}

export function buildAxes() {
  const list = $("axes");
  list.replaceChildren();
  const axisNames = new Set(allAxes().map((a) => a.name));
  for (const axis of allAxes()) {
    const name = axis.name;
    const label = pretty(name);
    const slider = el("input", {
      type: "range", min: -RANGE, max: RANGE, step: 0.1, value: 0, "data-move": "",
      "data-testid": "axis-slider", "aria-label": `${label}: move distance`, disabled: true,
      oninput: () => { setMove(name, Number(slider.value)); scheduleEdit(); },
      onchange: () => { setMove(name, Number(slider.value)); scheduleEdit(0); },
    });
    const nudge = (sign) => () => {
      setMove(name, (state.moves.get(name) || 0) + sign * STEP);
      scheduleEdit(0);
    };
    const isLocked = state.locked.has(name);
    const lock = el("button", {
      type: "button", class: "lock", "data-testid": "axis-lock",
      "aria-pressed": isLocked ? "true" : "false",
      "aria-label": `Lock ${label}`, title: `${isLocked ? "Unlock" : "Lock"} ${label}`,
    }, lockIcon());
    lock.addEventListener("click", () => toggleLock(name, lock));
    const row = el("div", { class: isLocked ? "axis locked" : "axis", role: "listitem", "data-testid": "axis-row", "data-axis": name },
      el("span", { class: "axis-name", title: axisTitle(axis) }, label,
        axis.reference ? el("span", { class: "badge", title: "Reference axis: other axes are orthogonal to it", text: "ref" }) : null,
        axis.taught ? el("span", { class: "badge taught", title: "Taught in this browser: kept in localStorage", text: "taught" }) : null,
        dragBadge(axis)),
      probabilityCell(name),
      el("div", { class: "axis-move" },
        el("button", { type: "button", class: "nudge", "data-move": "", "data-testid": "axis-minus",
          "aria-label": `Less ${label}`, title: `Less ${label} (−${STEP})`, text: "−", onclick: nudge(-1), disabled: true }),
        slider,
        el("button", { type: "button", class: "nudge", "data-move": "", "data-testid": "axis-plus",
          "aria-label": `More ${label}`, title: `More ${label} (+${STEP})`, text: "+", onclick: nudge(+1), disabled: true }),
        el("output", { class: "axis-value", "data-testid": "axis-value", "aria-label": `${label} distance`, text: "±0.0" })),
      lock);
    if (axis.taught) {
      row.append(el("div", { class: "axis-tools" },
        el("button", { type: "button", class: "ghost small", "data-testid": "axis-export",
          title: `Download ${label} as JSON for tlgan axes import`, text: "Export JSON",
          onclick: () => exportTaught(name) }),
        el("button", { type: "button", class: "ghost small", "data-testid": "axis-delete",
          title: `Delete the taught axis ${label} from this browser`, text: "Delete",
          onclick: () => deleteTaught(name) })));
    }
    list.append(row);
  }
  // Attributes the extractor reports but no axis moves: probabilities only.
  for (const name of state.attributes) {
    if (axisNames.has(name)) continue;
    list.append(el("div", { class: "axis no-axis", role: "listitem", "data-testid": "axis-row", "data-attribute": name },
      el("span", { class: "axis-name", title: "No axis for this attribute" }, pretty(name)),
      probabilityCell(name)));
  }
  filterAxes();
  buildConditioned();
}

// How far an axis drags each reference (GET /axes stats judge_drag_<reference>, measured
// by an extractor that did not label the samples): [[reference, change of P], ...].
function dragsOf(axis) {
  return Object.entries(axis.stats || {})
    .filter(([k, v]) => k.startsWith("judge_drag_") && typeof v === "number")
    .map(([k, v]) => [k.slice("judge_drag_".length), v]);
}

const DRAG_NOTE = 0.10;  // show a badge when moving −3..+3 changes a reference by more

function dragBadge(axis) {
  const drags = dragsOf(axis);
  if (!drags.length) return null;
  const [ref, v] = drags.reduce((a, b) => (Math.abs(b[1]) > Math.abs(a[1]) ? b : a));
  if (Math.abs(v) <= DRAG_NOTE) return null;
  const p = `${v > 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
  return el("span", { class: "badge drag", "data-testid": "axis-drag", "data-reference": ref,
    title: `Moving −3 → +3 changes P(${pretty(ref)}) by ${p} on average: lock ${pretty(ref)} to hold it`,
    text: `${pretty(ref)} ${p}` });
}

function allAxes() {
  return [...state.axes, ...[...state.taught].map(([name, t]) => ({ name, taught: true, stats: {}, source: t }))];
}

function axisTitle(axis) {
  if (axis.taught) {
    const st = axis.source.stats || {};
    const acc = typeof st.head_cv_accuracy === "number"
      ? ` · head accuracy ${st.head_cv_accuracy.toFixed(2)} on ${st.examples} marked faces` : "";
    return `${pretty(axis.name)} (taught in this browser${acc}; moves are open loop)`;
  }
  const auc = axis.stats && typeof axis.stats.auc_holdout === "number"
    ? ` · held-out AUC ${axis.stats.auc_holdout.toFixed(2)}` : "";
  const drags = dragsOf(axis).map(([r, v]) => `P(${pretty(r)}) ${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`);
  const drag = drags.length ? ` · moving −3 → +3 changes ${drags.join(", ")} (judged by another extractor)` : "";
  return `${pretty(axis.name)}${axis.reference ? " (reference axis)" : ""}${auc}${drag}`;
}

function probabilityCell(name) {
  return el("div", { class: "prob", "data-testid": "axis-prob", "data-attribute": name },
    el("div", { class: "bar", "aria-hidden": "true" },
      el("div", { class: "fill" }), el("div", { class: "origin-tick" })),
    el("span", { class: "prob-value", "data-testid": "axis-prob-value",
      "aria-label": `Probability of ${pretty(name)}`, text: "–" }));
}

export function updateProbabilities() {
  for (const cell of document.querySelectorAll('[data-testid="axis-prob"]')) {
    const name = cell.dataset.attribute;
    const p = state.features ? state.features[name] : undefined;
    const value = cell.querySelector('[data-testid="axis-prob-value"]');
    const fill = cell.querySelector(".fill");
    const tick = cell.querySelector(".origin-tick");
    if (typeof p !== "number") {
      value.textContent = "–";
      delete value.dataset.value;
      fill.style.width = "0%";
    } else {
      value.textContent = p.toFixed(2);
      value.dataset.value = String(p);
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      cell.classList.toggle("high", p >= 0.5);
    }
    const p0 = state.originFeatures ? state.originFeatures[name] : undefined;
    tick.hidden = typeof p0 !== "number";
    if (typeof p0 === "number") tick.style.left = `${(p0 * 100).toFixed(1)}%`;
  }
  for (const b of document.querySelectorAll("[data-move]")) {
    const row = b.closest('[data-testid="axis-row"]');
    b.disabled = !state.base || state.locked.has(row.dataset.axis);
  }
}

export function filterAxes() {
  const words = $("axis-filter").value.trim().toLowerCase().split(/[\s_]+/).filter(Boolean);
  for (const row of document.querySelectorAll('[data-testid="axis-row"]')) {
    const name = pretty(row.dataset.axis || row.dataset.attribute).toLowerCase();
    row.hidden = !words.every((w) => name.includes(w));
  }
}

function buildConditioned() {
  const grid = $("cond-grid");
  grid.replaceChildren();
  const attributes = new Set(state.attributes);
  for (const axis of state.axes) {
    if (!attributes.has(axis.name)) continue;  // targets are extractor attributes with an axis
    const id = `want-${axis.name}`;
    const select = el("select", { id, "data-testid": "cond-select", "data-axis": axis.name },
      el("option", { value: "", text: "any" }),
      el("option", { value: "yes", text: "yes" }),
      el("option", { value: "no", text: "no" }));
    select.addEventListener("change", () => {
      select.closest(".cond").dataset.want = select.value;
    });
    grid.append(el("div", { class: "cond" }, el("label", { for: id, text: pretty(axis.name) }), select));
  }
}

export function conditionTargets() {
  const targets = {};
  for (const s of document.querySelectorAll('[data-testid="cond-select"]')) {
    if (s.value) targets[s.dataset.axis] = WANT[s.value];
  }
  return targets;
}
