// tlgan face editor: a plain ES module over the public REST API (no framework, no build).
//
// Editing model: the page keeps the *base* latent of the current face and one absolute
// distance per axis (the sliders). Every change sends POST /edit with the base latent, all
// non-zero moves and the locked axes, so sliders are reversible. Requests that would replace
// the face are numbered; an answer that is not the latest is dropped.

const STEP = 0.5;           // distance added by the -/+ buttons
const RANGE = 4;            // sliders go from -RANGE to +RANGE
const WANT = { yes: 0.9, no: 0.1 };
const DEBOUNCE_MS = 120;
const KEY_STORAGE = "tlgan.apiKey";
const TAUGHT_STORAGE = "tlgan.taughtAxes";  // {name: {direction, head, stats}}
const TEACH_ROUND = 12;     // faces per round of marking
const TEACH_POOL = 36;      // candidates drawn for later rounds (the least sure are shown)
const TEACH_MIN_EACH = 5;   // marks of each label needed before /axes/fit
const TEACH_MIN_TOTAL = 10;
const DISCOVER_K = 8;
const STRIP = [-3, -2, -1, 0, 1, 2, 3];  // distances of a discovered direction's strip

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = {
  axes: [],            // [{name, reference}] from the bundle
  taught: new Map(),   // name -> {direction, head, stats}: taught / named axes (localStorage)
  attributes: [],
  latentSize: null,
  origin: null,        // latent of the face as generated / pasted / blended (Reset goes here)
  originFeatures: null,
  base: null,          // latent the sliders are relative to
  current: null,       // latent of the face shown
  image: null,         // data: URL of the face shown
  features: null,
  label: "",
  moves: new Map(),    // axis -> distance (absolute, relative to base)
  locked: new Set(),
  local: false,        // the face shown is a local edit (its latent alone renders the global one)
  mixA: null,          // {latent, image}
  mixB: null,
  seq: 0,              // number of the latest face request
  pending: 0,
};

// ---------------------------------------------------------------------------------------
// API access
class ApiError extends Error {
  constructor(status, message, errors = null) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

// GET without a body; POST with JSON, or multipart when the body is a FormData (the
// browser sets its Content-Type with the boundary).
async function api(path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  const init = { method: body === undefined ? "GET" : "POST", headers };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);  // relative: works behind a path prefix too
  } catch (err) {
    throw new ApiError(0, `could not reach the server (${err.message || err})`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    let message = data && typeof data.detail === "string" && data.detail
      ? data.detail : `${resp.status} ${resp.statusText || "error"}`.trim();
    if (resp.status === 503 || resp.status === 429) {
      const wait = resp.headers.get("Retry-After");
      if (wait) message += ` (try again in ${wait} s)`;
    }
    throw new ApiError(resp.status, message, data && data.errors);
  }
  if (data === null) throw new ApiError(resp.status, "the server sent an unreadable answer");
  return data;
}

