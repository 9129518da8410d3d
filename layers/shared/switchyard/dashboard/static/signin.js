// Sign in by pasting an API key. It is checked against the gateway before it is kept (in this tab's
// sessionStorage only).

import { api, storeKey } from "./api.js";
import { h } from "./dom.js";

export function mount({ notice, onSignedIn }) {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "sy-…",
    required: true,
  });
  const message = h("p", { class: "form-message", role: "alert", id: "signin-message" });
  const button = h("button", { class: "button button-primary button-block", type: "submit" }, "Sign in");
  const reveal = h(
    "button",
    {
      class: "input-addon",
      type: "button",
      "aria-label": "Show or hide the key",
      on: {
        click: () => {
          input.type = input.type === "password" ? "text" : "password";
          reveal.textContent = input.type === "password" ? "Show" : "Hide";
        },
      },
    },
    "Show",
  );

  function show(text, tone = "danger") {
    message.textContent = text;
    message.className = `form-message form-message-${tone}`;
  }

  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return show("Paste an API key first.");
    button.disabled = true;
    button.textContent = "Checking…";
    try {
      await api("api/inference/queue/summary", { key });
      storeKey(key);
      onSignedIn();
    } catch (error) {
      if (error.status === 401) show("This is an invalid key, or it has been revoked. Check that you pasted all of it.");
      else show(error.message || "Sign-in failed.");
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  }

  if (notice) show(notice.text, notice.tone);
  const form = h(
    "form",
    { class: "signin-card", on: { submit }, novalidate: true },
    h("div", { class: "signin-brand" }, h("img", { src: "favicon.svg", alt: "", width: 40, height: 40 }), h("span", {}, "Switchyard")),
    h("h1", {}, "Sign in to your gateway"),
    h("p", { class: "muted" }, "Paste an API key of your account. It stays in this browser tab and is sent only to this gateway, as the Bearer header."),
    h("label", { for: "api-key" }, "API key"),
    h("div", { class: "input-group" }, input, reveal),
    message,
    button,
    h(
      "p",
      { class: "hint" },
      "No key yet? ",
      h("code", {}, "switchyard-admin create-account <team>"),
      " prints one (the local stack prints one when it starts), and a signed-in teammate can create one under Settings → Token.",
    ),
  );
  queueMicrotask(() => input.focus());
  return h("div", { class: "signin" }, form);
}
