// The "Teach a feature" mode: mark rounds of faces yes / no, then POST /axes/fit makes a
// taught axis.

import { api } from "./api.js";
import { state } from "./state.js";
import { $, clearError, dataUrl, el, notice, pretty, randomSeed, showError } from "./ui.js";
import { addTaught, checkAxisName } from "./taught.js";

const TEACH_ROUND = 12;     // faces per round of marking
const TEACH_POOL = 36;      // candidates drawn for later rounds (the least sure are shown)
const TEACH_MIN_EACH = 5;   // marks of each label needed before /axes/fit
const TEACH_MIN_TOTAL = 10;

const teach = {
  name: null,
  // every face shown this session: {latent, image, label}; label: 1 | 0.75 | 0.25 | 0 (a
  // grade: yes, rather yes, rather no, no), "unsure" (sent as null: left out) or null (unmarked)
  faces: [],
  direction: null, // the direction of the last fit, if any
  head: null,      // and its head (labels later rounds' candidates)
};

// the marks of a face, in the order its buttons show: [label, text, test id]
const TEACH_MARKS = [
  [1, "Yes", "teach-yes"], [0, "No", "teach-no"],
  [0.75, "Rather yes", "teach-rather-yes"], [0.25, "Rather no", "teach-rather-no"],
  ["unsure", "Not sure", "teach-unsure"],
];
const isYes = (f) => typeof f.label === "number" && f.label > 0.5;
const isNo = (f) => typeof f.label === "number" && f.label < 0.5;

function teachCounts() {
  const yes = teach.faces.filter(isYes).length;
  const no = teach.faces.filter(isNo).length;
  const unsure = teach.faces.filter((f) => f.label === "unsure").length;
  return { yes, no, unsure };
}

function updateTeachStatus() {
  const { yes, no, unsure } = teachCounts();
  const ready = yes >= TEACH_MIN_EACH && no >= TEACH_MIN_EACH && yes + no >= TEACH_MIN_TOTAL;
  $("teach-fit").disabled = !ready || !teach.name;
  $("teach-more").disabled = !teach.name;
  const skipped = unsure ? ` · ${unsure} not sure` : "";
  let text = teach.name ? `${pretty(teach.name)}: ${yes} yes · ${no} no${skipped}.` : "";
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
      for (const [value, button] of buttons) {
        button.setAttribute("aria-pressed", face.label === value ? "true" : "false");
      }
      updateTeachStatus();
    };
    const buttons = TEACH_MARKS.map(([value, text, testid]) => [value, el("button", {
      type: "button", class: typeof value === "number" && value % 1 === 0 ? "small" : "small ghost",
      "data-testid": testid, "aria-pressed": "false", text, onclick: mark(value) })]);
    const attrs = { class: "teach-card", role: "listitem", "data-testid": "teach-card", "data-label": "" };
    if (typeof face.p === "number") attrs["data-p"] = String(face.p);  // the taught head's
    const card = el("div", attrs,
      el("img", { src: face.image, alt: `Face to mark for ${pretty(teach.name)}`, width: 96, height: 96,
        "data-testid": "teach-image" }),
      el("div", { class: "teach-marks" }, ...buttons.map(([, button]) => button)));
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

export async function startTeach(event) {
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
  const yes = teach.faces.filter(isYes).map((f) => f.latent);
  const no = teach.faces.filter(isNo).map((f) => f.latent);
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

export async function moreTeachFaces() {
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

export async function fitTaught() {
  const name = teach.name;
  const examples = teach.faces.filter((f) => f.label !== null)
    .map((f) => ({ latent: f.latent, label: f.label === "unsure" ? null : f.label }));
  const unsure = examples.filter((e) => e.label === null).length;
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
    const skipped = unsure ? ` (${unsure} not sure, left out)` : "";
    notice(`Taught ${pretty(name)} from ${examples.length - unsure} faces${skipped}${acc}: its slider is in the feature list.`, 8000);
    showTeachWarning(st.near_chance ? `Near chance: ${st.warning || "the marks may not teach a feature"}. `
      + "The slider may move faces at random: mark more faces (More faces) and make the axis again." : "");
  } catch (err) {
    showError("Make the axis", err);
  } finally {
    updateTeachStatus();
  }
}
