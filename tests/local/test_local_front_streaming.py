"""The front's streaming relay against a tiny upstream on loopback: chunks arrive as they are made."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from contextlib import suppress
from types import SimpleNamespace

import httpx
import pytest
from switchyard.errors import AuthenticationFailed
from switchyard.front import create_app

# The front reads its settings (timeouts, the Lambda runtime's names) like every function does; its
# upstreams here listen on loopback, which the "loopback" endpoint policy allows.
pytestmark = pytest.mark.usefixtures("settings_environment", "loopback_endpoints")


@pytest.fixture
def loopback_endpoints(settings_environment, monkeypatch):
    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("PROVIDER_ENDPOINT_POLICY", "loopback")
    reset_switchyard_caches()


CHUNK_DELAY_SECONDS = 0.3


async def send_three_events(send, delay_seconds: float) -> None:
    """An SSE answer: three events `delay_seconds` apart, then [DONE]."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    for index in range(3):
        await send({"type": "http.response.body", "body": f"data: {index}\n\n".encode(), "more_body": True})
        await asyncio.sleep(delay_seconds)
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


STREAM_BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


class SlowUpstream:
    """An ASGI provider that sends three SSE chunks, CHUNK_DELAY_SECONDS apart, and keeps what it got."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append({"path": scope["path"], "headers": dict(scope["headers"]), "body": body})
        await send_three_events(send, CHUNK_DELAY_SECONDS)


def never_called(event: dict, context) -> dict:
    raise AssertionError("streaming requests must not reach the API handler")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_chunks_reach_the_client_as_the_upstream_produces_them(serve) -> None:
    upstream = SlowUpstream()
    seen: dict = {}

    def prepare_stream(authorization, path, body, request_id=None):
        seen.update(authorization=authorization, path=path, body=body, request_id=request_id)
        return SimpleNamespace(
            url=f"{upstream_url}{path}",
            headers={"authorization": "Bearer provider-secret", "content-type": "application/json"},
            content=b'{"model":"m","stream":true}',
        )

    with (
        serve(upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        arrivals = []
        started = time.monotonic()
        with httpx.stream(
            "POST", f"{front}/v1/chat/completions", json=STREAM_BODY, headers={"Authorization": "Bearer k"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            for chunk in response.iter_raw():
                arrivals.append((time.monotonic() - started, chunk))

    body = b"".join(chunk for _, chunk in arrivals)
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    # The first chunk arrived about two chunk delays before the last: nothing was buffered. (Relative,
    # not absolute, so that a busy machine slows both ends alike.)
    first_at, last_at = arrivals[0][0], arrivals[-1][0]
    assert last_at - first_at > 2 * CHUNK_DELAY_SECONDS * 0.8
    # And the gateway's plan, not the client's request, is what reached the provider.
    assert seen["authorization"] == "Bearer k" and seen["path"] == "/v1/chat/completions"
    assert json.loads(seen["body"]) == STREAM_BODY and seen["request_id"]
    (received,) = upstream.requests
    assert received["headers"][b"authorization"] == b"Bearer provider-secret"
    assert received["body"] == b'{"model":"m","stream":true}'


def test_server_timing_splits_the_first_byte_into_the_gateways_time_and_the_providers(serve) -> None:
    # Given a gateway that takes 0.1 s to prepare the call and a provider that thinks 0.2 s before its answer
    async def thinking_upstream(scope, receive, send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(0.2)
            await send_three_events(send, 0)

    def slow_prepare(authorization, path, body, request_id=None):
        time.sleep(0.1)
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(thinking_upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=slow_prepare)) as front,
    ):
        started = time.perf_counter()
        with httpx.stream("POST", f"{front}/v1/chat/completions", json=STREAM_BODY) as response:
            first_byte = time.perf_counter() - started
            timing = response.headers["server-timing"]
            response.read()

    # Then Server-Timing says which part was whose, in milliseconds, within what the client saw
    durations = {}
    for metric in timing.split(","):
        name, duration = metric.strip().split(";dur=")
        durations[name] = float(duration)
    assert set(durations) == {"gateway", "provider"}
    assert 100 <= durations["gateway"] < 200 <= durations["provider"]
    assert durations["gateway"] + durations["provider"] <= first_byte * 1000


def test_an_upstream_that_cannot_be_reached_is_a_502(serve) -> None:
    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"http://127.0.0.1:{closed_port()}{path}", headers={}, content=b"{}")

    with serve(create_app(never_called, prepare_stream=prepare_stream)) as front:
        response = httpx.post(f"{front}/v1/completions", json={"model": "m", "prompt": "x", "stream": True})
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"


async def empty_event_stream(scope, receive, send) -> None:
    """A provider that fails after its status line: 200, an SSE content type, and no event at all."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b""})


