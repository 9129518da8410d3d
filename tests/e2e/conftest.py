"""End to end: the real local stack, a fake model server and the real provider agent, each in its own
process on loopback, driven over HTTP by the official openai SDK and httpx."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _spawn(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def _wait_for_line(process: subprocess.Popen, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    process.kill()
    raise AssertionError(f"{process.args[0]} never printed {pattern!r}; output:\n{''.join(seen)[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LocalStack:
    base_url: str
    api_key: str
    aws_endpoint_url: str
    process: subprocess.Popen
    workdir: Path

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}


def start_local_stack(workdir: Path, *overrides: str, stderr: Any = subprocess.DEVNULL) -> LocalStack:
    """`switchyard-local up` in `workdir`; its handlers' JSON log lines go to `stderr` (an open file)."""
    args = [
        str(BIN / "switchyard-local"),
        "up",
        "--port",
        "0",
        "--json",
        "--template",
        str(ROOT / "template.yaml"),
        "--schedule-seconds",
        "2",
    ]
    if overrides:
        args += ["--parameter-overrides", *overrides]
    process = subprocess.Popen(
        args,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise AssertionError("the local stack exited before it was ready")
    ready = json.loads(line)
    return LocalStack(ready["base_url"], ready["api_key"], ready["aws_endpoint_url"], process, workdir)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("stack")
    # The webhook retry schedule compressed from about 3 days to 2 s.
    stack = start_local_stack(
        workdir, "NoProviderGraceSeconds=4", "JobUpstreamTimeoutSeconds=10", "WebhookRetrySchedule=0,1,1"
    )
    yield stack
    _stop(stack.process)


@dataclass
class Provider:
    model_server_url: str
    agent_url: str
    processes: list


def start_provider(
    stack: LocalStack, workdir: Path, api_key: str | None = None, *server_args: str
) -> Provider:
    server = _spawn(
        [str(BIN / "switchyard-fake-model-server"), "--port", "0", "--stream-delay-ms", "20", *server_args],
        workdir,
    )
    model_server_url = _wait_for_line(server, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
    agent = _spawn(
        [
            str(BIN / "switchyard-agent"),
            "--gateway",
            stack.base_url,
            "--api-key",
            api_key or stack.api_key,
            "--upstream",
            model_server_url,
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "5",
            "--max-concurrency",
            "8",
        ],
        workdir,
    )
    agent_url = _wait_for_line(agent, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
    _wait_for_line(agent, r"registered provider")
    return Provider(model_server_url, agent_url, [agent, server])


@pytest.fixture(scope="session")
def provider(local_stack, tmp_path_factory) -> Iterator[Provider]:
    running = start_provider(local_stack, tmp_path_factory.mktemp("provider"))
    yield running
    for process in running.processes:
        _stop(process)


@pytest.fixture(scope="session")
def client(local_stack, provider):
    from openai import OpenAI

    return OpenAI(
        base_url=local_stack.openai_base_url, api_key=local_stack.api_key, max_retries=0, timeout=30
    )


@pytest.fixture(scope="session")
def http(local_stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_stack.base_url, timeout=30, trust_env=False) as session:
        yield session


def admin(local_stack: LocalStack, *args: str) -> dict | list:
    """The admin CLI against the running stack (it finds it through the stack's state file)."""
    result = subprocess.run(
        [str(BIN / "switchyard-admin"), *args],
        cwd=local_stack.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)
