// Providers: the caller's agents, online or not, with their last heartbeat, endpoint host, models and
// capacity in use.

import { api, apiBase } from "./api.js";
import { empty, fill, h, reconcile } from "./dom.js";
import { exact, pill, timeAgo } from "./format.js";
import { refreshTimes } from "./queue.js";

function capacity(provider) {
  const { in_use: used, max } = provider.capacity;
  const bar = h("div", { class: "bar bar-capacity", role: "img", "aria-label": `${used} of ${max} slots in use` },
    h("span", { class: `bar-part ${used >= max ? "bar-warning" : "bar-info"}` }));
  bar.firstChild.style.width = `${(100 * used) / Math.max(1, max)}%`;
  return h("div", { class: "capacity" },
    h("div", { class: "capacity-label" }, h("span", {}, "Capacity"), h("span", { class: "strong" }, `${used} / ${max} in use`)),
    bar);
}

function models(provider) {
  if (!provider.models.length) return h("div", { class: "muted" }, "No models declared.");
  return h("ul", { class: "models" }, provider.models.map((model) =>
    h("li", { class: "model" },
      h("span", { class: "model-id mono" }, model.id),
      h("span", { class: `tag tag-${model.service_type}` }, model.service_type),
      h("span", { class: "sub" }, `${(model.input_modalities || []).join(", ")} → ${(model.output_modalities || []).join(", ")}`))));
}

function card(provider) {
  const online = provider.status === "online";
  return h("article", { class: `card provider${online ? "" : " provider-offline"}`, dataset: { providerId: provider.id, status: provider.status } },
    h("div", { class: "provider-header" },
      h("div", {}, h("h2", { class: "mono" }, provider.id), h("div", { class: "sub mono" }, provider.endpoint_host)),
      pill(online ? "online" : "offline", "provider")),
    h("dl", { class: "fields compact" },
      h("div", { class: "field" }, h("dt", {}, "Last heartbeat"), h("dd", { title: exact(provider.last_heartbeat_at) }, timeAgo(provider.last_heartbeat_at))),
      provider.first_seen_at ? h("div", { class: "field" }, h("dt", {}, "First seen"), h("dd", {}, timeAgo(provider.first_seen_at))) : null),
    capacity(provider),
    h("div", { class: "models-title" }, `Models (${provider.models.length})`),
    models(provider));
}

export function mount(main) {
  const grid = h("div", { class: "provider-grid", id: "providers" });
  const summary = h("div", { class: "summary-badge" });
  const note = h("p", { class: "muted" });
  let listing = null;

  fill(main, 
    h("header", { class: "page-header" },
      h("div", {}, h("h1", {}, "Providers"), note),
      h("div", { class: "page-header-side" }, summary)),
    grid);

  function draw() {
    const online = listing.data.filter((p) => p.status === "online").length;
    fill(summary, 
      h("span", { class: `badge-count${online ? " ok" : ""}` }, h("span", { class: "badge-dot" }), `${online} online`),
      h("span", { class: "badge-detail" }, `${listing.data.length - online} offline`));
    note.textContent = `Your provider agents. One is offline after ${listing.offline_after_seconds} s without a heartbeat.`;
    if (!listing.data.length) {
      grid._reconciled = null;
      fill(grid, empty("No provider agents yet",
        "Run the agent next to a model server and it registers itself here:",
        h("pre", { class: "command" }, `switchyard-agent --gateway ${apiBase.href.replace(/\/$/, "")} --api-key "$SWITCHYARD_KEY" --upstream http://127.0.0.1:8000`)));
      return;
    }
    // Online state follows the clock between heartbeats: the signature carries it.
    reconcile(grid, listing.data, { key: (p) => p.id, signature: (p) => JSON.stringify(p), render: card });
  }

  async function refresh() {
    try {
      listing = await api("api/inference/providers");
      draw();
      refreshTimes(main);
    } catch (error) {
      if (!listing) fill(grid, empty("Could not load providers", error.message));
    }
  }

  return { title: "Providers", refresh, refreshEvery: () => 5000 };
}
