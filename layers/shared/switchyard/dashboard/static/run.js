// A workflow run: its DAG (the SVG the API draws, the same as GET .../graph.svg), the selected step's
// details, and for a waiting gate its prompt, expiry, a comment box and Approve / Reject. Live while
// the run is RUNNING: the drawing is swapped only when it changed, and the selection survives.

import { api, apiText } from "./api.js";
import { empty, fill, h, parseSvg, toast } from "./dom.js";
import { duration, exact, pill, timeAgo, toDate, until } from "./format.js";
import { answerText, mediaKind, mediaPreview } from "./media.js";
import { refreshTimes } from "./queue.js";

const LEGEND = [
  ["pending", "Pending"],
  ["waiting", "Waiting for approval"],
  ["running", "Running"],
  ["succeeded", "Succeeded"],
  ["failed", "Failed / timed out"],
  ["rejected", "Rejected"],
  ["skipped", "Skipped / canceled"],
];

export function mount(main, { id }) {
  const runPath = `v1/workflows/runs/${encodeURIComponent(id)}`;
  let run = null;
  let svgText = null;
  let selected = null; // step id
  let chosenByUser = false;
  let busy = false;
  const comments = new Map(); // step id -> typed comment, kept across redraws

  const title = h("h1", {}, "Workflow run");
  const meta = h("div", { class: "run-meta muted" });
  const status = h("div", { class: "run-status" });
  const actions = h("div", { class: "page-actions" });
  const errorBanner = h("div", { class: "banners" });
  const graph = h("div", { class: "graph", id: "run-graph", tabIndex: 0, "aria-label": "The run's steps as a graph" },
    h("div", { class: "muted graph-loading" }, "Drawing the graph…"));
  const panel = h("aside", { class: "card step-panel", id: "step-panel", "aria-live": "polite" });

  fill(main, 
    h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/queue" }, "Queue"), h("span", {}, "/"), h("span", {}, "Workflow runs"), h("span", {}, "/"), h("span", { class: "mono" }, id)),
    h("header", { class: "page-header" }, h("div", {}, h("div", { class: "title-row" }, title, status), meta), actions),
    errorBanner,
    h("div", { class: "run-layout" },
      h("section", { class: "card graph-card" },
        h("div", { class: "card-header" }, h("h2", {}, "Steps"),
          h("div", { class: "button-row tight" },
            h("button", { class: "button button-small", type: "button", id: "fit-graph", "aria-pressed": "false", on: { click: toggleFit } }, "Fit to width"),
            h("a", { class: "button button-small", href: "#", id: "open-svg", on: { click: openSvg } }, "Open SVG"))),
        graph,
        h("div", { class: "legend" }, LEGEND.map(([key, label]) => h("span", { class: "legend-item" }, h("span", { class: `legend-swatch swatch-${key}` }), label)))),
      panel),
  );

  graph.addEventListener("click", (event) => {
    const node = event.target.closest("g.step");
    if (node) select(node.dataset.stepId, true);
  });
  graph.addEventListener("keydown", (event) => {
    const node = event.target.closest ? event.target.closest("g.step") : null;
    if (node && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(node.dataset.stepId, true);
    }
  });

  // Full size by default (a box's text stays legible; a wide run scrolls); "Fit" shows all of it at once.
  function toggleFit(event) {
    const fit = graph.classList.toggle("fit");
    event.currentTarget.setAttribute("aria-pressed", String(fit));
    event.currentTarget.textContent = fit ? "Actual size" : "Fit to width";
  }

  async function openSvg(event) {
    event.preventDefault();
    // The SVG URL needs the key, so open what was fetched with it.
    const url = URL.createObjectURL(new Blob([svgText || ""], { type: "image/svg+xml" }));
    window.open(url, "_blank", "noopener");
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  function stepById(stepId) {
    return run ? run.steps.find((s) => s.id === stepId) : null;
  }

  function defaultSelection() {
    const order = ["waiting", "failed", "timed_out", "running"];
    for (const state of order) {
      const found = run.steps.find((s) => s.status === state);
      if (found) return found.id;
    }
    return run.steps[0]?.id ?? null;
  }

  function select(stepId, byUser = false) {
    if (byUser) chosenByUser = true;
    selected = stepId;
    for (const node of graph.querySelectorAll("g.step")) {
      const on = node.dataset.stepId === selected;
      node.classList.toggle("selected", on);
      node.setAttribute("aria-pressed", String(on));
    }
    drawPanel();
  }

  // ------------------------------------------------------------ the drawing

  function drawGraph(text) {
    if (text === svgText) return;
    svgText = text;
    const svg = parseSvg(text);
    svg.classList.add("run-svg"); // drawn at its own size; .graph.fit scales it to the card
    for (const node of svg.querySelectorAll("g.step")) {
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "button");
      node.setAttribute("aria-label", `${node.dataset.stepId}: ${node.dataset.status}`);
    }
    fill(graph, svg); // one swap: no blank frame between the old drawing and the new
    select(selected);
  }

  // ------------------------------------------------------------ the side panel

  function field(label, ...value) {
    return h("div", { class: "field" }, h("dt", {}, label), h("dd", {}, ...value));
  }

  function gateBox(step) {
    const gate = step.gate || {};
    if (step.status !== "waiting") {
      const resolution = gate.resolution;
      if (!resolution || !resolution.decision) return null;
      return h("div", { class: `resolution resolution-${resolution.decision}` },
        h("strong", {}, resolution.decision === "approved" ? "Approved" : "Rejected"),
        resolution.by ? ` by ${resolution.by}` : "",
        resolution.at ? [" · ", timeAgo(resolution.at)] : "",
        resolution.comment ? h("blockquote", {}, resolution.comment) : null);
    }
    const comment = h("textarea", {
      id: "gate-comment",
      rows: 3,
      maxLength: 2000,
      placeholder: "Optional: why you approve or reject",
      on: { input: () => comments.set(step.id, comment.value) },
    });
    comment.value = comments.get(step.id) || "";
    const approve = h("button", { class: "button button-success", type: "button", id: "gate-approve" }, "Approve");
    const reject = h("button", { class: "button button-danger-outline", type: "button", id: "gate-reject" }, "Reject");
    const decide = async (action) => {
      approve.disabled = reject.disabled = true;
      try {
        const body = comment.value.trim() ? { comment: comment.value.trim() } : undefined;
        await api(`${runPath}/steps/${encodeURIComponent(step.id)}/${action}`, { method: "POST", body });
        comments.delete(step.id);
        toast(`Gate ${step.id} ${action === "approve" ? "approved" : "rejected"}.`, "success");
      } catch (error) {
        toast(error.message, "danger");
      }
      chosenByUser = false; // let the selection follow the run again
      await refresh();
    };
    approve.addEventListener("click", () => decide("approve"));
    reject.addEventListener("click", () => decide("reject"));
    return h("div", { class: "gate-box" },
      h("div", { class: "gate-title" }, "Waiting for your decision"),
      h("p", { class: "gate-prompt" }, gate.prompt || "Approve to continue the run, or reject to stop this branch."),
      h("dl", { class: "fields compact" },
        field("Waiting since", timeAgo(gate.waiting_since)),
        field("Expires", gate.expires_at ? h("span", { title: exact(gate.expires_at) }, `${until(gate.expires_at)} (${exact(gate.expires_at)})`) : "never")),
      h("label", { for: "gate-comment" }, "Comment"),
      comment,
      h("div", { class: "button-row" }, approve, reject));
  }

  function outputBox(step) {
    if (step.status !== "succeeded" || step.type === "gate") return null;
    if (step.result_url) {
      const kind = mediaKind({ endpoint: step.endpoint });
      return h("div", { class: "output" }, h("div", { class: "output-label" }, "Result"), mediaPreview(step.result_url, kind, step.id));
    }
    const text = step.output && typeof step.output.text === "string" ? step.output.text : answerText(step.output && step.output.response);
    if (text === null || text === undefined) return null;
    return h("div", { class: "output" }, h("div", { class: "output-label" }, "Output"), h("pre", { class: "output-text" }, text));
  }

  function drawPanel() {
    const step = stepById(selected);
    if (!step) {
      fill(panel, empty("Select a step", "Click a box in the graph to see its details."));
      return;
    }
    const focused = document.activeElement;
    const typing = focused && focused.id === "gate-comment" && panel.contains(focused);
    const kind = step.type === "gate" ? "Approval gate" : step.endpoint;
    const started = toDate(step.started_at);
    const elapsed = step.duration_ms ?? (started && step.status === "running" ? Date.now() - started.getTime() : null);
    const error = step.error && step.error.message ? h("div", { class: "error-box" }, h("strong", {}, step.error.type || "error"), ": ", step.error.message) : null;
    // Unchanged: keep the panel as it is (the caret in the comment box, a playing result); a running
    // step is redrawn for its elapsed time.
    const signature = JSON.stringify(step);
    if (panel.dataset.signature === signature && step.status !== "running") return;
    panel.dataset.signature = signature;
    fill(panel, 
      h("div", { class: "panel-header" }, h("h2", { class: "mono" }, step.id), pill(step.status, "step")),
      step.description ? h("p", { class: "muted" }, step.description) : null,
      h("dl", { class: "fields" },
        field("Kind", kind || "step"),
        step.depends_on && step.depends_on.length ? field("After", step.depends_on.join(", ")) : null,
        step.started_at ? field("Started", timeAgo(step.started_at)) : null,
        elapsed !== null && elapsed !== undefined ? field(step.status === "running" ? "Running for" : "Took", duration(elapsed)) : null,
        step.job_id ? field("Job", h("span", { class: "mono" }, step.job_id), step.job_status ? ` (${step.job_status.toLowerCase()})` : "") : null),
      error,
      step.type === "gate" ? gateBox(step) : null,
      outputBox(step),
    );
    if (typing) document.getElementById("gate-comment")?.focus();
  }

  // ------------------------------------------------------------ header

  function drawHeader() {
    title.textContent = run.template || "Workflow run";
    fill(status, pill(run.status, "run"));
    const counts = run.step_counts || {};
    const finished = Object.entries(counts).filter(([s]) => !["pending", "waiting", "running"].includes(s)).reduce((n, [, c]) => n + c, 0);
    const finishedAt = toDate(run.finished_at);
    const took = finishedAt ? duration(finishedAt - toDate(run.created_at)) : null;
    fill(meta, 
      h("span", { class: "mono" }, run.id), " · started ", timeAgo(run.created_at),
      took ? ` · took ${took}` : "", ` · ${finished}/${run.step_count} steps finished`,
      counts.waiting ? h("span", { class: "waiting-note" }, ` · ${counts.waiting} waiting for approval`) : null);
    fill(actions, 
      run.status === "RUNNING"
        ? h("button", { class: "button button-danger-outline", type: "button", id: "cancel-run", on: { click: cancelRun } }, "Cancel run")
        : null);
    fill(errorBanner, 
      run.error && run.error.message && run.status !== "CANCELED"
        ? h("div", { class: "banner banner-danger" }, h("strong", {}, `${run.error.type || "error"}: `), run.error.message)
        : null);
  }

  async function cancelRun() {
    try {
      await api(`${runPath}/cancel`, { method: "POST" });
      toast("The run was canceled.", "success");
    } catch (error) {
      toast(error.message, "danger");
    }
    refresh();
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [view, text] = await Promise.all([api(runPath), apiText(`${runPath}/graph.svg`)]);
      run = view;
      if (!chosenByUser || !stepById(selected)) selected = defaultSelection();
      drawHeader();
      drawGraph(text);
      drawPanel();
      refreshTimes(main);
    } catch (error) {
      if (!run) {
        fill(graph, empty(error.status === 404 ? "No such run" : "Could not load the run", error.message));
        fill(panel);
      } else {
        toast(`Could not refresh: ${error.message}`, "warning");
      }
    } finally {
      busy = false;
    }
  }

  return {
    title: `Run ${id}`,
    refresh,
    // Live while it runs; a finished run changes no more (a slow check catches a late retry view).
    refreshEvery: () => (run && run.status !== "RUNNING" ? 15000 : 2000),
  };
}
