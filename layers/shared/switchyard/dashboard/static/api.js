// Calls to the gateway with the key of this tab. The key lives in sessionStorage only (never a cookie,
// never a URL), goes out only as the Bearer header, and only to this page's own origin.

const KEY_STORAGE = "switchyard.apiKey";

// The page is <base>/dashboard/; the API is <base>/ (a deployed HTTP API may put a stage in <base>).
export const apiBase = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, message, type = null) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

// Fired when the stored key stops working (revoked, or the stack restarted): the app returns to sign-in.
export const sessionEvents = new EventTarget();

function sameOrigin(url) {
  return url.origin === window.location.origin;
}

async function send(url, { method = "GET", body, key, signal } = {}) {
  if (!sameOrigin(url)) throw new ApiError(0, `Refusing to send the key to ${url.origin}.`, "origin");
  const useKey = key ?? storedKey();
  const headers = { Authorization: `Bearer ${useKey}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
      redirect: "follow",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The gateway could not be reached. Is it running?", "network");
  }
  if (response.status === 401 && key === undefined) {
    sessionEvents.dispatchEvent(new CustomEvent("expired"));
  }
  return response;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let type = null;
  try {
    const data = await response.json();
    if (data && data.error && data.error.message) {
      message = data.error.message;
      type = data.error.type || null;
    } else if (data && typeof data.detail === "string") {
      message = data.detail;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, type);
}

// JSON call; `path` is relative to the API base ("v1/jobs"), `options.key` overrides the stored key.
export async function api(path, options = {}) {
  const response = await send(new URL(path, apiBase), options);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

// Text of a non-JSON answer (the run's graph.svg).
export async function apiText(path, options = {}) {
  const response = await send(new URL(path, apiBase), options);
  if (!response.ok) throw await failure(response);
  return response.text();
}

// A stored result (result_url, an absolute URL on this gateway) as a Blob.
export async function apiBlob(absoluteUrl, options = {}) {
  const response = await send(new URL(absoluteUrl), options);
  if (!response.ok) throw await failure(response);
  return response.blob();
}
