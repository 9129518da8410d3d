// The dashboard: sign-in, then Queue, a workflow run, Providers and Settings -> Token, routed by the
// URL hash (#/queue?status=FAILED) so a reload or a shared link lands on the same view and filter.

import { forgetKey, sessionEvents, storedKey } from "./api.js";
import { fill, h } from "./dom.js";
import { releaseMedia } from "./media.js";
import * as providers from "./providers.js";
import * as queue from "./queue.js";
import * as run from "./run.js";
import * as signin from "./signin.js";
import * as tokens from "./tokens.js";

const REFRESH_MS = 3000;

const routes = [
  { pattern: /^\/queue$/, page: queue, nav: "queue" },
  { pattern: /^\/runs\/([^/]+)$/, page: run, nav: "queue" },
  { pattern: /^\/providers$/, page: providers, nav: "providers" },
  { pattern: /^\/settings\/token$/, page: tokens, nav: "token" },
];

const root = document.getElementById("app");
let current = null; // { page instance, timer }
let signinNotice = null;

export function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/queue";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

// Change the hash's query without a new history entry per filter click.
export function setQuery(params) {
  const { path } = parseHash();
  const query = params.toString();
  history.replaceState(null, "", `#${path}${query ? `?${query}` : ""}`);
}

function stop() {
  if (!current) return;
  clearTimeout(current.timer);
  current.instance.unmount?.();
  current = null;
}

function schedule(instance, delay) {
  if (!current || current.instance !== instance) return;
  clearTimeout(current.timer);
  current.timer = setTimeout(async () => {
    if (!current || current.instance !== instance) return;
    if (document.hidden) return schedule(instance, delay); // no polling in a background tab
    try {
      await instance.refresh?.();
    } finally {
      schedule(instance, instance.refreshEvery?.() ?? delay);
    }
  }, delay);
}

function navLink(id, href, label, active) {
  return h("a", { class: `nav-link${active === id ? " active" : ""}`, href, dataset: { nav: id } }, label);
}

function shell(active) {
  const key = storedKey() || "";
  const main = h("main", { class: "main", id: "main" });
  const signOut = h("button", { class: "button button-ghost sign-out", type: "button", on: { click: signOutNow } }, "Sign out");
  const sidebar = h(
    "nav",
    { class: "sidebar", "aria-label": "Dashboard" },
    h("a", { class: "brand", href: "#/queue" }, h("img", { src: "favicon.svg", alt: "", width: 28, height: 28 }), h("span", {}, "Switchyard")),
    h("div", { class: "nav-group" },
      navLink("queue", "#/queue", "Queue", active),
      navLink("providers", "#/providers", "Providers", active)),
    h("div", { class: "nav-group" },
      h("div", { class: "nav-heading" }, "Settings"),
      navLink("token", "#/settings/token", "Token", active)),
    h("div", { class: "nav-footer" },
      h("a", { class: "nav-link subtle", href: "../docs", target: "_blank", rel: "noopener" }, "API reference ↗"),
      h("div", { class: "key-hint", title: "The key this tab is signed in with" }, `Key ${key.slice(0, 5)}…${key.slice(-4)}`),
      signOut),
  );
  fill(root, h("div", { class: "layout" }, sidebar, main));
  return main;
}

function render() {
  stop();
  if (!storedKey()) {
    fill(root, signin.mount({ notice: signinNotice, onSignedIn }));
    signinNotice = null;
    return;
  }
  const { path, params } = parseHash();
  const route = routes.find((r) => r.pattern.test(path));
  if (!route) {
    window.location.hash = "#/queue";
    return;
  }
  const match = path.match(route.pattern);
  const main = shell(route.nav);
  const instance = route.page.mount(main, { params, id: match[1] ? decodeURIComponent(match[1]) : null, setQuery });
  current = { instance, timer: null };
  document.title = `${instance.title || "Dashboard"} · Switchyard`;
  Promise.resolve(instance.refresh?.()).finally(() => schedule(instance, instance.refreshEvery?.() ?? REFRESH_MS));
}

function onSignedIn() {
  if (!window.location.hash || window.location.hash === "#/") window.location.hash = "#/queue";
  render();
}

function signOutNow() {
  forgetKey();
  releaseMedia();
  signinNotice = { tone: "info", text: "You are signed out. The key was removed from this tab." };
  render();
}

sessionEvents.addEventListener("expired", () => {
  if (!storedKey()) return;
  forgetKey();
  releaseMedia();
  signinNotice = {
    tone: "warning",
    text: "Your session ended: the key is no longer valid (it may have been revoked). Sign in with a valid key.",
  };
  render();
});

window.addEventListener("hashchange", render);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && current) {
    Promise.resolve(current.instance.refresh?.()).catch(() => {});
  }
});
render();
