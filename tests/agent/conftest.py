"""Fixtures for the agent tests: a shared fake model server and a capturing gateway, on loopback threads.

`start_fake_server` and `FakeServer` come from tests/conftest.py, like every other test's."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from switchyard_agent.config import AgentConfig
from switchyard_agent.fake_model_server import FakeServerConfig, create_app
from switchyard_agent.serving import serve_in_thread

from tests.conftest import FakeServer

SECRET = "test-secret-0123456789abcdef"
API_KEY = "sk-test-account-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _shared_fake() -> Iterator[FakeServer]:
    app = create_app(FakeServerConfig(stream_delay_ms=1))
    with serve_in_thread(app) as url:
        yield FakeServer(url, app.state.fake_server)


@pytest.fixture
def fake(_shared_fake: FakeServer) -> FakeServer:
    """A default fake model server, shared for speed; its request history starts empty in every test."""
    _shared_fake.server.history.clear()
    return _shared_fake


@dataclass
class CapturingGateway:
    """Stands in for the gateway's heartbeat endpoint; answers with the queued statuses, then 200."""

    url: str = ""
    beats: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.beats.clear()
        self.headers.clear()
        self.statuses.clear()

    async def heartbeat(self, request: Request) -> JSONResponse:
        try:
            beat = await request.json()
        except ClientDisconnect:  # the agent stopped mid-heartbeat; nothing to record
            return JSONResponse({}, status_code=499)
        self.headers.append(dict(request.headers))
        self.beats.append(beat)
        if self.statuses:
            status = self.statuses.pop(0)
            return JSONResponse(
                {"error": {"message": f"scripted {status}", "type": "test"}}, status_code=status
            )
        return JSONResponse(
            {
                "provider_id": beat["provider_id"],
                "status": "online",
                "offline_after_seconds": 60,
                "heartbeat_interval_seconds": 15,
            }
        )


@pytest.fixture(scope="session")
def _shared_gateway() -> Iterator[CapturingGateway]:
    capture = CapturingGateway()
    app = Starlette(routes=[Route("/api/inference/agent/heartbeat/", capture.heartbeat, methods=["POST"])])
    with serve_in_thread(app) as url:
        capture.url = url
        yield capture


@pytest.fixture
def gateway(_shared_gateway: CapturingGateway) -> CapturingGateway:
    """The capturing gateway, shared for speed; it starts every test with no beats and no scripted errors."""
    _shared_gateway.reset()
    return _shared_gateway


def _agent_config(gateway_url: str, upstream_url: str, **overrides: Any) -> AgentConfig:
    settings: dict[str, Any] = {
        "gateway_url": gateway_url,
        "api_key": API_KEY,
        "upstream_url": upstream_url,
        "listen_host": "127.0.0.1",
        "listen_port": 0,
        "secret": SECRET,
        "heartbeat_interval": 0.2,
        "log_level": "warning",
    }
    return AgentConfig(**{**settings, **overrides})


@pytest.fixture
def make_agent_config() -> Callable[..., AgentConfig]:
    """`make_agent_config(gateway_url, upstream_url, **overrides)`: a loopback, fast-beating agent config."""
    return _agent_config


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