def test_a_stream_that_ends_before_its_first_event_is_a_502(serve) -> None:
    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(empty_event_stream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        response = httpx.post(f"{front}/v1/chat/completions", json=STREAM_BODY, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"
    assert "before sending any event" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (AuthenticationFailed("Invalid token."), 401, {"detail": "Invalid token."}),
        (
            RuntimeError("bug"),
            500,
            {"error": {"message": "Internal server error.", "type": "internal_error"}},
        ),
    ],
)
def test_errors_before_the_stream_starts_are_answered_as_json(serve, error, status, body) -> None:
    def prepare_stream(authorization, path, body, request_id=None):
        raise error

    with serve(create_app(never_called, prepare_stream=prepare_stream)) as front:
        response = httpx.post(f"{front}/v1/chat/completions", json=STREAM_BODY)
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"
    assert ("www-authenticate" in response.headers) == (status == 401)


class EndlessUpstream:
    """Streams a chunk every 50 ms until its client goes away, and notes when that happened."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()
        self.disconnected_at: float | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected_at = time.monotonic()
            self.disconnected.set()

        watcher = asyncio.create_task(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for _ in range(200):
            if self.disconnected.is_set():
                break
            await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
            await asyncio.sleep(0.05)
        watcher.cancel()


def test_a_client_that_goes_away_releases_the_provider(serve, eventually) -> None:
    upstream = EndlessUpstream()

    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        with httpx.stream("POST", f"{front}/v1/chat/completions", json=STREAM_BODY) as response:
            assert next(response.iter_raw()).startswith(b"data: tick")
        left_at = time.monotonic()
        eventually(lambda: upstream.disconnected_at is not None, timeout=5)
    assert upstream.disconnected_at - left_at < 2


def test_a_warm_request_is_prepared_on_the_event_loop_and_a_cache_miss_in_a_worker_thread(serve) -> None:
    from switchyard.ttl_cache import WouldLoad

    upstream = SlowUpstream()
    where: list[str] = []
    misses = iter([False, True])  # on the loop: the second call finds all cached, the third does not

    def prepare_stream(authorization, path, body, request_id=None):
        try:
            asyncio.get_running_loop()
            where.append("loop")
        except RuntimeError:
            where.append("thread")
        if where[-1] == "loop" and next(misses):
            raise WouldLoad("key")  # what a TtlCache does inside cached_only() instead of loading
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        for _ in range(3):
            response = httpx.post(f"{front}/v1/chat/completions", json=STREAM_BODY, timeout=10)
            assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
    # cold: thread; warm: loop; warm: loop, then the miss it reported, in a thread
    assert where == ["thread", "loop", "loop", "thread"]


def test_a_streams_first_byte_window_is_open_until_its_first_event_reached_the_client(serve) -> None:
    # Background cache reloads wait for these windows (first_byte_windows): a window that never closed
    # would hold every reload to its bound; one closed late, the first token's GIL to a reload.
    from switchyard.first_byte_windows import wait_for_first_bytes

    upstream = SlowUpstream()
    open_while_preparing: list[bool] = []

    def prepare_stream(authorization, path, body, request_id=None):
        open_while_preparing.append(not wait_for_first_bytes(0))
        if authorization == "Bearer revoked":
            raise AuthenticationFailed("Invalid API key.")
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        with httpx.stream("POST", f"{front}/v1/chat/completions", json=STREAM_BODY) as response:
            chunks = response.iter_raw()
            assert next(chunks) == b"data: 0\n\n"
            # The upstream's next event is CHUNK_DELAY_SECONDS away: the stream runs, its window is shut.
            assert wait_for_first_bytes(CHUNK_DELAY_SECONDS / 2)
            assert b"".join(chunks).endswith(b"data: [DONE]\n\n")
        refused = httpx.post(
            f"{front}/v1/chat/completions", json=STREAM_BODY, headers={"Authorization": "Bearer revoked"}
        )
        assert refused.status_code == 401
        assert wait_for_first_bytes(0)  # an answer that is not a relayed stream closes its window too
    assert open_while_preparing == [True, True]


def test_streams_are_counted_by_the_status_they_start_with(serve, monkeypatch, capsys) -> None:
    # They bypass the API handler, which counts every other request (switchyard/metrics.py).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/test")

    def prepare_stream(authorization, path, body, request_id=None):
        if authorization is None:
            raise AuthenticationFailed("Invalid token.")
        return SimpleNamespace(url=f"http://127.0.0.1:{closed_port()}{path}", headers={}, content=b"{}")

    capsys.readouterr()
    with serve(create_app(never_called, prepare_stream=prepare_stream)) as front:
        unreachable = httpx.post(
            f"{front}/v1/chat/completions", json=STREAM_BODY, headers={"authorization": "k"}
        )
        unauthenticated = httpx.post(f"{front}/v1/chat/completions", json=STREAM_BODY)

    assert (unreachable.status_code, unauthenticated.status_code) == (502, 401)
    documents = emitted_metrics(capsys)
    counted = sorted(
        (d["RouteGroup"], d["Requests"], d["ClientErrors"], d["ServerErrors"])
        for d in documents
        if "Requests" in d
    )
    assert counted == [("sync_inference", [1.0], [0.0], [1.0]), ("sync_inference", [1.0], [1.0], [0.0])]
    assert not any("SyncLatency" in d for d in documents)
    # The unreachable provider is also a failed provider call; the unauthenticated request made none.
    assert provider_calls(documents) == [("sync", [1.0], [1.0], [0.0], [0.0])]


def emitted_metrics(capsys) -> list[dict]:
    """The EMF documents printed since the last read of the captured output."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def provider_calls(documents: list[dict]) -> list[tuple]:
    """The ProviderCalls data among EMF documents: (CallPath, calls, errors, timeouts, rejections)."""
    return [
        (
            d["CallPath"],
            d["ProviderCalls"],
            d["ProviderErrors"],
            d["ProviderTimeouts"],
            d["ProviderRejections"],
        )
        for d in documents
        if "ProviderCalls" in d
    ]


