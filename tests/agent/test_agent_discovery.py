"""Discovery: which service type and capabilities the agent declares for each upstream model."""

from __future__ import annotations

import httpx
import pytest
from switchyard_agent.capabilities import DEFAULT_CAPABILITIES, infer_service_type
from switchyard_agent.discovery import ModelDiscovery, describe_models


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("Qwen/Qwen3-8B", "llm"),
        ("qwen2.5-vl-7b-instruct", "llm"),
        ("llama3.1:8b", "llm"),
        ("meta-llama/Llama-3.2-11B-Vision-Instruct", "llm"),
        ("openai/whisper-large-v3", "stt"),
        ("distil-whisper/distil-large-v3", "stt"),
        ("nvidia/parakeet-tdt-0.6b-v2", "stt"),
        ("hexgrad/Kokoro-82M", "tts"),
        ("suno/bark", "tts"),
        ("coqui/XTTS-v2", "tts"),
        ("nari-labs/Dia-1.6B", "tts"),
        ("tts-1", "tts"),
        ("black-forest-labs/FLUX.1-dev", "image"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "image"),
        ("sdxl-turbo", "image"),
        ("dall-e-3", "image"),
        ("gpt-image-1", "image"),
        ("facebook/musicgen-small", "music"),
        ("stabilityai/stable-audio-open-1.0", "music"),
        ("Wan-AI/Wan2.1-T2V-14B", "video"),
        ("Lightricks/LTX-Video", "video"),
        ("ltxv-2b", "video"),
        ("microsoft/TRELLIS-image-large", "mesh"),
        ("tencent/Hunyuan3D-2", "mesh"),
        ("stabilityai/stable-fast-3d", "mesh"),
        ("sf3d", "mesh"),
        ("swan-7b", "llm"),  # "wan" only counts as a word of its own
        ("text-embedding-3-small", "embedding"),
        ("nomic-embed-text:latest", "embedding"),
        ("BAAI/bge-large-en-v1.5", "embedding"),
        ("intfloat/e5-mistral-7b-instruct", "embedding"),
        ("sentence-transformers/all-MiniLM-L6-v2", "embedding"),
        ("thenlper/gte-base", "embedding"),
        ("Qwen/Qwen3-Embedding-0.6B", "embedding"),
    ],
)
def test_service_type_is_inferred_from_the_name(model_id, expected):
    assert infer_service_type(model_id) == expected


def test_default_service_type_applies_when_nothing_hints():
    assert infer_service_type("mystery-model", default="tts") == "tts"


def test_server_reported_capabilities_are_kept():
    listing = {
        "data": [
            {
                "id": "my-asr",
                "service_type": "stt",
                "input_modalities": ["audio", "text"],
                "output_modalities": ["text"],
                "supported_features": ["transcriptions", "timestamps"],
            }
        ]
    }
    (model,) = describe_models(listing, {})
    assert model.service_type == "stt"
    assert model.input_modalities == ("audio", "text")
    assert model.supported_features == ("transcriptions", "timestamps")


def test_inferred_models_get_the_type_defaults():
    models = describe_models({"object": "list", "data": [{"id": "qwen3-8b"}, {"id": "flux-dev"}]}, {})
    assert [m.as_heartbeat_entry() for m in models] == [
        {
            "id": "qwen3-8b",
            "service_type": "llm",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "supported_features": ["chat", "completions", "streaming"],
        },
        {
            "id": "flux-dev",
            "service_type": "image",
            "input_modalities": ["text", "image"],
            "output_modalities": ["image"],
            "supported_features": list(DEFAULT_CAPABILITIES["image"].supported_features),
        },
    ]


def test_overrides_win_over_reports_and_names():
    listing = {
        "data": [{"id": "fake-llm", "service_type": "llm", "input_modalities": ["text"]}, {"id": "x:latest"}]
    }
    models = describe_models(listing, {"fake-llm": "tts", "x:*": "music"})
    assert [(m.id, m.service_type) for m in models] == [("fake-llm", "tts"), ("x:latest", "music")]
    # The reported modalities described an LLM; a TTS model gets TTS defaults.
    assert models[0].output_modalities == ("audio",)


def test_unknown_reported_service_type_falls_back_to_the_name():
    (model,) = describe_models({"data": [{"id": "whisper-1", "service_type": "speech-thing"}]}, {})
    assert model.service_type == "stt"


def test_ollama_and_llama_cpp_listings():
    ollama = {"object": "list", "data": [{"id": "llama3.2:latest", "object": "model", "owned_by": "library"}]}
    assert [m.id for m in describe_models(ollama, {})] == ["llama3.2:latest"]
    llama_cpp_models_only = {"models": [{"name": "qwen.gguf", "model": "qwen.gguf", "type": "model"}]}
    assert [m.id for m in describe_models(llama_cpp_models_only, {})] == ["qwen.gguf"]
    duplicated = {"data": [{"id": "a"}, {"id": "a"}, "b", 42]}
    assert [m.id for m in describe_models(duplicated, {})] == ["a", "b"]
    with pytest.raises(ValueError):
        describe_models({"error": "nope"}, {})


@pytest.mark.anyio
async def test_discovery_keeps_the_last_good_list_while_the_upstream_is_down():
    answers = [
        httpx.Response(200, json={"data": [{"id": "qwen3-8b"}]}),
        httpx.Response(503, text="loading"),
        httpx.Response(200, json={"data": [{"id": "qwen3-8b"}, {"id": "whisper-1"}]}),
    ]
    seen_auth = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers.get("authorization"))
        assert request.url.path == "/v1/models"
        return answers.pop(0)

    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        discovery = ModelDiscovery(client, "http://upstream:8000/", upstream_api_key="up-key")
        assert [m.id for m in await discovery.refresh()] == ["qwen3-8b"]
        assert [m.id for m in await discovery.refresh()] == ["qwen3-8b"]  # 503: last good list
        assert [m.id for m in await discovery.refresh()] == ["qwen3-8b", "whisper-1"]
    assert seen_auth == ["Bearer up-key"] * 3


@pytest.mark.anyio
async def test_discovery_has_nothing_before_the_first_answer(dead_url):
    async with httpx.AsyncClient() as client:
        assert await ModelDiscovery(client, dead_url).refresh() is None


@pytest.mark.anyio
async def test_discovery_of_a_bare_fake_server_infers_types(start_fake_server):
    fake = start_fake_server(report_capabilities=False)
    async with httpx.AsyncClient() as client:
        models = await ModelDiscovery(client, fake.url).refresh()
    types = {m.id: m.service_type for m in models}
    assert types["fake-whisper"] == "stt"
    assert types["fake-image"] == "image"
    assert types["fake-mesh"] == "mesh"
    assert types["fake-embed"] == "embedding"
    assert types["fake-voice"] == "tts"
    assert types["fake-llm"] == "llm"
