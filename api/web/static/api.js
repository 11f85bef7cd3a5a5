// API access: fetch wrappers over the public REST API and its errors. Imports nothing.

export const KEY_STORAGE = "tlgan.apiKey";

export class ApiError extends Error {
  constructor(status, message, errors = null) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

// GET without a body; POST with JSON, or multipart when the body is a FormData (the
// browser sets its Content-Type with the boundary).
export async function api(path, body) {
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
