"""Shared fixtures: the stack provisioned from template.yaml on in-process moto, the API handler,
accounts with keys, and fake model servers on loopback."""

from __future__ import annotations

import base64
import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

# Region and dummy credentials for every test that talks to moto.
AWS_TEST_CREDENTIALS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
BASE_ENVIRONMENT = {
    **AWS_TEST_CREDENTIALS,
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
    # Keep-warm timers would outlive a test's AWS double (an in-process local stack turns it on for the
    # whole process); a test that wants them sets a value and stop_keeping_warm() ends them.
    "CACHE_KEEP_WARM_SECONDS": "0",
}


def reset_switchyard_caches() -> None:
    """Forget settings, clients and services built for a previous environment."""
    from switchyard import caches

    caches.reset_all()


@pytest.fixture
def settings_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Every required setting, naming resources nobody will call: for code that reads settings but no AWS."""
    from switchyard.settings import Settings

    environment = {name: f"unused-{name.lower().replace('_', '-')}" for name in Settings.required_variables()}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    reset_switchyard_caches()
    yield environment
    reset_switchyard_caches()


@dataclass
class Stack:
    environment: dict[str, str]
    physical: Any


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Every resource of template.yaml on in-process moto, and the handler environment pointing at it."""
    from moto import mock_aws
    from switchyard.ttl_cache import stop_keeping_warm, wait_for_refreshes
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.provision import provision

    dynamodb_atomicity.install()
    for name, value in BASE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        stack = provision(TEMPLATE, {"ProviderEndpointPolicy": "loopback"})
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, str(value))
        reset_switchyard_caches()
        yield Stack(dict(stack.environment), stack.physical)
        stop_keeping_warm()
        wait_for_refreshes()  # a cache reload still running must not reach past the AWS double
    reset_switchyard_caches()


@dataclass
class Caller:
    account_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def new_caller(aws_stack: Stack) -> Callable[[str], Caller]:
    from switchyard.services.accounts import get_accounts_service

    def create(name: str = "team") -> Caller:
        service = get_accounts_service()
        account = service.create_account(name)
        return Caller(account.account_id, service.create_api_key(account.account_id).secret)

    return create


@pytest.fixture
def caller(new_caller) -> Caller:
    return new_caller("team-a")


def lambda_context(function_name: str = "ApiFunction", timeout_seconds: float = 30) -> Any:
    """A handler's context, as the local stack builds it (`switchyard.front.lambda_context`)."""
    from switchyard.front.lambda_context import LambdaContext

    return LambdaContext.for_invocation(
        function_name,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        memory_limit_in_mb=512,
        timeout_seconds=timeout_seconds,
    )


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict:
    """An API Gateway HTTP API (payload 2.0) event, like the ones in tests/events/."""
    all_headers = {"host": "gateway.test", "x-forwarded-proto": "https", **(headers or {})}
    is_binary = isinstance(body, bytes)
    if isinstance(body, dict | list):
        body = json.dumps(body)
        all_headers.setdefault("content-type", "application/json")
    raw_query = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": all_headers,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "gateway.test",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": base64.b64encode(body).decode() if is_binary else body,
        "isBase64Encoded": is_binary,
    }


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


@pytest.fixture
def api(aws_stack: Stack) -> Callable[..., ApiResponse]:
    """Call the ApiFunction handler the way API Gateway does."""
    from switchyard_local.handler_loading import load_handler

    handler = load_handler(ROOT / "functions" / "api", "app.handler")

    def call(method: str, path: str, **kwargs: Any) -> ApiResponse:
        result = handler(http_event(method, path, **kwargs), lambda_context())
        body = result.get("body") or ""
        content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        return ApiResponse(result["statusCode"], headers, content)

    return call


@dataclass
class FakeServer:
    """A fake OpenAI-compatible model server on loopback (switchyard-fake-model-server) and what it saw."""

    url: str
    server: Any  # switchyard_agent.fake_model_server.FakeModelServer

    def last_request(self, path: str | None = None) -> dict | None:
        return self.server.history.last(path)


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    """`serve_app(asgi_app) -> url`: ASGI apps on loopback that all stop at the end of the test."""
    from switchyard_agent.serving import serve_in_thread

    running = []

    def start(app: Any) -> str:
        context = serve_in_thread(app)
        running.append(context)
        return str(context.__enter__())

    yield start
    for context in reversed(running):
        context.__exit__(None, None, None)


@pytest.fixture
def start_fake_server(serve_app: Callable[[Any], str]) -> Callable[..., FakeServer]:
    """`start_fake_server(**FakeServerConfig)`: fake model servers that all stop at the end of the test."""
    from switchyard_agent.fake_model_server import FakeServerConfig, create_app

    def start(**config: Any) -> FakeServer:
        app = create_app(FakeServerConfig(**config))
        return FakeServer(serve_app(app), app.state.fake_server)

    return start


FAKE_MODELS = [
    {
        "id": "fake-llm",
        "service_type": "llm",
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "supported_features": ["chat", "completions", "streaming"],
    },
    {
        "id": "fake-whisper",
        "service_type": "stt",
        "input_modalities": ["audio"],
        "output_modalities": ["text"],
    },
    {"id": "fake-tts", "service_type": "tts", "input_modalities": ["text"], "output_modalities": ["audio"]},
    {
        "id": "fake-voice",
        "service_type": "tts",
        "input_modalities": ["text", "audio"],
        "output_modalities": ["audio"],
    },
    {
        "id": "fake-image",
        "service_type": "image",
        "input_modalities": ["text", "image"],
        "output_modalities": ["image"],
    },
    {
        "id": "fake-music",
        "service_type": "music",
        "input_modalities": ["text"],
        "output_modalities": ["audio"],
    },
    {
        "id": "fake-video",
        "service_type": "video",
        "input_modalities": ["text", "image"],
        "output_modalities": ["video"],
    },
    {
        "id": "fake-mesh",
        "service_type": "mesh",
        "input_modalities": ["text", "image"],
        "output_modalities": ["mesh"],
    },
    {
        "id": "fake-embed",
        "service_type": "embedding",
        "input_modalities": ["text"],
        "output_modalities": ["embedding"],
        "supported_features": ["embeddings"],
    },
]


def heartbeat_body(
    endpoint_url: str, provider_id: str = "box-1", models: list | None = None, max_concurrency: int = 4
) -> dict:
    return {
        "provider_id": provider_id,
        "endpoint_url": endpoint_url,
        "secret": "provider-secret-0123456789",
        "max_concurrency": max_concurrency,
        "models": copy.deepcopy(models if models is not None else FAKE_MODELS),
    }


@pytest.fixture
def online_provider(api, caller, start_fake_server) -> FakeServer:
    """A fake model server registered (by heartbeat) as the caller's provider."""
    provider = start_fake_server(stream_delay_ms=0)
    response = api(
        "POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(provider.url), headers=caller.headers
    )
    assert response.status == 200, response.content
    return provider


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests talk to loopback only; make sure no proxy setting reroutes them.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
