"""Fault tests for the dispatcher and sweeper: provider failures, hangs, duplicate deliveries, crashes,
cancel races, capacity, missing providers and poison messages."""

from __future__ import annotations

import threading
import time

from tests.conftest import heartbeat_body, lambda_context, reset_switchyard_caches
from tests.functional.test_jobs_lifecycle import job, submit

JOB_SETTINGS = {
    "NO_PROVIDER_GRACE_SECONDS": "0.3",
    "JOB_UPSTREAM_TIMEOUT_SECONDS": "0.5",
    "JOB_MAX_ATTEMPTS": "3",
}


def register(api, caller, provider_url, **kwargs):
    response = api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body(provider_url, **kwargs),
        headers=caller.headers,
    )
    assert response.status == 200, response.content


def provider_calls(provider) -> int:
    return sum(1 for call in provider.server.history.all() if call["path"] == "/v1/chat/completions")


def test_provider_500_is_retried_then_failed_with_max_retries(api, caller, harness, start_fake_server):
    provider = start_fake_server(fail_rate=1.0, fail_status=500)
    register(api, caller, provider.url)
    job_id = submit(api, caller).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "FAILED")
    failed = job(api, caller, job_id)
    assert failed["error"]["type"] == "upstream_error"
    assert "Max retries exhausted after 3 attempts" in failed["error"]["message"]
    assert provider_calls(provider) == 3


def test_provider_500_then_success_is_processed(api, caller, harness, start_fake_server):
    flaky = start_fake_server(fail_rate=1.0, fail_status=503)
    register(api, caller, flaky.url)
    job_id = submit(api, caller).json()["id"]
    harness.dispatch_once()
    assert job(api, caller, job_id)["status"] == "QUEUED"  # back in the queue for another attempt
    healthy = start_fake_server()
    register(api, caller, healthy.url)  # same provider id, now pointing at a healthy server
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    assert job(api, caller, job_id)["attempts"] == 2


def test_provider_4xx_fails_at_once_with_the_providers_reason(api, caller, harness, start_fake_server):
    provider = start_fake_server(fail_rate=1.0, fail_status=400)
    register(api, caller, provider.url)
    job_id = submit(api, caller).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "FAILED")
    assert "HTTP 400" in job(api, caller, job_id)["error"]["message"]
    assert provider_calls(provider) == 1


def test_provider_hang_times_out_and_is_retried(api, caller, harness, start_fake_server):
    provider = start_fake_server(latency_ms=2000)
    register(api, caller, provider.url)
    job_id = submit(api, caller).json()["id"]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "FAILED", timeout=20)
    failed = job(api, caller, job_id)
    assert "did not respond in time" in failed["error"]["message"]


def test_duplicate_delivery_runs_the_job_once(api, caller, harness, online_provider):
    job_id = submit(api, caller).json()["id"]
    message = harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=0)["Messages"][0]
    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody=message["Body"])  # SQS delivers twice
    harness.drain()
    assert job(api, caller, job_id)["status"] == "PROCESSED"
    assert provider_calls(online_provider) == 1


def test_concurrent_dispatcher_invocations_each_run_their_own_batch(
    api, caller, harness, start_fake_server, monkeypatch
):
    # The local stack's pollers invoke the dispatcher from two threads at once (AWS would use two
    # containers): neither invocation may run, or report on, the other's records.
    # Twenty jobs share this process's CPU with in-process moto: this module's 0.5 s upstream timeout
    # would turn a slow moment on a busy machine into retries, which is not what this test is about.
    monkeypatch.setenv("JOB_UPSTREAM_TIMEOUT_SECONDS", "10")
    reset_switchyard_caches()
    provider = start_fake_server(stream_delay_ms=0, latency_ms=150)
    register(api, caller, provider.url, max_concurrency=32)
    ids = [submit(api, caller).json()["id"] for _ in range(20)]
    events = [harness.receive_event(), harness.receive_event()]
    assert sum(len(event["Records"]) for event in events) == 20
    results: list = [None, None]
    start = threading.Barrier(2)

    def invoke(index: int) -> None:
        start.wait()
        results[index] = harness.dispatcher(events[index], lambda_context("DispatcherFunction"))

    threads = [threading.Thread(target=invoke, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [{"batchItemFailures": []}, {"batchItemFailures": []}]
    assert [job(api, caller, job_id)["status"] for job_id in ids] == ["PROCESSED"] * 20
    assert provider_calls(provider) == 20


def test_duplicate_delivery_while_running_does_not_free_the_running_slot(
    api, caller, harness, start_fake_server, monkeypatch
):
    from switchyard.services.providers import get_providers_service

    # A 400 ms answer against this module's 0.5 s whole-call deadline timed out on a busy machine (a retry
    # is a second provider call, which is not what this test is about).
    monkeypatch.setenv("JOB_UPSTREAM_TIMEOUT_SECONDS", "5")
    reset_switchyard_caches()
    provider = start_fake_server(latency_ms=400)
    register(api, caller, provider.url, max_concurrency=1)
    job_id = submit(api, caller).json()["id"]
    body = harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=0)["Messages"][0]["Body"]
    worker = threading.Thread(target=harness.dispatch_once)
    worker.start()
    time.sleep(0.15)
    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody=body)
    harness.dispatch_once()  # the duplicate: no free slot (or a stale claim), never a second run
    assert job(api, caller, job_id)["status"] == "PROCESSING"
    leases = get_providers_service().leases(caller.account_id, "box-1")
    assert len(leases) == 1
    worker.join()
    harness.drain()
    assert job(api, caller, job_id)["status"] == "PROCESSED"
    assert provider_calls(provider) == 1


