// Edit a whole photo: POST /photo/edit. The photo is shown whole with the faces found
// outlined; a click on one picks it; the sliders and locks then edit that face and the whole
// photo updates. "Download photo" sends the full-resolution original and saves the answer.
//
// Speed: the first answer for a face carries its latent, its photo adapter and its eyes;
// later edits send them back, so the service skips finding, encoding and tuning. While
// sliding, the page sends a display-size copy of the photo (longer side <= DISPLAY_SIDE, a
// JPEG made with a canvas) with the eyes scaled to it. One edit is in flight at a time: a
// move made meanwhile is sent when it returns, and answers for a photo or face no longer
// shown are dropped.

import { api } from "./api.js";
import { state } from "./state.js";
import { $, el, clearError, notice, pretty, showError } from "./ui.js";
import { describeMoves } from "./face.js";
import { activeMoves, scheduleEdit, syncSliders, updateProbabilities } from "./editor.js";
import { shortName } from "./upload.js";

export const DISPLAY_SIDE = 1280;  // longer side of the copy sent while sliding
const DISPLAY_QUALITY = 0.9;       // JPEG quality of that copy
const MAX_COPY_PIXELS = 50e6;      // bigger photos are sent as they are (the service's limits)

// The photo shown: null when none.
//   file: the original; name; width, height: its size upright (after EXIF orientation);
//   copy: the display copy (a Blob; the original itself when it is small); sx, sy: copy / original;
//   faces: [{box, score}] in the original's pixels; face: the index edited;
//   latent, adapter, eyes (original's pixels): from the first answer for the face;
//   token: changes when the photo or the face changes (answers for an older token are dropped).
let photo = null;
let token = 0;
let inFlight = false;
let again = false;  // a move was made while an edit was in flight

export function photoActive() {
  return photo !== null;
}

// The display copy: {blob, width, height, sx, sy}; null when the browser cannot decode the
// photo (the service then says why, naming the field).
async function displayCopy(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, DISPLAY_SIDE / Math.max(width, height));
  if (scale === 1 || width * height > MAX_COPY_PIXELS) {
    bitmap.close();
    return { blob: file, width, height, sx: 1, sy: 1 };
  }
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", DISPLAY_QUALITY));
  if (!blob) return { blob: file, width, height, sx: 1, sy: 1 };
  return { blob, width, height, sx: w / width, sy: h / height };
}

function scaled(points, sx, sy) {
  return points ? points.map(([x, y]) => [x * sx, y * sy]) : null;
}

// The request body: the photo (display copy or original) and the edit, scaled to it.
function photoForm(full, moves) {
  const sx = full ? 1 : photo.sx;
  const sy = full ? 1 : photo.sy;
  const edit = { moves, locked: [...state.locked] };
  if (photo.latent) {  // later edits: no finding, encoding or tuning (the eyes imply the face)
    edit.latent = photo.latent;
    edit.adapter = photo.adapter;
    edit.eyes = scaled(photo.eyes, sx, sy);
  } else {
    edit.face = photo.face;
  }
  if (!full) edit.format = "jpeg";
  if (!$("locality-toggle").checked) edit.locality = false;
  const form = new FormData();
  const blob = full ? photo.file : photo.copy;
  form.append("image", blob, full ? photo.file.name || "photo" : "photo.jpg");
  form.append("edit", JSON.stringify(edit));
  return form;
}

function setBusy(on) {
  const frame = $("photo-frame");
  frame.classList.toggle("busy", on);
  frame.setAttribute("aria-busy", on ? "true" : "false");
}

