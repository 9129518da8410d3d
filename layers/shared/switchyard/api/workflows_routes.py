"""Workflows: /v1/workflows/templates and /v1/workflows/runs (start, read, list, gates, cancel)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from switchyard.api import openapi_docs as docs
from switchyard.api import shapes
from switchyard.api.caller import caller_account
from switchyard.api.inference_routes import raw_body
from switchyard.api.jobs_routes import public_base_url
from switchyard.api.pagination import list_page
from switchyard.errors import InvalidRequest
from switchyard.services.idempotency import run_once
from switchyard.services.workflows import MAX_LIST_LIMIT, get_workflows_service
from switchyard.validation import parse_json_object
from switchyard.workflows.graph_svg import render_run_svg
from switchyard.workflows.model import MAX_STEPS
from switchyard.workflows.templates import all_templates


def start_request_schema() -> dict[str, Any]:
    """POST /v1/workflows/runs' body: a template (with its inputs) or an inline spec."""
    spec, components = docs.schema_of(shapes.WorkflowSpecBody)
    variants: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"spec": spec, "inputs": {"type": "object"}},
            "required": ["spec"],
            "additionalProperties": False,
        }
    ]
    for template in all_templates():
        inputs = template.spec.inputs
        variants.append(
            {
                "type": "object",
                "properties": {
                    "template": {"const": template.id},
                    "inputs": {
                        "type": "object",
                        "properties": {i.name: {"description": i.description} for i in inputs},
                        "required": [i.name for i in inputs if i.required],
                        "additionalProperties": False,
                    },
                },
                "required": ["template", "inputs"] if any(i.required for i in inputs) else ["template"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": variants, "components": components}


START_DESCRIPTION = f"""Body: `{{"template": "<id>", "inputs": {{...}}}}` or `{{"spec": {{"inputs": [...],
"steps": [...]}}, "inputs": {{...}}}}`.

An **inference step** is `{{"id", "endpoint", "body", "depends_on": [...], "timeout_seconds"?}}` and runs as an
ordinary async job (visible in /v1/jobs) of one of /v1/chat/completions, /v1/completions,
/v1/images/generations, /v1/audio/speech, /v1/music/generations, /v1/videos/generations, /v1/3d/generations,
/v1/embeddings.
A **gate** is `{{"id", "type": "gate", "depends_on": [...], "timeout_seconds"?, "prompt"?}}` and waits for
approve/reject. A step starts as soon as its own dependencies have succeeded; a step that does not succeed
skips everything downstream of it. At most {MAX_STEPS} steps.

String values in a body may reference `{{{{inputs.NAME}}}}`, `{{{{steps.ID.output.text}}}}` (an upstream LLM
step's text), `{{{{steps.ID.output.PATH}}}}` (a value in an upstream step's output: an LLM step's output is
`{{"text", "response"}}`, a gate's `{{"decision", "comment", "by", "at"}}`), `{{{{steps.ID.result_url}}}}`
(an upstream media step's asset) and `{{{{steps.ID.job_id}}}}`. A string that is exactly one reference takes
the referenced JSON value. Only steps upstream of a step (through depends_on) may be referenced.

`"metadata": {{"webhook_id": "wh_..."}}` names a webhook of yours that gets `workflow.run.completed` (the
run's final status and error) and `workflow.gate.waiting` (run id, step id, prompt, expires_at, approve and
reject URLs) for each gate; a step body's own `metadata.webhook_id` gets that step job's
`generation.completed`.

Everything is validated before anything starts (400 invalid_request naming the step and why; an unknown
webhook, or another account's, too). `Idempotency-Key` works as for jobs."""

RUN_DESCRIPTION = """Run status: RUNNING until every step is final; then SUCCEEDED (every step succeeded),
FAILED (a step failed, timed out or had its job canceled; `error` names it), REJECTED (a gate was rejected and
nothing failed) or CANCELED. `error` is set as soon as the run can no longer succeed.

Step status: pending (waiting for dependencies), waiting (a gate waiting for a decision), running (its job
is queued or processing), succeeded, failed, rejected, skipped (an upstream step did not succeed), canceled,
timed_out. Each step has its timings, `job_id`, `output` (LLM: `{"text", "response"}`; media: the provider's
JSON metadata), `result_url` for media, `error`, and for gates the `gate` object with its resolution.
`edges` lists `{"from", "to"}` for drawing the graph."""


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(body))


def _comment(app: APIGatewayHttpResolver) -> str | None:
    raw = raw_body(app.current_event.raw_event)
    if not raw.strip():
        return None
    data = parse_json_object(raw)
    unknown = sorted(set(data) - {"comment"})
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(unknown)} (the body may hold a 'comment').")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidRequest("comment must be a string.", param="comment")
    return comment


def register(app: APIGatewayHttpResolver) -> None:
    @app.get(
        "/v1/workflows/templates",
        summary="List curated, ready-to-run workflow templates",
        description="Each template has an id, a description, its inputs (name, description, required or "
        "default) and its DAG: steps (as a spec would write them) and edges.",
        responses=docs.merge(docs.ok(shapes.WorkflowTemplateList, "The templates"), docs.errors(401, 503)),
    )
    def list_templates() -> dict[str, Any]:
        caller_account(app)
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        return {"object": "list", "data": workflows.templates()}

    @app.post(
        "/v1/workflows/runs",
        summary="Start a workflow run from a template or an inline spec",
        description=START_DESCRIPTION,
        responses=docs.merge(
            docs.accepted(shapes.Run, "The run (status RUNNING, every step pending), as GET returns it"),
            docs.errors(400, 401, 409, 415, 503),
        ),
        openapi_extensions=docs.extensions(
            docs.body(start_request_schema()), docs.IDEMPOTENCY_KEY, docs.RATE_LIMITED
        ),
    )
    def start_run():
        account_id = caller_account(app)
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        request = parse_json_object(raw_body(app.current_event.raw_event))
        base_url = public_base_url(app)
        key = app.current_event.headers.get("idempotency-key")
        if key is None:
            return _json(202, workflows.start(account_id, request, base_url))
        workflows.prepare(request)  # a bad request is a 400 every time, not a remembered answer
        return _json(
            202,
            run_once(
                account_id=account_id,
                key=key,
                scope="workflow_run",
                payload=request,
                create=lambda: workflows.start(account_id, request, base_url),
                replay=lambda first: workflows.view(account_id, first["id"], base_url),
                lambda_context=app.lambda_context,
            ),
        )

    @app.get(
        "/v1/workflows/runs",
        summary="List your workflow runs, newest first",
        responses=docs.merge(docs.ok(shapes.RunList, "A page of runs"), docs.errors(400, 401, 503)),
    )
    def list_runs(
        limit: Annotated[int, docs.limit_query(MAX_LIST_LIMIT)] = 20,
        after: Annotated[str | None, docs.after_query(shapes.RUN_ID)] = None,
    ) -> dict[str, Any]:
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        runs, has_more = workflows.list(caller_account(app), limit=limit, after=after)
        return list_page(runs, has_more)

    @app.get(
        "/v1/workflows/runs/<run_id>",
        summary="A run's live DAG: steps, statuses, timings, outputs and media",
        description=RUN_DESCRIPTION,
        responses=docs.merge(docs.ok(shapes.Run, "The run"), docs.errors(400, 401, 404, 503)),
    )
    def get_run(run_id: docs.RunId) -> dict[str, Any]:
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        return workflows.view(caller_account(app), run_id, public_base_url(app))

    @app.get(
        "/v1/workflows/runs/<run_id>/graph.svg",
        summary="A run's DAG drawn as SVG (steps coloured by status, with timings)",
        description="The drawing the dashboard shows, for embedding in a README, a ticket or a chat. "
        "Authenticated like every call; a snapshot, so fetch it again to follow a running run.",
        responses=docs.merge(
            {
                200: {
                    "description": "The run's graph",
                    "content": docs.content("image/svg+xml", schema={"type": "string"}),
                }
            },
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
            docs.ASYNC_DISABLED,
        ),
    )
    def get_run_graph(run_id: docs.RunId):
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        run = workflows.view(caller_account(app), run_id, public_base_url(app))
        return Response(
            200,
            "image/svg+xml",
            render_run_svg(run),
            headers={
                "Cache-Control": "no-store",
                # Opened on its own in a browser, the document may do nothing but draw.
                "Content-Security-Policy": "default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    gate_responses = docs.merge(
        docs.ok(shapes.GateDecision, "The gate, decided"), docs.errors(400, 401, 404, 409, 415, 503)
    )
    gate_body = docs.body(shapes.GateComment, required=False)

    def resolve_gate(run_id: str, step_id: str, approve: bool) -> dict[str, Any]:
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        return workflows.resolve_gate(
            caller_account(app),
            run_id,
            step_id,
            approve=approve,
            comment=_comment(app),
            base_url=public_base_url(app),
        )

    @app.post(
        "/v1/workflows/runs/<run_id>/steps/<step_id>/approve",
        summary='Approve a waiting gate (once); optional body {"comment": "..."}',
        description="409 when the step is not a gate, or the gate is not waiting (not reached yet, already "
        "decided, timed out, canceled).",
        responses=gate_responses,
        openapi_extensions=gate_body,
    )
    def approve_gate(run_id: docs.RunId, step_id: docs.StepId) -> dict[str, Any]:
        return resolve_gate(run_id, step_id, approve=True)

    @app.post(
        "/v1/workflows/runs/<run_id>/steps/<step_id>/reject",
        summary='Reject a waiting gate (once); optional body {"comment": "..."}',
        description="Everything downstream of the gate is skipped and the run ends REJECTED (unless a step "
        "failed). 409 as for approve.",
        responses=gate_responses,
        openapi_extensions=gate_body,
    )
    def reject_gate(run_id: docs.RunId, step_id: docs.StepId) -> dict[str, Any]:
        return resolve_gate(run_id, step_id, approve=False)

    @app.post(
        "/v1/workflows/runs/<run_id>/cancel",
        summary="Cancel a RUNNING run and its queued jobs",
        responses=docs.merge(docs.ok(shapes.Run, "The run, CANCELED"), docs.errors(400, 401, 404, 409, 503)),
    )
    def cancel_run(run_id: docs.RunId) -> dict[str, Any]:
        workflows = get_workflows_service()
        workflows.ensure_enabled()
        return workflows.cancel(caller_account(app), run_id, public_base_url(app))