def test_dispatcher_crash_mid_job_is_recovered_by_redelivery(
    api, caller, harness, online_provider, monkeypatch
):
    from switchyard.services import dispatcher as dispatcher_module
    from switchyard.services.providers import get_providers_service

    monkeypatch.setenv("JOB_LEASE_SECONDS", "0.55")  # just over the 0.5 s call deadline
    reset_switchyard_caches()
    job_id = submit(api, caller).json()["id"]

    def crash(self, job, provider, time_left=None):
        raise RuntimeError("the dispatcher died mid-job")

    with monkeypatch.context() as patch:
        patch.setattr(dispatcher_module.Dispatcher, "_run", crash)
        harness.dispatch_once()  # the record fails: the message stays on the queue
    assert job(api, caller, job_id)["status"] == "PROCESSING"
    time.sleep(1.1)  # the crashed run's lease (0.55 s) and the message's visibility timeout (1 s) run out
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")
    assert job(api, caller, job_id)["attempts"] == 2
    leases = get_providers_service().leases(caller.account_id, "box-1")
    assert leases == {}


def test_sweeper_requeues_a_job_whose_runner_died_and_whose_message_is_gone(
    api, caller, harness, online_provider, monkeypatch
):
    from switchyard.services import dispatcher as dispatcher_module

    monkeypatch.setenv("JOB_LEASE_SECONDS", "0.55")
    reset_switchyard_caches()
    job_id = submit(api, caller).json()["id"]
    with monkeypatch.context() as patch:
        patch.setattr(
            dispatcher_module.Dispatcher, "_run", lambda *a: (_ for _ in ()).throw(RuntimeError("died"))
        )
        harness.dispatch_once()
    harness.purge()  # the message is gone too
    time.sleep(0.6)
    report = harness.sweep()
    assert report["requeued_expired"] == [job_id]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")


def test_sweeper_resends_a_lost_message(api, caller, harness, online_provider, monkeypatch):
    job_id = submit(api, caller).json()["id"]
    harness.purge()  # the message was lost
    assert harness.sweep()["requeued_lost"] == []  # too early to call it lost
    monkeypatch.setenv("LOST_MESSAGE_AFTER_SECONDS", "0")
    reset_switchyard_caches()
    time.sleep(0.01)
    assert harness.sweep()["requeued_lost"] == [job_id]
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")


def test_cancel_racing_completion_keeps_canceled_and_frees_the_slot(api, caller, harness, start_fake_server):
    from switchyard.services.providers import get_providers_service

    provider = start_fake_server(latency_ms=400)
    register(api, caller, provider.url)
    job_id = submit(api, caller).json()["id"]
    worker = threading.Thread(target=harness.dispatch_once)
    worker.start()
    deadline = time.monotonic() + 5
    while job(api, caller, job_id)["status"] != "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.01)
    canceled = api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers).json()
    assert canceled == {"id": job_id, "status": "CANCELED", "canceled": True}
    worker.join()
    final = job(api, caller, job_id)
    assert final["status"] == "CANCELED"
    assert "result" not in final
    leases = get_providers_service().leases(caller.account_id, "box-1")
    assert leases == {}


def test_no_free_capacity_keeps_the_job_queued_until_a_slot_frees(api, caller, harness, online_provider):
    from switchyard.services.providers import get_providers_service

    providers = get_providers_service()
    provider = providers.candidates(
        caller.account_id, "fake-llm", __import__("switchyard.catalog").catalog.ServiceType.LLM
    )[0]
    for index in range(4):  # max_concurrency is 4: take every slot
        assert providers.acquire_slot(provider, f"other-job-{index}", int(time.time() * 1000) + 60_000)
    job_id = submit(api, caller).json()["id"]
    for _ in range(3):
        harness.dispatch_once()
    queued = job(api, caller, job_id)
    assert queued["status"] == "QUEUED"
    providers.release_slot(caller.account_id, provider.provider_id, "other-job-0")
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")


def test_no_provider_waits_for_the_grace_period_then_fails(api, caller, harness, monkeypatch):
    monkeypatch.setenv("NO_PROVIDER_GRACE_SECONDS", "1.5")
    reset_switchyard_caches()
    job_id = submit(api, caller).json()["id"]
    harness.dispatch_once()
    assert job(api, caller, job_id)["status"] == "QUEUED"
    harness.drain(lambda: job(api, caller, job_id)["status"] == "FAILED")
    failed = job(api, caller, job_id)
    assert failed["error"]["type"] == "no_provider"
    assert "No online provider serving model 'fake-llm'" in failed["error"]["message"]


def test_a_provider_coming_online_during_the_grace_period_serves_the_job(
    api, caller, harness, start_fake_server, monkeypatch
):
    monkeypatch.setenv("NO_PROVIDER_GRACE_SECONDS", "30")
    reset_switchyard_caches()
    job_id = submit(api, caller).json()["id"]
    harness.dispatch_once()
    provider = start_fake_server()
    register(api, caller, provider.url)
    from switchyard.services.providers import get_providers_service

    get_providers_service()._online_cache.clear()
    harness.drain(lambda: job(api, caller, job_id)["status"] == "PROCESSED")


def test_poison_message_ends_in_the_dlq(harness, jobs_env):
    import boto3

    harness.sqs.send_message(QueueUrl=harness.queue_url, MessageBody="{not a job")
    dlq_url = (
        jobs_env.environment.get("JOBS_DLQ_URL")
        or boto3.client("sqs").get_queue_url(QueueName=jobs_env.physical["JobsDeadLetterQueue"].name)[
            "QueueUrl"
        ]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and harness.depth() > 0:
        harness.dispatch_once()  # fails the record; it comes back after the (1 s) visibility timeout
        time.sleep(0.2)
    dead = harness.sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert dead and dead[0]["Body"] == "{not a job"
    assert harness.depth() == 0
