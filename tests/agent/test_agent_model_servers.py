"""What real model servers answer on `/v1/models` (recorded, in tests/agent/recorded/), and what the agent
declares to the gateway for each: the mappings agent/README.md documents."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from switchyard_agent.discovery import ModelDiscovery, describe_models

RECORDED = Path(__file__).parent / "recorded"
TEXT = ("text",)


def recorded(name: str) -> dict:
    return json.loads((RECORDED / name).read_text())


def declared(listing: dict, props: dict | None = None, overrides: dict | None = None) -> dict[str, tuple]:
    return {
        m.id: (m.service_type, m.input_modalities, m.output_modalities)
        for m in describe_models(listing, overrides or {}, "llm", props)
    }


def test_vllm_lists_its_served_model_name_which_is_declared_an_llm():
    assert declared(recorded("vllm-models.json")) == {"granite": ("llm", TEXT, TEXT)}


def test_a_vllm_whisper_model_is_declared_speech_to_text_by_its_name():
    listing = recorded("vllm-models.json")
    listing["data"][0]["id"] = "openai/whisper-large-v3"  # `vllm serve openai/whisper-large-v3`
    assert declared(listing) == {"openai/whisper-large-v3": ("stt", ("audio",), TEXT)}


def test_ollama_lists_name_and_tag_each_an_llm():
    assert declared(recorded("ollama-models.json")) == {
        "llama3.1:latest": ("llm", TEXT, TEXT),
        "qwen2.5:latest": ("llm", TEXT, TEXT),
        "llama3.2:latest": ("llm", TEXT, TEXT),
    }


def test_ollama_does_not_say_a_model_sees_images_so_it_is_declared_text_only():
    # Documented limitation: Ollama's /v1/models carries no capabilities (its own /api/show does).
    assert declared(recorded("ollama-vision-models.json"))["llama3.2-vision:11b"] == ("llm", TEXT, TEXT)


def test_lm_studio_lists_its_embedding_model_beside_the_chat_model_and_each_is_declared_for_what_it_does():
    assert declared(recorded("lm-studio-models.json")) == {
        "qwen2.5-7b-instruct": ("llm", TEXT, TEXT),
        "text-embedding-nomic-embed-text-v1.5": ("embedding", TEXT, ("embedding",)),
    }


def test_an_override_beats_the_embedding_name():
    listing = recorded("lm-studio-models.json")
    overrides = {"text-embedding-*": "llm"}
    assert declared(listing, overrides=overrides)["text-embedding-nomic-embed-text-v1.5"][0] == "llm"


def test_llama_cpp_python_lists_its_model_alias():
    assert declared(recorded("llama-cpp-python-models.json")) == {"tiny-llama": ("llm", TEXT, TEXT)}


def test_llama_server_lists_its_model_once_though_its_answer_holds_two_lists():
    assert declared(recorded("llama-server-models.json"), recorded("llama-server-props.json")) == {
        "tiny-llama.gguf": ("llm", TEXT, TEXT)
    }


def test_a_llama_server_with_a_vision_projector_is_declared_to_take_images():
    props = recorded("llama-server-props.json")
    props["modalities"]["vision"] = True  # llama-server --mmproj ...
    assert declared(recorded("llama-server-models.json"), props)["tiny-llama.gguf"][1] == ("text", "image")
    # Without /props, the listing's "multimodal" capability says the same.
    listing = recorded("llama-server-models.json")
    listing["models"][0]["capabilities"] = ["completion", "multimodal"]
    assert declared(listing)["tiny-llama.gguf"][1] == ("text", "image")


def recorded_server(listing: str, props: str | None = None) -> tuple[httpx.MockTransport, list[str]]:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=recorded(listing))
        if request.url.path == "/props" and props is not None:
            return httpx.Response(200, json=recorded(props))
        return httpx.Response(404, json={"detail": "Not Found"})

    return httpx.MockTransport(answer), asked


@pytest.mark.anyio
async def test_discovery_reads_llama_servers_slots_from_its_props():
    transport, asked = recorded_server("llama-server-models.json", "llama-server-props.json")
    async with httpx.AsyncClient(transport=transport) as client:
        discovery = ModelDiscovery(client, "http://127.0.0.1:8080")
        assert [m.id for m in await discovery.refresh()] == ["tiny-llama.gguf"]
    assert discovery.slots == 4 and asked == ["/v1/models", "/props"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "listing",
    ["vllm-models.json", "ollama-models.json", "lm-studio-models.json", "llama-cpp-python-models.json"],
)
async def test_other_servers_are_not_asked_for_props_and_report_no_slots(listing):
    transport, asked = recorded_server(listing)
    async with httpx.AsyncClient(transport=transport) as client:
        discovery = ModelDiscovery(client, "http://127.0.0.1:8000")
        assert await discovery.refresh()
    assert discovery.slots is None and asked == ["/v1/models"]


@pytest.mark.anyio
async def test_a_props_answer_that_fails_keeps_the_slots_it_reported_before():
    answers = iter([200, 503])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=recorded("llama-server-models.json"))
        return httpx.Response(next(answers), json=recorded("llama-server-props.json"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        discovery = ModelDiscovery(client, "http://127.0.0.1:8080")
        await discovery.refresh()
        await discovery.refresh()
    assert discovery.slots == 4


class LlamaServerStandIn:
    """Answers /v1/models and /props with llama-server's recorded answers (slots set per test)."""

    def __init__(self, slots: int) -> None:
        self.props = {**recorded("llama-server-props.json"), "total_slots": slots}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        body = recorded("llama-server-models.json") if path == "/v1/models" else self.props
        status = 200 if path in ("/v1/models", "/props") else 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.mark.anyio
@pytest.mark.parametrize(("flag", "declared_capacity"), [(None, 3), (2, 2)])
async def test_the_agent_declares_llama_servers_slots_unless_max_concurrency_is_given(
    gateway, make_agent_config, flag, declared_capacity
):
    from switchyard_agent.runtime import Agent
    from switchyard_agent.serving import serve_in_thread

    from tests.agent.test_agent_heartbeat import wait_for

    with serve_in_thread(LlamaServerStandIn(slots=3)) as upstream_url:
        config = make_agent_config(gateway.url, upstream_url, max_concurrency=flag)
        async with Agent(config) as agent:
            await wait_for(lambda: gateway.beats)
            assert agent._slots.limit == declared_capacity  # the relay holds to what it declares
    assert gateway.beats[0]["max_concurrency"] == declared_capacity
    assert [m["id"] for m in gateway.beats[0]["models"]] == ["tiny-llama.gguf"]