def answering(status: int, content_type: bytes, body: bytes):
    """A provider that answers every request with this status and body."""

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def relay_to(serve, upstream):
    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(upstream) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
    ):
        return httpx.post(f"{front}/v1/chat/completions", json=STREAM_BODY, timeout=10)


def test_a_provider_5xx_is_a_502_upstream_error_quoting_its_answer(serve) -> None:
    # What the synchronous path answers for the same provider failure.
    response = relay_to(
        serve, answering(503, b"application/json", b'{"error": {"message": "model is loading"}}')
    )
    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "message": 'The provider returned HTTP 503: {"error": {"message": "model is loading"}}',
            "type": "upstream_error",
        }
    }


def test_a_provider_4xx_is_passed_through_as_it_is(serve) -> None:
    refusal = b'{"error": {"message": "context length exceeded", "type": "invalid_request_error"}}'
    response = relay_to(serve, answering(400, b"application/json", refusal))
    assert (response.status_code, response.content) == (400, refusal)
    assert response.headers["content-type"] == "application/json"


async def breaks_off_after_one_event(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True})
    raise RuntimeError("the model server crashed")  # uvicorn drops the connection mid-response


def test_a_stream_that_breaks_off_after_its_first_event_reaches_the_client_truncated(serve) -> None:
    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    with (
        serve(breaks_off_after_one_event) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
        httpx.stream("POST", f"{front}/v1/chat/completions", json=STREAM_BODY, timeout=10) as response,
    ):
        assert response.status_code == 200
        received = b""
        # Not a clean end: the client can tell the stream was cut short.
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert received == b"data: 0\n\n"


