"""A real model server: llama.cpp (llama-cpp-python's OpenAI-compatible server) behind the real agent,
through the local stack, driven by the official openai SDK.

The model is one the test writes itself (tests/e2e/tiny_gguf.py: two layers, random weights, a small
vocabulary), so what is under test is the server's real HTTP behaviour (its model listing, its SSE
framing and usage figures, its errors) and how the agent and the gateway carry it.

llama-cpp-python is installed by `make test` (the `llama` extra, built from source). Where it is missing
these tests are skipped, except in CI, where they fail: a CI run without the real server proves nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import BIN, LocalStack, _spawn, _stop, _wait_for_line, admin
from tests.e2e.tiny_gguf import CONTEXT_LENGTH, write_tiny_llama

pytestmark = pytest.mark.e2e

if not os.environ.get("CI"):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is installed by `make test`")

MODEL = "tiny-llama"
CHAT = [{"role": "user", "content": "Say hello to the world"}]


@dataclass
class LlamaProvider:
    server_url: str
    agent_url: str
    api_key: str
    log: Path


def _start_llama_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server on a free loopback port; its output goes to `log` (it is chatty)."""
    output = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--n_ctx",
            str(CONTEXT_LENGTH),
            "--n_threads",
            "1",
            # By default llama-cpp-python ends a stream when any other request arrives, /v1/models
            # included, and the agent re-reads /v1/models with every heartbeat (see agent/README.md).
            "--interrupt_requests",
            "False",
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    _stop(process)
    raise AssertionError(f"llama_cpp.server did not start; its output:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama(local_stack: LocalStack, tmp_path_factory) -> Iterator[LlamaProvider]:
    workdir = tmp_path_factory.mktemp("llama")
    model = write_tiny_llama(workdir / "tiny-llama.gguf", name=MODEL)
    server, server_url = _start_llama_server(model, workdir / "llama-server.log")
    # An account of its own: its /v1/models shows the llama.cpp server's models and nothing else.
    account = admin(local_stack, "create-account", "llama-team")
    agent = _spawn(
        [
            str(BIN / "switchyard-agent"),
            "--gateway",
            local_stack.base_url,
            "--api-key",
            account["api_key"],
            "--upstream",
            server_url,
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "5",
            # llama-cpp-python answers one request at a time and reports no slot count (agent/README.md).
            "--max-concurrency",
            "1",
        ],
        workdir,
    )
    try:
        agent_url = _wait_for_line(agent, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        _wait_for_line(agent, r"registered provider")
        yield LlamaProvider(server_url, agent_url, account["api_key"], workdir / "llama-server.log")
    finally:
        _stop(agent)
        _stop(server)


@pytest.fixture(scope="module")
def sdk(local_stack: LocalStack, llama: LlamaProvider) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=local_stack.openai_base_url, api_key=llama.api_key, max_retries=0, timeout=60
    )


def test_the_llama_cpp_model_is_discovered_and_listed(sdk, llama):
    direct = httpx.get(f"{llama.server_url}/v1/models", trust_env=False).json()
    assert [entry["id"] for entry in direct["data"]] == [MODEL]  # what llama.cpp itself reports

    (model,) = sdk.models.list()
    listed = model.model_dump()
    assert listed["id"] == MODEL and listed["object"] == "model"
    assert listed["service_type"] == "llm"
    assert listed["input_modalities"] == ["text"] and listed["output_modalities"] == ["text"]
    assert {"chat", "completions", "streaming"} <= set(listed["supported_features"])


def test_chat_completion_stops_at_max_tokens(sdk):
    completion = sdk.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=5, temperature=0)
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    assert completion.usage.prompt_tokens > 0
    assert completion.model == MODEL


def test_completions(sdk):
    completion = sdk.completions.create(model=MODEL, prompt="hello world", max_tokens=4, temperature=0)
    assert completion.choices[0].text.strip()
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 4


def test_streamed_chat_arrives_token_by_token_while_the_model_generates(sdk):
    started = time.perf_counter()
    arrivals: list[float] = []
    pieces: list[str] = []
    finish_reasons = []
    stream = sdk.chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=300, temperature=0, stream=True
    )
    for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            arrivals.append(time.perf_counter() - started)
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish_reasons.append(choice.finish_reason)
    ended = time.perf_counter() - started

    assert finish_reasons == ["length"]
    assert len(pieces) == 300  # one SSE event per token, each relayed as its own chunk
    # Incremental, not all at the end: the first token is in the client's hands while the model still
    # generates the rest. The server needs ~1 ms per token here, so 300 tokens spread over 0.3 s or more;
    # a hop that buffered the answer would hand every event over within a few milliseconds of `ended`.
    assert arrivals[-1] - arrivals[0] > 0.1, (arrivals[0], arrivals[-1], ended)
    assert ended - arrivals[0] > 0.1


