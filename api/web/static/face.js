// The face shown: showing it, new faces (generate, feature-conditioned generation), latent
// copy / paste and A/B face mixing.

import { FACE_SIZE, state } from "./state.js";
import { $, dataUrl, faceRequest, notice, pretty, randomSeed, showError } from "./ui.js";
import { conditionTargets, DEBOUNCE_MS, syncSliders, updateProbabilities } from "./editor.js";
import { hideUploadResult } from "./upload.js";

export function showFace({ latent, image, features, label }) {
  state.current = latent;
  state.local = false;  // renderEdit sets it after a local edit
  showRealism(null);    // renderEdit says when an edit left the realistic region
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

// The note near the sliders when an edit left the realistic region: the answer's `realism`
// (null: no critic, or no move) says the critic's score of the face returned is more than
// the tolerance below the start face's (`held` false), after correcting it if `hold`.
export function showRealism(realism) {
  const note = $("realism-note");
  const fell = Boolean(realism) && !realism.held;
  note.hidden = !fell;
  note.textContent = fell
    ? `This move leaves the realistic region: the realism critic scores the face `
      + `${(realism.start - realism.end).toFixed(2)} below the start face (more than `
      + `${realism.tolerance})${realism.hold ? " even after correcting it" : ""}; the face `
      + "may look broken. Try a smaller move."
    : "";
}

export function describeMoves() {
  const parts = [...state.moves].filter(([, d]) => d !== 0)
    .map(([name, d]) => `${pretty(name)} ${d > 0 ? "+" : "−"}${Math.abs(d).toFixed(1)}`);
  const locks = [...state.locked].map(pretty);
  let out = parts.length ? ` · ${parts.join(", ")}` : "";
  if (locks.length) out += ` · locked: ${locks.join(", ")}`;
  return out;
}

// A new face (generated, pasted, blended or encoded from a photo): the sliders start at 0.
// Any photo shown beside its reconstruction goes (encodePhoto shows its own afterwards).
export function newFace(latent, image, features, label) {
  hideUploadResult();
  state.adapter = null;  // encodePhoto sets its own afterwards
  state.origin = latent;
  state.originFeatures = features || null;
  state.base = latent;
  state.moves.clear();
  syncSliders();
  showFace({ latent, image, features, label });
}

export async function generate({ random = false, withTargets = false } = {}) {
  const body = { count: 1, format: "png", size: FACE_SIZE, with_features: true };
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
// Latent copy / paste
export async function copyLatent() {
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

export async function pasteLatent() {
  let latent;
  try {
    latent = parseLatent($("latent-text").value.trim());
  } catch (err) {
    showError("Paste latent", err);
    return;
  }
  const data = await faceRequest("Paste latent", "edit", {
    latent, moves: {}, locked: [], format: "png", size: FACE_SIZE, with_features: true,
  });
  if (!data) return;
  newFace(data.latent, dataUrl(data.image), data.features, "pasted latent");
  notice("Latent applied.");
}

// ---------------------------------------------------------------------------------------
// Face mixing
export function keep(slot) {
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
export function scheduleMix(delay = DEBOUNCE_MS) {
  clearTimeout(mixTimer);
  mixTimer = setTimeout(renderMix, delay);
}

async function renderMix() {
  if (!(state.mixA && state.mixB)) return;
  const ratio = Number($("mix-ratio").value);
  const method = $("mix-lerp").checked ? "lerp" : "slerp";
  const data = await faceRequest("Mix", "interpolate", {
    latent_a: state.mixA.latent, latent_b: state.mixB.latent, ratio, method,
    format: "png", size: FACE_SIZE, with_features: true,
  });
  if (!data) return;
  const face = data.faces[0];
  newFace(face.latent, dataUrl(face.image), face.features,
    `blend A→B ${Math.round(ratio * 100)}%${method === "lerp" ? " (lerp)" : ""}`);
}
