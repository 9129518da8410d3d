"""Bodies, media types and methods a fuzzer (or an attacker) sends: each gets a clear 4xx in the documented
envelope, never a 500, and nothing is stored."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import http_event, lambda_context

JSON_ROUTES = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/images/generations",
    "/v1/audio/speech",
    "/v1/batches",
    "/v1/workflows/runs",
    "/api/inference/agent/heartbeat/",
]


def raw_call(handler, caller, path: str, body: bytes, content_type: str | None, method: str = "POST"):
    headers = {**caller.headers, **({"content-type": content_type} if content_type else {})}
    event = http_event(method, path, headers=headers)
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    return handler(event, lambda_context())


@pytest.fixture
def handler(aws_stack):
    from switchyard_local.handler_loading import load_handler

    from tests.conftest import ROOT

    return load_handler(ROOT / "functions" / "api", "app.handler")


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"\xff\x00", "application/json", 400, "not valid UTF-8"),
        (b'{"model": "\xe9"}', None, 400, "not valid UTF-8"),
        (b"abc", "multipart/form-data", 415, "Unsupported media type"),
        (b"a=b", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
        (b'{"model": "m"}', "text/plain", 415, "Unsupported media type"),
        (b'{"model": NaN}', "application/json", 400, "NaN is not valid JSON"),
        (b'{"model": "m", "n": 1e999}', "application/json", 400, "out of range"),
        (b'{"model": "\\ud800"}', "application/json", 400, "lone UTF-16 surrogate"),
        (b"[" * 50_000, "application/json", 400, "JSON parse error"),
        (b"{", "application/json; charset=utf-8", 400, "JSON parse error"),
    ],
)
def test_hostile_bodies_on_json_routes_are_clear_4xx(handler, caller, path, body, content_type, status, says):
    result = raw_call(handler, caller, path, body, content_type)
    assert result["statusCode"] == status, result
    assert says in result["body"]
    assert '"detail"' in result["body"]


def test_json_with_a_json_suffix_media_type_is_accepted(handler, caller):
    result = raw_call(handler, caller, "/v1/chat/completions", b'{"model": "m"}', "application/vnd.api+json")
    assert result["statusCode"] == 400  # messages missing: the body was read as JSON
    assert "messages" in result["body"]


def test_multipart_route_without_a_boundary_is_a_clear_400(handler, caller):
    result = raw_call(handler, caller, "/v1/audio/transcriptions", b"abc", "multipart/form-data")
    assert result["statusCode"] == 400, result
    assert "boundary" in result["body"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/models", "GET"),
        ("DELETE", "/v1/jobs/job_0123456789abcdef012345", "GET"),
        ("GET", "/v1/chat/completions", "POST"),
        ("PATCH", "/v1/batches", "GET, POST"),
    ],
)
def test_known_path_with_another_method_is_405_with_allow(api, caller, method, path, allow):
    response = api(method, path, headers=caller.headers)
    assert response.status == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": f'Method "{method}" not allowed.'}


def test_unknown_path_is_still_404(api, caller):
    response = api("PUT", "/v1/nothing-here", headers=caller.headers)
    assert response.status == 404
    assert "detail" in response.json()


def test_refused_bodies_store_nothing(handler, caller, aws_stack):
    import boto3

    for path in ("/v1/chat/completions", "/v1/batches"):
        raw_call(handler, caller, path, b'{"model": NaN, "async": true}', "application/json")
    jobs = boto3.resource("dynamodb").Table(aws_stack.environment["JOBS_TABLE"]).scan()["Items"]
    assert jobs == []