@pytest.mark.parametrize(
    ("upstream", "counted"),
    [
        # (calls, errors, timeouts, rejections)
        (SlowUpstream(), ([1.0], [0.0], [0.0], [0.0])),
        (answering(400, b"application/json", b'{"error": {"message": "bad"}}'), ([1.0], [0.0], [0.0], [1.0])),
        (
            answering(503, b"application/json", b'{"error": {"message": "loading"}}'),
            ([1.0], [1.0], [0.0], [0.0]),
        ),
        (breaks_off_after_one_event, ([1.0], [1.0], [0.0], [0.0])),
    ],
    ids=["relayed whole", "4xx passed through", "5xx", "broken off mid-stream"],
)
def test_every_stream_is_one_provider_call_counted_by_how_it_ended(
    serve, monkeypatch, capsys, upstream, counted
) -> None:
    # Streams bypass the API handler and its provider-call metrics: the dashboard's provider panels see
    # streamed chat only through these.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/test")
    capsys.readouterr()
    with suppress(httpx.RemoteProtocolError):  # the broken-off stream reaches its client truncated
        relay_to(serve, upstream)

    documents = emitted_metrics(capsys)
    assert provider_calls(documents) == [("sync", *counted)]
    (latency,) = [d["ProviderLatency"] for d in documents if "ProviderCalls" in d]
    if isinstance(upstream, SlowUpstream):  # the call's whole length, not its time to the first byte
        assert latency[0] >= 2 * CHUNK_DELAY_SECONDS * 1000


def test_a_relayed_stream_writes_its_metrics_after_its_last_byte_in_one_document(
    serve, monkeypatch, capsys
) -> None:
    # Nothing but the relay between the provider's first token and the client's: the request and its
    # provider call are one EMF line, written once the stream is over.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/test")
    release = threading.Event()

    async def one_event_then_waits(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True})
        await asyncio.to_thread(release.wait, 10)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    def prepare_stream(authorization, path, body, request_id=None):
        return SimpleNamespace(url=f"{upstream_url}{path}", headers={}, content=b"{}")

    capsys.readouterr()
    with (
        serve(one_event_then_waits) as upstream_url,
        serve(create_app(never_called, prepare_stream=prepare_stream)) as front,
        httpx.stream("POST", f"{front}/v1/chat/completions", json=STREAM_BODY, timeout=10) as response,
    ):
        chunks = response.iter_raw()
        assert next(chunks) == b"data: 0\n\n"
        during = emitted_metrics(capsys)
        release.set()
        assert b"".join(chunks) == b"data: [DONE]\n\n"

    assert during == []
    (document,) = emitted_metrics(capsys)
    assert (document["RouteGroup"], document["Requests"], document["ServerErrors"]) == (
        "sync_inference",
        [1.0],
        [0.0],
    )
    assert provider_calls([document]) == [("sync", [1.0], [0.0], [0.0], [0.0])]


# ------------------------------------------------------------------ a stream's total deadline and size cap


@pytest.fixture
def stream_limits(monkeypatch):
    """`stream_limits(deadline=..., max_bytes=...)` sets the front's limits for the test."""
    from tests.conftest import reset_switchyard_caches

    def apply(*, deadline: float | None = None, max_bytes: int | None = None) -> None:
        if deadline is not None:
            monkeypatch.setenv("STREAM_DEADLINE_SECONDS", str(deadline))
        if max_bytes is not None:
            monkeypatch.setenv("PROVIDER_RESPONSE_MAX_BYTES", str(max_bytes))
        reset_switchyard_caches()

    return apply


PROVIDER = SimpleNamespace(account_id="acct-1", provider_id="prov-trickle")


def relaying(routes: dict[str, object]):
    """A front whose streams go to `routes[model]`'s upstream URL (set once the upstreams serve)."""

    def prepare_stream(authorization, path, body, request_id=None):
        model = json.loads(body)["model"]
        return SimpleNamespace(provider=PROVIDER, url=f"{routes[model]}{path}", headers={}, content=b"{}")

    return create_app(never_called, prepare_stream=prepare_stream)


