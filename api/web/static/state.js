// What the page holds: the one state object that modules share (exported here, not a global
// on window). Modules read and change its fields; their other variables stay their own.

// The side (px) the face is shown at (style.css's --face): faces are asked for at this size,
// so the server's face upscaler sharpens them instead of the browser stretching 64 px.
export const FACE_SIZE = 384;

export const state = {
  axes: [],            // [{name, reference}] from the bundle
  taught: new Map(),   // name -> {direction, head, stats}: taught / named axes (localStorage)
  attributes: [],
  latentSize: null,
  origin: null,        // latent of the face as generated / pasted / blended (Reset goes here)
  originFeatures: null,
  base: null,          // latent the sliders are relative to
  current: null,       // latent of the face shown
  adapter: null,       // photo adapter of an uploaded face (sent with its edits), else null
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
