"""Inference routes: /v1/models and every endpoint of the seed table."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from switchyard.adapters.upstream import UpstreamResponse
from switchyard.api import openapi_docs as docs
from switchyard.api import shapes
from switchyard.api.caller import caller_account
from switchyard.api.jobs_routes import submit_async
from switchyard.catalog import ENDPOINTS, Endpoint
from switchyard.schemas import (
    MULTIPART_REQUIRED,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ImageGenerationRequest,
    InferenceBody,
    MeshGenerationRequest,
    MusicGenerationRequest,
    SpeechRequest,
    VideoGenerationRequest,
)
from switchyard.services import inference
from switchyard.services.providers import get_providers_service, reachable_models

_TEXT_TYPES = ("application/json", "text/", "application/x-ndjson")


def _provider_response(answer: UpstreamResponse) -> Response[str | bytes]:
    content_type = answer.headers.get("content-type", "application/octet-stream")
    body: str | bytes = answer.content
    if content_type.startswith(_TEXT_TYPES):
        # Text goes back as text; bytes would be base64-encoded for API Gateway.
        body = answer.content.decode("utf-8", errors="replace")
    headers = {k: v for k, v in answer.headers.items() if k != "content-type"}
    return Response(answer.status_code, content_type, body, headers=headers or None)


def _json_inference(
    app: APIGatewayHttpResolver, endpoint: Endpoint, body: InferenceBody
) -> Response[str] | Response[str | bytes]:
    account_id = caller_account(app)
    data = app.current_event.json_body
    if body.async_:
        return submit_async(app, account_id, endpoint, data)
    call = inference.plan_json_call(account_id, endpoint, data, app.current_event.request_context.request_id)
    return _provider_response(inference.execute(call))


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _multipart_inference(app: APIGatewayHttpResolver, endpoint: Endpoint) -> Response[str | bytes]:
    event = app.current_event
    call = inference.plan_multipart_call(
        caller_account(app),
        endpoint,
        event.headers.get("content-type", ""),
        raw_body(event.raw_event),
        event.request_context.request_id,
    )
    return _provider_response(inference.execute(call))


# What a provider answers besides JSON, per endpoint (the gateway passes its content type on).
_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("text/event-stream",),
    "/v1/completions": ("text/event-stream",),
    "/v1/images/generations": ("image/*",),
    "/v1/images/edits": ("image/*",),
    "/v1/audio/speech": ("audio/*",),
    "/v1/audio/transcriptions": ("text/*",),
    "/v1/music/generations": ("audio/*",),
    "/v1/videos/generations": ("video/*",),
    "/v1/3d/generations": ("model/*",),
    "/v1/voice/generations": ("audio/*",),
    "/v1/embeddings": (),
}
_JSON_ANSWERS: dict[str, type] = {
    "/v1/chat/completions": shapes.ChatCompletion,
    "/v1/completions": shapes.ChatCompletion,
    "/v1/images/generations": shapes.ImagesAnswer,
    "/v1/images/edits": shapes.ImagesAnswer,
}


def inference_answers(path: str) -> dict[int, Any]:
    """What an inference endpoint answers: the provider's answer, a job (async), or an error."""
    endpoint = ENDPOINTS[path]
    answer = {
        docs.JSON: {"model": _JSON_ANSWERS.get(path, dict[str, Any])},
        **docs.content(*_MEDIA_TYPES[path], "application/octet-stream", schema={"type": "string"}),
    }
    if endpoint.streams:
        answer["text/event-stream"] = {"schema": docs.SSE_EVENT}
    described = (
        "The provider's answer, passed through (JSON, Server-Sent Events when stream is true, or media)."
    )
    answers = {200: {"description": described, "content": answer}}
    statuses = [400, 401, 404, 409, 415, 502]
    if endpoint.can_queue:
        answers |= docs.accepted(shapes.Job, 'With "async": true: the job (GET /v1/jobs/{job_id}).')
        statuses.append(503)
    return docs.merge(answers, docs.errors(*statuses))


