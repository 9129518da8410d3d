// Results of jobs and workflow steps: text inline, images shown, audio and video playable, meshes
// downloadable. Stored results need the key, which <img src> cannot send, so they are fetched with it
// and shown from a blob: URL (kept per result, released at sign-out).

import { apiBlob } from "./api.js";
import { fill, h } from "./dom.js";

const blobs = new Map(); // result URL -> Promise<object URL>

function objectUrl(resultUrl) {
  if (!blobs.has(resultUrl)) {
    const pending = apiBlob(resultUrl).then((blob) => URL.createObjectURL(blob));
    pending.catch(() => blobs.delete(resultUrl)); // a failure is retried on the next draw
    blobs.set(resultUrl, pending);
  }
  return blobs.get(resultUrl);
}

export function releaseMedia() {
  for (const pending of blobs.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
  blobs.clear();
}

const KIND_BY_TYPE = { IMAGE: "image", TTS: "audio", MUSIC: "audio", VIDEO: "video", MESH: "file" };
const KIND_BY_ENDPOINT = {
  "/v1/images/generations": "image",
  "/v1/audio/speech": "audio",
  "/v1/music/generations": "audio",
  "/v1/videos/generations": "video",
  "/v1/3d/generations": "file",
};

export function mediaKind({ inferenceType, endpoint }) {
  return KIND_BY_TYPE[inferenceType] || KIND_BY_ENDPOINT[endpoint] || "file";
}

function openLink(url, label) {
  return h("a", { class: "media-open", href: url, download: label, title: "Download the result" }, "Download");
}

// The element for a stored result; it fills in once the bytes have arrived.
export function mediaPreview(resultUrl, kind, label = "result") {
  const box = h("div", { class: `media media-${kind}` }, h("span", { class: "media-loading" }, "Loading…"));
  objectUrl(resultUrl).then(
    (url) => {
      let element;
      if (kind === "image") {
        element = h("a", { href: url, target: "_blank", rel: "noopener", title: "Open full size" },
          h("img", { src: url, alt: label, loading: "lazy" }));
      } else if (kind === "audio") {
        element = [h("audio", { src: url, controls: true, preload: "metadata" }), openLink(url, label)];
      } else if (kind === "video") {
        element = [h("video", { src: url, controls: true, preload: "metadata", playsInline: true }), openLink(url, label)];
      } else {
        element = h("a", { class: "button button-small", href: url, download: label }, "Download");
      }
      fill(box, element);
    },
    (error) => fill(box, h("span", { class: "error-text" }, `Could not load: ${error.message}`)),
  );
  return box;
}

// The text an LLM answer carries (chat or legacy completion), or null.
export function answerText(result) {
  const choice = result && Array.isArray(result.choices) ? result.choices[0] : null;
  if (!choice) return null;
  if (choice.message && typeof choice.message.content === "string") return choice.message.content;
  if (typeof choice.text === "string") return choice.text;
  return null;
}
