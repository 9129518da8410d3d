"""Per-account rate limits and quotas through the API handler on moto: requests per minute and jobs in
flight, 429 with Retry-After and OpenAI's envelope, the x-ratelimit headers on every inference answer, the
count corrected when it drifted, and a limit that holds across separate handler processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from tests.conftest import ROOT
from tests.functional.test_jobs_lifecycle import job, submit

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}]}
LIMIT_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "60", "JOB_UPSTREAM_TIMEOUT_SECONDS": "5"}


def set_limits(caller, **limits):
    from switchyard.services.rate_limits import get_rate_limiter

    return get_rate_limiter().set_limits(
        caller.account_id,
        requests_per_minute=limits.get("requests_per_minute"),
        max_active_jobs=limits.get("max_active_jobs"),
    )


@pytest.fixture(autouse=True)
def away_from_a_minute_boundary():
    """Windows are UTC minutes: a test that counts requests in one must not straddle two."""
    into_minute = time.time() % 60
    if into_minute > 50:
        time.sleep(60.5 - into_minute)


def test_every_inference_answer_carries_the_rate_limit_headers(api, caller, online_provider):
    set_limits(caller, requests_per_minute=50)
    first = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    second = api(
        "POST", "/v1/chat/completions", body={**CHAT, "model": "nobody-serves-it"}, headers=caller.headers
    )
    bad = api("POST", "/v1/chat/completions", body={"model": "fake-llm"}, headers=caller.headers)
    for response, status in ((first, 200), (second, 404), (bad, 400)):
        assert response.status == status
        assert response.headers["x-ratelimit-limit-requests"] == "50"
        assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert [int(r.headers["x-ratelimit-remaining-requests"]) for r in (first, second, bad)] == [49, 48, 47]
    # Reads are not counted, and carry no such headers.
    assert "x-ratelimit-limit-requests" not in api("GET", "/v1/models", headers=caller.headers).headers


def test_over_the_requests_per_minute_is_429_with_retry_after_and_openais_envelope(
    api, caller, new_caller, online_provider
):
    set_limits(caller, requests_per_minute=2)
    for _ in range(2):
        assert api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).status == 200
    refused = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert refused.status == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_exceeded"
    assert "2 per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert all(name in refused.headers for name in LIMIT_HEADERS)
    # The provider was not called for the refused request, and another account is not affected.
    assert len([c for c in online_provider.server.history.all() if c["path"] == "/v1/chat/completions"]) == 2
    other = new_caller("team-b")
    assert (
        api("POST", "/v1/chat/completions", body={**CHAT, "model": "x"}, headers=other.headers).status == 404
    )


def test_jobs_in_flight_are_limited_and_released_when_jobs_end(api, caller, harness, online_provider):
    set_limits(caller, max_active_jobs=2)
    ids = [submit(api, caller).json()["id"] for _ in range(2)]
    refused = submit(api, caller)
    assert refused.status == 429
    assert "Too many jobs in flight: 2" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "5"
    # A batch that does not fit is refused whole, before anything is created.
    batch = {"requests": [{"endpoint": "/v1/chat/completions", "body": CHAT}]}
    assert api("POST", "/v1/batches", body=batch, headers=caller.headers).status == 429
    # When the jobs end, their places are free again.
    harness.drain(lambda: all(job(api, caller, i)["status"] == "PROCESSED" for i in ids))
    assert submit(api, caller).status == 202
    assert api("POST", "/v1/batches", body=batch, headers=caller.headers).status == 202


def test_places_a_request_reserved_and_did_not_use_are_given_back(api, caller, harness, online_provider):
    set_limits(caller, max_active_jobs=2)
    key = {"Idempotency-Key": "same-job-twice"}
    first = submit(api, caller, headers=key)
    assert first.status == 202
    assert submit(api, caller, headers=key).json()["id"] == first.json()["id"]  # a replay: no new job
    bad_batch = {"requests": [{"endpoint": "/v1/chat/completions", "body": {"model": "m"}}]}
    assert api("POST", "/v1/batches", body=bad_batch, headers=caller.headers).status in (400, 429)
    harness.drain(lambda: job(api, caller, first.json()["id"])["status"] == "PROCESSED")
    from switchyard.services.rate_limits import get_rate_limiter

    assert get_rate_limiter().limits(caller.account_id)["jobs_in_flight"] == 0


def test_a_drifted_jobs_in_flight_count_is_corrected_before_anyone_is_refused(api, caller, aws_stack):
    # Given a count left high by jobs whose end was never announced (a process died in between)
    set_limits(caller, max_active_jobs=3)
    table = boto3.resource("dynamodb").Table(aws_stack.environment["LIMITS_TABLE"])
    assert submit(api, caller).status == 202
    table.update_item(
        Key={"account_id": caller.account_id},
        UpdateExpression="SET jobs_in_flight = :n",
        ExpressionAttributeValues={":n": 3},
    )
    # When the account submits, the count is checked against its actual active jobs (1) and corrected
    assert submit(api, caller).status == 202
    assert table.get_item(Key={"account_id": caller.account_id})["Item"]["jobs_in_flight"] == 2


def test_workflow_step_jobs_count_unchecked_and_are_released(api, caller, harness, online_provider):
    from switchyard.catalog import ENDPOINTS
    from switchyard.services.jobs import get_jobs_service
    from switchyard.services.rate_limits import get_rate_limiter

    set_limits(caller, max_active_jobs=1)
    assert submit(api, caller).status == 202
    # A step's job counts though the account is at its limit: its run was admitted when it started.
    step = get_jobs_service().submit(
        caller.account_id,
        ENDPOINTS["/v1/chat/completions"],
        CHAT,
        workflow_run_id="run_0123456789abcdef012345",
        workflow_step_id="a",
    )
    assert get_rate_limiter().limits(caller.account_id)["jobs_in_flight"] == 2
    assert submit(api, caller).status == 429
    harness.drain(lambda: job(api, caller, step.job_id)["status"] == "PROCESSED")
    assert get_rate_limiter().limits(caller.account_id)["jobs_in_flight"] == 0


WORKER = """
import json, os, sys, threading
sys.path.insert(0, os.environ["ROOT"])
from switchyard_local.handler_loading import load_handler
from tests.conftest import http_event, lambda_context
handler = load_handler(os.path.join(os.environ["ROOT"], "functions", "api"), "app.handler")
statuses, lock = [], threading.Lock()
def call():
    event = http_event("POST", "/v1/chat/completions", body={"model": "nobody", "messages": [{"role": "user", "content": "x"}]},
                       headers={"authorization": "Bearer " + os.environ["KEY"]})
    status = handler(event, lambda_context())["statusCode"]
    with lock:
        statuses.append(status)
