"""One SQS batch holding a trickling provider's job, an oversized answer's job and an ordinary job: the
deadline and the size cap end the first two on their own, and the ordinary job succeeds on its first
attempt (before, the trickle held the batch until the Lambda timed out, costing every job an attempt)."""

from __future__ import annotations

import asyncio
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.conftest import heartbeat_body, lambda_context
from tests.functional.test_jobs_lifecycle import job, submit

DEADLINE_SECONDS = 1.5
MAX_BYTES = 200_000
JOB_SETTINGS = {
    "JOB_UPSTREAM_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    "PROVIDER_RESPONSE_MAX_BYTES": str(MAX_BYTES),
    "JOB_MAX_ATTEMPTS": "3",
}


def provider_app(chunks) -> Starlette:
    """A provider whose chat answer is whatever the async generator `chunks()` yields."""

    async def chat(_request):
        return StreamingResponse(chunks(), media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def trickle():
    yield b'{"choices": ['
    for _ in range(600):  # a byte every 0.2 s: two minutes, each silence far shorter than any read timeout
        await asyncio.sleep(0.2)
        yield b" "


async def oversized():
    chunk = b" " * 65536
    for _ in range(1000):  # 65 MB
        yield chunk


@pytest.fixture
def serve(serve_app):
    return serve_app


def register(api, caller, provider_id, url, model):
    models = [{"id": model, "service_type": "llm"}]
    body = heartbeat_body(url, provider_id=provider_id, models=models)
    assert api("POST", "/api/inference/agent/heartbeat/", body=body, headers=caller.headers).status == 200


def test_a_trickling_and_an_oversized_provider_do_not_cost_the_rest_of_the_batch(
    api, caller, harness, start_fake_server, serve
):
    register(api, caller, "trickler", serve(provider_app(trickle)), "trickle-llm")
    register(api, caller, "hoarder", serve(provider_app(oversized)), "big-llm")
    register(api, caller, "healthy", start_fake_server(stream_delay_ms=0).url, "fake-llm")
    chat = {"messages": [{"role": "user", "content": "hi"}], "async": True}
    ids = {
        model: submit(api, caller, body={**chat, "model": model}).json()["id"]
        for model in ("trickle-llm", "big-llm", "fake-llm")
    }
    # Given the three jobs' messages in one SQS batch
    event = harness.receive_event(10)
    assert len(event["Records"]) == 3

    started = time.monotonic()
    result = harness.dispatcher(event, lambda_context("DispatcherFunction"))
    elapsed = time.monotonic() - started

    # Then the batch ends soon after the deadline, with no record failed (nothing is redelivered) ...
    assert result == {"batchItemFailures": []}
    assert elapsed < DEADLINE_SECONDS + 10, elapsed  # not the two minutes the trickle would take
    # ... the ordinary job succeeded on its first attempt ...
    healthy = job(api, caller, ids["fake-llm"])
    assert (healthy["status"], healthy["attempts"]) == ("PROCESSED", 1)
    # ... the oversized answer failed its job at once, saying why ...
    hoarded = job(api, caller, ids["big-llm"])
    assert hoarded["status"] == "FAILED"
    assert f"larger than the {MAX_BYTES}-byte limit" in hoarded["error"]["message"]
    # ... and the trickle was cut at the deadline, back in the queue for its next attempt.
    trickled = job(api, caller, ids["trickle-llm"])
    assert (trickled["status"], trickled["attempts"]) == ("QUEUED", 1)
