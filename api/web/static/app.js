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

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = {
  axes: [],            // [{name, reference}]
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

async function api(path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  const init = { method: body === undefined ? "GET" : "POST", headers };
  if (body !== undefined) {
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

function newFace(latent, image, features, label) {
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
  const data = await faceRequest("Edit", "edit", body);
  if (!data) return null;
  showFace({ latent: data.latent, image: dataUrl(data.image), features: data.features });
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
  const axisNames = new Set(state.axes.map((a) => a.name));
  for (const axis of state.axes) {
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

function axisTitle(axis) {
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
// Latent copy / paste
async function copyLatent() {
  if (!state.current) return;
  const text = JSON.stringify(state.current);
  try {
    await navigator.clipboard.writeText(text);
    notice(`Latent copied to the clipboard (${state.current.length} numbers).`);
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
    notice(ok ? `Latent copied (${state.current.length} numbers).`
      : "The clipboard is not available here: the latent is in the box below, select and copy it.", 8000);
  }
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
  $("paste-latent").addEventListener("click", pasteLatent);
  $("keep-a").addEventListener("click", () => keep("A"));
  $("keep-b").addEventListener("click", () => keep("B"));
  const ratio = $("mix-ratio");
  const showRatio = () => { $("mix-ratio-value").textContent = Number(ratio.value).toFixed(2); };
  ratio.addEventListener("input", () => { showRatio(); scheduleMix(); });
  ratio.addEventListener("change", () => { showRatio(); scheduleMix(0); });
  $("mix-lerp").addEventListener("change", () => scheduleMix(0));
  $("axis-filter").addEventListener("input", filterAxes);
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
