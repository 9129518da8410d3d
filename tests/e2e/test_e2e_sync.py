"""Synchronous inference through the local stack and the real agent, with the official openai SDK."""

from __future__ import annotations

import io
import time
import wave

import httpx
import openai
import pytest

from tests.e2e.conftest import admin

pytestmark = pytest.mark.e2e


def test_models_list_shows_capabilities(client):
    models = {m.id: m for m in client.models.list()}
    assert {"fake-llm", "fake-tts", "fake-whisper", "fake-image"} <= set(models)
    llm = models["fake-llm"].model_dump()
    assert llm["service_type"] == "llm"
    assert llm["input_modalities"] and llm["output_modalities"] and "supported_features" in llm
    assert models["fake-whisper"].model_dump()["service_type"] == "stt"


def test_chat_completion(client):
    completion = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "Say hi"}]
    )
    assert completion.choices[0].message.content
    assert completion.usage.total_tokens > 0


def test_streaming_chat_arrives_in_chunks_as_the_provider_sends_them(client):
    started = time.perf_counter()
    arrivals, text = [], []
    stream = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "count to five please"}], stream=True
    )
    for chunk in stream:
        arrivals.append(time.perf_counter() - started)
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    assert len(arrivals) >= 3
    assert "".join(text)
    # The fake server waits 20 ms between chunks; relayed as sent, most gaps show that pause (a buffered
    # relay would deliver every chunk at once).
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert sum(gap >= 0.01 for gap in gaps) >= len(gaps) // 2


def test_raw_sse_ends_with_done(local_stack, provider, http):
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=local_stack.headers()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert text.rstrip().endswith("data: [DONE]")


def test_streaming_completions(client):
    pieces = [
        c.choices[0].text
        for c in client.completions.create(model="fake-llm", prompt="Once upon", stream=True)
        if c.choices
    ]
    assert "".join(pieces)


def test_completions(client):
    assert client.completions.create(model="fake-llm", prompt="Once upon a time").choices[0].text


def test_image_generation(client):
    image = client.images.generate(
        model="fake-image", prompt="a lighthouse at dusk", response_format="b64_json"
    )
    assert image.data[0].b64_json


def test_speech_is_real_audio(client):
    audio = client.audio.speech.create(
        model="fake-tts", voice="alloy", input="Hello there", response_format="wav"
    )
    with wave.open(io.BytesIO(audio.content)) as clip:
        assert clip.getnframes() > 0


def test_transcription_upload(client):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16000)
        clip.writeframes(b"\0\0" * 1600)
    buffer.name = "hello.wav"
    buffer.seek(0)
    result = client.audio.transcriptions.create(model="fake-whisper", file=buffer)
    assert result.text


def test_no_provider_is_a_404_envelope(client):
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="not-served", messages=[{"role": "user", "content": "x"}])
    assert error.value.response.json()["error"]["type"] == "no_provider"


@pytest.mark.parametrize(
    "headers,expected",
    [({}, 401), ({"Authorization": "Bearer sy-wrong"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
def test_auth_errors_are_detail_shaped(local_stack, http, headers, expected):
    response = http.get("/v1/models", headers=headers)
    assert response.status_code == expected
    assert list(response.json()) == ["detail"]


def test_seed_error_cases(local_stack, provider, http):
    headers = local_stack.headers()
    response = http.post(
        "/v1/chat/completions", content=b"{oops", headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "detail" in response.json()
    response = http.post(
        "/v1/chat/completions",
        json={"model": "qwen3-8b", "messages": [{"role": "user", "content": "x"}]},
        headers=headers,
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "No online provider serving model 'qwen3-8b' for this user.",
            "type": "no_provider",
        }
    }
    response = http.post("/v1/chat/completions", json={"model": "fake-llm"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert "messages" in response.json()["error"]["message"]


def test_upstream_failure_is_502(local_stack, tmp_path_factory):
    from tests.e2e.conftest import _stop, start_provider

    account = admin(local_stack, "create-account", "flaky-team")
    flaky = start_provider(
        local_stack,
        tmp_path_factory.mktemp("flaky"),
        account["api_key"],
        "--fail-rate",
        "1",
        "--fail-status",
        "500",
    )
    try:
        response = httpx.post(
            f"{local_stack.base_url}/v1/chat/completions",
            json={"model": "fake-llm", "messages": [{"role": "user", "content": "x"}]},
            headers=local_stack.headers(account["api_key"]),
            timeout=30,
            trust_env=False,
        )
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "upstream_error"
    finally:
        for process in flaky.processes:
            _stop(process)


def test_two_accounts_cannot_see_each_others_providers(local_stack, provider, http):
    other = admin(local_stack, "create-account", "other-team")
    from openai import OpenAI

    stranger = OpenAI(base_url=local_stack.openai_base_url, api_key=other["api_key"], max_retries=0)
    assert list(stranger.models.list()) == []
    with pytest.raises(openai.NotFoundError):
        stranger.chat.completions.create(model="fake-llm", messages=[{"role": "user", "content": "x"}])


def test_revoked_key_stops_working(local_stack, http):
    account = admin(local_stack, "create-account", "revoked-team")
    assert http.get("/v1/models", headers=local_stack.headers(account["api_key"])).status_code == 200
    admin(local_stack, "revoke-key", account["account_id"], account["key_id"])
    deadline = time.monotonic() + 15  # the key cache holds a verified key for at most 10 s
    while time.monotonic() < deadline:
        if http.get("/v1/models", headers=local_stack.headers(account["api_key"])).status_code == 401:
            return
        time.sleep(0.5)
    raise AssertionError("revoked key still accepted")


def test_agent_refuses_requests_without_the_shared_secret(provider):
    response = httpx.post(
        f"{provider.agent_url}/v1/chat/completions", json={"model": "fake-llm"}, trust_env=False
    )
    assert response.status_code == 401


def test_openapi_and_explorer_are_served(local_stack, http):
    from openapi_spec_validator import validate

    spec = http.get("/openapi.json").json()
    validate(spec)
    assert "/v1/chat/completions" in spec["paths"]
    page = http.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
