// Discover: unsupervised directions (GET /axes/discover), each as a strip on the current face.

import { api } from "./api.js";
import { state } from "./state.js";
import { $, clearError, dataUrl, el, notice, pretty, showError, signed } from "./ui.js";
import { addTaught, checkAxisName } from "./taught.js";

const DISCOVER_K = 8;
const STRIP = [-3, -2, -1, 0, 1, 2, 3];  // distances of a discovered direction's strip
const STRIP_AXIS = "discovered_direction";  // the custom axis name used to draw strips
let discoverSeq = 0;

export async function loadDiscover() {
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
