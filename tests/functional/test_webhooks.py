"""Webhooks on moto: endpoints, signed deliveries verified by two independent libraries, the retry schedule,
410, redirects, redelivery, rotation, SSRF refusals, cross-account ids, and what reaches the provider.

The real ApiFunction, DispatcherFunction, WebhookDeliveryFunction and SweeperFunction handlers run
in-process; receivers are loopback servers that record every byte they get.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from openai import OpenAI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.functional.webhooks_harness import WebhooksHarness
from tests.webhook_receiver import Answer, WebhookReceiver, running_receiver

# Fast schedule: at once, then 1 s, 1 s, 1 s. The real one is Standard Webhooks' (about 3 days).
JOB_SETTINGS = {
    "NO_PROVIDER_GRACE_SECONDS": "0.3",
    "JOB_UPSTREAM_TIMEOUT_SECONDS": "2",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0,1,1,1",
}


def chat(webhook_id: str | None = None, **metadata) -> dict:
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello"}], "async": True}
    if webhook_id is not None:
        metadata["webhook_id"] = webhook_id
    if metadata:
        body["metadata"] = metadata
    return body


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def webhooks(jobs_env, harness) -> WebhooksHarness:
    return WebhooksHarness(jobs_env.environment, harness)


def create_webhook(api, caller, url: str, **fields) -> dict:
    response = api("POST", "/v1/webhooks", body={"url": url, **fields}, headers=caller.headers)
    assert response.status == 201, response.content
    return response.json()


def deliveries(api, caller, webhook_id: str) -> list[dict]:
    response = api("GET", f"/v1/webhooks/{webhook_id}/deliveries", headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()["data"]


def latest_status(api, caller, webhook_id: str) -> str | None:
    found = deliveries(api, caller, webhook_id)
    return found[0]["status"] if found else None


def verify_with_both_libraries(received, *secrets: str) -> dict:
    """The body, verified by the Standard Webhooks reference library and by the openai SDK."""
    for secret in secrets:
        payload = Webhook(secret).verify(received.body, received.headers)
        OpenAI(api_key="unused").webhooks.unwrap(received.body, received.headers, secret=secret)
    return payload


# ------------------------------------------------------------------ endpoints


def test_a_new_webhook_answers_201_with_a_whsec_secret_shown_once(api, caller, receiver):
    created = create_webhook(api, caller, receiver.url, events=["generation.completed"], description="mine")
    assert created["id"].startswith("wh_") and created["object"] == "webhook"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    assert created["events"] == ["generation.completed"] and created["status"] == "enabled"
    shown = api("GET", f"/v1/webhooks/{created['id']}", headers=caller.headers).json()
    assert "secret" not in shown and shown["url"] == receiver.url and shown["description"] == "mine"
    listed = api("GET", "/v1/webhooks", headers=caller.headers).json()
    assert [w["id"] for w in listed["data"]] == [created["id"]] and "secret" not in listed["data"][0]


def test_deleting_a_webhook_makes_it_404(api, caller, receiver):
    webhook_id = create_webhook(api, caller, receiver.url)["id"]
    deleted = api("DELETE", f"/v1/webhooks/{webhook_id}", headers=caller.headers)
    assert deleted.status == 200 and deleted.json() == {
        "id": webhook_id,
        "object": "webhook.deleted",
        "deleted": True,
    }
    assert api("GET", f"/v1/webhooks/{webhook_id}", headers=caller.headers).status == 404
    assert api("DELETE", f"/v1/webhooks/{webhook_id}", headers=caller.headers).status == 404


def test_another_accounts_webhook_is_404_everywhere(api, caller, new_caller, receiver):
    webhook_id = create_webhook(api, caller, receiver.url)["id"]
    other = new_caller("other")
    for method, path in [
        ("GET", f"/v1/webhooks/{webhook_id}"),
        ("DELETE", f"/v1/webhooks/{webhook_id}"),
        ("POST", f"/v1/webhooks/{webhook_id}/rotate-secret"),
        ("POST", f"/v1/webhooks/{webhook_id}/test"),
        ("GET", f"/v1/webhooks/{webhook_id}/deliveries"),
    ]:
        assert api(method, path, headers=other.headers).status == 404, path
    assert api("GET", "/v1/webhooks", headers=other.headers).json()["data"] == []


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["job.done"]}, "events"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x", "colour": "red"}, "colour"),
    ],
)
def test_malformed_webhooks_are_400_naming_the_field(api, caller, body, param):
    response = api("POST", "/v1/webhooks", body=body, headers=caller.headers)
    assert response.status == 400, response.content
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00:ec2::254]/latest/meta-data/",  # IPv6 metadata
        "http://10.0.0.7/hook",  # private
        "http://192.168.1.2:8080/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://127.0.0.1:9000/hook",  # loopback, refused under the public policy
        "http://localhost:9000/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",  # IPv4-mapped private
        "http://0.0.0.0/hook",
    ],
)
def test_webhook_urls_on_private_or_metadata_addresses_are_refused(api, caller, monkeypatch, url):
    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("PROVIDER_ENDPOINT_POLICY", "public")
    reset_switchyard_caches()
    response = api("POST", "/v1/webhooks", body={"url": url}, headers=caller.headers)
    assert response.status == 400, response.content
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == "url"
    assert api("GET", "/v1/webhooks", headers=caller.headers).json()["data"] == []


# ------------------------------------------------------------------ choosing a webhook


def test_unknown_or_another_accounts_webhook_is_400_and_nothing_is_queued(
    api, caller, new_caller, harness, receiver
):
    theirs = create_webhook(api, new_caller("other"), receiver.url)["id"]
    for webhook_id in (theirs, "wh_nope", 42):
        for path, body in [
            ("/v1/chat/completions", chat(webhook_id)),
            ("/v1/slow/chat/completions", {**chat(webhook_id), "async": False}),
            (
                "/v1/batches",
                {
                    "metadata": {"webhook_id": webhook_id},
                    "requests": [
                        {"endpoint": "/v1/completions", "body": {"model": "fake-llm", "prompt": "x"}}
                    ],
                },
            ),
            (
                "/v1/batches",
                {
                    "requests": [
                        {
                            "endpoint": "/v1/completions",
                            "body": {
                                "model": "fake-llm",
                                "prompt": "x",
                                "metadata": {"webhook_id": webhook_id},
                            },
                        }
                    ]
                },
            ),
        ]:
            response = api("POST", path, body=body, headers=caller.headers)
            assert response.status == 400, (path, response.content)
            assert response.json()["error"]["type"] == "invalid_request"
            assert "webhook_id" in response.json()["error"]["param"]
    assert harness.depth() == 0
    assert api("GET", "/v1/jobs", headers=caller.headers).json()["data"] == []
    assert api("GET", "/v1/batches", headers=caller.headers).json()["data"] == []


def test_webhook_id_never_reaches_the_provider_and_the_rest_of_metadata_does(
    api, caller, webhooks, online_provider, receiver
):
    webhook_id = create_webhook(api, caller, receiver.url)["id"]
    kept = api("POST", "/v1/chat/completions", body=chat(webhook_id, project="alpha"), headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 1)
    assert online_provider.last_request("/v1/chat/completions")["json"]["metadata"] == {"project": "alpha"}
    dropped = api("POST", "/v1/chat/completions", body=chat(webhook_id), headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 2)
    sent = online_provider.last_request("/v1/chat/completions")["json"]
    assert "metadata" not in sent and "async" not in sent
    # The generation still shows the request as the caller sent it.
    generation = api("GET", f"/v1/generation/{kept.json()['id']}", headers=caller.headers).json()
    assert generation["request"]["metadata"] == {"project": "alpha", "webhook_id": webhook_id}
    assert dropped.status == 202


# ------------------------------------------------------------------ delivery


def test_a_delivery_verifies_with_standardwebhooks_and_the_openai_sdk(
    api, caller, webhooks, online_provider, receiver
):
    created = create_webhook(api, caller, receiver.url)
    job_id = api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers).json()[
        "id"
    ]
    webhooks.run(lambda: len(receiver.received) == 1)
    received = receiver.received[0]
    payload = verify_with_both_libraries(received, created["secret"])
    assert payload["event"] == payload["type"] == "generation.completed"
    assert payload["webhook_id"] == created["id"] and payload["generation_id"] == job_id
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert data["id"] == job_id and data["state"] == "Success" and data["model"] == "fake-llm"
    assert data["response"]["choices"][0]["message"]["content"]
    assert data["request"]["messages"] == [{"role": "user", "content": "hello"}]
    assert data["dispatchedAt"] and data["finishedAt"] and data["stateMessage"] is None
    headers = received.headers
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30
    assert headers["x-inference-event"] == "generation.completed"
    assert headers["x-inference-webhook-id"] == created["id"]
    assert headers["x-inference-generation-id"] == job_id
    assert headers["content-type"] == "application/json"
    # The same object as GET /v1/generation/<id>.
    assert api("GET", f"/v1/generation/{job_id}", headers=caller.headers).json() == data
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(received.body, received.headers)
    log = deliveries(api, caller, created["id"])
    assert [d["status"] for d in log] == ["succeeded"] and log[0]["id"] == headers["webhook-id"]


def test_500_twice_then_200_is_one_success_with_the_same_webhook_id_every_time(
    api, caller, webhooks, online_provider, receiver
):
    created = create_webhook(api, caller, receiver.url)
    receiver.answer(500, 500, 200)
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "succeeded")
    time.sleep(1.5)  # nothing more arrives once it succeeded
    webhooks.deliver_once()
    attempts = receiver.received
    assert len(attempts) == 3
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1
    for received in attempts:
        verify_with_both_libraries(received, created["secret"])
    delivery = deliveries(api, caller, created["id"])[0]
    assert delivery["attempt_count"] == 3 and delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["attempts"][0]["error"].startswith("HTTP 500")


def test_410_disables_the_webhook_and_a_2xx_test_enables_it_again(
    api, caller, webhooks, online_provider, receiver
):
    created = create_webhook(api, caller, receiver.url)
    receiver.answer(410)
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "failed")
    shown = api("GET", f"/v1/webhooks/{created['id']}", headers=caller.headers).json()
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
    assert "410" in deliveries(api, caller, created["id"])[0]["reason"]
    # Later events are not sent to a disabled endpoint; they fail at once (and stay redeliverable).
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: len(deliveries(api, caller, created["id"])) == 2)
    assert len(receiver.received) == 1
    assert deliveries(api, caller, created["id"])[0]["reason"].startswith("endpoint disabled")
    tested = api("POST", f"/v1/webhooks/{created['id']}/test", headers=caller.headers)
    assert tested.status == 202
    webhooks.run(lambda: len(receiver.received) == 2)
    webhooks.run(
        lambda: (
            api("GET", f"/v1/webhooks/{created['id']}", headers=caller.headers).json()["status"] == "enabled"
        )
    )
    assert receiver.received[1].json()["event"] == "webhook.test"


def test_a_redirect_is_not_followed_and_counts_as_a_failure(api, caller, webhooks, online_provider, receiver):
    created = create_webhook(api, caller, receiver.url)
    receiver.answer(Answer(302, {"location": receiver.url + "/elsewhere"}), 200)
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "succeeded")
    assert [r.path for r in receiver.received] == ["/hooks", "/hooks"]  # never /hooks/elsewhere
    first = deliveries(api, caller, created["id"])[0]["attempts"][0]
    assert first["status_code"] == 302 and "not followed" in first["error"]


def test_redelivery_sends_the_same_event_again(api, caller, webhooks, online_provider, receiver):
    created = create_webhook(api, caller, receiver.url)
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 1)
    delivery_id = receiver.received[0].headers["webhook-id"]
    response = api(
        "POST", f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}/redeliver", headers=caller.headers
    )
    assert response.status == 202 and response.json()["id"] == delivery_id
    webhooks.run(lambda: len(receiver.received) == 2)
    again = receiver.received[1]
    assert again.headers["webhook-id"] == delivery_id and again.body == receiver.received[0].body
    verify_with_both_libraries(again, created["secret"])
    webhooks.run(
        lambda: (
            api(
                "GET", f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}", headers=caller.headers
            ).json()["attempt_count"]
            == 2
        )
    )
    shown = api(
        "GET", f"/v1/webhooks/{created['id']}/deliveries/{delivery_id}", headers=caller.headers
    ).json()
    assert [a["trigger"] for a in shown["attempts"]] == ["scheduled", "manual"]
    missing = api(
        "POST", f"/v1/webhooks/{created['id']}/deliveries/msg_nope/redeliver", headers=caller.headers
    )
    assert missing.status == 404


def test_an_exhausted_delivery_is_failed_redeliverable_and_the_result_stays_readable(
    api, caller, webhooks, online_provider, receiver
):
    created = create_webhook(api, caller, receiver.url)
    receiver.answer(503, 503, 503, 503)
    job_id = api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers).json()[
        "id"
    ]
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "failed", timeout=20)
    delivery = deliveries(api, caller, created["id"])[0]
    assert delivery["attempt_count"] == 4 and delivery["reason"].startswith("gave up after 4 attempts")
    assert api("GET", f"/v1/generation/{job_id}", headers=caller.headers).json()["state"] == "Success"
    failed = api(
        "GET", f"/v1/webhooks/{created['id']}/deliveries", headers=caller.headers, query={"status": "failed"}
    )
    assert [d["id"] for d in failed.json()["data"]] == [delivery["id"]]
    api("POST", f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver", headers=caller.headers)
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "succeeded")


def test_retry_after_is_honoured(api, caller, webhooks, online_provider, receiver):
    created = create_webhook(api, caller, receiver.url)
    receiver.answer(Answer(429, {"retry-after": "3"}), 200)
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: latest_status(api, caller, created["id"]) == "succeeded", timeout=20)
    first, second = receiver.received
    assert second.at - first.at >= 2.9  # the schedule said 1 s; the receiver asked for 3


def test_rotation_signs_with_both_secrets_during_the_overlap(
    api, caller, webhooks, online_provider, receiver
):
    created = create_webhook(api, caller, receiver.url)
    rotated = api("POST", f"/v1/webhooks/{created['id']}/rotate-secret", headers=caller.headers)
    assert rotated.status == 200
    new = rotated.json()
    assert new["secret"] != created["secret"] and new["secret"].startswith("whsec_")
    assert new["previous_secret_expires_at"] and new["secret_rotated_at"]
    api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 1)
    received = receiver.received[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify_with_both_libraries(received, created["secret"], new["secret"])


def test_after_the_overlap_only_the_new_secret_signs(
    api, caller, webhooks, online_provider, receiver, monkeypatch
):
    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("WEBHOOK_SECRET_OVERLAP_SECONDS", "0")
    reset_switchyard_caches()
    created = create_webhook(api, caller, receiver.url)
    new = api("POST", f"/v1/webhooks/{created['id']}/rotate-secret", headers=caller.headers).json()
    api("POST", f"/v1/webhooks/{created['id']}/test", headers=caller.headers)
    webhooks.run(lambda: len(receiver.received) == 1)
    received = receiver.received[0]
    verify_with_both_libraries(received, new["secret"])
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(received.body, received.headers)


def test_a_test_event_is_signed_and_named_webhook_test(api, caller, webhooks, receiver):
    created = create_webhook(api, caller, receiver.url, events=["batch.completed"])
    response = api("POST", f"/v1/webhooks/{created['id']}/test", headers=caller.headers)
    assert response.status == 202 and response.json()["event"] == "webhook.test"
    webhooks.run(lambda: len(receiver.received) == 1)
    payload = verify_with_both_libraries(receiver.received[0], created["secret"])
    assert payload["type"] == "webhook.test" and payload["data"]["webhook_id"] == created["id"]
    assert "generation_id" not in payload and "x-inference-generation-id" not in receiver.received[0].headers


def test_an_event_filter_keeps_other_events_away(api, caller, webhooks, online_provider, receiver):
    created = create_webhook(api, caller, receiver.url, events=["batch.completed"])
    job_id = api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers).json()[
        "id"
    ]
    webhooks.run(
        lambda: api("GET", f"/v1/jobs/{job_id}", headers=caller.headers).json()["status"] == "PROCESSED"
    )
    for _ in range(5):
        webhooks.deliver_once()
    assert receiver.received == [] and deliveries(api, caller, created["id"]) == []


def test_a_slow_receiver_times_out_and_is_retried(api, caller, webhooks, online_provider, monkeypatch):
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from switchyard_agent.serving import serve_in_thread

    from tests.conftest import reset_switchyard_caches

    calls = []

    async def slow(request):
        calls.append(time.time())
        if len(calls) == 1:
            await asyncio.sleep(3)
        return Response("ok")

    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.5")
    reset_switchyard_caches()
    with serve_in_thread(Starlette(routes=[Route("/", slow, methods=["POST"])])) as url:
        created = create_webhook(api, caller, url + "/")
        api("POST", "/v1/chat/completions", body=chat(created["id"]), headers=caller.headers)
        webhooks.run(lambda: latest_status(api, caller, created["id"]) == "succeeded", timeout=20)
    first = deliveries(api, caller, created["id"])[0]["attempts"][0]
    assert first["status_code"] is None and "no answer within 0.5 s" in first["error"]
