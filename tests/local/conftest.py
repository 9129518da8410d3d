"""Fixtures of the local-stack tests: a moto server, loopback servers in threads, a clean AWS environment."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import pytest

from tests.conftest import AWS_TEST_CREDENTIALS


@pytest.fixture
def local_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no endpoint left over from another test."""
    for name, value in AWS_TEST_CREDENTIALS.items():
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
    """`with serve(app) as base_url:` runs an ASGI app (startup and shutdown included) on loopback for the
    duration of the block."""
    from switchyard_agent.serving import serve_in_thread

    return functools.partial(serve_in_thread, lifespan="on")


@pytest.fixture
def eventually():
    """`eventually(predicate, timeout)` polls until the predicate returns something truthy."""
    return wait_until
