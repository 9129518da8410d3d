"""Fixtures of the local-stack tests: loopback servers in threads and a clean AWS environment."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

LOCAL_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.fixture
def local_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no endpoint left over from another test."""
    for name, value in LOCAL_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "MOTO_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def moto_server(local_aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL."""
    from switchyard_local.embedded_aws import EmbeddedAws

    aws = EmbeddedAws(port=0)
    endpoint_url = aws.start()
    monkeypatch.setenv("MOTO_PORT", str(aws.port))
    try:
        yield endpoint_url
    finally:
        aws.stop()


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (free port) in a thread; yields its base URL."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def wait_until(predicate, timeout: float = 10, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def serve():
    """`with serve(app) as base_url:` runs an ASGI app on loopback for the duration of the block."""
    return serve_in_thread


@pytest.fixture
def eventually():
    """`eventually(predicate, timeout)` polls until the predicate returns something truthy."""
    return wait_until
