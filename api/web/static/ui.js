// Shared page helpers: elements by test id, element building, names and numbers as shown,
// the error and notice areas, the busy state and numbered face requests, the API key form.

import { api, ApiError, apiKey } from "./api.js";
import { state } from "./state.js";

export const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

// ---------------------------------------------------------------------------------------
// Messages
export function showError(action, err) {
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

export function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

let noticeTimer = null;
export function notice(text, ms = 4000) {
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
export async function faceRequest(action, path, body) {
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
// Names, numbers and elements as the page shows them
export function dataUrl(b64, format = "png") {
  return `data:image/${format};base64,${b64}`;
}

export function pretty(name) {
  return name.replace(/_/g, " ");
}

export function signed(d) {
  return `${d > 0 ? "+" : d < 0 ? "−" : "±"}${Math.abs(d).toFixed(1)}`;
}

export function el(tag, attrs = {}, ...children) {
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

// Random seeds are picked here (not by the API) so that they stay short and exact in
// JavaScript numbers: the API's own random seeds can exceed 2^53.
export function randomSeed() {
  const word = new Uint32Array(1);
  crypto.getRandomValues(word);
  return word[0] % 1000000000;
}

// ---------------------------------------------------------------------------------------
// API key
export function showKeyForm(show) {
  const form = $("apikey-form");
  form.hidden = !show;
  if (show) {
    $("apikey-input").value = apiKey();
    $("apikey-input").focus();
  }
}
