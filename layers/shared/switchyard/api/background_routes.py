"""inference.net's background path: /v1/slow/... (and its alias /v1/async/...) and /v1/generation/<id>.

A background request is an ordinary async job (same queue, dispatcher, retries, cancel, /v1/jobs/<id>);
it answers 202 at once with the job envelope, whose `id` is the generation id to poll.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from switchyard.api import openapi_docs as docs
from switchyard.api.caller import caller_account
from switchyard.api.jobs_routes import public_base_url, submit_async
from switchyard.api.webhook_schemas import BackgroundAccepted, GenerationForClient
from switchyard.catalog import ENDPOINTS
from switchyard.errors import InvalidRequest
from switchyard.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from switchyard.services.generations import get_generations_service

PREFIXES = ("/v1/slow", "/v1/async")

ACCEPTED = {
    202: {
        "description": "Queued: the job envelope; `id` is the generation id (poll GET /v1/generation/{id}, "
        "or name a webhook in metadata.webhook_id).",
        "content": {"application/json": {"model": BackgroundAccepted}},
    }
}
BACKGROUND_RESPONSES = docs.merge(
    ACCEPTED,
    {
        400: docs.BAD_REQUEST[400]
        | {
            "description": "invalid_request: a malformed body, stream: true (the background path does not "
            "stream), or metadata.webhook_id naming no webhook of yours; {detail} for malformed JSON"
        }
    },
    docs.UNAUTHORIZED,
    docs.ASYNC_DISABLED,
)
DESCRIPTION = """The normal request body of {path}; `metadata.webhook_id` (optional) names one of your
webhooks (POST /v1/webhooks) to hear of the end ({event}). `webhook_id` never reaches the provider;
the rest of `metadata` does. `/v1/async{tail}` is the same route."""


def _background(app: APIGatewayHttpResolver, path: str) -> Response[str]:
    account_id = caller_account(app)
    data = app.current_event.json_body
    if data.get("stream") is True:
        raise InvalidRequest(
            "stream: true is not available on the background path; poll GET /v1/generation/{id} or name a "
            "webhook in metadata.webhook_id.",
            param="stream",
        )
    return submit_async(app, account_id, ENDPOINTS[path], data)


def register(app: APIGatewayHttpResolver) -> None:
    def chat(body: Annotated[ChatCompletionRequest, Body()]):
        return _background(app, "/v1/chat/completions")

    def completions(body: Annotated[CompletionRequest, Body()]):
        return _background(app, "/v1/completions")

    def embeddings(body: Annotated[EmbeddingRequest, Body()]):
        return _background(app, "/v1/embeddings")

    for prefix in PREFIXES:
        for tail, handler, event in (
            ("/chat/completions", chat, "generation.completed"),
            ("/completions", completions, "generation.completed"),
            ("/embeddings", embeddings, "async-embedding.completed"),
        ):
            alias = " (alias of /v1/slow" + tail + ")" if prefix == "/v1/async" else ""
            app.post(
                prefix + tail,
                summary=f"Background {tail.strip('/').replace('/', ' ')}: answer at once, finish later{alias}",
                description=DESCRIPTION.format(path="/v1" + tail, event=event, tail=tail),
                responses=BACKGROUND_RESPONSES,
                openapi_extensions=docs.RATE_LIMITED,
            )(handler)

    @app.get(
        "/v1/generation/<generation_id>",
        summary="A generation (any async job of yours) as GenerationForClient",
        description="The same object completion webhooks carry in `data`. Another account's id is a 404.",
        responses=docs.merge(
            {
                200: {
                    "description": "The generation",
                    "content": {"application/json": {"model": GenerationForClient}},
                }
            },
            docs.BAD_REQUEST,
            docs.UNAUTHORIZED,
            docs.NOT_FOUND,
        ),
    )
    def get_generation(
        generation_id: docs.GenerationId,
    ) -> dict[str, Any]:
        return get_generations_service().get(caller_account(app), generation_id, public_base_url(app))
