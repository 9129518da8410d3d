"""Background generations and signed webhooks end to end: the local stack (its dispatcher and webhook
delivery pollers, its sweeper timer), the real agent and a fake model server, driven by the official openai
SDK for /v1/slow and by raw httpx for the rest, with receivers on loopback verifying every signature with
the standardwebhooks package and the openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import httpx2
import pytest
from openai import OpenAI
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import admin
from tests.webhook_receiver import WebhookReceiver, running_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def slow_client(local_stack, provider) -> OpenAI:
    """The SDK pointed at the background path: its chat.completions now call /v1/slow/chat/completions."""
    return OpenAI(
        base_url=f"{local_stack.base_url}/v1/slow", api_key=local_stack.api_key, max_retries=0, timeout=30
    )


def new_webhook(http, local_stack, url: str, **fields) -> dict:
    response = http.post("/v1/webhooks", json={"url": url, **fields}, headers=local_stack.headers())
    assert response.status_code == 201, response.text
    return response.json()


def verified(received, secret: str) -> dict:
    payload = Webhook(secret).verify(received.body, received.headers)
    OpenAI(api_key="unused").webhooks.unwrap(received.body, received.headers, secret=secret)
    return payload


def poll(fetch, done, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"not done in {timeout} s: {value}")


def test_slow_chat_through_the_sdk_ends_in_a_signed_generation_completed(
    slow_client, http, local_stack, provider, receiver
):
    hook = new_webhook(http, local_stack, receiver.url)
    raw = slow_client.chat.completions.with_raw_response.create(
        model="fake-llm",
        messages=[{"role": "user", "content": "answer later"}],
        metadata={"webhook_id": hook["id"], "project": "e2e"},
    )
    assert raw.status_code == 202
    generation_id = raw.http_response.json()["id"]
    (received,) = receiver.wait_for(1, timeout=30)
    event = verified(received, hook["secret"])
    assert event["event"] == "generation.completed" and event["generation_id"] == generation_id
    assert received.headers["x-inference-generation-id"] == generation_id
    generation = http.get(f"/v1/generation/{generation_id}", headers=local_stack.headers()).json()
    assert generation == event["data"] and generation["state"] == "Success"
    assert generation["request"]["metadata"] == {"webhook_id": hook["id"], "project": "e2e"}
    seen = httpx.get(
        f"{provider.model_server_url}/_debug/last_request", params={"path": "/v1/chat/completions"}
    )
    assert seen.json()["json"]["metadata"] == {"project": "e2e"}


def test_the_sdk_posts_to_slow_and_async_and_streaming_is_refused(client, http, local_stack, provider):
    answer = client.post(
        "/slow/completions",
        cast_to=httpx2.Response,
        body={"model": "fake-llm", "prompt": "later", "stream": False},
    )
    assert answer.status_code == 202
    generation_id = answer.json()["id"]
    done = poll(
        lambda: http.get(f"/v1/generation/{generation_id}", headers=local_stack.headers()).json(),
        lambda g: g["state"] == "Success",
    )
    assert done["response"]["object"] == "text_completion"
    alias = http.post(
        "/v1/async/chat/completions",
        json={"model": "fake-llm", "messages": [{"role": "user", "content": "x"}]},
        headers=local_stack.headers(),
    )
    assert alias.status_code == 202
    job = http.get(f"/v1/jobs/{alias.json()['id']}", headers=local_stack.headers())
    assert job.status_code == 200  # an ordinary async job underneath
    streaming = http.post(
        "/v1/slow/chat/completions",
        json={"model": "fake-llm", "messages": [{"role": "user", "content": "x"}], "stream": True},
        headers=local_stack.headers(),
    )
    assert streaming.status_code == 400 and streaming.json()["error"]["type"] == "invalid_request"


def test_a_receiver_failing_twice_gets_the_event_once_as_a_success(http, local_stack, provider, receiver):
    hook = new_webhook(http, local_stack, receiver.url)
    receiver.answer(500, 500, 200)
    body = {
        "model": "fake-llm",
        "messages": [{"role": "user", "content": "retry me"}],
        "async": True,
        "metadata": {"webhook_id": hook["id"]},
    }
    http.post("/v1/chat/completions", json=body, headers=local_stack.headers())
    attempts = receiver.wait_for(3, timeout=30)
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    for received in attempts:
        verified(received, hook["secret"])
    log = poll(
        lambda: http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=local_stack.headers()).json()[
            "data"
        ],
        lambda data: data and data[0]["status"] == "succeeded",
    )
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 200]
    time.sleep(2)
    assert len(receiver.received) == 3


def test_embeddings_sync_through_the_sdk_and_async_with_their_event(
    client, http, local_stack, provider, receiver
):
    vectors = client.embeddings.create(model="fake-embed", input=["a lighthouse", "a harbour"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8
    hook = new_webhook(http, local_stack, receiver.url, events=["async-embedding.completed"])
    accepted = http.post(
        "/v1/slow/embeddings",
        json={"model": "fake-embed", "input": "later", "metadata": {"webhook_id": hook["id"]}},
        headers=local_stack.headers(),
    )
    assert accepted.status_code == 202
    (received,) = receiver.wait_for(1, timeout=30)
    event = verified(received, hook["secret"])
    assert event["type"] == "async-embedding.completed" and event["generation_id"] == accepted.json()["id"]


def test_a_batch_with_a_webhook_gets_batch_completed(http, local_stack, provider, receiver):
    hook = new_webhook(http, local_stack, receiver.url)
    requests = [
        {"endpoint": "/v1/completions", "body": {"model": "fake-llm", "prompt": f"item {i}"}}
        for i in range(3)
    ]
    accepted = http.post(
        "/v1/batches",
        json={"metadata": {"webhook_id": hook["id"]}, "requests": requests},
        headers=local_stack.headers(),
    )
    assert accepted.status_code == 202
    (received,) = receiver.wait_for(1, timeout=60)
    event = verified(received, hook["secret"])
    assert event["event"] == "batch.completed" and event["data"]["id"] == accepted.json()["id"]
    assert event["data"]["processed"] == 3


def test_test_rotate_and_redeliver_over_http(http, local_stack, receiver):
    hook = new_webhook(http, local_stack, receiver.url)
    assert http.post(f"/v1/webhooks/{hook['id']}/test", headers=local_stack.headers()).status_code == 202
    (first,) = receiver.wait_for(1)
    assert verified(first, hook["secret"])["type"] == "webhook.test"
    rotated = http.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=local_stack.headers()).json()
    delivery_id = first.headers["webhook-id"]
    again = http.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver", headers=local_stack.headers()
    )
    assert again.status_code == 202
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == delivery_id and second.body == first.body
    verified(second, hook["secret"])  # the old secret still signs during the overlap
    verified(second, rotated["secret"])
    assert len(second.headers["webhook-signature"].split(" ")) == 2


def test_webhook_refusals_over_http(http, local_stack, provider, receiver):
    metadata = http.post(
        "/v1/webhooks", json={"url": "http://169.254.169.254/latest"}, headers=local_stack.headers()
    )
    assert metadata.status_code == 400 and metadata.json()["error"]["param"] == "url"
    private = http.post("/v1/webhooks", json={"url": "http://10.1.2.3/hook"}, headers=local_stack.headers())
    assert private.status_code == 400
    unknown = http.post(
        "/v1/slow/chat/completions",
        json={
            "model": "fake-llm",
            "messages": [{"role": "user", "content": "x"}],
            "metadata": {"webhook_id": "wh_x"},
        },
        headers=local_stack.headers(),
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "invalid_request"
    other = admin(local_stack, "create-account", "webhook-neighbour")
    theirs = new_webhook(http, local_stack, receiver.url, description="not yours")
    stranger = local_stack.headers(other["api_key"])
    assert http.get(f"/v1/webhooks/{theirs['id']}", headers=stranger).status_code == 404
    borrowed = http.post(
        "/v1/completions",
        json={"model": "fake-llm", "prompt": "x", "async": True, "metadata": {"webhook_id": theirs["id"]}},
        headers=stranger,
    )
    assert borrowed.status_code == 400 and "webhook_id" in borrowed.json()["error"]["param"]