threads = [threading.Thread(target=call) for _ in range(int(os.environ["CALLS"]))]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(statuses))
"""


def test_a_limit_is_shared_by_two_concurrent_handler_instances(tmp_path, monkeypatch):
    """Two processes (two Lambda containers: nothing shared but DynamoDB) fire 15 requests each at once
    for one account limited to 10 per minute: exactly 10 are admitted."""
    from moto.server import ThreadedMotoServer
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.provision import provision

    from tests.conftest import BASE_ENVIRONMENT, TEMPLATE, reset_switchyard_caches

    dynamodb_atomicity.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        for name, value in {**BASE_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(name, value)
        reset_switchyard_caches()
        stack = provision(TEMPLATE, {"ProviderEndpointPolicy": "loopback"})
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, str(value))
        reset_switchyard_caches()
        from switchyard.services.accounts import get_accounts_service
        from switchyard.services.rate_limits import get_rate_limiter

        accounts = get_accounts_service()
        account = accounts.create_account("shared")
        key = accounts.create_api_key(account.account_id).secret
        get_rate_limiter().set_limits(account.account_id, requests_per_minute=10, max_active_jobs=None)
        environment = {**os.environ, "ROOT": str(ROOT), "KEY": key, "CALLS": "15"}
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER], env=environment, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        statuses = [status for worker in workers for status in json.loads(worker.communicate(timeout=120)[0])]
    finally:
        server.stop()
        reset_switchyard_caches()
    assert len(statuses) == 30
    assert statuses.count(429) == 20
    assert statuses.count(404) == 10  # admitted, then no provider: the limit counted exactly 10
