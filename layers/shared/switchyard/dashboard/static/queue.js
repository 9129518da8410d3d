// Queue: the summary badge and worker health, the caller's jobs (filters, paging, results, Cancel /
// Retry), batches with their counts, and workflow runs. Redrawn in place every few seconds: rows that
// did not change keep their elements, so nothing flickers and a playing result keeps playing.

import { api } from "./api.js";
import { empty, fill, h, reconcile, toast } from "./dom.js";
import { ago, duration, pill, timeAgo, toDate } from "./format.js";
import { answerText, mediaKind, mediaPreview } from "./media.js";

const PAGE_SIZE = 20;
const FILTERS = [
  { id: "all", label: "All" },
  { id: "active", label: "Active" },
  { id: "QUEUED", label: "Queued" },
  { id: "PROCESSING", label: "Processing" },
  { id: "PROCESSED", label: "Processed" },
  { id: "FAILED", label: "Failed" },
  { id: "CANCELED", label: "Canceled" },
];

function jobsQuery(filter, after) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (filter === "active") query.set("active", "1");
  else if (filter !== "all") query.set("status", filter);
  if (after) query.set("after", after);
  return `v1/jobs?${query}`;
}

export function refreshTimes(container) {
  for (const time of container.querySelectorAll("time[datetime]")) {
    if (time.dateTime) time.textContent = ago(time.dateTime);
  }
}

// ---------------------------------------------------------------- the page