// Upload a photo to edit: shows it at once (the browser's own copy), then asks for the faces.
export async function openPhoto(file) {
  if (!file) return;
  closePhoto();
  const mine = ++token;
  const name = shortName(file.name);
  notice(`Finding the faces in ${name}…`, 0);
  const copy = await displayCopy(file);
  if (mine !== token) return;
  photo = {
    file, name, width: copy ? copy.width : null, height: copy ? copy.height : null,
    copy: copy ? copy.blob : file, sx: copy ? copy.sx : 1, sy: copy ? copy.sy : 1,
    faces: [], face: null, latent: null, adapter: null, eyes: null, url: null,
  };
  if (copy) {
    photo.url = URL.createObjectURL(copy.blob);
    showImage(photo.url);
  }
  $("photo-view").hidden = false;
  $("face-figure").hidden = true;
  for (const id of ["keep-a", "keep-b"]) $(id).disabled = true;
  $("download").setAttribute("aria-disabled", "true");
  state.moves.clear();
  syncSliders();
  await pickFace(null, mine);
}

// A face of the photo (null: the service's default, the largest): a new edit with no moves.
// If that fails, the face edited before stays (the first face: the photo goes).
async function pickFace(index, mine = ++token) {
  const before = { face: photo.face, latent: photo.latent, adapter: photo.adapter, eyes: photo.eyes };
  const moves = new Map(state.moves);
  photo.face = index;
  photo.latent = photo.adapter = photo.eyes = null;
  state.base = null;  // no sliders until the face's latent is back
  state.moves.clear();
  syncSliders();
  updateProbabilities();
  const data = await send(mine, false, {});
  if (mine !== token || !photo) return;
  if (!data && !before.latent) {
    closePhoto();
    return;
  }
  if (!data) {
    Object.assign(photo, before);
    state.base = before.latent;
    for (const [name, d] of moves) state.moves.set(name, d);
    syncSliders();
    updateProbabilities();
    return;
  }
  const n = photo.faces.length;
  notice(n === 1 ? `A face found in ${photo.name}: move the sliders to edit it.`
    : `${n} faces found in ${photo.name}: the sliders edit the highlighted one; click another to pick it.`,
  6000);
}

// The sliders and locks: POST /photo/edit with the display copy.
export async function editPhoto() {
  if (!photo || !photo.latent) return null;
  if (inFlight) {
    again = true;
    return null;
  }
  inFlight = true;
  let data;
  try {
    data = await send(token, false, activeMoves());
  } finally {
    inFlight = false;
  }
  if (data && data.unheld && data.unheld.length) {
    notice(`Could not hold ${data.unheld.map(pretty).join(", ")} within 0.05 for this face; `
      + "try a smaller move.");
  }
  if (again && photo) {
    again = false;
    return editPhoto();
  }
  return data;
}

// One request; its answer is shown unless the photo or the face changed meanwhile.
async function send(mine, full, moves) {
  const started = performance.now();
  setBusy(true);
  let data = null;
  try {
    data = await api("photo/edit", photoForm(full, moves));
  } catch (err) {
    if (mine === token) showError(full ? "Download the photo" : "Edit the photo", err);
    return null;
  } finally {
    if (mine === token) setBusy(false);
  }
  if (mine !== token || !photo) return null;
  clearError();
  const ms = performance.now() - started;
  const sx = photo.width ? photo.width / data.width : 1;
  const sy = photo.height ? photo.height / data.height : 1;
  if (!photo.width) {  // the browser could not decode it; the service could
    photo.width = data.width;
    photo.height = data.height;
  }
  if (!photo.latent) {  // the first answer for this face: the faces found, and what to send back
    photo.faces = data.faces.map((f) => ({ ...f, box: scaled([f.box.slice(0, 2), f.box.slice(2)], sx, sy).flat() }));
    photo.face = data.face;
    photo.latent = data.latent;
    photo.adapter = data.adapter;
    photo.eyes = scaled(data.eyes, sx, sy);
    state.origin = state.base = state.current = data.latent;  // the sliders' latent
    state.adapter = data.adapter;  // kept if the photo is closed: /edit renders the face so
    state.originFeatures = data.features || null;
  }
  if (!full) {
    showImage(`data:${mimeOf(data.image)};base64,${data.image}`);
    showTiming(ms, data);
  }
  state.features = data.features || null;
  updateProbabilities();
  drawFaces();
  $("photo-label").textContent = `photo ${photo.name}`
    + (photo.faces.length > 1 ? ` · face ${photo.face + 1} of ${photo.faces.length}` : "")
    + describeMoves();
  return data;
}

