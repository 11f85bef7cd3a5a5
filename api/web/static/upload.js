// Upload a photo: POST /encode turns it into a latent, which becomes the current face (to
// edit, lock, keep and blend like any other). The photo is shown beside its reconstruction,
// centre-cropped by CSS as the service crops it, until another face replaces it.

import { FACE_SIZE, state } from "./state.js";
import { $, dataUrl, faceRequest, notice } from "./ui.js";
import { newFace } from "./face.js";
import { closePhoto } from "./photo.js";

let photoUrl = null;  // object URL of the photo shown (revoked when it goes)

export function shortName(name, most = 32) {
  const text = (name || "photo").trim() || "photo";
  return text.length > most ? `${text.slice(0, most - 1)}…` : text;
}

export async function encodePhoto(file, note = "") {
  if (!file) return;
  const form = new FormData();
  form.append("image", file, file.name || "photo");
  form.append("format", "png");
  form.append("size", String(FACE_SIZE));  // the display size: the server's upscaler sharpens it
  form.append("with_features", "true");
  form.append("adapter", "false");  // the page edits with /edit's untuned renders
  const name = shortName(file.name);
  const busyText = `Encoding ${name}${note}…`;
  notice(busyText, 0);
  const data = await faceRequest("Upload a photo", "encode", form);
  if (!data) {  // failed (the error is shown) or a newer face request was made meanwhile
    if ($("notice").textContent === busyText) notice("");
    return;
  }
  newFace(data.latent, dataUrl(data.image), data.features, `photo ${name}`);
  state.adapter = data.adapter || null;
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

export function hideUploadResult() {
  closePhoto();  // a new face replaces a whole photo too
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
export function wireDrop() {
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
