"""Webhook rules without I/O: signatures (checked by two independent verifiers), the retry schedule,
Retry-After, stable delivery ids, event bodies, what a provider sees, and GenerationForClient."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from openai import OpenAI
from openai._exceptions import InvalidWebhookSignatureError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from switchyard.errors import InvalidRequest
from switchyard.generation import generation_for_client
from switchyard.job_model import Job, JobStatus
from switchyard.services.webhook_delivery import next_delay, retry_after_seconds
from switchyard.settings import STANDARD_RETRY_SCHEDULE
from switchyard.validation import gateway_fields, provider_body, webhook_id_of
from switchyard.webhook_model import (
    EndpointStatus,
    Event,
    EventType,
    WebhookEndpoint,
    delivery_id_for,
    iso_ms,
    new_secret,
)
from switchyard.webhook_signing import delivery_headers

SCHEDULE = tuple(int(s) for s in STANDARD_RETRY_SCHEDULE.split(","))


def headers_for(
    secrets: list[str], body: str, webhook_id: str = "msg_1", timestamp: int | None = None
) -> dict:
    return delivery_headers(
        secrets=secrets,
        webhook_id=webhook_id,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        body=body,
        event="generation.completed",
        endpoint_id="wh_1",
        generation_id="job_1",
    )


# ------------------------------------------------------------------ signatures


def test_given_a_secret_then_it_is_whsec_and_32_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_given_a_signed_body_then_both_independent_verifiers_accept_it():
    secret, body = (
        new_secret(),
        json.dumps({"event": "generation.completed", "data": {"x": "é"}}, ensure_ascii=False),
    )
    headers = headers_for([secret], body)

    assert Webhook(secret).verify(body.encode(), headers)["data"]["x"] == "é"
    OpenAI(api_key="unused").webhooks.unwrap(body, headers, secret=secret)


def test_given_the_signature_then_it_is_the_spec_hmac_of_id_timestamp_and_body():
    secret, body = new_secret(), '{"a":1}'
    headers = headers_for([secret], body, "msg_abc", 1_700_000_000)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, b'msg_abc.1700000000.{"a":1}', hashlib.sha256).digest()
    ).decode()

    assert headers["webhook-signature"] == f"v1,{expected}"
    assert headers["webhook-id"] == "msg_abc" and headers["webhook-timestamp"] == "1700000000"


def test_given_two_active_secrets_then_two_space_separated_signatures_each_verify():
    old, new, body = new_secret(), new_secret(), '{"event":"webhook.test"}'
    headers = headers_for([new, old], body)

    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
        OpenAI(api_key="unused").webhooks.unwrap(body, headers, secret=secret)


def test_given_a_changed_body_or_a_stale_timestamp_then_verification_fails():
    secret, body = new_secret(), '{"a":1}'
    headers = headers_for([secret], body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers)
    with pytest.raises(InvalidWebhookSignatureError):
        OpenAI(api_key="unused").webhooks.unwrap('{"a": 1}', headers, secret=secret)  # re-serialised
    stale = headers_for([secret], body, timestamp=int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_given_the_headers_then_inference_net_headers_come_too():
    headers = headers_for([new_secret()], "{}")
    assert headers["x-inference-event"] == "generation.completed"
    assert headers["x-inference-webhook-id"] == "wh_1"
    assert headers["x-inference-generation-id"] == "job_1"
    assert headers["content-type"] == "application/json"


# ------------------------------------------------------------------ events


def test_given_the_same_happening_then_the_delivery_id_is_the_same_and_sorts_by_time():
    assert delivery_id_for("job:job_1:0", 1_700_000_000_000) == delivery_id_for(
        "job:job_1:0", 1_700_000_000_000
    )
    assert delivery_id_for("job:job_1:0", 1) != delivery_id_for("job:job_1:1", 1)
    assert delivery_id_for("z", 1_700_000_000_000) < delivery_id_for("a", 1_700_000_000_001)
    assert delivery_id_for("x", 1).startswith("msg_")


def test_given_an_event_then_its_body_has_the_inference_net_envelope():
    event = Event(
        EventType.GENERATION_COMPLETED, "wh_1", "job:job_1:0", 1_700_000_000_123, {"id": "job_1"}, "job_1"
    )
    body = json.loads(event.body())

    assert body == {
        "event": "generation.completed",
        "type": "generation.completed",
        "timestamp": "2023-11-14T22:13:20.123Z",
        "webhook_id": "wh_1",
        "generation_id": "job_1",
        "data": {"id": "job_1"},
    }
    test = json.loads(Event(EventType.TEST, "wh_1", "t", 1, {}).body())
    assert "generation_id" not in test


def test_given_an_endpoint_then_its_filter_and_secrets_apply():
    endpoint = WebhookEndpoint("wh_1", "acct", "https://x", "whsec_new", 0, events=("batch.completed",))
    assert endpoint.accepts("batch.completed") and endpoint.accepts("webhook.test")
    assert not endpoint.accepts("generation.completed")
    assert WebhookEndpoint("wh_1", "acct", "https://x", "s", 0).accepts("generation.completed")
    endpoint.previous_secret, endpoint.previous_secret_expires_ms = "whsec_old", 1_000
    assert endpoint.signing_secrets(999) == ["whsec_new", "whsec_old"]
    assert endpoint.signing_secrets(1_000) == ["whsec_new"]
    assert endpoint.public(999)["previous_secret_expires_at"] == iso_ms(1_000)
    assert endpoint.public(1_000)["previous_secret_expires_at"] is None
    assert "secret" not in endpoint.public(0) and endpoint.status == EndpointStatus.ENABLED


# ------------------------------------------------------------------ the schedule


def test_given_the_standard_schedule_then_it_is_ten_attempts_over_about_three_days():
    assert SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert 3 * 86400 < sum(SCHEDULE) < 3.2 * 86400


@pytest.mark.parametrize("failed, expected", [(0, 5), (1, 300), (2, 1800), (8, 86400)])
def test_given_a_failed_attempt_then_the_next_waits_the_scheduled_delay_within_ten_percent(failed, expected):
    delays = [next_delay(SCHEDULE, failed, None, random.Random(seed)) for seed in range(50)]  # noqa: S311 - jitter, not a secret
    assert all(0.9 * expected <= d <= 1.1 * expected for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_given_the_last_attempt_failed_then_there_is_no_next():
    assert next_delay(SCHEDULE, len(SCHEDULE) - 1, None) is None
    assert next_delay((0, 1), 0, None) == 1.0  # short delays are not jittered


def test_given_retry_after_then_it_wins_when_longer_and_is_capped_at_a_day():
    assert next_delay(SCHEDULE, 0, "120") == 120.0
    assert 270 <= next_delay(SCHEDULE, 1, "2") <= 330  # shorter than the schedule: the schedule wins
    assert next_delay(SCHEDULE, 0, str(10 * 86400)) == 86400.0


def test_given_retry_after_forms_then_seconds_and_http_dates_parse():
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now, tz=UTC) + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds("30") == 30.0
    assert 88 <= retry_after_seconds(later, now) <= 91
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


# ------------------------------------------------------------------ what the provider sees


def test_given_metadata_with_a_webhook_then_the_provider_gets_the_rest_unchanged():
    data = {"model": "m", "async": True, "metadata": {"webhook_id": "wh_1", "project": "p"}}
    assert provider_body(data) == {"model": "m", "metadata": {"project": "p"}}
    assert provider_body({"model": "m", "metadata": {"webhook_id": "wh_1"}}) == {"model": "m"}
    assert provider_body({"model": "m", "metadata": {}}) == {"model": "m"}
    assert provider_body({"model": "m", "metadata": {"a": "b"}}) == {"model": "m", "metadata": {"a": "b"}}
    assert gateway_fields(data) == {"async": True, "metadata": data["metadata"]}
    assert gateway_fields({"model": "m", "metadata": {"a": "b"}}) == {}


def test_given_a_webhook_id_of_the_wrong_type_then_it_is_refused_naming_the_field():
    assert webhook_id_of({"metadata": {"webhook_id": "wh_1"}}) == "wh_1"
    assert webhook_id_of({"metadata": {"a": 1}}) is None and webhook_id_of({"metadata": "x"}) is None
    with pytest.raises(InvalidRequest) as refused:
        webhook_id_of({"metadata": {"webhook_id": 7}}, "requests[3].body.")
    assert refused.value.param == "requests[3].body.metadata.webhook_id"


# ------------------------------------------------------------------ GenerationForClient


def job(status: JobStatus, **values) -> Job:
    base = dict(
        job_id="job_1",
        account_id="acct",
        status=status,
        endpoint="/v1/chat/completions",
        inference_type="LLM",
        service_type="llm",
        model="m",
        created_ms=1_700_000_000_000,
        queued_ms=1_700_000_000_000,
    )
    return Job(**{**base, **values})


@pytest.mark.parametrize(
    "status, state",
    [
        (JobStatus.QUEUED, "Queued"),
        (JobStatus.PROCESSING, "InProgress"),
        (JobStatus.PROCESSED, "Success"),
        (JobStatus.FAILED, "Failed"),
        (JobStatus.CANCELED, "Canceled"),
    ],
)
def test_given_each_job_status_then_the_generation_state_is_inference_nets(status, state):
    shown = generation_for_client(
        job(status, error_message="boom" if status == JobStatus.FAILED else None), {}, {"x": 1}
    )
    assert shown["state"] == state
    assert (shown["response"] is not None) == (status == JobStatus.PROCESSED)
    assert (shown["stateMessage"] is not None) == (status in (JobStatus.FAILED, JobStatus.CANCELED))


def test_given_a_finished_job_then_times_are_iso_with_milliseconds():
    shown = generation_for_client(
        job(JobStatus.PROCESSED, started_ms=1_700_000_000_500, finished_ms=1_700_000_001_250),
        {"model": "m"},
        {},
    )
    assert shown["createdAt"] == "2023-11-14T22:13:20.000Z"
    assert shown["dispatchedAt"] == "2023-11-14T22:13:20.500Z"
    assert shown["finishedAt"] == "2023-11-14T22:13:21.250Z"


class ReadsCounted:
    """A media store whose reads are counted: a large answer must not be read at all."""

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects
        self.reads: list[str] = []

    def get(self, key: str):
        from switchyard.adapters.media_store import StoredObject

        self.reads.append(key)
        return StoredObject(self.objects[key], "application/json")


def test_given_an_answer_kept_in_s3_then_it_is_inlined_up_to_the_bound_and_linked_above_it():
    from switchyard.generation import generation_of

    answer = json.dumps({"choices": [{"message": {"content": "x" * 2000}}]})
    store = ReadsCounted({"acct/job_1/r": answer.encode(), "acct/job_1/b": b'{"model": "m"}'})
    stored = job(
        JobStatus.PROCESSED, result_key="acct/job_1/r", result_bytes=len(answer), body_key="acct/job_1/b"
    )

    small = generation_of(stored, store, "https://gw", inline_limit_bytes=len(answer))
    assert small["response"] == json.loads(answer)
    assert "responseUrl" not in small

    stored.result = None
    store.reads.clear()
    large = generation_of(stored, store, "https://gw", inline_limit_bytes=len(answer) - 1)
    assert large["state"] == "Success" and large["response"] is None
    assert large["responseUrl"].startswith("https://gw/api/inference/assets/job_1")
    assert large["responseBytes"] == len(answer)
    assert store.reads == ["acct/job_1/b"]  # the request only: the answer is never read


# ------------------------------------------------------------------ coalesced sends


def test_given_concurrent_sends_then_they_go_out_in_batches_of_ten(monkeypatch):
    from switchyard.adapters import webhook_queue

    calls: list[int] = []

    class FakeSqs:
        def send_message(self, **kwargs):
            calls.append(1)

        def send_message_batch(self, **kwargs):
            calls.append(len(kwargs["Entries"]))
            return {"Failed": [{"Id": "0", "Message": "nope"}]} if len(calls) == 1 else {}

    monkeypatch.setattr(webhook_queue.aws, "client", lambda service: FakeSqs())
    queue = webhook_queue.WebhookQueue("https://sqs/q", linger_seconds=0.2)
    errors: list[Exception] = []

    def send(n: int) -> None:
        try:
            queue.send(webhook_queue.DeliveryMessage("wh_1", f"msg_{n}"))
        except webhook_queue.SendFailed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sum(calls) == 25 and max(calls) == 10 and len(calls) <= 4
    assert len(errors) == 1  # the one SQS refused is reported to its own sender only
