// Settings -> Token: the account's API keys (never their secrets), a new one shown once with a copy
// button, and revoking one (it stops working within seconds, the gateway's auth cache).

import { api } from "./api.js";
import { copyText, empty, fill, h, reconcile, toast } from "./dom.js";
import { exact, pill, timeAgo } from "./format.js";
import { refreshTimes } from "./queue.js";

export function mount(main) {
  const nameInput = h("input", { id: "key-name", name: "key-name", type: "text", maxLength: 100, placeholder: "e.g. laptop, ci-runner, gpu-box-2", autocomplete: "off" });
  const createButton = h("button", { class: "button button-primary", type: "submit", id: "create-key" }, "Create key");
  const reveal = h("div", { id: "new-key" });
  const body = h("tbody", { id: "keys-body" });
  const tableEmpty = h("div", { class: "table-empty" });
  const confirming = new Set(); // key ids with the "Revoke?" question open

  fill(main, 
    h("header", { class: "page-header" },
      h("div", {}, h("div", { class: "eyebrow" }, "Settings"), h("h1", {}, "Token"),
        h("p", { class: "muted" }, "API keys of your account. The same key authenticates inference (/v1/...), this dashboard and your agents' heartbeats."))),
    h("section", { class: "card" },
      h("div", { class: "card-header" }, h("h2", {}, "Create a key")),
      h("form", { class: "inline-form", on: { submit: create } },
        h("label", { for: "key-name", class: "sr-only" }, "Key name"), nameInput, createButton),
      reveal),
    h("section", { class: "card" },
      h("div", { class: "card-header" }, h("h2", {}, "Keys")),
      h("div", { class: "table-wrap" },
        h("table", { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Key ID"), h("th", {}, "Created"), h("th", {}, "Last used"), h("th", {}, "Status"), h("th", { class: "col-actions" }, h("span", { class: "sr-only" }, "Actions")))),
          body),
        tableEmpty)),
  );

  async function create(event) {
    event.preventDefault();
    createButton.disabled = true;
    try {
      const name = nameInput.value.trim();
      const created = await api("api/account/keys", { method: "POST", body: name ? { name } : {} });
      nameInput.value = "";
      showSecret(created);
      await refresh();
    } catch (error) {
      toast(error.message, "danger");
    } finally {
      createButton.disabled = false;
    }
  }

  function showSecret(created) {
    const secret = h("input", { class: "mono secret", id: "new-key-secret", type: "text", readOnly: true, value: created.api_key, "aria-label": "The new key" });
    const copy = h("button", { class: "button", type: "button", id: "copy-key" }, "Copy");
    copy.addEventListener("click", () => {
      copyText(created.api_key).then(
        () => { copy.textContent = "Copied ✓"; },
        () => { secret.select(); toast("Press Ctrl+C (⌘C) to copy the selected key.", "info"); },
      );
    });
    const done = h("button", { class: "button button-ghost", type: "button", on: { click: () => fill(reveal) } }, "Done");
    fill(reveal, h("div", { class: "secret-box", role: "status" },
      h("div", { class: "secret-title" }, `Key “${created.name}” created. Copy it now: it is shown only once.`),
      h("div", { class: "secret-row" }, secret, copy, done),
      h("div", { class: "sub" }, "Only a hash of it is stored; if you lose it, create another and revoke this one.")));
    secret.addEventListener("focus", () => secret.select());
  }

  async function revoke(key) {
    try {
      await api(`api/account/keys/${encodeURIComponent(key.key_id)}`, { method: "DELETE" });
      toast(`Key “${key.name}” revoked. It stops working within seconds.`, "success");
    } catch (error) {
      toast(error.message, "danger");
    }
    confirming.delete(key.key_id);
    await refresh();
  }

  function actions(key) {
    if (key.status !== "active") return h("td", { class: "col-actions" });
    if (confirming.has(key.key_id)) {
      return h("td", { class: "col-actions" },
        h("span", { class: "confirm-text" }, key.current ? "Revoke the key you are signed in with?" : "Revoke this key?"),
        h("button", { class: "button button-small button-danger", type: "button", dataset: { action: "confirm-revoke" }, on: { click: () => revoke(key) } }, "Revoke"),
        h("button", { class: "button button-small button-ghost", type: "button", on: { click: () => { confirming.delete(key.key_id); draw(); } } }, "Keep"));
    }
    return h("td", { class: "col-actions" },
      h("button", { class: "button button-small button-danger-outline", type: "button", dataset: { action: "revoke" }, on: { click: () => { confirming.add(key.key_id); draw(); } } }, "Revoke"));
  }

  function row(key) {
    return h("tr", { dataset: { keyId: key.key_id, status: key.status } },
      h("td", {}, h("span", { class: "strong" }, key.name), key.current ? h("span", { class: "tag tag-current" }, "this browser") : null),
      h("td", { class: "mono" }, key.key_id),
      h("td", { title: exact(key.created_at) }, timeAgo(key.created_at)),
      h("td", {}, key.last_used_at ? timeAgo(key.last_used_at) : h("span", { class: "muted" }, "never")),
      h("td", {}, pill(key.status === "active" ? "active" : "revoked", "key"), key.revoked_at ? h("div", { class: "sub" }, timeAgo(key.revoked_at)) : null),
      actions(key));
  }

  let keys = [];
  function draw() {
    reconcile(body, keys, { key: (k) => k.key_id, signature: (k) => JSON.stringify(k) + confirming.has(k.key_id), render: row });
    if (keys.length) fill(tableEmpty);
    else fill(tableEmpty, empty("No keys", "Create one above."));
    refreshTimes(main);
  }

  async function refresh() {
    try {
      keys = (await api("api/account/keys")).data;
      draw();
    } catch (error) {
      if (error.status !== 401) fill(tableEmpty, empty("Could not load keys", error.message));
    }
  }

  return { title: "Token", refresh, refreshEvery: () => 10000 };
}
