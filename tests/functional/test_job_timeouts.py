"""A provider call can never outlive the claim it runs under, and a batch's records all run at once."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import heartbeat_body, lambda_context, reset_switchyard_caches
from tests.functional.test_jobs_lifecycle import job, submit

JOB_SETTINGS = {"JOB_UPSTREAM_TIMEOUT_SECONDS": "1", "JOB_LEASE_SECONDS": "2.5", "JOB_MAX_ATTEMPTS": "2"}


class TimedProvider:
    """Records when each call started and ended; `answer` decides how a call is answered."""

    def __init__(self, answer) -> None:
        self.calls: list[list[float]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.answer = answer

    def app(self) -> Starlette:
        async def call(request: Request) -> Response:
            await request.body()
            record = [time.monotonic(), 0.0]
            self.calls.append(record)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return await self.answer(record, self)

        return Starlette(routes=[Route("/v1/{path:path}", call, methods=["POST"])])


@pytest.fixture
def serve(api, caller):
    from switchyard_agent.serving import serve_in_thread

    contexts = []

    def start(provider: TimedProvider, max_concurrency: int = 4) -> None:
        context = serve_in_thread(provider.app())
        url = context.__enter__()
        contexts.append(context)
        body = heartbeat_body(url, max_concurrency=max_concurrency)
        assert api("POST", "/api/inference/agent/heartbeat/", body=body, headers=caller.headers).status == 200

    yield start
    for context in contexts:
        context.__exit__(None, None, None)


async def trickle(record: list[float], provider: TimedProvider) -> Response:
    """A byte every 0.2 s for 4 s: no single read ever waits long enough to time out."""

    async def body():
        try:
            for _ in range(20):
                yield b" "
                await asyncio.sleep(0.2)
            yield b'{"choices": []}'
        finally:
            record[1] = time.monotonic()
            provider.in_flight -= 1

    return StreamingResponse(body(), media_type="application/json")


def test_a_trickling_provider_is_cut_at_the_call_deadline_so_no_retry_runs_beside_it(
    api, caller, harness, serve, monkeypatch
):
    from switchyard.services import dispatcher as dispatcher_module

    # Before the fix the lease was the deadline plus a margin, which this puts at 2.5 s as well.
    monkeypatch.setattr(dispatcher_module, "LEASE_MARGIN_MS", 1500, raising=False)
    provider = TimedProvider(trickle)
    serve(provider)
    job_id = submit(api, caller).json()["id"]
    stop = threading.Event()

    def dispatch() -> None:
        while not stop.is_set():
            if harness.dispatch_once() == 0:
                time.sleep(0.05)

    workers = [threading.Thread(target=dispatch, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 20
        while job(api, caller, job_id)["status"] not in ("FAILED", "PROCESSED"):
            harness.sweep()  # the sweeper re-queues any job whose lease ran out
            assert time.monotonic() < deadline, job(api, caller, job_id)
            time.sleep(0.2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)

    failed = job(api, caller, job_id)
    assert failed["status"] == "FAILED"
    assert "not complete within the 1 s deadline" in failed["error"]["message"]
    time.sleep(0.5)  # let the provider notice the closed connections
    assert len(provider.calls) == 2
    first, second = sorted(provider.calls)
    assert second[0] >= first[1], "the retry started while the first call was still running"
    assert all(end - start < 2.0 for start, end in provider.calls), provider.calls


async def slow_answer(record: list[float], provider: TimedProvider) -> Response:
    await asyncio.sleep(0.5)
    record[1] = time.monotonic()
    provider.in_flight -= 1
    return JSONResponse({"choices": [{"message": {"role": "assistant", "content": "ok"}}]})


def test_every_record_of_a_batch_calls_its_provider_at_once_however_few_cpus(
    api, caller, harness, serve, monkeypatch
):
    monkeypatch.setenv("JOB_UPSTREAM_TIMEOUT_SECONDS", "10")
    monkeypatch.setenv("JOB_LEASE_SECONDS", "30")
    reset_switchyard_caches()
    # asyncio's default executor has min(32, CPUs + 4) threads: 5 on one CPU, fewer than a batch of 10.
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    provider = TimedProvider(slow_answer)
    serve(provider, max_concurrency=16)
    ids = [submit(api, caller).json()["id"] for _ in range(10)]
    event = harness.receive_event(10)
    assert len(event["Records"]) == 10

    started = time.monotonic()
    result = harness.dispatcher(event, lambda_context("DispatcherFunction", timeout_seconds=60))
    elapsed = time.monotonic() - started

    assert result == {"batchItemFailures": []}
    assert [job(api, caller, job_id)["status"] for job_id in ids] == ["PROCESSED"] * 10
    assert provider.most_in_flight == 10
    assert elapsed < 2 * 0.5 + 2.0, elapsed  # one round of calls, not two


def test_a_record_that_finds_its_invocation_almost_over_waits_instead_of_starting_a_call(
    api, caller, harness, serve
):
    provider = TimedProvider(slow_answer)
    serve(provider)
    job_id = submit(api, caller).json()["id"]
    event = harness.receive_event(1)

    # 15 s of store reserve and at least 1 s of call: 10 s left is not enough to start.
    result = harness.dispatcher(event, lambda_context("DispatcherFunction", timeout_seconds=10))

    assert result == {"batchItemFailures": []}
    waiting = job(api, caller, job_id)
    assert waiting["status"] == "QUEUED" and waiting["attempts"] == 0
    assert provider.calls == []
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED", timeout=15)