// ---------------------------------------------------------------------------------------
// Messages
function showError(action, err) {
  const box = $("error");
  let text;
  if (err instanceof ApiError) {
    const who = err.status ? `${action} failed (HTTP ${err.status})` : `${action} failed`;
    text = `${who}: ${err.message}`;
    if (err.status === 401) {
      text += ". Enter the service's API key above.";
      showKeyForm(true);
    }
  } else {
    text = `${action} failed: ${err && err.message ? err.message : String(err)}`;
  }
  $("error-text").textContent = text;
  box.hidden = false;
  notice("");
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

let noticeTimer = null;
function notice(text, ms = 4000) {
  $("notice").textContent = text;
  clearTimeout(noticeTimer);
  if (text && ms) noticeTimer = setTimeout(() => { $("notice").textContent = ""; }, ms);
}

function setBusy(delta) {
  state.pending = Math.max(0, state.pending + delta);
  $("face-frame").classList.toggle("busy", state.pending > 0);
  $("face-frame").setAttribute("aria-busy", state.pending > 0 ? "true" : "false");
}

// Run a request that replaces the face; returns its answer, or null if it failed or a
// newer face request was made meanwhile (out-of-order answers are dropped).
async function faceRequest(action, path, body) {
  const mine = ++state.seq;
  setBusy(+1);
  try {
    const data = await api(path, body);
    if (mine !== state.seq) return null;
    clearError();
    return data;
  } catch (err) {
    if (mine === state.seq) showError(action, err);
    return null;
  } finally {
    setBusy(-1);
  }
}

// ---------------------------------------------------------------------------------------
// The face
function dataUrl(b64, format = "png") {
  return `data:image/${format};base64,${b64}`;
}

function showFace({ latent, image, features, label }) {
  state.current = latent;
  state.local = false;  // renderEdit sets it after a local edit
  state.image = image;
  state.features = features || null;
  if (label !== undefined) state.label = label;
  const img = $("face-image");
  img.src = image;
  img.alt = `Generated face: ${state.label}`;
  $("face-empty").hidden = true;
  $("face-label").textContent = state.label + describeMoves();
  const link = $("download");
  link.href = image;
  link.download = `tlgan-${state.label.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "") || "face"}.png`;
  link.removeAttribute("aria-disabled");
  for (const id of ["reset-edits", "copy-latent", "keep-a", "keep-b"]) $(id).disabled = false;
  updateProbabilities();
}

function describeMoves() {
  const parts = [...state.moves].filter(([, d]) => d !== 0)
    .map(([name, d]) => `${pretty(name)} ${d > 0 ? "+" : "−"}${Math.abs(d).toFixed(1)}`);
  const locks = [...state.locked].map(pretty);
  let out = parts.length ? ` · ${parts.join(", ")}` : "";
  if (locks.length) out += ` · locked: ${locks.join(", ")}`;
  return out;
}

// A new face (generated, pasted, blended or encoded from a photo): the sliders start at 0.
// Any photo shown beside its reconstruction goes (encodePhoto shows its own afterwards).
function newFace(latent, image, features, label) {
  hideUploadResult();
  state.origin = latent;
  state.originFeatures = features || null;
  state.base = latent;
  state.moves.clear();
  syncSliders();
  showFace({ latent, image, features, label });
}

async function generate({ random = false, withTargets = false } = {}) {
  const body = { count: 1, format: "png", with_features: true };
  const seedText = $("seed-input").value.trim();
  if (random || seedText === "") {
    body.seed = randomSeed();
    $("seed-input").value = String(body.seed);
  } else {
    const seed = Number(seedText);
    if (!/^\d+$/.test(seedText) || !Number.isSafeInteger(seed)) {
      showError("Generate", new Error(
        `seed: "${seedText}" is not a whole number between 0 and ${Number.MAX_SAFE_INTEGER}`));
      return;
    }
    body.seed = seed;
  }
  const trunc = Number($("truncation").value);
  if ($("truncation").value.trim() !== "") body.truncation = trunc;
  let targets = null;
  if (withTargets) {
    targets = conditionTargets();
    if (!Object.keys(targets).length) {
      showError("Generate with features", new Error("pick at least one feature (yes or no) first"));
      return;
    }
    body.features = targets;
  }
  $("unmet").hidden = true;
  const action = withTargets ? "Generate with features" : "Generate";
  const data = await faceRequest(action, "generate", body);
  if (!data) return;
  const face = data.faces[0];
  const label = withTargets ? `seed ${face.seed} with features` : `seed ${face.seed}`;
  newFace(face.latent, dataUrl(face.image), face.features, label);
  if (withTargets) showUnmet(targets, face.unmet || [], face.features || {});
}

// Random seeds are picked here (not by the API) so that they stay short and exact in
// JavaScript numbers: the API's own random seeds can exceed 2^53.
function randomSeed() {
  const word = new Uint32Array(1);
  crypto.getRandomValues(word);
  return word[0] % 1000000000;
}

function showUnmet(targets, unmet, features) {
  const box = $("unmet");
  box.hidden = false;
  box.classList.toggle("bad", unmet.length > 0);
  box.dataset.unmet = unmet.join(",");
  if (unmet.length) {
    const got = unmet.filter((n) => typeof features[n] === "number")
      .map((n) => `${pretty(n)} is ${features[n].toFixed(2)} (wanted ${targets[n] >= 0.5 ? "yes" : "no"})`);
    box.textContent = `Could not meet: ${unmet.map(pretty).join(", ")}.`
      + (got.length ? ` ${got.join(", ")}.` : "")
      + " The face shown is the closest found; try another seed or fewer features.";
  } else {
    box.textContent = `All ${Object.keys(targets).length} requested features met.`;
  }
}

// ---------------------------------------------------------------------------------------
// Editing
function activeMoves() {
  const moves = {};
  for (const [name, d] of state.moves) if (d !== 0 && !state.locked.has(name)) moves[name] = d;
  return moves;
}

let editTimer = null;
function scheduleEdit(delay = DEBOUNCE_MS) {
  clearTimeout(editTimer);
  editTimer = setTimeout(() => { editTimer = null; renderEdit(); }, delay);
}

async function renderEdit() {
  if (!state.base) return null;
  clearTimeout(editTimer);
  editTimer = null;
  const body = {
    latent: state.base, moves: activeMoves(), locked: [...state.locked],
    format: "png", with_features: true,
  };
  // Local edits: the server's default (on when its bundle ships masks) unless turned off.
  if (!$("locality-toggle").checked) body.locality = false;
  const custom = customAxesFor(body.moves, body.locked);
  if (Object.keys(custom).length) body.custom_axes = custom;
  const data = await faceRequest("Edit", "edit", body);
  if (!data) return null;
  showFace({ latent: data.latent, image: dataUrl(data.image), features: data.features });
  state.local = Boolean(data.locality);
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

function syncSliders() {
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
  notice(on ? `${pretty(name)} locked: other moves keep this face's ${pretty(name)} probability where it is.`
    : `${pretty(name)} unlocked.`);
}

async function resetEdits() {
  if (!state.origin) return;
  state.base = state.origin;
  state.moves.clear();
  syncSliders();
  await renderEdit();
}

// ---------------------------------------------------------------------------------------
// Axes table and feature-conditioned generation
function pretty(name) {
  return name.replace(/_/g, " ");
}

function signed(d) {
  return `${d > 0 ? "+" : d < 0 ? "−" : "±"}${Math.abs(d).toFixed(1)}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

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

function buildAxes() {
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

function updateProbabilities() {
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

function filterAxes() {
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

function conditionTargets() {
  const targets = {};
  for (const s of document.querySelectorAll('[data-testid="cond-select"]')) {
    if (s.value) targets[s.dataset.axis] = WANT[s.value];
  }
  return targets;
}

// ---------------------------------------------------------------------------------------
// Taught axes (kept in this browser) and the "Teach a feature" mode
function loadTaught() {
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
function customAxesFor(moves, locked) {
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

function addTaught(name, entry) {
  state.taught.set(name, entry);
  if (!saveTaught()) return;
  buildAxes();
  syncSliders();
  updateProbabilities();
}

function exportTaught(name) {
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

function deleteTaught(name) {
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
function checkAxisName(raw, action) {
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

const teach = {
  name: null,
  faces: [],       // every face shown this session: {latent, image, label: 1 | 0 | null}
  direction: null, // the direction of the last fit, if any
  head: null,      // and its head (labels later rounds' candidates)
};

function teachCounts() {
  const yes = teach.faces.filter((f) => f.label === 1).length;
  const no = teach.faces.filter((f) => f.label === 0).length;
  return { yes, no };
}

function updateTeachStatus() {
  const { yes, no } = teachCounts();
  const ready = yes >= TEACH_MIN_EACH && no >= TEACH_MIN_EACH && yes + no >= TEACH_MIN_TOTAL;
  $("teach-fit").disabled = !ready || !teach.name;
  $("teach-more").disabled = !teach.name;
  let text = teach.name ? `${pretty(teach.name)}: ${yes} yes · ${no} no.` : "";
  if (teach.name && !ready) {
    text += ` Mark at least ${TEACH_MIN_EACH} of each (${TEACH_MIN_TOTAL} in all) to make the axis.`;
  } else if (teach.name) {
    text += " Enough marks: press Make the axis (more marks make it better).";
  }
  $("teach-count").textContent = text;
}

function showTeachFaces(faces) {
  const grid = $("teach-grid");
  grid.replaceChildren();
  for (const face of faces) {
    const mark = (label) => () => {
      face.label = face.label === label ? null : label;
      card.dataset.label = face.label === null ? "" : String(face.label);
      yes.setAttribute("aria-pressed", face.label === 1 ? "true" : "false");
      no.setAttribute("aria-pressed", face.label === 0 ? "true" : "false");
      updateTeachStatus();
    };
    const yes = el("button", { type: "button", class: "small", "data-testid": "teach-yes",
      "aria-pressed": "false", text: "Yes", onclick: mark(1) });
    const no = el("button", { type: "button", class: "small", "data-testid": "teach-no",
      "aria-pressed": "false", text: "No", onclick: mark(0) });
    const attrs = { class: "teach-card", role: "listitem", "data-testid": "teach-card", "data-label": "" };
    if (typeof face.p === "number") attrs["data-p"] = String(face.p);  // the taught head's
    const card = el("div", attrs,
      el("img", { src: face.image, alt: `Face to mark for ${pretty(teach.name)}`, width: 96, height: 96,
        "data-testid": "teach-image" }),
      el("div", { class: "teach-marks" }, yes, no));
    grid.append(card);
  }
  updateTeachStatus();
}

// Faces to mark. Once an axis has been fitted, they come labelled by its head (sent as a
// custom axis): ``p`` is the head's probability for each face.
async function teachFaces(count) {
  const body = { seed: randomSeed(), count, format: "png" };
  if (teach.head) {
    body.custom_axes = { [teach.name]: { direction: teach.direction, head: teach.head } };
    body.with_features = true;
  }
  const data = await api("generate", body);
  return data.faces.map((f) => ({
    latent: f.latent, image: dataUrl(f.image), label: null,
    p: f.features && typeof f.features[teach.name] === "number" ? f.features[teach.name] : null,
  }));
}

async function startTeach(event) {
  event.preventDefault();
  const name = checkAxisName($("teach-name").value, "Teach a feature");
  if (!name) return;
  if (name !== teach.name) {
    teach.name = name;
    teach.faces = [];
    teach.direction = null;
    teach.head = null;
    showTeachWarning("");
  }
  $("teach-start").disabled = true;
  try {
    const faces = await teachFaces(TEACH_ROUND);
    teach.faces.push(...faces);
    clearError();
    showTeachFaces(faces);
    if (state.taught.has(name)) notice(`${pretty(name)} is already taught here: making the axis again replaces it.`, 6000);
  } catch (err) {
    showError("Teach a feature (faces)", err);
  } finally {
    $("teach-start").disabled = false;
  }
}

// Later rounds: the faces the current axis is least sure about. After a fit, the server
// labels the candidates with the taught head: those with a probability nearest 0.5. Before
// any fit there is no head, so the page projects candidate latents on the difference of the
// mean yes and mean no latents and shows those nearest the middle of the two means.
function leastSure(candidates) {
  if (candidates.length && candidates.every((c) => typeof c.p === "number")) {
    return candidates.map((c) => [Math.abs(c.p - 0.5), c])
      .sort((a, b) => a[0] - b[0]).slice(0, TEACH_ROUND).map(([, c]) => c);
  }
  const yes = teach.faces.filter((f) => f.label === 1).map((f) => f.latent);
  const no = teach.faces.filter((f) => f.label === 0).map((f) => f.latent);
  if (!yes.length || !no.length) return candidates.slice(0, TEACH_ROUND);
  const mean = (rows) => rows[0].map((_, i) => rows.reduce((s, r) => s + r[i], 0) / rows.length);
  const my = mean(yes);
  const mn = mean(no);
  const d = teach.direction || my.map((v, i) => v - mn[i]);
  const dot = (z) => z.reduce((s, v, i) => s + v * d[i], 0);
  const boundary = (dot(my) + dot(mn)) / 2;
  return candidates.map((c) => [Math.abs(dot(c.latent) - boundary), c])
    .sort((a, b) => a[0] - b[0]).slice(0, TEACH_ROUND).map(([, c]) => c);
}

async function moreTeachFaces() {
  if (!teach.name) return;
  $("teach-more").disabled = true;
  try {
    const faces = leastSure(await teachFaces(TEACH_POOL));
    teach.faces.push(...faces);
    clearError();
    showTeachFaces(faces);
  } catch (err) {
    showError("Teach a feature (more faces)", err);
  } finally {
    updateTeachStatus();
  }
}

function showTeachWarning(text) {
  const box = $("teach-warning");
  box.textContent = text;
  box.hidden = !text;
}

async function fitTaught() {
  const name = teach.name;
  const examples = teach.faces.filter((f) => f.label !== null)
    .map((f) => ({ latent: f.latent, label: f.label }));
  $("teach-fit").disabled = true;
  try {
    const data = await api("axes/fit", { name, examples });
    clearError();
    teach.direction = data.direction;
    teach.head = data.head;
    addTaught(name, { direction: data.direction, head: data.head, stats: data.stats });
    const st = data.stats || {};
    const range = typeof st.head_cv_accuracy_low === "number" && typeof st.head_cv_accuracy_high === "number"
      ? `, 95% interval ${st.head_cv_accuracy_low.toFixed(2)}–${st.head_cv_accuracy_high.toFixed(2)}` : "";
    const acc = typeof st.head_cv_accuracy === "number" ? ` (cross-validated accuracy ${st.head_cv_accuracy.toFixed(2)}${range})` : "";
    notice(`Taught ${pretty(name)} from ${examples.length} faces${acc}: its slider is in the feature list.`, 8000);
    showTeachWarning(st.near_chance ? `Near chance: ${st.warning || "the marks may not teach a feature"}. `
      + "The slider may move faces at random: mark more faces (More faces) and make the axis again." : "");
  } catch (err) {
    showError("Make the axis", err);
  } finally {
    updateTeachStatus();
  }
}

// ---------------------------------------------------------------------------------------
// Discover: unsupervised directions (GET /axes/discover), each as a strip on the current face
const STRIP_AXIS = "discovered_direction";  // the custom axis name used to draw strips
let discoverSeq = 0;

async function loadDiscover() {
  if (!state.current) {
    showError("Discover", new Error("make a face first: the strips show the current face"));
    return;
  }
  const mine = ++discoverSeq;
  const latent = state.current;
  $("discover-load").disabled = true;
  let data;
  try {
    data = await api(`axes/discover?k=${DISCOVER_K}&method=sefa`);
    clearError();
  } catch (err) {
    showError("Discover", err);
    $("discover-load").disabled = false;
    return;
  }
  const list = $("discover-list");
  list.replaceChildren();
  const strips = [];
  for (const d of data.directions) {
    const moved = Object.entries(d.moves || {}).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 3)
      .map(([n, v]) => `${pretty(n)} ${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`);
    const near = d.nearest_axis ? `nearest axis ${pretty(d.nearest_axis.name)} (cosine ${d.nearest_axis.cosine.toFixed(2)})` : "no named axis near";
    const imgs = STRIP.map((t) => el("img", { width: 56, height: 56, alt: `Direction ${d.index + 1} at ${signed(t)}`, title: signed(t),
      "data-testid": "discover-strip-image", "data-distance": String(t) }));
    const input = el("input", { type: "text", maxlength: 64, spellcheck: "false", "data-testid": "discover-name-input",
      "aria-label": `Name for direction ${d.index + 1}`, placeholder: "Name it…" });
    const button = el("button", { type: "button", class: "small", "data-testid": "discover-name", text: "Name it",
      onclick: () => nameDiscovered(d, data.method, input) });
    list.append(el("div", { class: "discover-entry", role: "listitem", "data-testid": "discover-entry", "data-index": String(d.index) },
      el("div", { class: "discover-info" },
        el("strong", { text: `Direction ${d.index + 1}` }),
        el("span", { class: "hint", "data-testid": "discover-moves", text: moved.length ? `moves ${moved.join(", ")}` : "moves nothing measurable" }),
        el("span", { class: "hint", "data-testid": "discover-nearest", text: near })),
      el("div", { class: "strip", "data-testid": "discover-strip" }, ...imgs),
      el("div", { class: "discover-name" }, input, button)));
    strips.push([d.direction, imgs]);
  }
  // Draw the strips one request at a time (the service's CPUs are shared with the editor).
  try {
    for (const [direction, imgs] of strips) {
      for (let i = 0; i < STRIP.length; i += 1) {
        if (mine !== discoverSeq) return;
        const r = await api("edit", { latent, moves: { [STRIP_AXIS]: STRIP[i] }, locked: [],
          custom_axes: { [STRIP_AXIS]: direction }, format: "png" });
        imgs[i].src = dataUrl(r.image);
      }
    }
  } catch (err) {
    if (mine === discoverSeq) showError("Discover (drawing the strips)", err);
  } finally {
    if (mine === discoverSeq) $("discover-load").disabled = false;
  }
}

function nameDiscovered(d, method, input) {
  const name = checkAxisName(input.value, "Name a discovered direction");
  if (!name) return;
  if (state.taught.has(name)) {
    showError("Name a discovered direction", new Error(`name: ${name} is already a taught axis; delete it first or pick another name`));
    return;
  }
  clearError();
  addTaught(name, { direction: d.direction, head: null,
    stats: { source: `GET /axes/discover (${method})`, index: d.index, score: d.score,
      moves: d.moves || {}, nearest_axis: d.nearest_axis || null } });
  input.value = "";
  notice(`Named direction ${d.index + 1} ${pretty(name)}: its slider is in the feature list.`, 6000);
}

// ---------------------------------------------------------------------------------------
// Latent copy / paste
async function copyLatent() {
  if (!state.current) return;
  const text = JSON.stringify(state.current);
  try {
    await navigator.clipboard.writeText(text);
    notice(`Latent copied to the clipboard (${state.current.length} numbers).${localWarning()}`,
      state.local ? 8000 : undefined);
  } catch {
    const area = $("latent-text");
    $("latent-details").open = true;
    area.value = text;
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    notice(ok ? `Latent copied (${state.current.length} numbers).${localWarning()}`
      : "The clipboard is not available here: the latent is in the box below, select and copy it.", 8000);
  }
}

function localWarning() {
  return state.local
    ? " This face is a local edit: the copied latent alone renders the whole-picture edit."
      + " To get this face back, paste the face before the edit and move the sliders again."
    : "";
}

function parseLatent(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`latent: not valid JSON (${err.message})`);
  }
  if (value && !Array.isArray(value) && Array.isArray(value.latent)) value = value.latent;
  if (!Array.isArray(value) || !value.length || !value.every((x) => typeof x === "number")) {
    throw new Error("latent: expected a JSON array of numbers (or an object with a \"latent\" array)");
  }
  return value;
}

async function pasteLatent() {
  let latent;
  try {
    latent = parseLatent($("latent-text").value.trim());
  } catch (err) {
    showError("Paste latent", err);
    return;
  }
  const data = await faceRequest("Paste latent", "edit", {
    latent, moves: {}, locked: [], format: "png", with_features: true,
  });
  if (!data) return;
  newFace(data.latent, dataUrl(data.image), data.features, "pasted latent");
  notice("Latent applied.");
}

// ---------------------------------------------------------------------------------------
// Upload a photo: POST /encode turns it into a latent, which becomes the current face (to
// edit, lock, keep and blend like any other). The photo is shown beside its reconstruction,
// centre-cropped by CSS as the service crops it, until another face replaces it.
let photoUrl = null;  // object URL of the photo shown (revoked when it goes)

function shortName(name, most = 32) {
  const text = (name || "photo").trim() || "photo";
  return text.length > most ? `${text.slice(0, most - 1)}…` : text;
}

async function encodePhoto(file, note = "") {
  if (!file) return;
  const form = new FormData();
  form.append("image", file, file.name || "photo");
  form.append("format", "png");
  form.append("with_features", "true");
  const name = shortName(file.name);
  const busyText = `Encoding ${name}${note}…`;
  notice(busyText, 0);
  const data = await faceRequest("Upload a photo", "encode", form);
  if (!data) {  // failed (the error is shown) or a newer face request was made meanwhile
    if ($("notice").textContent === busyText) notice("");
    return;
  }
  newFace(data.latent, dataUrl(data.image), data.features, `photo ${name}`);
  showUploadResult(file, data);
  notice(`Encoded ${name}: the reconstruction is the current face, ready to edit.`, 6000);
}

function figure(value, digits, unit = "") {
  return typeof value === "number" && Number.isFinite(value) ? `${value.toFixed(digits)}${unit}` : "–";
}

function showUploadResult(file, data) {
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = URL.createObjectURL(file);
  $("upload-photo").src = photoUrl;
  $("upload-reconstruction").src = dataUrl(data.image);
  const q = data.quality || {};
  const shown = [
    ["quality-psnr", q.psnr, figure(q.psnr, 1, " dB")],
    ["quality-cosine", q.embedding_cosine, figure(q.embedding_cosine, 3)],
    ["quality-agreement", q.label_agreement,
      typeof q.label_agreement === "number" ? `${Math.round(q.label_agreement * 100)}%` : "–"],
  ];
  for (const [id, value, text] of shown) {
    const dd = $(id);
    dd.textContent = text;
    if (typeof value === "number") dd.dataset.value = String(value);
    else delete dd.dataset.value;
  }
  const steps = data.steps ? `the encoder and ${data.steps} refinement steps` : "the encoder alone";
  $("upload-steps").textContent = `Closest face ${data.generator ? `of ${data.generator} ` : ""}found by ${steps}.`;
  $("upload-result").hidden = false;
}

function hideUploadResult() {
  $("upload-result").hidden = true;
  $("upload-photo").removeAttribute("src");
  $("upload-reconstruction").removeAttribute("src");
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = null;
}

function draggingFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
}

// Drop a photo anywhere on the face's panel; the panel is highlighted while a file is
// dragged over it. Dropped elsewhere, the browser would open the file instead of the page:
// refused.
function wireDrop() {
  const zone = $("stage");
  let depth = 0;  // dragenter/dragleave also fire for the zone's children
  const highlight = (on) => zone.classList.toggle("dragover", on);
  zone.addEventListener("dragenter", (e) => {
    if (!draggingFiles(e)) return;
    e.preventDefault();
    depth += 1;
    highlight(true);
  });
  zone.addEventListener("dragover", (e) => {
    if (!draggingFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    highlight(true);
  });
  zone.addEventListener("dragleave", (e) => {
    if (!draggingFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) highlight(false);
  });
  zone.addEventListener("drop", (e) => {
    if (!draggingFiles(e)) return;
    e.preventDefault();
    depth = 0;
    highlight(false);
    const files = [...e.dataTransfer.files];
    encodePhoto(files[0], files.length > 1 ? ` (the first of ${files.length} files dropped)` : "");
  });
  window.addEventListener("dragover", (e) => {
    if (!draggingFiles(e) || zone.contains(e.target)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "none";
  });
  window.addEventListener("drop", (e) => {
    if (!draggingFiles(e) || zone.contains(e.target)) return;
    e.preventDefault();
    depth = 0;
    highlight(false);
  });
}

// ---------------------------------------------------------------------------------------
// Face mixing
function keep(slot) {
  if (!state.current) return;
  const entry = { latent: state.current, image: state.image, label: $("face-label").textContent };
  const img = $(slot === "A" ? "mix-a-image" : "mix-b-image");
  img.src = entry.image;
  img.alt = `Face ${slot}: ${entry.label}`;
  img.classList.add("filled");
  if (slot === "A") state.mixA = entry;
  else state.mixB = entry;
  $("mix-ratio").disabled = !(state.mixA && state.mixB);
  notice(`Kept the current face as ${slot}.`);
  if (state.mixA && state.mixB) notice("Move the blend slider to mix A and B.");
}

let mixTimer = null;
function scheduleMix(delay = DEBOUNCE_MS) {
  clearTimeout(mixTimer);
  mixTimer = setTimeout(renderMix, delay);
}

async function renderMix() {
  if (!(state.mixA && state.mixB)) return;
  const ratio = Number($("mix-ratio").value);
  const method = $("mix-lerp").checked ? "lerp" : "slerp";
  const data = await faceRequest("Mix", "interpolate", {
    latent_a: state.mixA.latent, latent_b: state.mixB.latent, ratio, method,
    format: "png", with_features: true,
  });
  if (!data) return;
  const face = data.faces[0];
  newFace(face.latent, dataUrl(face.image), face.features,
    `blend A→B ${Math.round(ratio * 100)}%${method === "lerp" ? " (lerp)" : ""}`);
}

// ---------------------------------------------------------------------------------------
// API key
function showKeyForm(show) {
  const form = $("apikey-form");
  form.hidden = !show;
  if (show) {
    $("apikey-input").value = apiKey();
    $("apikey-input").focus();
  }
}

async function saveKey(event) {
  event.preventDefault();
  const key = $("apikey-input").value.trim();
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    showError("Save API key", new Error("this browser does not allow local storage"));
    return;
  }
  showKeyForm(false);
  clearError();
  notice(key ? "API key saved." : "API key removed.");
  await start();
}

// ---------------------------------------------------------------------------------------
// Start-up
async function loadModels() {
  try {
    const info = await api("axes");
    state.axes = info.axes;
    state.attributes = info.attributes || [];
    state.latentSize = info.latent_size;
    loadTaught();
    buildAxes();
    const ready = await api("readyz").catch(() => null);
    const parts = [];
    if (ready && ready.generator) parts.push(`generator ${ready.generator}`);
    if (ready && ready.extractor) parts.push(`extractor ${ready.extractor}`);
    parts.push(info.bundle ? `axes ${info.bundle}` : "no axis bundle");
    parts.push(`z ∈ ℝ${superscript(info.latent_size)}`);
    $("models").textContent = parts.join(" · ");
    if (!state.axes.length) notice("This service has no axis bundle: editing is off.", 0);
    return true;
  } catch (err) {
    showError("Loading the feature axes", err);
    return false;
  }
}

function superscript(n) {
  const digits = "⁰¹²³⁴⁵⁶⁷⁸⁹";
  return String(n).replace(/\d/g, (d) => digits[Number(d)]);
}

let started = false;
async function start() {
  if (!(await loadModels())) return;
  if (!started) {
    started = true;
    document.body.dataset.ready = "true";
  }
  if (!state.current) await generate({ random: true });
}

function wire() {
  $("random-face").addEventListener("click", () => generate({ random: true }));
  $("upload-input").addEventListener("change", (e) => {
    const input = e.target;
    const file = input.files && input.files[0];
    input.value = "";  // choosing the same file again is a change too
    encodePhoto(file);
  });
  wireDrop();
  $("generate").addEventListener("click", () => generate());
  $("seed-input").addEventListener("keydown", (e) => { if (e.key === "Enter") generate(); });
  $("generate-features").addEventListener("click", () => generate({ withTargets: true }));
  $("cond-clear").addEventListener("click", () => {
    for (const s of document.querySelectorAll('[data-testid="cond-select"]')) {
      s.value = "";
      s.closest(".cond").dataset.want = "";
    }
    $("unmet").hidden = true;
  });
  $("reset-edits").addEventListener("click", resetEdits);
  $("copy-latent").addEventListener("click", copyLatent);
  $("locality-toggle").addEventListener("change", () => scheduleEdit(0));
  $("paste-latent").addEventListener("click", pasteLatent);
  $("keep-a").addEventListener("click", () => keep("A"));
  $("keep-b").addEventListener("click", () => keep("B"));
  const ratio = $("mix-ratio");
  const showRatio = () => { $("mix-ratio-value").textContent = Number(ratio.value).toFixed(2); };
  ratio.addEventListener("input", () => { showRatio(); scheduleMix(); });
  ratio.addEventListener("change", () => { showRatio(); scheduleMix(0); });
  $("mix-lerp").addEventListener("change", () => scheduleMix(0));
  $("axis-filter").addEventListener("input", filterAxes);
  $("teach-form").addEventListener("submit", startTeach);
  $("teach-more").addEventListener("click", moreTeachFaces);
  $("teach-fit").addEventListener("click", fitTaught);
  $("discover-load").addEventListener("click", loadDiscover);
  $("error-dismiss").addEventListener("click", clearError);
  $("apikey-toggle").addEventListener("click", () => showKeyForm($("apikey-form").hidden));
  $("apikey-form").addEventListener("submit", saveKey);
  $("apikey-clear").addEventListener("click", () => {
    try { localStorage.removeItem(KEY_STORAGE); } catch { /* ignore */ }
    $("apikey-input").value = "";
    notice("API key removed.");
  });
}

wire();
start();
