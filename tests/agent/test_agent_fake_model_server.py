"""The fake model server, seen through the official openai SDK and plain HTTP, as real clients see it."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave

import httpx
import openai
import pytest
from switchyard_agent.fake_model_server import DEFAULT_MODELS, config_from_args, parse_models

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(fake) -> openai.OpenAI:
    with openai.OpenAI(base_url=f"{fake.url}/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


def test_models_carry_service_type_and_modalities(client):
    models = {m.id: m.model_extra for m in client.models.list()}
    assert list(models) == [m.id for m in DEFAULT_MODELS]
    assert models["fake-llm"]["service_type"] == "llm"
    assert models["fake-llm"]["supported_features"] == ["chat", "completions", "streaming"]
    assert models["fake-whisper"]["input_modalities"] == ["audio"]
    assert {models[name]["service_type"] for name in models} == {
        "llm", "stt", "tts", "image", "music", "video", "mesh", "embedding",
    }  # fmt: skip
    assert models["fake-voice"]["service_type"] == "tts"


def test_embeddings_decode_in_the_sdk_and_are_deterministic(client):
    # The SDK asks for base64 by default and unpacks the float32 vectors itself.
    first = client.embeddings.create(model="fake-embed", input=["a lighthouse", "a harbour"])
    again = client.embeddings.create(model="fake-embed", input="a lighthouse", encoding_format="float")
    assert [item.index for item in first.data] == [0, 1]
    assert len(first.data[0].embedding) == 8
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != pytest.approx(first.data[1].embedding, abs=1e-6)
    assert first.usage.prompt_tokens == 4
    sized = client.embeddings.create(model="fake-embed", input="x", dimensions=32)
    assert len(sized.data[0].embedding) == 32


def test_bare_models_look_like_vllm(start_fake_server):
    fake = start_fake_server(report_capabilities=False)
    entry = httpx.get(f"{fake.url}/v1/models").json()["data"][0]
    assert set(entry) == {"id", "object", "created", "owned_by"}


def test_chat_completion_echoes_the_last_user_message(client):
    answer = client.chat.completions.create(
        model="fake-llm",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert "What is the capital of France?" in answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_completion_honours_max_tokens(client):
    answer = client.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 2


def test_chat_streaming_sends_several_deltas_that_add_up(client):
    messages = [{"role": "user", "content": "Tell me a story"}]
    whole = client.chat.completions.create(model="fake-llm", messages=messages).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="fake-llm", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert len(with_choices) >= 5
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == whole
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_sse_wire_format_ends_with_done(fake):
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = httpx.post(f"{fake.url}/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


def test_completions_plain_and_streamed(client):
    answer = client.completions.create(model="fake-llm", prompt="Once upon a time")
    assert answer.object == "text_completion"
    assert "Once upon a time" in answer.choices[0].text
    pieces = [
        chunk.choices[0].text
        for chunk in client.completions.create(model="fake-llm", prompt="Once", stream=True)
    ]
    assert len(pieces) >= 3
    assert "".join(pieces) == client.completions.create(model="fake-llm", prompt="Once").choices[0].text


def test_image_generation_returns_a_real_png(client):
    result = client.images.generate(model="fake-image", prompt="a lighthouse", size="32x16", n=2)
    assert len(result.data) == 2
    png = base64.b64decode(result.data[0].b64_json)
    assert png.startswith(PNG_SIGNATURE)
    assert struct.unpack(">II", png[16:24]) == (32, 16)  # IHDR width, height
    assert result.data[0].b64_json != result.data[1].b64_json  # different colours per index


def test_image_generation_as_url(client):
    result = client.images.generate(model="fake-image", prompt="a lighthouse", response_format="url")
    image = httpx.get(result.data[0].url)
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)


def test_image_edit_takes_a_multipart_upload(client, fake):
    source = b"\x89PNG\r\n\x1a\n" + b"\x00\r\n--not-a-boundary\r\n" * 10
    result = client.images.edit(
        model="fake-image", image=("in.png", source, "image/png"), prompt="make it blue"
    )
    assert base64.b64decode(result.data[0].b64_json).startswith(PNG_SIGNATURE)
    assert f"{len(source)} bytes" in result.data[0].revised_prompt  # the upload arrived byte-exact
    form = fake.last_request()["form"]
    assert form["fields"]["prompt"] == "make it blue"
    assert form["files"]["image"][0]["size"] == len(source)


def test_speech_returns_wav_bytes(client):
    response = client.audio.speech.create(
        model="fake-tts", voice="alloy", input="Hello there", response_format="wav"
    )
    audio = response.content
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    with wave.open(io.BytesIO(audio)) as parsed:
        assert parsed.getnframes() > 0


def test_speech_content_type_follows_response_format(fake):
    body = {"model": "fake-tts", "input": "hi", "voice": "alloy", "response_format": "mp3"}
    assert httpx.post(f"{fake.url}/v1/audio/speech", json=body).headers["content-type"] == "audio/mpeg"
    del body["response_format"]
    assert httpx.post(f"{fake.url}/v1/audio/speech", json=body).headers["content-type"] == "audio/wav"


def test_transcription_reports_the_uploaded_size(client):
    audio = bytes(range(256)) * 12
    result = client.audio.transcriptions.create(model="fake-whisper", file=("talk.wav", audio, "audio/wav"))
    assert f"{len(audio)} bytes" in result.text
    text = client.audio.transcriptions.create(
        model="fake-whisper", file=("talk.wav", audio, "audio/wav"), response_format="text"
    )
    assert str(len(audio)) in text


@pytest.mark.parametrize(
    ("path", "body", "content_type", "magic"),
    [
        ("/v1/music/generations", {"model": "fake-music", "prompt": "jazz"}, "audio/wav", b"RIFF"),
        ("/v1/videos/generations", {"model": "fake-video", "prompt": "waves"}, "video/mp4", b"ftyp"),
        ("/v1/3d/generations", {"model": "fake-mesh", "prompt": "a chair"}, "model/gltf-binary", b"glTF"),
    ],
)
def test_media_generations_return_typed_bytes(fake, path, body, content_type, magic):
    response = httpx.post(fake.url + path, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert magic in response.content[:8]
    wrapped = httpx.post(fake.url + path, json={**body, "response_format": "b64_json"}).json()
    assert base64.b64decode(wrapped["data"][0]["b64_json"]) == response.content


def test_glb_and_mp4_are_well_formed(fake):
    glb = httpx.post(f"{fake.url}/v1/3d/generations", json={"model": "fake-mesh", "prompt": "x"}).content
    magic, version, length = struct.unpack("<4sII", glb[:12])
    assert (magic, version, length) == (b"glTF", 2, len(glb))
    json_length = struct.unpack("<I", glb[12:16])[0]
    assert json.loads(glb[20 : 20 + json_length])["asset"]["version"] == "2.0"
    mp4 = httpx.post(f"{fake.url}/v1/videos/generations", json={"model": "fake-video", "prompt": "x"}).content
    offset = 0
    boxes = []
    while offset < len(mp4):
        size, kind = struct.unpack(">I4s", mp4[offset : offset + 8])
        boxes.append(kind)
        offset += size
    assert offset == len(mp4) and boxes == [b"ftyp", b"moov", b"mdat"]


def test_voice_generation_takes_samples(fake):
    files = {"speaker_1": ("voice.wav", b"RIFF....WAVE", "audio/wav")}
    data = {"model": "fake-voice", "text": "[S1] Hello."}
    response = httpx.post(f"{fake.url}/v1/voice/generations", data=data, files=files)
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF"


def test_missing_model_is_a_400_in_the_openai_envelope(client, fake):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["type"] == "invalid_request_error"
    response = httpx.post(f"{fake.url}/v1/audio/transcriptions", files={"file": ("a.wav", b"x")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


def test_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


def test_last_request_shows_what_arrived(fake):
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "extra": 1}
    httpx.post(f"{fake.url}/v1/chat/completions", json=body, headers={"X-Trace": "abc"})
    httpx.get(f"{fake.url}/v1/models")  # an agent's polling must not hide the request of interest
    record = httpx.get(f"{fake.url}/_debug/last_request").json()
    assert record["path"] == "/v1/chat/completions"
    assert record["json"] == body
    assert record["headers"]["x-trace"] == "abc"
    listing = httpx.get(f"{fake.url}/_debug/last_request", params={"path": "/v1/models"}).json()
    assert listing["method"] == "GET"
    assert httpx.delete(f"{fake.url}/_debug/requests").json()["cleared"] == 2
    assert httpx.get(f"{fake.url}/_debug/last_request").status_code == 404


def test_state_is_per_server(start_fake_server):
    first, second = start_fake_server(), start_fake_server()
    httpx.post(f"{first.url}/v1/completions", json={"model": "fake-llm", "prompt": "x"})
    assert first.last_request() is not None
    assert second.last_request() is None


def test_injected_failures_and_api_key(start_fake_server):
    failing = start_fake_server(fail_rate=1.0, fail_status=503)
    response = httpx.post(f"{failing.url}/v1/completions", json={"model": "fake-llm", "prompt": "x"})
    assert response.status_code == 503 and response.json()["error"]["type"] == "server_error"
    guarded = start_fake_server(api_key="upstream-key")
    assert httpx.get(f"{guarded.url}/v1/models").status_code == 401
    ok = httpx.get(f"{guarded.url}/v1/models", headers={"Authorization": "Bearer upstream-key"})
    assert ok.status_code == 200


def test_health(fake):
    assert httpx.get(f"{fake.url}/health").json() == {"status": "ok"}


def test_cli_model_specs():
    models = parse_models(["qwen3-8b,whisper-large-v3", "my-model=image"])
    assert [(m.id, m.service_type) for m in models] == [
        ("qwen3-8b", "llm"), ("whisper-large-v3", "stt"), ("my-model", "image"),
    ]  # fmt: skip
    args, config = config_from_args(
        ["--port", "0", "--latency-ms", "5", "--models", "a=tts", "--bare-models"]
    )
    assert args.port == 0 and config.latency_ms == 5 and config.models[0].service_type == "tts"
    assert not config.report_capabilities


def test_a_call_log_records_each_call_and_how_it_was_answered_and_answers_name_their_call(
    start_fake_server, tmp_path
):
    log = tmp_path / "calls.jsonl"
    fake = start_fake_server(call_log=str(log), fail_rate=0.5, seed=3)
    answers = [
        httpx.post(
            f"{fake.url}/v1/chat/completions",
            json={"model": "fake-llm", "messages": [{"role": "user", "content": f"job {i}"}]},
        )
        for i in range(8)
    ]

    records = [json.loads(line) for line in log.read_text().splitlines()]
    received = [r for r in records if r["event"] == "received"]
    answered = {r["call"]: r for r in records if r["event"] == "answered"}
    assert [r["marker"] for r in received] == [f"job {i}" for i in range(8)]
    assert len({r["call"] for r in received}) == 8 and set(answered) == {r["call"] for r in received}
    for record, answer in zip(received, answers, strict=True):
        outcome = answered[record["call"]]
        assert outcome["status"] == answer.status_code
        assert outcome["injected"] == (answer.status_code == 500)
        if answer.status_code == 200:
            assert answer.json()["system_fingerprint"] == record["call"]
    assert {a.status_code for a in answers} == {200, 500}
