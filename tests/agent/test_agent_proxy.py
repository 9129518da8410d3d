"""The agent's relay: secret enforcement, header hygiene, byte-exact streaming, concurrency, upstream errors."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import openai
import pytest
from switchyard_agent.runtime import Agent

pytestmark = pytest.mark.anyio

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "Count to ten slowly please"}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_requests_without_the_secret_are_refused(fake, gateway, make_agent_config, secret):
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        for headers in (
            {},
            bearer("wrong-secret-0123456789"),
            {"Authorization": secret},
            bearer(secret + "x"),
        ):
            response = await client.post(
                f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=headers
            )
            assert response.status_code == 401
            assert "detail" in response.json()
    assert fake.last_request() is None  # nothing reached the model server


async def test_the_secret_is_stripped_and_the_body_forwarded_untouched(
    fake, gateway, make_agent_config, secret
):
    raw_body = b'{"model": "fake-llm",  "messages": [{"role": "user", "content": "hi"}], "x_extra": [1, 2]}'
    headers = {
        **bearer(secret),
        "content-type": "application/json",
        "x-request-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "connection": "keep-alive, x-hop",
        "x-hop": "must not pass",
    }
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        response = await client.post(
            f"{agent.listen_url}/v1/chat/completions?trace=1", content=raw_body, headers=headers
        )
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    seen = fake.last_request()
    assert "authorization" not in seen["headers"]
    assert "x-hop" not in seen["headers"]
    assert seen["headers"]["x-request-id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert seen["query"] == "trace=1"
    assert seen["body_size"] == len(raw_body)
    assert seen["json"]["x_extra"] == [1, 2]


async def test_a_request_id_that_is_not_a_uuid_reaches_the_model_server_as_a_stable_uuid(
    fake, gateway, make_agent_config, secret
):
    # llama-cpp-python's server answers 400 to any other X-Request-ID; async jobs carry "job_..." ids.
    seen = []
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        for _attempt in range(2):
            headers = {**bearer(secret), "x-request-id": "job_01a2344f5aae8a3e7b8a79"}
            response = await client.post(
                f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=headers
            )
            assert response.status_code == 200
            seen.append(fake.last_request()["headers"]["x-request-id"])
    assert seen[0] == seen[1]  # a retried job sends the same id
    assert str(uuid.UUID(seen[0])) == seen[0]


async def test_the_upstream_api_key_replaces_the_secret(
    start_fake_server, gateway, make_agent_config, secret
):
    fake = start_fake_server(api_key="upstream-key")
    config = make_agent_config(gateway.url, fake.url, upstream_api_key="upstream-key")
    async with Agent(config) as agent, httpx.AsyncClient() as client:
        response = await client.post(
            f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=bearer(secret)
        )
    assert response.status_code == 200
    assert fake.last_request()["headers"]["authorization"] == "Bearer upstream-key"


async def test_openai_sdk_works_through_the_agent(fake, gateway, make_agent_config, secret):
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent:
        sdk = openai.AsyncOpenAI(base_url=f"{agent.listen_url}/v1", api_key=secret, max_retries=0)
        async with sdk:
            chat = await sdk.chat.completions.create(**CHAT)
            assert "Count to ten" in chat.choices[0].message.content
            audio = bytes(1234)
            text = await sdk.audio.transcriptions.create(
                model="fake-whisper", file=("a.wav", audio, "audio/wav")
            )
            assert "1234 bytes" in text.text
            speech = await sdk.audio.speech.create(
                model="fake-tts", voice="alloy", input="hi", response_format="wav"
            )
            assert speech.content[:4] == b"RIFF"
            with pytest.raises(openai.NotFoundError):  # upstream errors pass through as they are
                await sdk.chat.completions.create(model="nope", messages=CHAT["messages"])


async def test_binary_responses_are_relayed_byte_for_byte(fake, gateway, make_agent_config, secret):
    body = {"model": "fake-mesh", "prompt": "a chair"}
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        relayed = await client.post(
            f"{agent.listen_url}/v1/3d/generations", json=body, headers=bearer(secret)
        )
        direct = await client.post(f"{fake.url}/v1/3d/generations", json=body)
    assert relayed.headers["content-type"] == "model/gltf-binary"
    assert relayed.content == direct.content


async def test_streams_arrive_chunk_by_chunk(start_fake_server, gateway, make_agent_config, secret):
    gap = 0.08
    fake = start_fake_server(stream_delay_ms=gap * 1000)
    arrivals: list[tuple[float, bytes]] = []
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        started = time.monotonic()
        request = client.stream(
            "POST",
            f"{agent.listen_url}/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers=bearer(secret),
        )
        async with request as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for chunk in response.aiter_raw():
                arrivals.append((time.monotonic() - started, chunk))
    events = b"".join(chunk for _, chunk in arrivals).split(b"\n\n")
    assert events[-2] == b"data: [DONE]"
    data_events = [e for e in events if e.startswith(b"data: {")]
    assert len(data_events) >= 6
    # Buffering would deliver everything at the end; a relay delivers the first event long before the last.
    first, last = arrivals[0][0], arrivals[-1][0]
    assert len(arrivals) >= 4
    assert last - first >= gap * (len(data_events) - 2)


async def test_excess_requests_wait_for_a_slot(start_fake_server, gateway, make_agent_config, secret):
    latency = 0.25
    fake = start_fake_server(latency_ms=latency * 1000)
    config = make_agent_config(gateway.url, fake.url, max_concurrency=1)
    async with Agent(config) as agent, httpx.AsyncClient() as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                client.post(f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=bearer(secret))
                for _ in range(3)
            )
        )
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert elapsed >= 3 * latency * 0.95  # one at a time


async def test_unreachable_upstream_is_a_502_envelope(gateway, make_agent_config, secret, dead_url):
    async with Agent(make_agent_config(gateway.url, dead_url)) as agent, httpx.AsyncClient() as client:
        response = await client.post(
            f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=bearer(secret)
        )
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "upstream_error"
        # The slot was given back: a second request is answered too, not stuck waiting.
        again = await client.post(f"{agent.listen_url}/v1/completions", json=CHAT, headers=bearer(secret))
        assert again.status_code == 502


async def test_a_client_leaving_mid_stream_frees_the_slot(
    start_fake_server, gateway, make_agent_config, secret
):
    fake = start_fake_server(stream_delay_ms=200)
    config = make_agent_config(gateway.url, fake.url, max_concurrency=1)
    async with Agent(config) as agent, httpx.AsyncClient() as client:
        request = client.stream(
            "POST",
            f"{agent.listen_url}/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers=bearer(secret),
        )
        async with request as response:
            async for _ in response.aiter_raw():
                break  # hang up after the first chunk
        answer = await asyncio.wait_for(
            client.post(f"{agent.listen_url}/v1/completions", json={"model": "fake-llm", "prompt": "x"},
                        headers=bearer(secret)),
            timeout=1.5,
        )  # fmt: skip
    assert answer.status_code == 200


async def test_only_the_v1_api_is_relayed(fake, gateway, make_agent_config, secret):
    async with Agent(make_agent_config(gateway.url, fake.url)) as agent, httpx.AsyncClient() as client:
        assert (await client.get(f"{agent.listen_url}/health")).status_code == 401  # the secret comes first
        for path in ("/health", "/api/pull", "/v1/../api/pull", "/v1/%2e%2e/api/pull", "/v1/..%2fapi/pull"):
            response = await client.get(agent.listen_url + path, headers=bearer(secret))
            assert response.status_code == 404, path
        listing = await client.get(f"{agent.listen_url}/v1/models", headers=bearer(secret))
        assert listing.status_code == 200
    assert [r["path"] for r in fake.server.history.all()] == ["/v1/models"] * len(fake.server.history.all())


async def test_a_concurrency_limit_that_grows_lets_waiting_requests_in_at_once():
    from switchyard_agent.proxy import ConcurrencyLimit

    limit = ConcurrencyLimit(1)
    await limit.acquire()
    waiting = [asyncio.ensure_future(limit.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)
    limit.resize(3)  # e.g. llama-server reported 3 slots
    await asyncio.sleep(0)
    assert [w.done() for w in waiting] == [True, True, False]
    limit.release()
    await asyncio.sleep(0)
    assert waiting[2].done()


async def test_a_concurrency_limit_that_shrinks_admits_no_one_until_enough_have_left():
    from switchyard_agent.proxy import ConcurrencyLimit

    limit = ConcurrencyLimit(2)
    await limit.acquire()
    await limit.acquire()
    limit.resize(1)
    waiting = asyncio.ensure_future(limit.acquire())
    limit.release()  # one still holds: at the new limit
    await asyncio.sleep(0)
    assert not waiting.done()
    limit.release()
    await asyncio.sleep(0)
    assert waiting.done()


async def test_a_request_cancelled_while_waiting_for_a_slot_gives_up_its_place():
    from switchyard_agent.proxy import ConcurrencyLimit

    limit = ConcurrencyLimit(1)
    await limit.acquire()
    gone = asyncio.ensure_future(limit.acquire())
    after = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    limit.release()
    await asyncio.sleep(0)
    assert after.done() and not after.cancelled()


async def raw_upstream(answer: bytes):
    """A loopback model server that reads one request head per connection, writes `answer` and hangs up."""
    seen: list[bytes] = []

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


async def test_an_upstream_that_fails_before_its_first_byte_is_a_502(gateway, make_agent_config, secret):
    server, url, _ = await raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 50\r\n\r\n"
    )
    async with server, Agent(make_agent_config(gateway.url, url)) as agent, httpx.AsyncClient() as client:
        response = await client.post(
            f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=bearer(secret)
        )
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"


async def test_an_upstream_that_breaks_off_mid_body_reaches_the_client_truncated(
    gateway, make_agent_config, secret
):
    server, url, _ = await raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    async with server, Agent(make_agent_config(gateway.url, url)) as agent, httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{agent.listen_url}/v1/chat/completions", json=CHAT, headers=bearer(secret))


async def test_repeated_answer_headers_and_head_requests_are_relayed(gateway, make_agent_config, secret):
    answer = b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 2\r\n\r\nok"
    server, url, seen = await raw_upstream(answer)
    async with server, Agent(make_agent_config(gateway.url, url)) as agent, httpx.AsyncClient() as client:
        got = await client.get(f"{agent.listen_url}/v1/files/f1", headers=bearer(secret))
        assert got.headers.get_list("set-cookie") == ["a=1", "b=2"] and got.content == b"ok"
        head = await client.head(f"{agent.listen_url}/v1/files/f1", headers=bearer(secret))
        assert head.status_code == 200 and head.content == b""
    relayed = [request for request in seen if not request.startswith(b"GET /v1/models")]
    assert [request.split(b" ")[0] for request in relayed] == [b"GET", b"HEAD"]
