"""inference.net's background path on moto: /v1/slow and /v1/async, GET /v1/generation/<id>, embedding and
batch events, and the sweeper's share of at-least-once (job ends the hook missed, parked retries, lost
messages)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import reset_switchyard_caches
from tests.functional.webhooks_harness import WebhooksHarness
from tests.webhook_receiver import WebhookReceiver, running_receiver

JOB_SETTINGS = {
    "NO_PROVIDER_GRACE_SECONDS": "0.3",
    "JOB_UPSTREAM_TIMEOUT_SECONDS": "2",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0,1,1",
}
CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "in the background"}]}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def webhooks(jobs_env, harness) -> WebhooksHarness:
    return WebhooksHarness(jobs_env.environment, harness)


def webhook(api, caller, url: str, **fields) -> dict:
    response = api("POST", "/v1/webhooks", body={"url": url, **fields}, headers=caller.headers)
    assert response.status == 201, response.content
    return response.json()


def generation(api, caller, generation_id: str) -> dict:
    response = api("GET", f"/v1/generation/{generation_id}", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()


# ------------------------------------------------------------------ the background path


@pytest.mark.parametrize("prefix", ["/v1/slow", "/v1/async"])
@pytest.mark.parametrize(
    "tail, body",
    [
        ("/chat/completions", CHAT),
        ("/completions", {"model": "fake-llm", "prompt": "later", "stream": False}),
        ("/embeddings", {"model": "fake-embed", "input": "later"}),
    ],
)
def test_background_requests_answer_202_with_the_generation_id_at_once(
    api, caller, harness, online_provider, prefix, tail, body
):
    accepted = api("POST", prefix + tail, body=body, headers=caller.headers)
    assert accepted.status == 202, accepted.content
    generation_id = accepted.json()["id"]
    assert isinstance(generation_id, str) and accepted.json()["status"] == "QUEUED"
    assert generation(api, caller, generation_id)["state"] == "Queued"
    # An ordinary async job underneath.
    assert api("GET", f"/v1/jobs/{generation_id}", headers=caller.headers).json()["status"] == "QUEUED"
    harness.drain(lambda: generation(api, caller, generation_id)["state"] == "Success")
    done = generation(api, caller, generation_id)
    assert done["response"]["object"] in ("chat.completion", "text_completion", "list")
    assert done["request"] == body
    assert "async" not in online_provider.last_request("/v1" + tail)["json"]


@pytest.mark.parametrize("path", ["/v1/slow/chat/completions", "/v1/async/completions"])
def test_stream_true_on_the_background_path_is_a_400(api, caller, harness, path):
    body = {**CHAT, "prompt": "x", "stream": True}
    response = api("POST", path, body=body, headers=caller.headers)
    assert response.status == 400
    assert response.json()["error"] == {
        "message": response.json()["error"]["message"],
        "type": "invalid_request",
        "param": "stream",
    }
    assert harness.depth() == 0


def test_background_body_errors_are_400_naming_the_field(api, caller):
    response = api("POST", "/v1/slow/chat/completions", body={"model": "fake-llm"}, headers=caller.headers)
    assert response.status == 400 and response.json()["error"]["param"] == "messages"
    assert api("POST", "/v1/slow/chat/completions", body=CHAT).status == 401


def test_generation_for_client_has_exactly_the_contract_fields(api, caller, harness, online_provider):
    sent = {**CHAT, "metadata": {"project": "p1"}, "async": True}
    job_id = api("POST", "/v1/chat/completions", body=sent, headers=caller.headers).json()["id"]
    queued = generation(api, caller, job_id)
    assert set(queued) == {
        "id", "state", "stateMessage", "request", "response", "model", "createdAt", "dispatchedAt", "finishedAt",
    }  # fmt: skip
    assert queued["response"] is None and queued["finishedAt"] is None and queued["dispatchedAt"] is None
    assert queued["request"] == sent  # as the caller sent it, `async` and metadata included
    harness.drain(lambda: generation(api, caller, job_id)["state"] == "Success")
    done = generation(api, caller, job_id)
    assert done["createdAt"] <= done["dispatchedAt"] <= done["finishedAt"]
    assert done["createdAt"].endswith("Z") and "." in done["createdAt"]


def test_a_failed_generation_says_why(api, caller, harness):
    job_id = api(
        "POST",
        "/v1/slow/completions",
        body={"model": "nobody-serves-it", "prompt": "x"},
        headers=caller.headers,
    ).json()["id"]
    harness.drain(lambda: generation(api, caller, job_id)["state"] == "Failed", timeout=15)
    failed = generation(api, caller, job_id)
    assert "No online provider" in failed["stateMessage"] and failed["response"] is None


def test_canceled_generations_and_media_responses(api, caller, harness, online_provider):
    job_id = api("POST", "/v1/slow/chat/completions", body=CHAT, headers=caller.headers).json()["id"]
    api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers)
    assert generation(api, caller, job_id)["state"] == "Canceled"
    image = {"model": "fake-image", "prompt": "lamp", "response_format": "b64_json", "async": True}
    image_id = api("POST", "/v1/images/generations", body=image, headers=caller.headers).json()["id"]
    harness.drain(lambda: generation(api, caller, image_id)["state"] == "Success")
    response = generation(api, caller, image_id)["response"]
    assert response["url"] == f"https://gateway.test/api/inference/assets/{image_id}/"
    assert response["content_type"] == "image/png"


def test_another_accounts_generation_is_a_404(api, caller, new_caller, harness):
    job_id = api("POST", "/v1/slow/chat/completions", body=CHAT, headers=caller.headers).json()["id"]
    other = api("GET", f"/v1/generation/{job_id}", headers=new_caller("other").headers)
    assert other.status == 404 and other.json()["error"]["type"] == "not_found"
    assert api("GET", "/v1/generation/job_missing", headers=caller.headers).status == 404


# ------------------------------------------------------------------ events


def test_a_slow_request_with_a_webhook_gets_generation_completed(
    api, caller, webhooks, online_provider, receiver
):
    hook = webhook(api, caller, receiver.url)
    body = {**CHAT, "metadata": {"webhook_id": hook["id"]}}
    generation_id = api("POST", "/v1/slow/chat/completions", body=body, headers=caller.headers).json()["id"]
    webhooks.run(lambda: len(receiver.received) == 1)
    event = receiver.received[0].json()
    assert event["event"] == "generation.completed" and event["generation_id"] == generation_id
    assert event["data"] == generation(api, caller, generation_id)


def test_async_embeddings_announce_async_embedding_completed(
    api, caller, webhooks, online_provider, receiver
):
    hook = webhook(api, caller, receiver.url)
    body = {"model": "fake-embed", "input": ["a", "b"], "metadata": {"webhook_id": hook["id"]}}
    generation_id = api("POST", "/v1/slow/embeddings", body=body, headers=caller.headers).json()["id"]
    webhooks.run(lambda: len(receiver.received) == 1)
    received = receiver.received[0]
    assert received.headers["x-inference-event"] == "async-embedding.completed"
    event = received.json()
    assert event["type"] == "async-embedding.completed" and event["generation_id"] == generation_id
    assert len(event["data"]["response"]["data"]) == 2


def test_failed_and_canceled_jobs_announce_generation_completed_with_their_state(
    api, caller, webhooks, receiver
):
    hook = webhook(api, caller, receiver.url)
    failing = {"model": "nobody-serves-it", "prompt": "x", "metadata": {"webhook_id": hook["id"]}}
    failed_id = api("POST", "/v1/slow/completions", body=failing, headers=caller.headers).json()["id"]
    canceled_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    api("POST", f"/v1/jobs/{canceled_id}/cancel", headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 2, timeout=20)
    states = {r.json()["generation_id"]: r.json()["data"]["state"] for r in receiver.received}
    assert states == {failed_id: "Failed", canceled_id: "Canceled"}


def test_a_retried_job_announces_each_end_under_its_own_webhook_id(
    api, caller, webhooks, online_provider, receiver
):
    hook = webhook(api, caller, receiver.url)
    job_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    api("POST", f"/v1/jobs/{job_id}/cancel", headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 1)
    assert api("POST", f"/v1/jobs/{job_id}/retry", headers=caller.headers).status == 202
    webhooks.run(lambda: len(receiver.received) == 2)
    first, second = receiver.received
    assert first.json()["data"]["state"] == "Canceled" and second.json()["data"]["state"] == "Success"
    assert first.headers["webhook-id"] != second.headers["webhook-id"]


def test_batch_completed_comes_once_when_every_job_is_final(api, caller, webhooks, online_provider, receiver):
    hook = webhook(api, caller, receiver.url)
    requests = [
        {"endpoint": "/v1/completions", "body": {"model": "fake-llm", "prompt": f"item {i}"}}
        for i in range(5)
    ]
    requests.append({"endpoint": "/v1/embeddings", "body": {"model": "fake-embed", "input": "x"}})
    requests.append({"endpoint": "/v1/completions", "body": {"model": "nobody-serves-it", "prompt": "x"}})
    accepted = api(
        "POST",
        "/v1/batches",
        body={"metadata": {"webhook_id": hook["id"]}, "requests": requests},
        headers=caller.headers,
    )
    assert accepted.status == 202, accepted.content
    batch_id = accepted.json()["id"]
    webhooks.run(lambda: len(receiver.received) == 1, timeout=20)
    for _ in range(5):
        webhooks.deliver_once()
    assert len(receiver.received) == 1  # one event for the batch, none per job (the items named none)
    event = receiver.received[0].json()
    assert event["event"] == "batch.completed" and "generation_id" not in event
    data = event["data"]
    assert data["id"] == batch_id and data["status"] == "DONE"
    assert (data["total"], data["processed"], data["failed"]) == (7, 6, 1)
    assert len(data["jobs"]) == 7


def test_a_batch_item_naming_a_webhook_gets_its_own_generation_event(
    api, caller, webhooks, online_provider, receiver
):
    hook = webhook(api, caller, receiver.url)
    requests = [
        {
            "endpoint": "/v1/completions",
            "body": {"model": "fake-llm", "prompt": "mine", "metadata": {"webhook_id": hook["id"]}},
        },
        {"endpoint": "/v1/completions", "body": {"model": "fake-llm", "prompt": "not mine"}},
    ]
    batch = api("POST", "/v1/batches", body={"requests": requests}, headers=caller.headers).json()
    webhooks.run(lambda: len(receiver.received) == 1)
    assert receiver.received[0].json()["generation_id"] == batch["jobs"][0]["id"]
    sent = online_provider.last_request("/v1/completions")["json"]
    assert "metadata" not in sent


# ------------------------------------------------------------------ the sweeper's share


def test_a_job_end_the_hook_missed_is_announced_by_the_sweeper(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    from switchyard.services.job_lifecycle import JobLifecycle

    hook = webhook(api, caller, receiver.url)
    # The process "dies" between the job's final write and the announcement: nobody hears of the end.
    real_announce = JobLifecycle._announce
    monkeypatch.setattr(JobLifecycle, "_announce", lambda self, job, again=False: None)
    job_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    webhooks.run(lambda: generation(api, caller, job_id)["state"] == "Success")
    for _ in range(3):
        webhooks.deliver_once()
    assert receiver.received == []
    monkeypatch.setattr(JobLifecycle, "_announce", real_announce)
    monkeypatch.setenv("REDRIVE_AFTER_SECONDS", "0")
    reset_switchyard_caches()
    assert webhooks.sweep()["reannounced_ends"] == [job_id]
    webhooks.run(lambda: len(receiver.received) == 1)
    assert receiver.received[0].json()["generation_id"] == job_id
    assert webhooks.sweep()["reannounced_ends"] == []  # out of the outbox now


def test_a_plain_jobs_end_is_never_in_the_outbox(api, caller, webhooks, online_provider, monkeypatch):
    # No webhook and no workflow step hears it: the ending write marks nothing, and no second write
    # takes a mark off (one DynamoDB write per job less), even when the process "dies" before announcing.
    from switchyard.adapters.jobs_table import JobsTable, get_jobs_table
    from switchyard.services.job_lifecycle import JobLifecycle

    marks_taken_off: list[str] = []
    real_mark_announced = JobsTable.mark_announced
    monkeypatch.setattr(
        JobsTable,
        "mark_announced",
        lambda self, job: marks_taken_off.append(job.job_id) or real_mark_announced(self, job),
    )
    announced = api("POST", "/v1/slow/chat/completions", body=CHAT, headers=caller.headers).json()["id"]
    webhooks.run(lambda: generation(api, caller, announced)["state"] == "Success")
    monkeypatch.setattr(JobLifecycle, "_announce", lambda self, job, again=False: None)
    unannounced = api("POST", "/v1/slow/chat/completions", body=CHAT, headers=caller.headers).json()["id"]
    webhooks.run(lambda: generation(api, caller, unannounced)["state"] == "Success")
    table = get_jobs_table()
    assert [table.is_unannounced(table.get(job_id)) for job_id in (announced, unannounced)] == [False, False]
    assert marks_taken_off == []
    monkeypatch.setenv("REDRIVE_AFTER_SECONDS", "0")
    reset_switchyard_caches()
    assert webhooks.sweep()["reannounced_ends"] == []


def test_a_webhook_event_that_could_not_be_stored_keeps_the_end_owed_until_the_sweeper_stores_it(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    from switchyard import wiring
    from switchyard.adapters.webhooks_table import WebhooksTable

    hook = webhook(api, caller, receiver.url)
    ends_counted = []
    monkeypatch.setattr(wiring, "job_ended", lambda job: ends_counted.append(job.job_id))
    reset_switchyard_caches()  # the hook is wired again, with the counting telemetry
    real_create = WebhooksTable.create_delivery

    def refuse(self, *args, **kwargs):
        raise RuntimeError("DynamoDB is throttling")

    monkeypatch.setattr(WebhooksTable, "create_delivery", refuse)
    job_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    webhooks.run(lambda: generation(api, caller, job_id)["state"] == "Success")
    assert api("GET", f"/v1/webhooks/{hook['id']}/deliveries", headers=caller.headers).json()["data"] == []
    monkeypatch.setattr(WebhooksTable, "create_delivery", real_create)
    monkeypatch.setenv("REDRIVE_AFTER_SECONDS", "0")
    reset_switchyard_caches()
    assert webhooks.sweep()["reannounced_ends"] == [job_id]  # the one outbox of job ends kept it
    webhooks.run(lambda: len(receiver.received) == 1)
    assert receiver.received[0].json()["generation_id"] == job_id
    assert webhooks.sweep()["reannounced_ends"] == []
    assert ends_counted == [job_id]  # the re-announcement is not counted as another end


def test_waits_longer_than_sqs_can_delay_are_sent_by_the_sweeper(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    # Every retry is "too long" for an SQS delay here, so it is parked and the sweeper must send it.
    monkeypatch.setenv("WEBHOOK_MAX_QUEUE_DELAY_SECONDS", "0")
    monkeypatch.setenv("WEBHOOK_WAKE_AHEAD_SECONDS", "60")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", "0,3")
    reset_switchyard_caches()
    hook = webhook(api, caller, receiver.url)
    receiver.answer(500, 200)
    api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    )
    webhooks.run(lambda: len(receiver.received) == 1)
    for _ in range(3):
        webhooks.deliver_once()
    assert len(receiver.received) == 1  # parked: no message until the sweeper sends one
    assert webhooks.sweep()["webhooks_woken"] == 1
    webhooks.run(
        lambda: len(receiver.received) == 2, timeout=10
    )  # the message waits out the rest of the delay
    second, first = receiver.received[1], receiver.received[0]
    # Due 2.7-3.3 s after the first (jitter), attempted at most 1 s early.
    assert second.at - first.at >= 1.6 and second.headers["webhook-id"] == first.headers["webhook-id"]


def test_a_message_sqs_refused_is_sent_by_the_sweeper(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    from switchyard.adapters.webhook_queue import SendFailed, WebhookQueue

    monkeypatch.setenv("WEBHOOK_LOST_MESSAGE_SECONDS", "2")
    reset_switchyard_caches()
    hook = webhook(api, caller, receiver.url)
    real_send = WebhookQueue.send

    def refuse(self, message, delay_seconds=0):
        raise SendFailed("throttled")

    monkeypatch.setattr(WebhookQueue, "send", refuse)
    job_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    webhooks.run(lambda: generation(api, caller, job_id)["state"] == "Success")
    monkeypatch.setattr(WebhookQueue, "send", real_send)
    assert webhooks.sweep()["webhooks_woken"] == 0  # not overdue yet
    time.sleep(2.1)
    assert webhooks.sweep()["webhooks_woken"] == 1
    webhooks.run(lambda: len(receiver.received) == 1)
    assert receiver.received[0].json()["generation_id"] == job_id
    assert webhooks.sweep()["reannounced_ends"] == []  # the end itself was announced


def test_a_process_dying_between_storing_and_sending_is_covered_by_the_outbox(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    from switchyard.adapters.webhook_queue import WebhookQueue

    hook = webhook(api, caller, receiver.url)
    real_send = WebhookQueue.send

    def die(self, message, delay_seconds=0):
        raise SystemError("the sandbox froze for good")

    monkeypatch.setattr(WebhookQueue, "send", die)
    job_id = api(
        "POST",
        "/v1/slow/chat/completions",
        body={**CHAT, "metadata": {"webhook_id": hook["id"]}},
        headers=caller.headers,
    ).json()["id"]
    webhooks.run(lambda: generation(api, caller, job_id)["state"] == "Success")
    stored = api("GET", f"/v1/webhooks/{hook['id']}/deliveries", headers=caller.headers).json()["data"]
    assert [d["status"] for d in stored] == ["pending"] and stored[0]["attempt_count"] == 0
    monkeypatch.setattr(WebhookQueue, "send", real_send)
    monkeypatch.setenv("REDRIVE_AFTER_SECONDS", "0")
    reset_switchyard_caches()
    assert webhooks.sweep()["reannounced_ends"] == [job_id]  # announced again: same delivery, sent
    webhooks.run(lambda: len(receiver.received) == 1)
    assert receiver.received[0].headers["webhook-id"] == stored[0]["id"]
