"""`to_http`: the one translation of the error hierarchy into status, headers and body."""

from __future__ import annotations

import json

import pytest
from switchyard.errors import (
    AsyncDisabled,
    AuthenticationFailed,
    InvalidRequest,
    MalformedJson,
    NoProvider,
    UnknownRoute,
    UpstreamError,
    to_http,
)


def test_an_authentication_failure_is_a_401_detail_with_a_bearer_challenge():
    answer = to_http(AuthenticationFailed("Invalid token."))
    assert answer.status == 401
    assert answer.headers == {"Content-Type": "application/json", "WWW-Authenticate": 'Bearer realm="api"'}
    assert json.loads(answer.body) == {"detail": "Invalid token."}


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (MalformedJson("JSON parse error - x"), 400, {"detail": "JSON parse error - x"}),
        (UnknownRoute("/nope"), 404, {"detail": "Not found: /nope"}),
        (
            InvalidRequest("model: Field required", param="model"),
            400,
            {"error": {"message": "model: Field required", "type": "invalid_request", "param": "model"}},
        ),
        (
            NoProvider("m"),
            404,
            {
                "error": {
                    "message": "No online provider serving model 'm' for this user.",
                    "type": "no_provider",
                }
            },
        ),
        (UpstreamError("down"), 502, {"error": {"message": "down", "type": "upstream_error"}}),
        (
            AsyncDisabled(),
            503,
            {
                "error": {
                    "message": "Async processing is not enabled on this server.",
                    "type": "async_disabled",
                }
            },
        ),
    ],
)
def test_api_errors_keep_their_status_and_envelope_and_only_a_401_challenges(error, status, body):
    answer = to_http(error)
    assert (answer.status, json.loads(answer.body)) == (status, body)
    assert answer.headers == {"Content-Type": "application/json"}


def test_anything_else_is_a_bare_500_that_tells_the_client_nothing_of_the_cause():
    answer = to_http(KeyError("secret-table-name"))
    assert answer.status == 500
    assert json.loads(answer.body) == {
        "error": {"message": "Internal server error.", "type": "internal_error"}
    }
    assert "secret-table-name" not in answer.body
