"""The OpenAPI document describes every background and webhook route with its real schemas and errors."""

from __future__ import annotations

import pytest

# Counted against the account's rate limits (api/admission.py): those may also answer 429. A path id of
# another length is a 400.
ROUTES = {
    ("post", "/v1/slow/chat/completions"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/slow/completions"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/slow/embeddings"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/async/chat/completions"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/async/completions"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/async/embeddings"): {"202", "400", "401", "429", "503"},
    ("post", "/v1/embeddings"): {"200", "202", "400", "401", "404", "409", "415", "429", "4XX", "502", "503"},
    ("get", "/v1/generation/{generation_id}"): {"200", "400", "401", "404"},
    ("post", "/v1/webhooks"): {"201", "400", "401", "409", "429"},
    ("get", "/v1/webhooks"): {"200", "400", "401"},
    ("get", "/v1/webhooks/{webhook_id}"): {"200", "400", "401", "404"},
    ("delete", "/v1/webhooks/{webhook_id}"): {"200", "400", "401", "404"},
    ("post", "/v1/webhooks/{webhook_id}/rotate-secret"): {"200", "400", "401", "404", "409", "429"},
    ("post", "/v1/webhooks/{webhook_id}/test"): {"202", "400", "401", "404", "429"},
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): {"200", "400", "401", "404"},
    ("get", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): {"200", "400", "401", "404"},
    ("post", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): {
        "202",
        "400",
        "401",
        "404",
        "429",
    },
}


@pytest.fixture
def spec(api) -> dict:
    from openapi_spec_validator import validate

    document = api("GET", "/openapi.json").json()
    validate(document)
    return document


def _schema(spec: dict, response: dict) -> dict:
    schema = response["content"]["application/json"]["schema"]
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize("method, path", sorted(ROUTES))
def test_every_new_route_is_documented_with_its_statuses(spec, method, path):
    operation = spec["paths"][path][method]
    assert set(operation["responses"]) == ROUTES[(method, path)]
    assert operation["summary"]


def test_the_webhook_create_body_and_answer_are_their_real_schemas(spec):
    operation = spec["paths"]["/v1/webhooks"]["post"]
    body = _schema(spec, operation["requestBody"])
    assert set(body["properties"]) == {"url", "events", "description"} and body["required"] == ["url"]
    created = _schema(spec, operation["responses"]["201"])
    assert {"id", "url", "events", "status", "secret", "previous_secret_expires_at"} <= set(
        created["properties"]
    )


def test_generation_and_delivery_answers_are_their_real_schemas(spec):
    generation = _schema(spec, spec["paths"]["/v1/generation/{generation_id}"]["get"]["responses"]["200"])
    assert set(generation["properties"]) == {
        "id", "state", "stateMessage", "request", "response", "model", "createdAt", "dispatchedAt", "finishedAt",
    }  # fmt: skip
    assert generation["properties"]["state"]["enum"] == [
        "Queued",
        "InProgress",
        "Success",
        "Failed",
        "Canceled",
    ]
    delivery = _schema(
        spec, spec["paths"]["/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"]["get"]["responses"]["200"]
    )
    assert {"id", "status", "attempts", "next_attempt_at", "attempt_count"} <= set(delivery["properties"])
    accepted = _schema(spec, spec["paths"]["/v1/slow/chat/completions"]["post"]["responses"]["202"])
    assert {"id", "status"} <= set(accepted["properties"])
    slow_body = _schema(spec, spec["paths"]["/v1/slow/chat/completions"]["post"]["requestBody"])
    assert "messages" in slow_body["properties"]


def test_the_events_a_receiver_gets_are_documented_as_openapi_webhooks(spec):
    from switchyard.webhook_model import EVENT_TYPES

    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    delivery = spec["webhooks"]["generation.completed"]["post"]
    assert {p["name"] for p in delivery["parameters"]} >= {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    event = spec["components"]["schemas"]["WebhookEvent"]
    assert {"event", "type", "timestamp", "webhook_id", "generation_id", "data"} == set(event["properties"])
