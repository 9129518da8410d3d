"""`switchyard-fake-model-server`: a deterministic OpenAI-compatible model server for tests and demos.

It answers every endpoint of the Switchyard API the way a real server would (shapes the official `openai` SDK
parses, real PNG/WAV/MP4/GLB bytes), fast and reproducibly, and remembers the requests it received so tests
can check what reached it (`GET /_debug/last_request`). All state lives in one app instance, so two servers in
one test session never share anything.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import random
import secrets
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from switchyard_agent import fake_media, fake_responses
from switchyard_agent.capabilities import DEFAULT_CAPABILITIES, SERVICE_TYPES, infer_service_type
from switchyard_agent.multipart_form import UploadedFile, parse_multipart
from switchyard_agent.serving import (
    bind_socket,
    make_server,
    run_event_loop,
    serve_until_signalled,
    socket_url,
)

MAX_IMAGE_SIDE = 256  # keeps every generated image a few hundred bytes
MAX_AUDIO_SECONDS = 3.0
_CREATED = 1_700_000_000  # fixed "created" for model entries, like a real server's load time


@dataclass(frozen=True)
class FakeModel:
    id: str
    service_type: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    supported_features: tuple[str, ...]

    @classmethod
    def of(cls, model_id: str, service_type: str | None = None, **overrides: tuple[str, ...]) -> FakeModel:
        service_type = service_type or infer_service_type(model_id)
        defaults = DEFAULT_CAPABILITIES[service_type]
        fields = {
            "input_modalities": defaults.input_modalities,
            "output_modalities": defaults.output_modalities,
            "supported_features": defaults.supported_features,
            **overrides,
        }
        return cls(model_id, service_type, **fields)

    def entry(self, with_capabilities: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "object": "model",
            "created": _CREATED,
            "owned_by": "switchyard-fake",
        }
        if with_capabilities:
            entry |= {
                "service_type": self.service_type,
                "input_modalities": list(self.input_modalities),
                "output_modalities": list(self.output_modalities),
                "supported_features": list(self.supported_features),
            }
        return entry


DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel.of("fake-llm", "llm"),
    FakeModel.of("fake-whisper", "stt"),
    FakeModel.of("fake-tts", "tts"),
    FakeModel.of("fake-image", "image"),
    FakeModel.of("fake-music", "music"),
    FakeModel.of("fake-video", "video"),
    FakeModel.of("fake-mesh", "mesh"),
    FakeModel.of("fake-embed", "embedding"),
    # Serves /v1/voice/generations: speech in a voice cloned from uploaded samples.
    FakeModel.of(
        "fake-voice",
        "tts",
        input_modalities=("text", "audio"),
        supported_features=("speech", "voice_cloning"),
    ),
)


@dataclass(frozen=True)
class FakeServerConfig:
    models: tuple[FakeModel, ...] = DEFAULT_MODELS
    latency_ms: float = 0.0  # before every inference answer (not model listings or debug endpoints)
    stream_delay_ms: float = 10.0  # between SSE chunks
    fail_rate: float = 0.0  # share of inference requests answered with fail_status, drawn from a seeded RNG
    fail_status: int = 500
    seed: int = 0
    api_key: str | None = None  # when set, /v1/* requires "Authorization: Bearer <api_key>"
    report_capabilities: bool = True  # False: model entries look like vLLM's (no service_type & co.)
    history_size: int = 200
    # A file to append one JSON line to per inference call received and per call answered (with its
    # status), and a call id put in every chat/completion answer's system_fingerprint: the provider's own
    # record of its calls, which survives the server being killed (benchmarks/soak_chaos.py reads it).
    call_log: str | None = None


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def response(self) -> JSONResponse:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": error}, status_code=self.status)


@dataclass
class Call:
    """One inference request, parsed: JSON fields or multipart fields, plus uploaded files."""

    request: Request
    model: str
    fields: dict[str, Any]
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)
    body: bytes = b""

    @property
    def request_id(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:24]  # same request, same id

    def first_file(self, *names: str) -> UploadedFile | None:
        for name in names:
            if self.files.get(name):
                return self.files[name][0]
        return None


class CallLog:
    """`--call-log`: every inference call as JSON lines, `received` then `answered` (status, injected)."""

    def __init__(self, path: str) -> None:
        self.server = secrets.token_hex(4)  # call ids stay unique across restarts of the server
        self._count = 0
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the server

    def received(self, request: Request, fields: dict[str, Any]) -> str:
        self._count += 1
        call_id = f"{self.server}-{self._count}"
        marker = fake_responses.last_user_text(fields.get("messages")) or fake_responses.prompt_text(
            fields.get("prompt", "")
        )
        self._write({"event": "received", "call": call_id, "path": request.url.path, "marker": marker[:200]})
        return call_id

    def answered(self, call_id: str, status: int, injected: bool) -> None:
        self._write({"event": "answered", "call": call_id, "status": status, "injected": injected})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({**record, "t": time.time()}) + "\n")


class RequestHistory:
    """The last requests received, as JSON-friendly records for the debug endpoints."""

    def __init__(self, size: int) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=size)

    def add(
        self,
        request: Request,
        body: bytes,
        parsed_json: Any,
        files: dict[str, list[UploadedFile]] | None,
        form_fields: dict[str, str] | None,
    ) -> None:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        form = None
        if form_fields is not None:
            uploads = {
                name: [
                    {"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
                    for f in items
                ]
                for name, items in (files or {}).items()
            }
            form = {"fields": form_fields, "files": uploads}
        self._records.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": headers,
                "content_type": request.headers.get("content-type"),
                "body_size": len(body),
                "json": parsed_json,
                "form": form,
                "received_at": time.time(),
            }
        )

    def last(self, path: str | None = None) -> dict[str, Any] | None:
        for record in reversed(self._records):
            # Model listings are skipped unless asked for: an agent polls them, hiding the request at hand.
            if record["path"] == path or (path is None and not record["path"].startswith("/v1/models")):
                return record
        return None

    def all(self) -> list[dict[str, Any]]:
        return list(self._records)

    def clear(self) -> int:
        count = len(self._records)
        self._records.clear()
        return count


def _image_size(value: Any) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(value).lower().split("x"))
    except ValueError:
        width = height = 64  # "auto" and friends
    return max(1, min(width, MAX_IMAGE_SIDE)), max(1, min(height, MAX_IMAGE_SIDE))


def _colour(seed_text: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed_text.encode()).digest()
    return digest[0], digest[1], digest[2]


def _audio_seconds(text: str) -> float:
    return min(MAX_AUDIO_SECONDS, 0.2 + 0.02 * len(text))


def _number(value: Any, default: float, low: float, high: float) -> float:
    try:
        return max(low, min(float(value), high))
    except (TypeError, ValueError):
        return default


SPEECH_CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}


class FakeModelServer:
    def __init__(self, config: FakeServerConfig | None = None) -> None:
        self.config = config or FakeServerConfig()
        self.history = RequestHistory(self.config.history_size)
        self.call_log = CallLog(self.config.call_log) if self.config.call_log else None
        self._models = {model.id: model for model in self.config.models}
        self._random = random.Random(self.config.seed)  # noqa: S311 - reproducible fake answers, not secrets
        self.app = self._build_app()

    # --- plumbing -------------------------------------------------------------------------------------------

    def _check_api_key(self, request: Request) -> None:
        if self.config.api_key and request.headers.get("authorization") != f"Bearer {self.config.api_key}":
            raise OpenAIError(
                401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key"
            )

    async def _begin(self, request: Request) -> Call:
        """Read, record and vet an inference request; applies latency and injected failures."""
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        is_multipart = content_type.startswith("multipart/form-data")
        parsed_json: Any = None
        fields: dict[str, Any] = {}
        files: dict[str, list[UploadedFile]] = {}
        problem = None
        if is_multipart:
            try:
                form = parse_multipart(body, content_type)
                fields, files = dict(form.fields), form.files
            except ValueError as exc:
                problem = f"Malformed multipart body: {exc}"
        else:
            try:
                parsed_json = json.loads(body) if body else None
            except ValueError:
                problem = "We could not parse the JSON body of your request."
            if isinstance(parsed_json, dict):
                fields = parsed_json
            elif problem is None:
                problem = "The request body must be a JSON object."
        self.history.add(request, body, parsed_json, files, fields if is_multipart else None)
        if self.call_log is not None:
            request.state.call_id = self.call_log.received(request, fields)
        self._check_api_key(request)
        if problem:
            raise OpenAIError(400, problem)
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if self.config.fail_rate > 0 and self._random.random() < self.config.fail_rate:
            request.state.injected = True
            raise OpenAIError(self.config.fail_status, "Injected failure (--fail-rate).", "server_error")
        model = fields.get("model")
        if not isinstance(model, str) or not model:
            raise OpenAIError(400, "you must provide a model parameter", param="model")
        if model not in self._models:
            raise OpenAIError(
                404, f"The model `{model}` does not exist.", param="model", code="model_not_found"
            )
        return Call(request, model, fields, files, body)

    def _sse(self, events: Iterable[dict[str, Any]]) -> StreamingResponse:
        delay = self.config.stream_delay_ms / 1000

        async def stream() -> AsyncIterator[bytes]:
            for position, event in enumerate(events):
                if position and delay:
                    await asyncio.sleep(delay)
                yield f"data: {json.dumps(event)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    @staticmethod
    def _media(call: Call, data: bytes, content_type: str) -> Response:
        """Binary by default; `response_format: b64_json` wraps it in JSON, like the image endpoints do."""
        if call.fields.get("response_format") == "b64_json":
            item = {"b64_json": base64.b64encode(data).decode(), "content_type": content_type}
            return JSONResponse({"created": int(time.time()), "data": [item]})
        return Response(data, media_type=content_type)

    # --- endpoints ------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def list_models(self, request: Request) -> JSONResponse:
        self.history.add(request, b"", None, None, None)
        self._check_api_key(request)
        entries = [model.entry(self.config.report_capabilities) for model in self.config.models]
        return JSONResponse({"object": "list", "data": entries})

    async def get_model(self, request: Request) -> JSONResponse:
        self._check_api_key(request)
        model = self._models.get(request.path_params["model"])
        if model is None:
            raise OpenAIError(404, "The model does not exist.", code="model_not_found")
        return JSONResponse(model.entry(self.config.report_capabilities))

    async def chat_completions(self, request: Request) -> Response:
        call = await self._begin(request)
        request_id = f"chatcmpl-{call.request_id}"
        if call.fields.get("stream"):
            return self._sse(fake_responses.chat_completion_chunks(request_id, call.model, call.fields))
        return JSONResponse(
            _signed(request, fake_responses.chat_completion(request_id, call.model, call.fields))
        )

    async def completions(self, request: Request) -> Response:
        call = await self._begin(request)
        request_id = f"cmpl-{call.request_id}"
        if call.fields.get("stream"):
            return self._sse(fake_responses.text_completion_chunks(request_id, call.model, call.fields))
        return JSONResponse(
            _signed(request, fake_responses.text_completion(request_id, call.model, call.fields))
        )

    async def embeddings(self, request: Request) -> JSONResponse:
        call = await self._begin(request)
        if call.fields.get("input") in (None, "", []):
            raise OpenAIError(400, "'input' is a required property", param="input")
        return JSONResponse(fake_responses.embeddings(call.model, call.fields))

    def _images(self, call: Call, prompt: str) -> JSONResponse:
        width, height = _image_size(call.fields.get("size", "64x64"))
        count = int(_number(call.fields.get("n"), 1, 1, 4))
        images = []
        for index in range(count):
            colour = _colour(f"{prompt}#{index}")
            if call.fields.get("response_format") == "url":
                query = f"w={width}&h={height}&c={bytes(colour).hex()}"
                images.append({"url": f"{str(call.request.base_url).rstrip('/')}/_media/image.png?{query}"})
            else:  # b64_json by default: the gateway and async jobs can keep it without a second download
                png = fake_media.png_bytes(width, height, colour)
                images.append({"b64_json": base64.b64encode(png).decode()})
            images[-1]["revised_prompt"] = prompt
        return JSONResponse({"created": int(time.time()), "data": images})

    async def image_generations(self, request: Request) -> JSONResponse:
        call = await self._begin(request)
        prompt = call.fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise OpenAIError(400, "you must provide a prompt", param="prompt")
        return self._images(call, prompt)

    async def image_edits(self, request: Request) -> JSONResponse:
        call = await self._begin(request)
        image = call.first_file("image", "image[]")
        if image is None:
            raise OpenAIError(400, "you must upload an image", param="image")
        prompt = str(call.fields.get("prompt", ""))
        return self._images(call, f"{prompt} (edited from {image.filename}, {len(image.data)} bytes)")

    async def media_image(self, request: Request) -> Response:
        width, height = _image_size(
            f"{request.query_params.get('w', 64)}x{request.query_params.get('h', 64)}"
        )
        try:
            rgb = bytes.fromhex(request.query_params.get("c", "808080"))
        except ValueError:
            rgb = b""
        colour = (rgb[0], rgb[1], rgb[2]) if len(rgb) >= 3 else (128, 128, 128)
        return Response(fake_media.png_bytes(width, height, colour), media_type="image/png")

    async def speech(self, request: Request) -> Response:
        call = await self._begin(request)
        text = call.fields.get("input")
        if not isinstance(text, str) or not text:
            raise OpenAIError(400, "you must provide the input text", param="input")
        audio_format = str(call.fields.get("response_format") or "wav")
        content_type = SPEECH_CONTENT_TYPES.get(audio_format)
        if content_type is None:
            raise OpenAIError(400, f"unsupported response_format {audio_format!r}", param="response_format")
        seconds = _audio_seconds(text)
        if audio_format == "pcm":
            return Response(fake_media.pcm_samples(seconds), media_type=content_type)
        # Other formats get WAV bytes under their own content type: the fake server has no encoders.
        return Response(fake_media.wav_bytes(seconds), media_type=content_type)

    async def transcriptions(self, request: Request) -> Response:
        call = await self._begin(request)
        audio = call.first_file("file")
        if audio is None:
            raise OpenAIError(400, "you must upload an audio file", param="file")
        text = f"Fake transcription by {call.model} of {audio.filename} ({len(audio.data)} bytes)."
        response_format = call.fields.get("response_format", "json")
        seconds = round(max(0.1, len(audio.data) / 16000), 2)  # as if 8 kHz 16-bit mono
        if response_format == "text":
            return PlainTextResponse(text)
        end = f"00:00:{min(seconds, 59.999):06.3f}"
        if response_format == "srt":
            return PlainTextResponse(f"1\n00:00:00,000 --> {end.replace('.', ',')}\n{text}\n")
        if response_format == "vtt":
            return PlainTextResponse(f"WEBVTT\n\n00:00:00.000 --> {end}\n{text}\n")
        if response_format == "verbose_json":
            segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text}
            language = call.fields.get("language") or "english"
            return JSONResponse(
                {
                    "task": "transcribe",
                    "language": language,
                    "duration": seconds,
                    "text": text,
                    "segments": [segment],
                }
            )
        return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": seconds}})

    async def music(self, request: Request) -> Response:
        call = await self._begin(request)
        seconds = _number(call.fields.get("duration"), 1.0, 0.1, MAX_AUDIO_SECONDS)
        return self._media(call, fake_media.wav_bytes(seconds, frequency=523.25), "audio/wav")

    async def videos(self, request: Request) -> Response:
        call = await self._begin(request)
        seconds = _number(call.fields.get("duration") or call.fields.get("seconds"), 1.0, 0.1, 60.0)
        return self._media(call, fake_media.mp4_bytes(seconds), "video/mp4")

    async def meshes(self, request: Request) -> Response:
        call = await self._begin(request)
        return self._media(call, fake_media.glb_bytes(), "model/gltf-binary")

    async def voice(self, request: Request) -> Response:
        call = await self._begin(request)
        text = str(call.fields.get("text") or call.fields.get("input") or call.fields.get("prompt") or "")
        if not text:
            raise OpenAIError(400, "you must provide the text to speak", param="text")
        return self._media(call, fake_media.wav_bytes(_audio_seconds(text), frequency=330.0), "audio/wav")

    # --- debugging ------------------------------------------------------------------------------------------

    async def last_request(self, request: Request) -> JSONResponse:
        record = self.history.last(request.query_params.get("path"))
        if record is None:
            return JSONResponse({"detail": "No request recorded."}, status_code=404)
        return JSONResponse(record)

    async def requests(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            return JSONResponse({"cleared": self.history.clear()})
        return JSONResponse({"data": self.history.all()})

    def _build_app(self) -> Starlette:
        routes = [
            Route("/health", self.health),
            Route("/v1/models", self.list_models),
            Route("/v1/models/{model:path}", self.get_model),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/images/generations", self.image_generations, methods=["POST"]),
            Route("/v1/images/edits", self.image_edits, methods=["POST"]),
            Route("/v1/audio/speech", self.speech, methods=["POST"]),
            Route("/v1/audio/transcriptions", self.transcriptions, methods=["POST"]),
            Route("/v1/music/generations", self.music, methods=["POST"]),
            Route("/v1/videos/generations", self.videos, methods=["POST"]),
            Route("/v1/3d/generations", self.meshes, methods=["POST"]),
            Route("/v1/voice/generations", self.voice, methods=["POST"]),
            Route("/_media/image.png", self.media_image),
            Route("/_debug/last_request", self.last_request),
            Route("/_debug/requests", self.requests, methods=["GET", "DELETE"]),
        ]

        async def openai_error(request: Request, exc: Exception) -> Response:
            if not isinstance(exc, OpenAIError):  # registered for OpenAIError only
                raise exc
            return exc.response()

        async def http_error(request: Request, exc: Exception) -> Response:
            # Unknown routes and wrong methods get the OpenAI envelope too, as real compatible servers do.
            if not isinstance(exc, HTTPException):  # registered for HTTPException only
                raise exc
            return OpenAIError(exc.status_code, str(exc.detail)).response()

        middleware = [Middleware(_AnswerLog, call_log=self.call_log)] if self.call_log is not None else []
        return Starlette(
            routes=routes,
            exception_handlers={OpenAIError: openai_error, HTTPException: http_error},
            middleware=middleware,
        )


def _signed(request: Request, answer: dict[str, Any]) -> dict[str, Any]:
    """With a call log, an answer names the call that produced it (in its system_fingerprint)."""
    call_id = getattr(request.state, "call_id", None)
    return {**answer, "system_fingerprint": call_id} if call_id else answer


class _AnswerLog:
    """ASGI middleware: log the status each logged call was answered with, as its answer starts."""

    def __init__(self, app: ASGIApp, call_log: CallLog) -> None:
        self.app = app
        self.call_log = call_log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watch(message: dict[str, Any]) -> None:
            state = scope.get("state") or {}
            if message["type"] == "http.response.start" and "call_id" in state:
                self.call_log.answered(state["call_id"], message["status"], bool(state.get("injected")))
            await send(message)

        await self.app(scope, receive, watch)


def create_app(config: FakeServerConfig | None = None) -> Starlette:
    """A fresh fake model server app; its request history is reachable as `app.state.fake_server.history`."""
    server = FakeModelServer(config)
    server.app.state.fake_server = server
    return server.app


# --- command line -----------------------------------------------------------------------------------------


def parse_models(specs: Sequence[str]) -> tuple[FakeModel, ...]:
    """`--models fake-llm,qwen3-8b=llm,whisper-1`: ids, with service types or else guessed from the name."""
    models = []
    for spec in specs:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            model_id, _, service_type = item.partition("=")
            if service_type and service_type not in SERVICE_TYPES:
                raise argparse.ArgumentTypeError(f"unknown service type {service_type!r} in {item!r}")
            models.append(FakeModel.of(model_id, service_type or None))
    return tuple(models)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard-fake-model-server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at start-up)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every inference answer")
    parser.add_argument("--stream-delay-ms", type=float, default=10.0, help="gap between streamed chunks")
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="share of inference requests that fail (0-1)"
    )
    parser.add_argument("--fail-status", type=int, default=500, help="HTTP status of injected failures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure injection")
    parser.add_argument("--history-size", type=int, default=200, help="requests kept for /_debug/requests")
    parser.add_argument(
        "--call-log", help="append a JSON line per inference call received and answered (survives a kill)"
    )
    parser.add_argument(
        "--models", action="append", default=[], help="ID[=SERVICE_TYPE],... (replaces the defaults)"
    )
    parser.add_argument("--api-key", help="require this bearer key, like a model server behind auth")
    parser.add_argument(
        "--bare-models", action="store_true", help="list models without service_type/modalities (like vLLM)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="warning")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, FakeServerConfig]:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.fail_rate <= 1:
        parser.error("--fail-rate must be between 0 and 1")
    try:
        models = parse_models(args.models) if args.models else DEFAULT_MODELS
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    config = FakeServerConfig(
        models=models,
        latency_ms=args.latency_ms,
        stream_delay_ms=args.stream_delay_ms,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
        seed=args.seed,
        api_key=args.api_key,
        report_capabilities=not args.bare_models,
        history_size=args.history_size,
        call_log=args.call_log,
    )
    return args, config


def main(argv: Sequence[str] | None = None) -> int:
    args, config = config_from_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(
            f"switchyard-fake-model-server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    server = make_server(create_app(config), log_level=args.log_level, graceful_timeout=2)
    # Scripts starting us with --port 0 read the port from this line.
    print(f"switchyard-fake-model-server listening on {socket_url(sock)}", flush=True)
    run_event_loop(serve_until_signalled(server, sock))
    return 0
