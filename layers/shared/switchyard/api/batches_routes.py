"""Batches: /v1/batches (submit up to 256 async requests at once, read, list, cancel)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from switchyard.api import openapi_docs as docs
from switchyard.api import shapes
from switchyard.api.admission import note_jobs_created
from switchyard.api.caller import caller_account
from switchyard.api.inference_routes import raw_body
from switchyard.api.jobs_routes import public_base_url
from switchyard.api.pagination import list_page
from switchyard.schemas import BODY_MODELS
from switchyard.services.batches import (
    BATCH_ENDPOINTS,
    MAX_ITEMS,
    MAX_LABEL_LENGTH,
    MAX_LIST_LIMIT,
    get_batches_service,
    parse_batch_request,
)
from switchyard.services.idempotency import run_once
from switchyard.validation import parse_json_object


def batch_request_schema() -> dict[str, Any]:
    """POST /v1/batches' body: 1 to MAX_ITEMS items, each an endpoint and a body valid for it."""
    items, components = [], {}
    for path in BATCH_ENDPOINTS:
        schema, refs = docs.schema_of(BODY_MODELS[path])
        components.update(refs)
        items.append(
            {
                "type": "object",
                "properties": {"endpoint": {"const": path}, "body": schema},
                "required": ["endpoint", "body"],
            }
        )
    return {
        "type": "object",
        "properties": {
            "label": {"anyOf": [{"type": "string", "maxLength": MAX_LABEL_LENGTH}, {"type": "null"}]},
            # webhook_id is described, not given a schema: only an id of one of the caller's webhooks is
            # accepted, which no schema can state (a made-up one is a 400).
            "metadata": {
                "anyOf": [{"type": "object"}, {"type": "null"}],
                "description": 'Optional; `{"webhook_id": "wh_..."}` names a webhook of yours that hears '
                "batch.completed",
            },
            "requests": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": {"oneOf": items}},
        },
        "required": ["requests"],
        "components": components,
    }


SUBMIT_DESCRIPTION = f"""Body: `{{"label": "optional name", "metadata": {{"webhook_id": "wh_..."}} (optional),
"requests": [{{"endpoint": "/v1/chat/completions", "body": {{...}}}}, ...]}}` with 1 to {MAX_ITEMS} items.
Endpoints: /v1/chat/completions, /v1/completions, /v1/images/generations, /v1/videos/generations,
/v1/music/generations, /v1/audio/speech, /v1/embeddings. Each body is validated as the direct call would
be (an `async` field is ignored); any malformed item rejects the whole batch before anything is created.
Each item becomes an async job (`GET /v1/jobs/{{id}}`, with `batch_id`). `metadata.webhook_id` names a
webhook of yours that gets `batch.completed` (the batch object, counts and jobs) once every job is final;
an item's own `body.metadata.webhook_id` gets that item's `generation.completed`. An unknown webhook (or
another account's) is a 400 before anything is created. `Idempotency-Key` works as for jobs."""


def _accepted(body: dict[str, Any]) -> Response[str]:
    return Response(202, "application/json", json.dumps(body))


def register(app: APIGatewayHttpResolver) -> None:
    @app.post(
        "/v1/batches",
        summary="Submit up to 256 async inference requests in one call",
        description=SUBMIT_DESCRIPTION,
        responses=docs.merge(
            docs.accepted(shapes.Batch, "The batch, status PENDING (see GET /v1/batches/{batch_id})"),
            docs.errors(400, 401, 409, 415, 503),
        ),
        openapi_extensions=docs.extensions(
            docs.body(batch_request_schema()), docs.IDEMPOTENCY_KEY, docs.RATE_LIMITED
        ),
    )
    def create_batch():
        account_id = caller_account(app)
        batches = get_batches_service()
        batches.ensure_enabled()
        # Parsed here, not by a pydantic body model, so that 257 items is too_large and a bad item is named.
        request = parse_batch_request(parse_json_object(raw_body(app.current_event.raw_event)))
        base_url = public_base_url(app)

        def create() -> dict[str, Any]:
            batch = batches.submit(account_id, request, base_url)
            note_jobs_created(app, len(request.items))
            return batch

        key = app.current_event.headers.get("idempotency-key")
        if key is None:
            return _accepted(create())
        return _accepted(
            run_once(
                account_id=account_id,
                key=key,
                scope="batch",
                payload=request.fingerprint_payload(),
                create=create,
                replay=lambda first: batches.get(account_id, first["id"]),
                lambda_context=app.lambda_context,
            )
        )

    @app.get(
        "/v1/batches",
        summary="List your batches, newest first, with status and counts (the jobs are on each batch)",
        responses=docs.merge(docs.ok(shapes.BatchList, "A page of batches"), docs.errors(400, 401)),
    )
    def list_batches(
        limit: Annotated[int, docs.limit_query(MAX_LIST_LIMIT)] = 50,
        after: Annotated[str | None, docs.after_query(shapes.BATCH_ID)] = None,
    ) -> dict[str, Any]:
        data, has_more = get_batches_service().list(caller_account(app), limit=limit, after=after)
        return list_page(data, has_more)

    @app.get(
        "/v1/batches/<batch_id>",
        summary="A batch's status, per-status job counts and its jobs (in submission order)",
        responses=docs.merge(docs.ok(shapes.Batch, "The batch"), docs.errors(400, 401, 404)),
    )
    def get_batch(batch_id: docs.BatchId) -> dict[str, Any]:
        return get_batches_service().get(caller_account(app), batch_id)

    @app.post(
        "/v1/batches/<batch_id>/cancel",
        summary="Cancel every QUEUED or PROCESSING job of a batch",
        responses=docs.merge(docs.ok(shapes.Batch, "The updated batch"), docs.errors(400, 401, 404)),
    )
    def cancel_batch(batch_id: docs.BatchId) -> dict[str, Any]:
        return get_batches_service().cancel(caller_account(app), batch_id)
