"""Synchronous inference through the ApiFunction handler to a fake model server on loopback."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import heartbeat_body

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello there"}]}


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "switchyardtestboundary"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, content, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_chat_completion_returns_the_providers_answer(api, caller, online_provider):
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]


def test_provider_receives_the_secret_and_the_body_unchanged(api, caller, online_provider):
    body = {**CHAT, "temperature": 0.2, "custom_field": {"kept": True}}
    api("POST", "/v1/chat/completions", body=body, headers=caller.headers)
    seen = online_provider.last_request("/v1/chat/completions")
    assert seen["headers"]["authorization"] == "Bearer provider-secret-0123456789"
    assert seen["json"] == body
    # API Gateway's request ids are not UUIDs; model servers such as llama-cpp-python's refuse anything else.
    request_id = seen["headers"]["x-request-id"]
    assert str(uuid.UUID(request_id)) == request_id


def test_streaming_without_a_streaming_front_is_buffered_sse(api, caller, online_provider):
    response = api("POST", "/v1/chat/completions", body={**CHAT, "stream": True}, headers=caller.headers)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.content.decode()
    assert text.rstrip().endswith("data: [DONE]")
    first = json.loads(text.split("data: ", 2)[1].split("\n")[0])
    assert first["object"] == "chat.completion.chunk"


def test_completions(api, caller, online_provider):
    response = api(
        "POST", "/v1/completions", body={"model": "fake-llm", "prompt": "Once"}, headers=caller.headers
    )
    assert response.status == 200
    assert response.json()["object"] == "text_completion"


def test_image_generation(api, caller, online_provider):
    response = api(
        "POST",
        "/v1/images/generations",
        body={"model": "fake-image", "prompt": "a lamp", "response_format": "b64_json"},
        headers=caller.headers,
    )
    assert response.status == 200
    assert response.json()["data"][0]["b64_json"]


def test_speech_is_binary_audio_with_its_content_type(api, caller, online_provider):
    response = api(
        "POST",
        "/v1/audio/speech",
        body={"model": "fake-tts", "input": "hello", "voice": "alloy"},
        headers=caller.headers,
    )
    assert response.status == 200
    assert response.headers["content-type"].startswith("audio/")
    assert response.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    "path,body,expect_type",
    [
        ("/v1/music/generations", {"model": "fake-music", "prompt": "lofi"}, None),
        ("/v1/videos/generations", {"model": "fake-video", "prompt": "waves"}, None),
        ("/v1/3d/generations", {"model": "fake-mesh", "prompt": "a chair"}, None),
    ],
)
def test_media_generation_endpoints(api, caller, online_provider, path, body, expect_type):
    response = api("POST", path, body=body, headers=caller.headers)
    assert response.status == 200, response.content
    assert response.content


def test_transcription_multipart_is_forwarded_byte_for_byte(api, caller, online_provider):
    content, content_type = multipart(
        {"model": "fake-whisper"}, {"file": ("a.wav", b"RIFF" + bytes(range(256)) * 4, "audio/wav")}
    )
    response = api(
        "POST",
        "/v1/audio/transcriptions",
        body=content,
        headers={**caller.headers, "content-type": content_type},
    )
    assert response.status == 200, response.content
    assert "text" in response.json()


def test_image_edit_and_voice_multipart(api, caller, online_provider):
    content, content_type = multipart(
        {"model": "fake-image", "prompt": "make it blue"},
        {"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
    )
    assert (
        api(
            "POST", "/v1/images/edits", body=content, headers={**caller.headers, "content-type": content_type}
        ).status
        == 200
    )
    content, content_type = multipart(
        {"model": "fake-voice", "text": "[S1] hi"},
        {"speaker_audio": ("s.wav", b"RIFF" + b"\0" * 64, "audio/wav")},
    )
    assert (
        api(
            "POST",
            "/v1/voice/generations",
            body=content,
            headers={**caller.headers, "content-type": content_type},
        ).status
        == 200
    )


def test_multipart_missing_file_is_invalid_request(api, caller, online_provider):
    content, content_type = multipart({"model": "fake-whisper"}, {})
    response = api(
        "POST",
        "/v1/audio/transcriptions",
        body=content,
        headers={**caller.headers, "content-type": content_type},
    )
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert "file" in response.json()["error"]["message"]


def test_async_on_upload_endpoint_is_a_clear_400(api, caller, online_provider):
    content, content_type = multipart(
        {"model": "fake-whisper", "async": "true"}, {"file": ("a.wav", b"RIFF0000", "audio/wav")}
    )
    response = api(
        "POST",
        "/v1/audio/transcriptions",
        body=content,
        headers={**caller.headers, "content-type": content_type},
    )
    assert response.status == 400
    assert "synchronous only" in response.json()["error"]["message"]


def test_only_providers_of_the_matching_service_type_are_used(api, caller, start_fake_server):
    provider = start_fake_server()
    only_llm = [{"id": "shared-name", "service_type": "llm"}]
    api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body(provider.url, models=only_llm),
        headers=caller.headers,
    )
    response = api(
        "POST", "/v1/images/generations", body={"model": "shared-name", "prompt": "x"}, headers=caller.headers
    )
    assert response.status == 404
    assert response.json()["error"]["type"] == "no_provider"


def test_malformed_json_is_400_detail(api, caller):
    response = api(
        "POST",
        "/v1/chat/completions",
        body=b"{not json",
        headers={**caller.headers, "content-type": "application/json"},
    )
    assert response.status == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "fake-llm"}, "messages"),
        ({"model": "fake-llm", "messages": []}, "messages"),
        ({"model": "fake-llm", "messages": [{"content": "x"}]}, "messages.0.role"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_invalid_chat_body_is_invalid_request_naming_the_field(api, caller, body, field):
    response = api("POST", "/v1/chat/completions", body=body, headers=caller.headers)
    assert response.status == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["message"].startswith(field)


def test_provider_500_is_upstream_error(api, caller, start_fake_server):
    provider = start_fake_server(fail_rate=1.0, fail_status=500)
    api("POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(provider.url), headers=caller.headers)
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 502
    assert response.json()["error"]["type"] == "upstream_error"


def test_unreachable_provider_is_upstream_error(api, caller):
    api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body("http://127.0.0.1:9"),
        headers=caller.headers,
    )
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 502
    assert response.json()["error"]["type"] == "upstream_error"


def test_provider_timeout_is_upstream_error(api, caller, start_fake_server, monkeypatch):
    from switchyard.adapters import upstream

    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("UPSTREAM_TIMEOUT_SECONDS", "0.2")
    reset_switchyard_caches()
    monkeypatch.setattr(upstream, "_client", None)
    provider = start_fake_server(latency_ms=1500)
    api("POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(provider.url), headers=caller.headers)
    response = api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)
    assert response.status == 502
    assert "did not respond in time" in response.json()["error"]["message"]
    monkeypatch.setattr(upstream, "_client", None)


def test_warm_sync_request_makes_no_dynamodb_call(api, caller, online_provider, monkeypatch):
    import threading

    import botocore.client

    api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers)  # warms key and provider caches
    calls = []
    real = botocore.client.BaseClient._make_api_call
    request_thread = threading.get_ident()

    def counting(self, operation, params):
        if threading.get_ident() == request_thread:  # a cache's background reload is not the request's
            calls.append(operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    assert api("POST", "/v1/chat/completions", body=CHAT, headers=caller.headers).status == 200
    assert calls == []
