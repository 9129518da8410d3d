"""Async jobs: submission (from the inference routes), /v1/jobs, the queue summary and stored assets."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from switchyard import metrics
from switchyard.api import openapi_docs as docs
from switchyard.api import shapes
from switchyard.api.admission import note_jobs_created
from switchyard.api.caller import caller_account
from switchyard.api.pagination import list_page
from switchyard.catalog import Endpoint
from switchyard.errors import NotFound
from switchyard.job_model import JobWebhook
from switchyard.services.idempotency import run_once
from switchyard.services.jobs import MAX_LIST_LIMIT, get_jobs_service
from switchyard.services.webhooks import get_webhooks_service
from switchyard.validation import provider_body


def public_base_url(app: APIGatewayHttpResolver) -> str:
    """The scheme and host the caller used, so result URLs point back at this gateway."""
    event = app.current_event
    headers = event.headers
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip()
    host = headers.get("host") or event.request_context.domain_name
    stage = event.request_context.stage
    prefix = f"/{stage}" if stage and stage != "$default" and event.raw_path.startswith(f"/{stage}/") else ""
    return f"{proto}://{host}{prefix}"


def _accepted(body: dict[str, Any]) -> Response[str]:
    return Response(202, "application/json", json.dumps(body))


def submit_async(
    app: APIGatewayHttpResolver, account_id: str, endpoint: Endpoint, data: dict[str, Any]
) -> Response[str]:
    metrics.note_route_group(metrics.RouteGroup.ASYNC_SUBMIT)
    jobs = get_jobs_service()
    jobs.ensure_enabled()
    base_url = public_base_url(app)
    # An unknown webhook (or another account's) is refused here, before anything is stored or queued.
    webhook = get_webhooks_service().job_webhook(account_id, data, base_url)

    def create() -> dict[str, Any]:
        job = jobs.submit(account_id, endpoint, data, webhook=webhook)
        note_jobs_created(app, 1)
        return jobs.envelope(job, base_url)

    key = app.current_event.headers.get("idempotency-key")
    if key is None:
        return _accepted(create())
    envelope = run_once(
        account_id=account_id,
        key=key,
        scope="job",
        payload={"endpoint": endpoint.path, "body": provider_body(data), **_webhook_of(webhook)},
        create=create,
        replay=lambda first: jobs.envelope(jobs.get(account_id, first["id"]), base_url),
        lambda_context=app.lambda_context,
    )
    return _accepted(envelope)


def _webhook_of(webhook: JobWebhook | None) -> dict[str, Any]:
    """The webhook is part of what an Idempotency-Key replay must match (provider_body drops it)."""
    return {"webhook_id": webhook.webhook_id} if webhook is not None else {}


_STATUS = "(QUEUED|PROCESSING|PROCESSED|FAILED|CANCELED)"
StatusFilter = Annotated[
    str | None,
    Query(
        description="Only these statuses (comma-separated), e.g. QUEUED,FAILED",
        pattern=rf"^{_STATUS}(,{_STATUS})*$",
    ),
]


def register(app: APIGatewayHttpResolver) -> None:
    @app.get(
        "/v1/jobs",
        summary="List your async jobs, newest first",
        responses=docs.merge(docs.ok(shapes.JobList, "A page of jobs"), docs.errors(400, 401)),
    )
    def list_jobs(
        status: StatusFilter = None,
        active: Annotated[
            bool | None, Query(description="true (or 1): only QUEUED or PROCESSING jobs")
        ] = None,
        limit: Annotated[int, docs.limit_query(MAX_LIST_LIMIT)] = 50,
        after: Annotated[str | None, docs.after_query(shapes.JOB_ID)] = None,
    ) -> dict[str, Any]:
        jobs = get_jobs_service()
        found, has_more = jobs.list(
            caller_account(app), status=status, active=bool(active), limit=limit, after=after
        )
        base_url = public_base_url(app)
        # What the items hold, never S3: a page of 100 stays small (large results are given by URL).
        data = [jobs.envelope(job, base_url, read_result=False) for job in found]
        return list_page(data, has_more)

    @app.get(
        "/v1/jobs/<job_id>",
        summary="A job's status and result",
        responses=docs.merge(docs.ok(shapes.Job, "The job"), docs.errors(400, 401, 404)),
    )
    def get_job(job_id: docs.JobId) -> dict[str, Any]:
        jobs = get_jobs_service()
        return jobs.envelope(jobs.get(caller_account(app), job_id), public_base_url(app))

    @app.post(
        "/v1/jobs/<job_id>/cancel",
        summary="Cancel a QUEUED or PROCESSING job",
        responses=docs.merge(
            docs.ok(shapes.JobCancel, "Whether it was canceled (a finished job is left as it is)"),
            docs.errors(400, 401, 404),
        ),
    )
    def cancel_job(job_id: docs.JobId) -> dict[str, Any]:
        job, canceled = get_jobs_service().cancel(caller_account(app), job_id)
        answer: dict[str, Any] = {"id": job.job_id, "status": job.status.value, "canceled": canceled}
        if not canceled:
            answer["detail"] = f"Job already finished with status {job.status.value}; nothing was canceled."
        return answer

    @app.post(
        "/v1/jobs/<job_id>/retry",
        summary="Re-queue a FAILED or CANCELED job",
        responses=docs.merge(
            docs.accepted(shapes.Job, "The job, QUEUED again"), docs.errors(400, 401, 404, 409, 503)
        ),
        openapi_extensions=docs.RATE_LIMITED,
    )
    def retry_job(job_id: docs.JobId):
        jobs = get_jobs_service()
        job = jobs.retry(caller_account(app), job_id)
        note_jobs_created(app, 1)  # back in flight
        return _accepted(jobs.envelope(job, public_base_url(app)))

    def summary() -> dict[str, Any]:
        return get_jobs_service().summary(caller_account(app))

    app.get(
        "/api/inference/queue/summary/",
        summary="Counts of active work and worker health",
        responses=docs.merge(docs.ok(shapes.QueueSummary, "The summary"), docs.errors(401)),
    )(summary)
    app.get("/api/inference/queue/summary", include_in_schema=False)(summary)

    def serve(job_id: str, index: int) -> Response[bytes]:
        found = get_jobs_service().asset(caller_account(app), job_id, index)
        if found.redirect_url:
            return Response(302, "text/plain", b"", headers={"Location": found.redirect_url})
        return Response(
            200, found.content_type, found.content or b"", headers={"Cache-Control": "private, max-age=300"}
        )

    # Route functions carry no return annotation: Powertools would try to build a response model of it.
    def asset(asset_id: docs.AssetId):
        return serve(asset_id, 0)

    def nth_asset(
        asset_id: docs.AssetId,
        index: docs.AssetIndex,
    ):
        if not index.isdigit():
            raise NotFound(f"Job '{asset_id}' has no stored asset {index!r}.")
        return serve(asset_id, int(index))

    asset_answers = docs.merge(
        {
            200: {"description": "The asset, with its media type", "content": docs.content("*/*")},
            302: {
                "description": "A large asset: a short-lived link to it",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
            },
        },
        docs.errors(400, 401, 404),
    )
    app.get(
        "/api/inference/assets/<asset_id>/",
        summary="A job's stored result: its first media asset, or an LLM answer kept in S3 (your own only)",
        responses=asset_answers,
    )(asset)
    app.get("/api/inference/assets/<asset_id>", include_in_schema=False)(asset)
    app.get(
        "/api/inference/assets/<asset_id>/<index>/",
        summary="A media job's asset by its place in the job's `assets` (your own only)",
        responses=asset_answers,
    )(nth_asset)
    app.get("/api/inference/assets/<asset_id>/<index>", include_in_schema=False)(nth_asset)