def test_streamed_completions_end_with_done(local_stack, llama):
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 3, "stream": True, "temperature": 0}
    with httpx.stream(
        "POST",
        f"{local_stack.base_url}/v1/completions",
        json=body,
        headers=local_stack.headers(llama.api_key),
        timeout=60,
        trust_env=False,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 4  # three tokens, their finish, [DONE]


def test_a_prompt_longer_than_the_context_is_the_servers_own_400(sdk):
    too_long = "hello world " * CONTEXT_LENGTH
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": too_long}], max_tokens=2
        )
    error = raised.value.response.json()["error"]
    # A provider's 4xx is the caller's mistake: passed through as the provider worded it (README).
    assert error["code"] == "context_length_exceeded" and "context length" in error["message"]


def test_a_stream_the_server_fails_after_its_status_line_is_an_upstream_error(sdk, llama):
    too_long = [{"role": "user", "content": "hello world " * CONTEXT_LENGTH}]
    # Streaming, llama-cpp-python answers 200 and an event stream, then fails: the stream stays empty.
    direct = httpx.post(
        f"{llama.server_url}/v1/chat/completions",
        json={"model": MODEL, "messages": too_long, "max_tokens": 2, "stream": True},
        timeout=30,
        trust_env=False,
    )
    assert (direct.status_code, direct.content) == (200, b"")
    # The gateway has not committed to a status before the first event: the client gets a 502 it can see,
    # not a silent empty stream.
    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=too_long, max_tokens=2, stream=True)
    assert raised.value.status_code == 502
    assert raised.value.response.json()["error"]["type"] == "upstream_error"


def test_an_async_chat_job_runs_on_llama_cpp(sdk, local_stack, llama):
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=CHAT, max_tokens=3, temperature=0, extra_body={"async": True}
    )
    assert raw.status_code == 202
    job = _wait_for_job(local_stack, llama.api_key, raw.http_response.json()["id"])
    assert job["status"] == "PROCESSED", job
    result = job["result"]
    assert result["object"] == "chat.completion" and result["choices"][0]["message"]["content"].strip()
    assert result["usage"]["completion_tokens"] == 3


def test_an_async_job_the_server_rejects_fails_at_once_with_its_error(sdk, local_stack, llama):
    too_long = "hello world " * CONTEXT_LENGTH
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": too_long}],
        max_tokens=2,
        extra_body={"async": True},
    )
    job = _wait_for_job(local_stack, llama.api_key, raw.http_response.json()["id"])
    assert job["status"] == "FAILED", job
    assert "context" in str(job.get("error")), job


def _wait_for_job(local_stack: LocalStack, api_key: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=local_stack.base_url, trust_env=False, timeout=30) as http:
        while time.monotonic() < deadline:
            job = http.get(f"/v1/jobs/{job_id}", headers=local_stack.headers(api_key)).json()
            if job["status"] in ("PROCESSED", "FAILED", "CANCELED"):
                return job
            time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


def test_the_llama_cpp_server_works_as_a_provider_without_an_agent(local_stack, llama):
    """Any OpenAI-compatible server can be a provider: registered by a heartbeat of its own (here the
    test's), it gets the gateway's requests directly. llama-cpp-python refuses an X-Request-ID that is not
    a UUID (400, empty body), and the gateway's ids (job ids, API Gateway's request ids) are not: the
    gateway sends them as UUIDs itself, so no agent has to."""
    account = admin(local_stack, "create-account", "llama-direct")
    headers = local_stack.headers(account["api_key"])
    model = {
        "id": MODEL,
        "service_type": "llm",
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "supported_features": ["chat", "completions", "streaming"],
    }
    beat = {
        "provider_id": "llama-direct",
        "endpoint_url": llama.server_url,
        "secret": "unused-by-llama-cpp-0123456789",  # sent as a bearer token, which the server ignores
        "max_concurrency": 1,
        "models": [model],
    }
    with httpx.Client(base_url=local_stack.base_url, trust_env=False, timeout=60) as http:
        assert http.post("/api/inference/agent/heartbeat/", json=beat, headers=headers).status_code == 200
        body = {"model": MODEL, "messages": CHAT, "max_tokens": 3, "temperature": 0}
        chat = http.post("/v1/chat/completions", json=body, headers=headers)
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"].strip()
        with http.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=headers
        ) as stream:
            assert stream.status_code == 200
            events = [line for line in stream.iter_lines() if line.startswith("data:")]
        assert events[-1] == "data: [DONE]" and len(events) >= 4
        queued = http.post("/v1/chat/completions", json={**body, "async": True}, headers=headers)
        assert queued.status_code == 202
    job = _wait_for_job(local_stack, account["api_key"], queued.json()["id"])
    assert job["status"] == "PROCESSED", job
    assert job["result"]["choices"][0]["message"]["content"].strip()
