"""Heartbeats: the payload the gateway gets (CONTRACTS.md), and a loop that survives failures."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from switchyard_agent.discovery import ModelDescriptor, ModelDiscovery
from switchyard_agent.heartbeat import (
    HeartbeatError,
    HeartbeatSender,
    ProviderIdentity,
    build_heartbeat_payload,
    heartbeat_forever,
)
from switchyard_agent.runtime import Agent

pytestmark = pytest.mark.anyio

CONTRACT_KEYS = {"provider_id", "endpoint_url", "secret", "max_concurrency", "models"}
MODEL_KEYS = {"id", "service_type", "input_modalities", "output_modalities", "supported_features"}


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_payload_matches_the_contract():
    identity = ProviderIdentity("gpu-box-1", "http://127.0.0.1:9100", "s" * 32, 4)
    model = ModelDescriptor("qwen3-8b", "llm", ("text",), ("text",), ("chat", "completions", "streaming"))
    assert build_heartbeat_payload(identity, [model]) == {
        "provider_id": "gpu-box-1",
        "endpoint_url": "http://127.0.0.1:9100",
        "secret": "s" * 32,
        "max_concurrency": 4,
        "models": [
            {
                "id": "qwen3-8b",
                "service_type": "llm",
                "input_modalities": ["text"],
                "output_modalities": ["text"],
                "supported_features": ["chat", "completions", "streaming"],
            }
        ],
    }


async def test_agent_registers_at_start_up(fake, gateway, make_agent_config, secret, api_key, capsys):
    config = make_agent_config(gateway.url, fake.url, max_concurrency=3, heartbeat_interval=30)
    async with Agent(config) as agent:
        # The first beat does not wait for the interval. Waiting for the registration itself, not for the
        # gateway to have received the beat: the agent prints its line once the answer is in.
        await asyncio.wait_for(agent.registered.wait(), timeout=10)
    beat = gateway.beats[0]
    assert set(beat) == CONTRACT_KEYS
    assert beat["endpoint_url"] == agent.listen_url
    assert beat["secret"] == secret and beat["max_concurrency"] == 3
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", beat["provider_id"])
    assert gateway.headers[0]["authorization"] == f"Bearer {api_key}"
    models = {m["id"]: m for m in beat["models"]}
    assert all(set(m) == MODEL_KEYS for m in models.values())
    assert models["fake-whisper"]["service_type"] == "stt"
    assert models["fake-voice"]["supported_features"] == ["speech", "voice_cloning"]
    out = capsys.readouterr().out
    assert "registered provider" in out and "fake-llm (llm)" in out


async def test_advertised_url_and_provider_id_options(fake, gateway, make_agent_config):
    config = make_agent_config(
        gateway.url, fake.url, public_url="https://gpu.example.net/agent/", provider_id="gpu-box-7"
    )
    async with Agent(config):
        await wait_for(lambda: gateway.beats)
    assert gateway.beats[0]["endpoint_url"] == "https://gpu.example.net/agent"
    assert gateway.beats[0]["provider_id"] == "gpu-box-7"


async def test_heartbeats_repeat_and_survive_gateway_errors(fake, gateway, make_agent_config, capsys):
    gateway.statuses = [500, 503]
    async with Agent(make_agent_config(gateway.url, fake.url, heartbeat_interval=0.1)):
        await wait_for(lambda: len(gateway.beats) >= 5)
    assert "registered provider" in capsys.readouterr().out


async def test_a_dead_gateway_does_not_stop_the_relay(fake, make_agent_config, secret, dead_url):
    async with Agent(make_agent_config(dead_url, fake.url)) as agent, httpx.AsyncClient() as client:
        await asyncio.sleep(0.3)  # a few failed beats
        response = await client.post(
            f"{agent.listen_url}/v1/completions",
            json={"model": "fake-llm", "prompt": "hi"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert response.status_code == 200


async def test_gateway_refusals_carry_the_gateway_message():
    def gateway(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer bad":
            return httpx.Response(401, json={"detail": "Invalid API key."})
        return httpx.Response(
            400, json={"error": {"message": "endpoint is private", "type": "invalid_request"}}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as client:
        with pytest.raises(HeartbeatError, match="Invalid API key.*--api-key"):
            await HeartbeatSender(client, "http://gw", "bad").send({})
        with pytest.raises(HeartbeatError, match="endpoint is private.*--public-url"):
            await HeartbeatSender(client, "http://gw", "good").send({})


async def test_models_are_rediscovered_on_every_beat():
    listings = [["qwen3-8b"], ["qwen3-8b", "whisper-1"], ["whisper-1"]]
    beats: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            ids = listings.pop(0) if len(listings) > 1 else listings[0]
            return httpx.Response(200, json={"data": [{"id": i} for i in ids]})
        beats.append([m["id"] for m in json.loads(request.content)["models"]])
        return httpx.Response(200, json={"status": "online"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        identity = ProviderIdentity("p", "http://127.0.0.1:1", "s" * 16, 1)
        loop = asyncio.create_task(
            heartbeat_forever(
                HeartbeatSender(client, "http://gw", "k"),
                ModelDiscovery(client, "http://up"),
                identity,
                0.01,
                announce=lambda line: None,
            )
        )
        try:
            await wait_for(lambda: len(beats) >= 3)
        finally:
            loop.cancel()
    assert beats[:3] == [["qwen3-8b"], ["qwen3-8b", "whisper-1"], ["whisper-1"]]
