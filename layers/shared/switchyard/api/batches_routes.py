"""Batches: /v1/batches (submit up to 256 async requests at once, read, list, cancel)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from switchyard.api import openapi_docs as docs
from switchyard.api.caller import caller_account
from switchyard.api.inference_routes import raw_body
from switchyard.api.jobs_routes import public_base_url
from switchyard.api.pagination import list_page
from switchyard.services.batches import MAX_ITEMS, get_batches_service, parse_batch_request
from switchyard.services.idempotency import run_once
from switchyard.validation import parse_json_object

BatchId = Annotated[str, Path(description="The batch id (a string).", max_length=64)]

_BATCH = {"application/json": {"schema": {"type": "object"}}}
ACCEPTED = {
    202: {
        "description": "The batch object, status PENDING (see GET /v1/batches/{batch_id}).",
        "content": _BATCH,
    }
}
TOO_LARGE = {
    400: {
        "description": f"invalid_request (requests missing, empty, or an item malformed: the message names "
        f"requests[i] and the field), too_large (more than {MAX_ITEMS} items), or "
        '{"detail": ...} for malformed JSON',
        "content": _BATCH,
    }
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
        responses=docs.merge(ACCEPTED, TOO_LARGE, docs.UNAUTHORIZED, docs.CONFLICT, docs.ASYNC_DISABLED),
    )
    def create_batch():
        account_id = caller_account(app)
        batches = get_batches_service()
        batches.ensure_enabled()
        # Parsed here, not by a pydantic body model, so that 257 items is too_large and a bad item is named.
        request = parse_batch_request(parse_json_object(raw_body(app.current_event.raw_event)))
        base_url = public_base_url(app)
        key = app.current_event.headers.get("idempotency-key")
        if key is None:
            return _accepted(batches.submit(account_id, request, base_url))
        return _accepted(
            run_once(
                account_id=account_id,
                key=key,
                scope="batch",
                payload=request.fingerprint_payload(),
                create=lambda: batches.submit(account_id, request, base_url),
                replay=lambda first: batches.get(account_id, first["id"]),
                lambda_context=app.lambda_context,
            )
        )

    @app.get(
        "/v1/batches",
        summary="List your batches, newest first, with status and counts (the jobs are on each batch)",
        responses=docs.merge(docs.ok("A list of batch objects"), docs.BAD_REQUEST, docs.UNAUTHORIZED),
    )
    def list_batches(
        limit: Annotated[int, Query(description="Max results (1-50)")] = 50,
        after: Annotated[
            str | None, Query(description="Page further: the last id of the previous page")
        ] = None,
    ) -> dict[str, Any]:
        data, has_more = get_batches_service().list(caller_account(app), limit=limit, after=after)
        return list_page(data, has_more)

    @app.get(
        "/v1/batches/<batch_id>",
        summary="A batch's status, per-status job counts and its jobs (in submission order)",
        responses=docs.merge(docs.ok("The batch object"), docs.UNAUTHORIZED, docs.NOT_FOUND),
    )
    def get_batch(batch_id: BatchId) -> dict[str, Any]:
        return get_batches_service().get(caller_account(app), batch_id)

    @app.post(
        "/v1/batches/<batch_id>/cancel",
        summary="Cancel every QUEUED or PROCESSING job of a batch",
        responses=docs.merge(docs.ok("The updated batch object"), docs.UNAUTHORIZED, docs.NOT_FOUND),
    )
    def cancel_batch(batch_id: BatchId) -> dict[str, Any]:
        return get_batches_service().cancel(caller_account(app), batch_id)