def error_event(body: bytes) -> dict:
    """The last SSE event of a cut stream, parsed."""
    last = body.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert last.startswith(b"data: "), body[-300:]
    return json.loads(last[len(b"data: ") :])


async def stream_body(client: httpx.AsyncClient, url: str, model: str) -> tuple[int, bytes, bool]:
    """Status, body, and whether the body ended cleanly (a cut stream is left unfinished)."""
    received = b""
    async with client.stream("POST", url, json={**STREAM_BODY, "model": model}) as response:
        try:
            async for chunk in response.aiter_raw():
                received += chunk
        except httpx.RemoteProtocolError:
            return response.status_code, received, False
    return response.status_code, received, True


class FastUpstream:
    """Three events 50 ms apart and [DONE]: well within every limit."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send_three_events(send, 0.05)


def test_a_stream_trickling_under_the_read_timeout_is_cut_at_its_deadline_and_the_others_are_not(
    serve, stream_limits, eventually, caplog
) -> None:
    stream_limits(deadline=0.6)  # the read timeout stays at its default (120 s): each tick is far under it
    trickling, fast = EndlessUpstream(), FastUpstream()
    routes: dict[str, object] = {}

    async def both(front: str) -> tuple:
        async with httpx.AsyncClient(timeout=10) as client:
            started = time.monotonic()
            cut, whole = await asyncio.gather(
                stream_body(client, f"{front}/v1/chat/completions", "trickle"),
                stream_body(client, f"{front}/v1/chat/completions", "fast"),
            )
            return cut, whole, time.monotonic() - started

    with (
        serve(trickling) as routes["trickle"],
        serve(fast) as routes["fast"],
        serve(relaying(routes)) as front,
    ):
        (status, body, clean), whole, elapsed = asyncio.run(both(front))
        cut_at = time.monotonic()
        eventually(lambda: trickling.disconnected_at is not None, timeout=5)

    assert status == 200 and not clean  # cut: the body is left unfinished, as after any mid-stream failure
    assert body.startswith(b"data: tick\n\n") and 0.6 <= elapsed < 3
    assert error_event(body) == {
        "error": {
            "message": "The provider did not respond in time: its answer was not complete within the "
            "0.6 s deadline.",
            "type": "upstream_error",
        }
    }
    assert whole == (200, b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n", True)
    # The provider's connection was closed (it saw the disconnect), not kept for another request.
    assert trickling.disconnected_at - cut_at < 2
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("provider stream cut off")]
    assert logged.levelname == "WARNING" and "mid-stream" in logged.getMessage()
    assert (logged.provider_id, logged.account_id) == ("prov-trickle", "acct-1")


class FloodingUpstream:
    """Streams 100-byte events as fast as it can, far past any cap, and notes when its client left."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        watcher = asyncio.create_task(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        event = b"data: " + b"x" * 92 + b"\n\n"  # 100 bytes
        for _ in range(10_000):
            if self.disconnected.is_set():
                break
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(0)
        watcher.cancel()