def inference_extensions(path: str) -> dict[str, Any]:
    """The provider may refuse a request the gateway accepted: its 4xx is passed on as it came."""
    refusal = {
        "4XX": {
            "description": "The provider refused the request: its answer, passed through.",
            "content": {docs.JSON: {"schema": {"anyOf": [_ref("ErrorEnvelope"), _ref("DetailError")]}}},
        }
    }
    parts: list[dict[str, Any]] = [{docs.EXTENSION: {"responses": refusal}}, docs.RATE_LIMITED]
    if ENDPOINTS[path].multipart:
        parts.append(MULTIPART_DOCS[path])
    elif ENDPOINTS[path].can_queue:
        parts.append(docs.IDEMPOTENCY_KEY)
    return docs.extensions(*parts)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": docs.COMPONENTS.format(model=name)}


def _inference_route(app: Any, path: str, summary: str) -> Any:
    return app.post(
        path,
        summary=summary,
        responses=inference_answers(path),
        openapi_extensions=inference_extensions(path),
    )


def register(app: APIGatewayHttpResolver) -> None:
    @app.get(
        "/v1/models",
        summary="List the models you can reach right now",
        responses=docs.merge(
            docs.ok(shapes.ModelList, "The models of your online providers"), docs.errors(401)
        ),
    )
    def list_models() -> dict[str, Any]:
        providers = get_providers_service().online_providers(caller_account(app))
        return {"object": "list", "data": reachable_models(providers)}

    @_inference_route(app, "/v1/chat/completions", "Chat completions (stream: true gives SSE)")
    def chat_completions(body: Annotated[ChatCompletionRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/chat/completions"], body)

    @_inference_route(app, "/v1/completions", "Legacy text completions")
    def completions(body: Annotated[CompletionRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/completions"], body)

    @_inference_route(app, "/v1/images/generations", "Image generation")
    def image_generations(body: Annotated[ImageGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/images/generations"], body)

    @_inference_route(app, "/v1/audio/speech", "Text to speech (binary audio)")
    def speech(body: Annotated[SpeechRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/audio/speech"], body)

    @_inference_route(app, "/v1/music/generations", "Music generation")
    def music_generations(body: Annotated[MusicGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/music/generations"], body)

    @_inference_route(app, "/v1/videos/generations", "Video generation")
    def video_generations(body: Annotated[VideoGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/videos/generations"], body)

    @_inference_route(app, "/v1/3d/generations", "3D mesh generation")
    def mesh_generations(body: Annotated[MeshGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/3d/generations"], body)

    @_inference_route(
        app,
        "/v1/embeddings",
        'Embeddings (OpenAI shape; "async": true queues them, event async-embedding.completed)',
    )
    def embeddings(body: Annotated[EmbeddingRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/embeddings"], body)

    @_inference_route(app, "/v1/audio/transcriptions", "Speech to text (multipart upload; synchronous only)")
    def transcriptions():
        return _multipart_inference(app, ENDPOINTS["/v1/audio/transcriptions"])

    @_inference_route(app, "/v1/images/edits", "Image edits (multipart upload; synchronous only)")
    def image_edits():
        return _multipart_inference(app, ENDPOINTS["/v1/images/edits"])

    @_inference_route(app, "/v1/voice/generations", "Voice cloning (multipart upload; synchronous only)")
    def voice_generations():
        return _multipart_inference(app, ENDPOINTS["/v1/voice/generations"])


# The form fields of each upload endpoint: required ones (MULTIPART_REQUIRED), files, and the optional
# fields OpenAI's (or the seed's) API names, passed on like any other.
MULTIPART_FILES = {
    "/v1/audio/transcriptions": ("file",),
    "/v1/images/edits": ("image", "mask"),
    "/v1/voice/generations": ("speaker_audio",),
}
MULTIPART_OPTIONAL = {
    "/v1/audio/transcriptions": ("language", "prompt", "response_format", "temperature"),
    "/v1/images/edits": ("n", "size", "response_format"),
    "/v1/voice/generations": (),
}
MULTIPART_DOCS = {
    path: docs.multipart_body(MULTIPART_REQUIRED[path], files, MULTIPART_OPTIONAL[path])
    for path, files in MULTIPART_FILES.items()
}