function showImage(src) {
  const img = $("photo-image");
  img.src = src;
  img.alt = `Your photo, ${photo.name}`;
}

function showTiming(ms, data) {
  const out = $("photo-timing");
  out.dataset.ms = String(Math.round(ms));
  const t = data.timings || {};
  const server = Object.values(t).filter((v) => typeof v === "number").reduce((a, b) => a + b, 0);
  out.textContent = `${data.width}×${data.height} px shown · round trip ${(ms / 1000).toFixed(2)} s`
    + (server ? ` (service ${server.toFixed(2)} s)` : "");
}

// The image's media type from its first bytes (base64 of the magic numbers).
function mimeOf(b64) {
  if (b64.startsWith("/9j/")) return "image/jpeg";
  if (b64.startsWith("UklGR")) return "image/webp";
  return "image/png";
}

const EXTENSIONS = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" };

function drawFaces() {
  const layer = $("photo-faces");
  layer.replaceChildren();
  photo.faces.forEach((f, i) => {
    const [l, t, r, b] = f.box;
    const box = el("button", {
      type: "button", class: i === photo.face ? "photo-face picked" : "photo-face",
      "data-testid": "photo-face", "data-index": String(i),
      "aria-pressed": i === photo.face ? "true" : "false",
      "aria-label": `Face ${i + 1}${typeof f.score === "number" ? ` (score ${f.score.toFixed(2)})` : ""}`,
      title: i === photo.face ? `Face ${i + 1}: the one edited` : `Edit face ${i + 1}`,
      onclick: () => { if (i !== photo.face) pickFace(i); },
    });
    box.style.left = `${(100 * l / photo.width).toFixed(3)}%`;
    box.style.top = `${(100 * t / photo.height).toFixed(3)}%`;
    box.style.width = `${(100 * (r - l) / photo.width).toFixed(3)}%`;
    box.style.height = `${(100 * (b - t) / photo.height).toFixed(3)}%`;
    layer.append(box);
  });
}

// The full-resolution original with the current moves, saved as a file.
export async function downloadPhoto() {
  if (!photo || !photo.latent) return;
  const mine = token;
  const button = $("photo-download");
  button.disabled = true;
  notice(`Editing ${photo.name} at full resolution…`, 0);
  try {
    const data = await send(mine, true, activeMoves());
    if (!data) return;
    const mime = mimeOf(data.image);
    const bytes = Uint8Array.from(atob(data.image), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
    const stem = (photo.file.name || "photo").replace(/\.[^.]*$/, "") || "photo";
    const link = el("a", { href: url, download: `${stem}-edited.${EXTENSIONS[mime]}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    notice(`Saved ${data.width}×${data.height} px.`);
  } finally {
    button.disabled = false;
  }
}

// Back to the face editor (another face replaces the photo, or the user closes it).
export function closePhoto() {
  if (!photo) return;
  token += 1;
  again = false;
  if (photo.url) URL.revokeObjectURL(photo.url);
  photo = null;
  setBusy(false);
  $("photo-view").hidden = true;
  $("face-figure").hidden = false;
  $("photo-image").removeAttribute("src");
  $("photo-faces").replaceChildren();
  $("photo-timing").textContent = "";
  delete $("photo-timing").dataset.ms;
  if (!state.base && state.current) {  // closed before the face's latent came back
    state.base = state.current;
    updateProbabilities();
  }
  if (state.current) {
    for (const id of ["keep-a", "keep-b"]) $(id).disabled = false;
    $("download").removeAttribute("aria-disabled");
  }
}

// "Close photo": the photo goes; the latent of its face stays in the editor, rendered by
// POST /edit with the moves so far.
export function leavePhoto() {
  if (!photo) return;
  const { latent, name } = photo;
  closePhoto();
  if (!latent) return;
  state.label = `photo ${name}`;
  scheduleEdit(0);
}