export function mount(main, { params, setQuery }) {
  let filter = FILTERS.some((f) => f.id === params.get("status")) ? params.get("status") : "all";
  let cursors = [null]; // the `after` of each page seen; the last one is the current page
  let lastUpdate = null;
  let busy = false;

  const badge = h("div", { class: "summary-badge", id: "summary-badge" });
  const live = h("div", { class: "live", id: "live-status" }, "Loading…");
  const banners = h("div", { class: "banners", id: "queue-banners" });
  const filterBar = h("div", { class: "segmented", role: "tablist", "aria-label": "Filter jobs by status" });
  const jobsBody = h("tbody", { id: "jobs-body" });
  const jobsEmpty = h("div", { class: "table-empty" });
  const pageLabel = h("span", { class: "muted page-label" });
  const newer = h("button", { class: "button button-small", type: "button", on: { click: () => page(-1) } }, "← Newer");
  const older = h("button", { class: "button button-small", type: "button", on: { click: () => page(1) } }, "Older →");
  const batchesList = h("div", { class: "list", id: "batches-list" });
  const runsList = h("div", { class: "list", id: "runs-list" });
  let olderCursor = null;

  for (const option of FILTERS) {
    filterBar.append(
      h("button", {
        type: "button",
        role: "tab",
        class: "segment",
        dataset: { filter: option.id },
        on: { click: () => setFilter(option.id) },
      }, option.label),
    );
  }

  fill(main, 
    h("header", { class: "page-header" },
      h("div", {}, h("h1", {}, "Queue"), h("p", { class: "muted" }, "Async jobs, batches and workflow runs of your account, live.")),
      h("div", { class: "page-header-side" }, badge, live)),
    banners,
    h("section", { class: "card", "aria-labelledby": "jobs-title" },
      h("div", { class: "card-header" }, h("h2", { id: "jobs-title" }, "Jobs"), filterBar),
      h("div", { class: "table-wrap" },
        h("table", { class: "table jobs-table" },
          h("thead", {}, h("tr", {},
            h("th", {}, "Status"), h("th", {}, "Job"), h("th", {}, "Model"), h("th", {}, "Created"),
            h("th", { class: "col-result" }, "Result"), h("th", { class: "col-actions" }, h("span", { class: "sr-only" }, "Actions")))),
          jobsBody),
        jobsEmpty),
      h("div", { class: "card-footer" }, pageLabel, h("div", { class: "pager" }, newer, older))),
    h("div", { class: "grid-2" },
      h("section", { class: "card", "aria-labelledby": "batches-title" },
        h("div", { class: "card-header" }, h("h2", { id: "batches-title" }, "Batches")), batchesList),
      h("section", { class: "card", "aria-labelledby": "runs-title" },
        h("div", { class: "card-header" }, h("h2", { id: "runs-title" }, "Workflow runs")), runsList)),
  );

  function markFilter() {
    for (const button of filterBar.children) {
      const selected = button.dataset.filter === filter;
      button.classList.toggle("active", selected);
      button.setAttribute("aria-selected", String(selected));
    }
  }

  function setFilter(id) {
    if (id === filter) return;
    filter = id;
    cursors = [null];
    const query = new URLSearchParams();
    if (filter !== "all") query.set("status", filter);
    setQuery(query);
    markFilter();
    fill(jobsBody);
    jobsBody._reconciled = null;
    fill(jobsEmpty, h("div", { class: "muted" }, "Loading…"));
    refresh();
  }

  function page(direction) {
    if (direction > 0 && olderCursor) cursors.push(olderCursor);
    if (direction < 0 && cursors.length > 1) cursors.pop();
    refresh();
  }

  async function act(job, action) {
    try {
      await api(`v1/jobs/${encodeURIComponent(job.id)}/${action}`, { method: "POST" });
      toast(action === "cancel" ? `Job ${job.id} canceled.` : `Job ${job.id} queued again.`, "success");
    } catch (error) {
      toast(error.message, "danger");
    }
    refresh();
  }

  async function cancelBatch(batch) {
    try {
      await api(`v1/batches/${encodeURIComponent(batch.id)}/cancel`, { method: "POST" });
      toast(`Batch ${batch.label || batch.id}: its remaining jobs were canceled.`, "success");
    } catch (error) {
      toast(error.message, "danger");
    }
    refresh();
  }

  // ------------------------------------------------------------ drawing

  function drawSummary(summary) {
    const active = summary.active || 0;
    fill(badge, 
      h("span", { class: `badge-count${active ? " busy" : ""}` }, h("span", { class: "badge-dot" }), `${active} active`),
      h("span", { class: "badge-detail" }, `${summary.queued || 0} queued · ${summary.processing || 0} processing`),
    );
    badge.dataset.active = String(active);
    const notes = [];
    if (!summary.async_enabled) {
      notes.push(h("div", { class: "banner banner-muted", id: "async-disabled", role: "status" },
        h("strong", {}, "Async processing is disabled on this server. "),
        "Async jobs, batches and workflow runs are unavailable; synchronous calls still work."));
    }
    if (summary.worker_stalled) {
      const tick = summary.dispatcher_last_tick_at;
      notes.push(h("div", { class: "banner banner-warning", id: "worker-stalled", role: "alert" },
        h("strong", {}, "Worker stalled. "),
        `${summary.queued} queued job${summary.queued === 1 ? " is" : "s are"} waiting, but the dispatcher has not run `,
        tick ? `since ${ago(tick)}` : "at all",
        ". Queued work will not start until it recovers; check the dispatcher's logs and its queue."));
    }
    reconcile(banners, notes, { key: (n) => n.id, signature: (n) => n.textContent, render: (n) => n });
  }

  function jobCell(job) {
    const lines = [h("div", { class: "mono strong" }, job.id)];
    if (job.workflow_run_id) {
      lines.push(h("div", { class: "sub" }, "step ", h("span", { class: "mono" }, job.workflow_step_id || "?"), " of ",
        h("a", { href: `#/runs/${encodeURIComponent(job.workflow_run_id)}` }, job.workflow_run_id)));
    } else if (job.batch_id) {
      lines.push(h("div", { class: "sub" }, "batch ", h("span", { class: "mono" }, job.batch_id)));
    }
    return h("td", {}, lines);
  }

  function resultCell(job) {
    if (job.status === "PROCESSED") {
      if (job.result_url) return mediaPreview(job.result_url, mediaKind({ inferenceType: job.inference_type }), `${job.id}`);
      const text = answerText(job.result);
      if (text !== null) {
        const snippet = text.length > 140 ? `${text.slice(0, 140)}…` : text;
        return h("details", { class: "answer" }, h("summary", {}, snippet || "(empty answer)"), h("pre", {}, text));
      }
      return h("span", { class: "muted" }, "Done");
    }
    if (job.status === "FAILED") {
      const error = job.error || {};
      return h("div", { class: "error-text" }, h("span", { class: "error-type" }, error.type || "failed"), " ", error.message || "");
    }
    if (job.status === "CANCELED") return h("span", { class: "muted" }, "Canceled");
    if (job.status === "PROCESSING") return h("span", { class: "muted" }, "Running on a provider…");
    return h("span", { class: "muted" }, job.attempts ? `Waiting to retry (attempt ${job.attempts + 1})` : "Waiting for a provider");
  }

  function actionsCell(job) {
    const buttons = [];
    if (job.status === "QUEUED" || job.status === "PROCESSING") {
      buttons.push(h("button", { class: "button button-small", type: "button", dataset: { action: "cancel" }, on: { click: () => act(job, "cancel") } }, "Cancel"));
    }
    if ((job.status === "FAILED" || job.status === "CANCELED") && !job.workflow_run_id) {
      buttons.push(h("button", { class: "button button-small", type: "button", dataset: { action: "retry" }, on: { click: () => act(job, "retry") } }, "Retry"));
    }
    return h("td", { class: "col-actions" }, buttons);
  }

  function jobRow(job) {
    const created = toDate(job.created);
    // The envelope's times are whole seconds: say "under 1 s" rather than a precise-looking 0.0 s.
    const tookMs = job.started_at && job.finished_at ? toDate(job.finished_at) - toDate(job.started_at) : null;
    const took = tookMs === null ? null : tookMs < 1000 ? "under 1 s" : duration(tookMs).replace(/\.\d s$/, " s");
    return h("tr", { dataset: { jobId: job.id, status: job.status } },
      h("td", {}, pill(job.status)),
      jobCell(job),
      h("td", {}, h("div", { class: "strong nowrap" }, job.model), h("div", { class: "sub" }, job.inference_type)),
      h("td", {}, timeAgo(created ? created.toISOString() : null), took ? h("div", { class: "sub nowrap" }, `took ${took}`) : null),
      h("td", { class: "col-result" }, resultCell(job)),
      actionsCell(job));
  }

  function drawJobs(listing) {
    reconcile(jobsBody, listing.data, { key: (j) => j.id, signature: (j) => JSON.stringify(j), render: jobRow });
    olderCursor = listing.has_more ? listing.last_id : null;
    older.disabled = !olderCursor;
    newer.disabled = cursors.length <= 1;
    pageLabel.textContent = listing.data.length
      ? `Page ${cursors.length} · ${listing.data.length} job${listing.data.length === 1 ? "" : "s"}, newest first`
      : "";
    if (listing.data.length) fill(jobsEmpty);
    else if (filter === "all" && cursors.length === 1) {
      fill(jobsEmpty, empty("No jobs yet",
        "Add ", h("code", {}, '"async": true'), " to any JSON inference call, or submit a batch, and its jobs show up here."));
    } else {
      const label = FILTERS.find((f) => f.id === filter).label.toLowerCase();
      fill(jobsEmpty, empty(filter === "all" ? "No more jobs" : `No ${label} jobs`));
    }
  }

  function batchRow(batch) {
    const done = batch.processed + batch.failed + (batch.canceled || 0);
    const part = (count, tone) => (count ? h("span", { class: `bar-part bar-${tone}`, dataset: { share: String(count) } }) : null);
    const bar = h("div", { class: "bar", role: "img", "aria-label": `${done} of ${batch.total} finished` },
      part(batch.processed, "success"), part(batch.failed, "danger"), part(batch.canceled || 0, "muted"),
      part(batch.processing, "info"), part(batch.queued, "neutral"));
    for (const segment of bar.children) {
      // Widths through the CSSOM (allowed by the CSP), not an inline style attribute (which is not).
      segment.style.width = `${(100 * Number(segment.dataset.share)) / Math.max(1, batch.total)}%`;
    }
    const counts = [`${done}/${batch.total} done`];
    if (batch.failed) counts.push(`${batch.failed} failed`);
    if (batch.processing) counts.push(`${batch.processing} processing`);
    if (batch.queued) counts.push(`${batch.queued} queued`);
    return h("div", { class: "list-item", dataset: { batchId: batch.id } },
      h("div", { class: "list-main" },
        h("div", { class: "list-title" }, batch.label || "Untitled batch", " ", h("span", { class: "mono sub" }, batch.id)),
        bar,
        h("div", { class: "sub" }, counts.join(" · "), " · ", timeAgo(toDate(batch.created)?.toISOString()))),
      h("div", { class: "list-side" }, pill(batch.status, "batch"),
        batch.status !== "DONE" ? h("button", { class: "button button-small", type: "button", on: { click: () => cancelBatch(batch) } }, "Cancel") : null));
  }

  function runRow(run) {
    return h("a", { class: "list-item list-link", href: `#/runs/${encodeURIComponent(run.id)}`, dataset: { runId: run.id } },
      h("div", { class: "list-main" },
        h("div", { class: "list-title" }, run.template || "Inline workflow", " ", h("span", { class: "mono sub" }, run.id)),
        h("div", { class: "sub" }, `${run.step_count} step${run.step_count === 1 ? "" : "s"} · started `, timeAgo(run.created_at),
          run.error && run.error.message && run.status === "FAILED" ? h("span", { class: "error-text" }, ` · ${run.error.message}`) : null)),
      h("div", { class: "list-side" }, pill(run.status, "run"), h("span", { class: "chevron", "aria-hidden": "true" }, "›")));
  }

  function drawList(container, result, { render, key, emptyTitle, emptyHint }) {
    if (result.error) {
      container._reconciled = null;
      const unavailable = result.error.type === "async_disabled";
      fill(container, empty(unavailable ? "Unavailable: async processing is disabled" : "Could not load", unavailable ? "" : result.error.message));
      return;
    }
    if (!result.value.data.length) {
      container._reconciled = null;
      fill(container, empty(emptyTitle, emptyHint));
      return;
    }
    reconcile(container, result.value.data, { key, signature: (x) => JSON.stringify(x), render });
  }

  // ------------------------------------------------------------ refreshing

  async function refresh() {
    if (busy) return;
    busy = true;
    const settle = (promise) => promise.then((value) => ({ value }), (error) => ({ error }));
    try {
      const [summary, jobs, batches, runs] = await Promise.all([
        settle(api("api/inference/queue/summary")),
        settle(api(jobsQuery(filter, cursors[cursors.length - 1]))),
        settle(api("v1/batches?limit=10")),
        settle(api("v1/workflows/runs?limit=10")),
      ]);
      if (summary.value) drawSummary(summary.value);
      if (jobs.value) drawJobs(jobs.value);
      else fill(jobsEmpty, empty("Could not load jobs", jobs.error.message));
      drawList(batchesList, batches, { render: batchRow, key: (b) => b.id, emptyTitle: "No batches yet", emptyHint: "POST up to 256 requests to /v1/batches." });
      drawList(runsList, runs, { render: runRow, key: (r) => r.id, emptyTitle: "No workflow runs yet", emptyHint: "Start one from a template: POST /v1/workflows/runs." });
      const failed = [summary, jobs].find((r) => r.error && r.error.status !== 401);
      if (failed) {
        live.className = "live live-error";
        live.textContent = `Reconnecting… ${failed.error.message}${lastUpdate ? ` (last update ${ago(lastUpdate)})` : ""}`;
      } else {
        lastUpdate = new Date();
        live.className = "live live-ok";
        fill(live, h("span", { class: "live-dot" }), "Live · updated just now");
      }
      refreshTimes(main);
    } finally {
      busy = false;
    }
  }

  markFilter();
  return { title: "Queue", refresh, refreshEvery: () => 3000 };
}
