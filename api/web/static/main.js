// tlgan face editor: plain ES modules over the public REST API (no framework, no build).
// This module is the page's entry point: it loads the models' axes, wires the controls and
// makes the first face. The others: api.js (fetch wrappers), state.js (the shared state),
// ui.js (helpers, messages), face.js, editor.js, taught.js, teach.js, discover.js, upload.js,
// photo.js (edit a whole photo).

import { api, KEY_STORAGE } from "./api.js";
import { state } from "./state.js";
import { $, clearError, notice, showError, showKeyForm } from "./ui.js";
import { copyLatent, generate, keep, pasteLatent, scheduleMix } from "./face.js";
import { buildAxes, filterAxes, resetEdits, scheduleEdit } from "./editor.js";
import { loadTaught } from "./taught.js";
import { fitTaught, moreTeachFaces, startTeach } from "./teach.js";
import { loadDiscover } from "./discover.js";
import { encodePhoto, wireDrop } from "./upload.js";
import { downloadPhoto, leavePhoto, openPhoto } from "./photo.js";

// The API key form: saved in this browser (localStorage), then the page starts again.
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
  $("photo-input").addEventListener("change", (e) => {
    const input = e.target;
    const file = input.files && input.files[0];
    input.value = "";
    openPhoto(file);
  });
  $("photo-download").addEventListener("click", downloadPhoto);
  $("photo-close").addEventListener("click", leavePhoto);
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
