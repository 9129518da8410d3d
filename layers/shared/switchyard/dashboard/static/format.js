// How times, durations and statuses read on the page.

import { h } from "./dom.js";

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(value * 1000); // API epochs are seconds
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes < 10 ? `${minutes} min ${Math.floor(seconds % 60)} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d`;
}

export function ago(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return "never";
  const ms = now - date.getTime();
  if (ms < 5000) return "just now";
  return `${duration(ms).replace(/\.\d s$/, " s")} ago`;
}

export function until(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return "";
  const ms = date.getTime() - now;
  return ms <= 0 ? "now" : `in ${duration(ms)}`;
}

export function exact(value) {
  const date = toDate(value);
  return date ? date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "";
}

// A relative time that says the exact one on hover, and refreshes itself with the page.
export function timeAgo(value) {
  const date = toDate(value);
  return h("time", { datetime: date ? date.toISOString() : "", title: exact(value) }, ago(value));
}

const JOB_TONES = {
  QUEUED: "neutral",
  PROCESSING: "info",
  PROCESSED: "success",
  FAILED: "danger",
  CANCELED: "muted",
};
const RUN_TONES = {
  RUNNING: "info",
  SUCCEEDED: "success",
  FAILED: "danger",
  REJECTED: "rose",
  CANCELED: "muted",
};
const BATCH_TONES = { PENDING: "neutral", PROCESSING: "info", DONE: "success" };
const STEP_TONES = {
  pending: "neutral",
  waiting: "warning",
  running: "info",
  succeeded: "success",
  failed: "danger",
  timed_out: "danger",
  rejected: "rose",
  skipped: "muted",
  canceled: "muted",
};

const PROVIDER_TONES = { online: "success", offline: "muted" };
const KEY_TONES = { active: "success", revoked: "muted" };

function titleCase(status) {
  const text = String(status || "").replace(/_/g, " ").toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function pill(status, kind = "job") {
  const tones = { job: JOB_TONES, run: RUN_TONES, batch: BATCH_TONES, step: STEP_TONES, provider: PROVIDER_TONES, key: KEY_TONES }[kind] || {};
  const tone = tones[status] || "neutral";
  const live = ["PROCESSING", "RUNNING", "running", "waiting", "online"].includes(status);
  return h(
    "span",
    { class: `pill pill-${tone}${live ? " pill-live" : ""}`, dataset: { status: String(status) } },
    h("span", { class: "pill-dot", "aria-hidden": "true" }),
    titleCase(status),
  );
}

export function shortId(id) {
  return String(id || "");
}
