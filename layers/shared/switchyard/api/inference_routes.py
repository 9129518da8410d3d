"""Inference routes: /v1/models and every endpoint of the seed table."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from switchyard.adapters.upstream import UpstreamResponse
from switchyard.api import openapi_docs as docs
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


_SYNC_ONLY = docs.merge(docs.INFERENCE_RESPONSES)
_SYNC_ONLY.pop(202)
_SYNC_ONLY.pop(503)


def register(app: APIGatewayHttpResolver) -> None:
    @app.get("/v1/models", summary="List the models you can reach right now", responses=docs.UNAUTHORIZED)
    def list_models() -> dict[str, Any]:
        providers = get_providers_service().online_providers(caller_account(app))
        return {"object": "list", "data": reachable_models(providers)}

    @app.post(
        "/v1/chat/completions",
        summary="Chat completions (stream: true gives SSE)",
        responses=docs.INFERENCE_RESPONSES,
    )
    def chat_completions(body: Annotated[ChatCompletionRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/chat/completions"], body)

    @app.post("/v1/completions", summary="Legacy text completions", responses=docs.INFERENCE_RESPONSES)
    def completions(body: Annotated[CompletionRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/completions"], body)

    @app.post("/v1/images/generations", summary="Image generation", responses=docs.INFERENCE_RESPONSES)
    def image_generations(body: Annotated[ImageGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/images/generations"], body)

    @app.post("/v1/audio/speech", summary="Text to speech (binary audio)", responses=docs.INFERENCE_RESPONSES)
    def speech(body: Annotated[SpeechRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/audio/speech"], body)

    @app.post("/v1/music/generations", summary="Music generation", responses=docs.INFERENCE_RESPONSES)
    def music_generations(body: Annotated[MusicGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/music/generations"], body)

    @app.post("/v1/videos/generations", summary="Video generation", responses=docs.INFERENCE_RESPONSES)
    def video_generations(body: Annotated[VideoGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/videos/generations"], body)

    @app.post("/v1/3d/generations", summary="3D mesh generation", responses=docs.INFERENCE_RESPONSES)
    def mesh_generations(body: Annotated[MeshGenerationRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/3d/generations"], body)

    @app.post(
        "/v1/embeddings",
        summary='Embeddings (OpenAI shape; "async": true queues them, event async-embedding.completed)',
        responses=docs.INFERENCE_RESPONSES,
    )
    def embeddings(body: Annotated[EmbeddingRequest, Body()]):
        return _json_inference(app, ENDPOINTS["/v1/embeddings"], body)

    @app.post(
        "/v1/audio/transcriptions",
        summary="Speech to text (multipart upload; synchronous only)",
        responses=_SYNC_ONLY,
    )
    def transcriptions():
        return _multipart_inference(app, ENDPOINTS["/v1/audio/transcriptions"])

    @app.post(
        "/v1/images/edits", summary="Image edits (multipart upload; synchronous only)", responses=_SYNC_ONLY
    )
    def image_edits():
        return _multipart_inference(app, ENDPOINTS["/v1/images/edits"])

    @app.post(
        "/v1/voice/generations",
        summary="Voice cloning (multipart upload; synchronous only)",
        responses=_SYNC_ONLY,
    )
    def voice_generations():
        return _multipart_inference(app, ENDPOINTS["/v1/voice/generations"])


MULTIPART_FILES = {
    "/v1/audio/transcriptions": ("file",),
    "/v1/images/edits": ("image",),
    "/v1/voice/generations": ("speaker_audio",),
}
MULTIPART_DOCS = {
    path: docs.multipart_body(MULTIPART_REQUIRED[path], files) for path, files in MULTIPART_FILES.items()
}
