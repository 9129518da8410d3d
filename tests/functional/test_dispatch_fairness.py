"""One account's backlog does not hold up another's jobs: job messages carry their account as
MessageGroupId (an SQS fair queue on AWS; the local poller delivers the same way), and an account can be
limited to a share of the dispatchers (AccountMaxRunningJobs)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import boto3
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from switchyard_local.sqs_poller import SqsPoller

from tests.conftest import heartbeat_body, lambda_context, reset_switchyard_caches
from tests.functional.test_jobs_lifecycle import job

JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "60", "JOB_UPSTREAM_TIMEOUT_SECONDS": "10"}
BACKLOG = 60


class SlowProvider:
    """A chat provider that answers after `seconds` and records how many requests it held at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def chat(_request):
            with self.lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            await asyncio.sleep(self.seconds)
            with self.lock:
                self.running -= 1
            answer = {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            }
            return JSONResponse(answer)

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def serve(serve_app):
    return serve_app


def register(api, caller, url, max_concurrency):
    body = heartbeat_body(
        url, models=[{"id": "fake-llm", "service_type": "llm"}], max_concurrency=max_concurrency
    )
    assert api("POST", "/api/inference/agent/heartbeat/", body=body, headers=caller.headers).status == 200


def pollers(harness, *, fair: bool, deliveries: list[list[str]] | None = None) -> SqsPoller:
    """The dispatcher's event source as the local stack runs it: two pollers, batches of ten.
    `deliveries`, when given, gets each batch's job ids in the order the batches were handed over."""
    lock = threading.Lock()

    def invoke(event: dict):
        if deliveries is not None:
            with lock:
                deliveries.append([json.loads(record["body"])["job_id"] for record in event["Records"]])
        return harness.dispatcher(event, lambda_context("DispatcherFunction"))

    return SqsPoller(
        sqs_client=harness.sqs,
        queue_url=harness.queue_url,
        queue_arn="arn:aws:sqs:us-east-1:123456789012:jobs",
        invoke=invoke,
        batch_size=10,
        report_batch_item_failures=True,
        concurrency=2,
        wait_seconds=1,
        fair=fair,
    )


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the timeout"
        time.sleep(0.1)


def started_ms(aws_stack, job_id: str) -> int:
    table = boto3.resource("dynamodb").Table(aws_stack.environment["JOBS_TABLE"])
    return int(table.get_item(Key={"job_id": job_id})["Item"]["started_ms"])


CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "async": True}


@pytest.mark.parametrize("fair", [True, False])
def test_a_quiet_accounts_job_does_not_wait_behind_a_busy_accounts_backlog(
    api, new_caller, harness, serve, aws_stack, fair
):
    # Given account A's backlog of 60 slow jobs (its provider takes them all at once) queued before B's one
    busy, quiet = new_caller("busy"), new_caller("quiet")
    register(api, busy, serve(SlowProvider(0.5).app()), max_concurrency=BACKLOG)
    register(api, quiet, serve(SlowProvider(0.05).app()), max_concurrency=1)
    backlog = [
        api("POST", "/v1/chat/completions", body=CHAT, headers=busy.headers).json()["id"]
        for _ in range(BACKLOG)
    ]
    mine = api("POST", "/v1/chat/completions", body=CHAT, headers=quiet.headers).json()["id"]
    # When the dispatcher's event source works through the queue
    deliveries: list[list[str]] = []
    source = pollers(harness, fair=fair, deliveries=deliveries)
    source.start()
    try:
        # Waiting, not harness.drain: drain dispatches too, a third consumer taking the queue in send order.
        wait_until(lambda: job(api, quiet, mine)["status"] == "PROCESSED")
        # Every one of them: fair delivery reorders the backlog, so its last five are not its last to start.
        wait_until(lambda: all(job(api, busy, j)["status"] == "PROCESSED" for j in backlog))
    finally:
        source.stop()
    # Then B's job was delivered in the first batch of one of the two pollers, not in the backlog's last
    delivered_in = next(index for index, batch in enumerate(deliveries) if mine in batch)
    ahead = sum(1 for j in backlog if started_ms(aws_stack, j) < started_ms(aws_stack, mine))
    print(
        f"fair={fair}: delivered in batch {delivered_in + 1} of {len(deliveries)}; started after {ahead} of {BACKLOG}"
    )
    if fair:
        assert delivered_in < 2, deliveries
        assert ahead <= 20, ahead  # at most the rest of its batch and the other poller's first batch
    else:  # the same queue delivered in send order: what the fair delivery is for
        assert delivered_in >= BACKLOG // 10 - 1, deliveries  # behind (at least) five batches of the backlog
        assert ahead >= 40, ahead


def test_an_account_runs_no_more_than_its_share_of_the_dispatchers(api, caller, harness, serve, monkeypatch):
    monkeypatch.setenv("ACCOUNT_MAX_RUNNING_JOBS", "2")
    reset_switchyard_caches()
    provider = SlowProvider(0.3)
    register(api, caller, serve(provider.app()), max_concurrency=10)
    ids = [
        api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).json()["id"] for _ in range(6)
    ]
    source = pollers(harness, fair=True)
    source.start()
    try:
        wait_until(lambda: all(job(api, caller, j)["status"] == "PROCESSED" for j in ids))
    finally:
        source.stop()
    assert provider.most_at_once == 2
    from switchyard.services.rate_limits import get_rate_limiter

    assert get_rate_limiter().limits(caller.account_id)["jobs_in_flight"] == 0