def test_a_stream_past_the_size_cap_is_cut_with_an_error_event_and_the_others_are_not(
    serve, stream_limits, monkeypatch, capsys
) -> None:
    stream_limits(max_bytes=5_000)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/test")
    flooding, fast = FloodingUpstream(), FastUpstream()
    routes: dict[str, object] = {}

    async def both(front: str) -> tuple:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(
                stream_body(client, f"{front}/v1/chat/completions", "flood"),
                stream_body(client, f"{front}/v1/chat/completions", "fast"),
            )

    capsys.readouterr()
    with serve(flooding) as routes["flood"], serve(fast) as routes["fast"], serve(relaying(routes)) as front:
        (status, body, clean), whole = asyncio.run(both(front))

    assert status == 200 and not clean
    relayed, _, last = body.rpartition(b"data: {")
    assert len(relayed) <= 5_000 and relayed.endswith(b"\n\n")  # nothing past the cap reached the client
    assert error_event(body) == {
        "error": {
            "message": "The provider's answer is larger than the 5000-byte limit (it kept coming); "
            "the deployment's MaxProviderResponseBytes sets it.",
            "type": "upstream_error",
        }
    }
    assert whole == (200, b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n", True)
    # Counted as a provider error of the synchronous path (which is where streams are counted); the stream
    # relayed whole is a provider call that went well.
    documents = emitted_metrics(capsys)
    assert sorted(provider_calls(documents)) == [
        ("sync", [1.0], [0.0], [0.0], [0.0]),
        ("sync", [1.0], [1.0], [0.0], [0.0]),
    ]


async def silent_before_its_head(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await asyncio.sleep(3)


def test_limits_hit_before_the_first_byte_are_a_502_in_the_envelope(serve, stream_limits) -> None:
    stream_limits(deadline=0.3, max_bytes=1_024)
    routes: dict[str, object] = {}
    huge_first_event = answering(200, b"text/event-stream", b"data: " + b"x" * 2_000 + b"\n\n")
    with (
        serve(silent_before_its_head) as routes["silent"],
        serve(huge_first_event) as routes["huge"],
        serve(relaying(routes)) as front,
    ):
        started = time.monotonic()
        late = httpx.post(f"{front}/v1/chat/completions", json={**STREAM_BODY, "model": "silent"}, timeout=10)
        elapsed = time.monotonic() - started
        large = httpx.post(f"{front}/v1/chat/completions", json={**STREAM_BODY, "model": "huge"}, timeout=10)

    assert late.status_code == 502 and elapsed < 2
    assert late.json() == {
        "error": {
            "message": "The provider did not respond in time: its answer was not complete within the "
            "0.3 s deadline.",
            "type": "upstream_error",
        }
    }
    assert large.status_code == 502 and large.json()["error"]["type"] == "upstream_error"
    assert "larger than the 1024-byte limit" in large.json()["error"]["message"]


def test_on_lambda_a_stream_ends_before_its_invocation_does(serve, monkeypatch) -> None:
    # The template keeps StreamDeadlineSeconds below the function's timeout; the invocation's own deadline
    # (passed by the Lambda Web Adapter) bounds it too, whatever the parameters say.
    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "switchyard-stream")
    reset_switchyard_caches()
    trickling = EndlessUpstream()
    routes: dict[str, object] = {}
    invocation = {
        "request_id": "6f1d7c52-0000-4000-8000-000000000001",
        "deadline": int(time.time() * 1000) + 1_600,
    }

    with serve(trickling) as routes["trickle"], serve(relaying(routes)) as front:
        started = time.monotonic()
        with httpx.stream(
            "POST",
            f"{front}/v1/chat/completions",
            json={**STREAM_BODY, "model": "trickle"},
            headers={"x-amzn-lambda-context": json.dumps(invocation)},
            timeout=10,
        ) as response:
            body = b""
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    body += chunk
        elapsed = time.monotonic() - started

    assert 0.4 < elapsed < 1.5  # a second before the invocation's end, not StreamDeadlineSeconds (290 s)
    assert "did not respond in time" in error_event(body)["error"]["message"]


def test_a_provider_failing_a_stream_is_logged_with_its_id(serve, caplog) -> None:
    # As the synchronous path logs it: which provider failed is not a metric dimension.
    routes: dict[str, object] = {"gone": f"http://127.0.0.1:{closed_port()}"}

    async def both(front: str) -> tuple:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(
                stream_body(client, f"{front}/v1/chat/completions", "gone"),
                stream_body(client, f"{front}/v1/chat/completions", "broken"),
            )

    with serve(breaks_off_after_one_event) as routes["broken"], serve(relaying(routes)) as front:
        (gone_status, _, _), (broken_status, broken_body, clean) = asyncio.run(both(front))

    assert (gone_status, broken_status, broken_body, clean) == (502, 200, b"data: 0\n\n", False)
    failures = sorted(
        (r.getMessage().split(":")[0], r.provider_id, r.account_id)
        for r in caplog.records
        if r.getMessage().startswith("provider call failed")
    )
    assert failures == [
        ("provider call failed before the first byte", "prov-trickle", "acct-1"),
        ("provider call failed mid-stream", "prov-trickle", "acct-1"),
    ]
