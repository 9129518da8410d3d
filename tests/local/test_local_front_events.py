"""The ASGI front's translation: HTTP request -> HTTP API payload-2.0 event -> HTTP response."""

from __future__ import annotations

import base64
import json

import pytest
from starlette.testclient import TestClient
from switchyard.front import create_app
from switchyard.front.http_api_event import is_text_content_type, response_from_result
from switchyard.settings import get_settings

# The front reads its settings (timeouts, the Lambda runtime's names) like every function does.
pytestmark = pytest.mark.usefixtures("settings_environment")


def echo_handler(event: dict, context) -> dict:
    """Answers with the event it got (and a few context attributes) as JSON."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "event": event,
                "function_name": context.function_name,
                "remaining": context.get_remaining_time_in_millis(),
            }
        ),
    }


@pytest.fixture
def echo() -> TestClient:
    return TestClient(
        create_app(echo_handler, function_name="EchoFunction"), base_url="http://127.0.0.1:8787"
    )


def test_a_json_request_becomes_a_faithful_v2_event(echo: TestClient) -> None:
    # Given repeated headers and query parameters, cookies and a JSON body
    response = echo.post(
        "/v1/chat/completions?a=1&a=2&b=x%20y&empty=",
        content=b'{"model": "m"}',
        headers=[
            ("Content-Type", "application/json"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("User-Agent", "tests/1.0"),
        ],
    )
    # Then the handler sees what API Gateway would have sent
    answer = response.json()
    event = answer["event"]
    assert (event["version"], event["routeKey"], event["rawPath"]) == (
        "2.0",
        "$default",
        "/v1/chat/completions",
    )
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "empty": ""}
    assert event["headers"]["x-repeated"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"model": "m"}', False)
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/chat/completions",
        "protocol": "HTTP/1.1",
        "sourceIp": "testclient",
        "userAgent": "tests/1.0",
    }
    assert (context["stage"], context["domainName"]) == ("$default", "127.0.0.1:8787")
    assert context["requestId"] and context["timeEpoch"] > 0 and context["time"].endswith("+0000")
    assert answer["function_name"] == "EchoFunction" and answer["remaining"] > 0


@pytest.mark.parametrize("path", ["/v1/jobs/a%0Ab", "/v1/jobs/%0D%0A", "/v1/models%00", "/"])
def test_every_path_and_method_reaches_the_handler(echo: TestClient, path: str) -> None:
    # A newline in a path once met Starlette's own text/plain 404: the handler answers every path itself.
    for method in ("GET", "PUT", "TRACE"):
        response = echo.request(method, path)
        assert response.status_code == 200, (method, path, response.text)
        assert response.json()["event"]["requestContext"]["http"]["method"] == method


def test_a_get_without_body_or_query_has_neither(echo: TestClient) -> None:
    event = echo.get("/v1/models").json()["event"]
    assert "body" not in event and "queryStringParameters" not in event and "cookies" not in event
    assert event["rawQueryString"] == "" and event["isBase64Encoded"] is False


def test_a_multipart_upload_arrives_base64_encoded_and_intact(echo: TestClient) -> None:
    audio = bytes(range(256)) * 4
    response = echo.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", audio, "audio/wav")}, data={"model": "whisper"}
    )
    event = response.json()["event"]
    assert event["isBase64Encoded"] is True
    assert event["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    decoded = base64.b64decode(event["body"])
    assert audio in decoded and b'name="model"' in decoded


@pytest.mark.parametrize(
    ("content_type", "is_text"),
    [
        ("application/json", True),
        ("text/plain; charset=utf-8", True),
        ("application/vnd.api+json", True),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data; boundary=x", False),
        ("audio/mpeg", False),
        ("image/png", False),
        ("application/octet-stream", False),
    ],
)
def test_which_content_types_travel_as_text(content_type: str, is_text: bool) -> None:
    assert is_text_content_type(content_type) is is_text


def test_results_become_responses_with_binary_bodies_cookies_and_multi_value_headers() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"

    def handler(event: dict, context) -> dict:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-Count": 3, "Content-Length": "999"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]},
            "cookies": ["session=1; HttpOnly", "theme=dark"],
            "body": base64.b64encode(png).decode(),
            "isBase64Encoded": True,
        }

    response = TestClient(create_app(handler)).get("/image")
    assert response.status_code == 201
    assert response.content == png
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(png))  # ours, not the handler's
    assert response.headers["x-count"] == "3"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["session=1; HttpOnly", "theme=dark"]


def test_a_result_without_status_code_is_a_200_json_body() -> None:
    parts = response_from_result({"hello": "world"})
    assert (parts.status, parts.body) == (200, b'{"hello": "world"}')
    assert (b"content-type", b"application/json") in parts.headers


def test_a_handler_that_raises_gets_api_gateways_500() -> None:
    def handler(event: dict, context) -> dict:
        raise RuntimeError("boom")

    response = TestClient(create_app(handler), raise_server_exceptions=False).get("/v1/models")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_non_streaming_and_async_completions_go_to_the_handler(echo: TestClient) -> None:
    for body in (
        {"model": "m"},
        {"model": "m", "stream": False},
        {"model": "m", "stream": True, "async": True},
    ):
        event = echo.post("/v1/chat/completions", json=body).json()["event"]
        assert json.loads(event["body"]) == body


def test_under_the_lambda_web_adapter_the_invocation_context_is_used_and_not_forwarded(monkeypatch) -> None:
    # Given the front runs inside Lambda, where the adapter passes the invocation's context as headers
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "switchyard-StreamFunction")
    get_settings.cache_clear()
    client = TestClient(create_app(echo_handler))
    invocation = {"request_id": "req-123", "deadline": 4102444800000, "invoked_function_arn": "arn:fn"}
    headers = {"x-amzn-lambda-context": json.dumps(invocation), "x-amzn-request-context": "{}"}
    # When a request arrives
    answer = client.get("/v1/models", headers=headers).json()
    # Then the handler's context is the invocation's, and the adapter's headers stay out of the event
    assert answer["event"]["requestContext"]["requestId"] == "req-123"
    assert answer["function_name"] == "switchyard-StreamFunction"
    assert "x-amzn-lambda-context" not in answer["event"]["headers"]
    assert "x-amzn-request-context" not in answer["event"]["headers"]
