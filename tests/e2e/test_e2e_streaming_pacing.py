"""Incremental delivery through the agent and the gateway, against a model server that is not ours.

The server here is raw sockets: it writes its status line and headers, and then each SSE event, as
separate TCP segments (TCP_NODELAY), the way a real model server emits tokens, and pauses a whole second
after the first event. Every hop must forward that first event as soon as it arrives: the client has it
long before the pause ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import BIN, _spawn, _stop, _wait_for_line, admin

pytestmark = pytest.mark.e2e

PAUSE_SECONDS = 1.0
MODEL = "paced-llm"
LISTING = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "pacer"}]}


def _event(payload: object) -> bytes:
    data = f"data: {json.dumps(payload) if not isinstance(payload, str) else payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)  # one chunk of a chunked body


def _chunk(index: int, text: str) -> dict:
    return {
        "id": "chatcmpl-paced",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


class PacedServer:
    """HTTP/1.1 by hand: GET /v1/models, and POST /v1/chat/completions streaming two events a pause apart."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                while len(buffered) < length:
                    buffered += connection.recv(65536)
                buffered = buffered[length:]
                if method == "GET" and path == "/v1/models":
                    body = json.dumps(LISTING).encode()
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                    continue
                self._stream(connection)

    @staticmethod
    def _stream(connection: socket.socket) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        time.sleep(0.01)  # its own segment, then the first token's
        connection.sendall(_event(_chunk(0, "first")))
        time.sleep(PAUSE_SECONDS)
        connection.sendall(_event(_chunk(1, " second")))
        connection.sendall(_event("[DONE]"))
        connection.sendall(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def paced_account(local_stack, tmp_path_factory) -> Iterator[str]:
    server = PacedServer()
    account = admin(local_stack, "create-account", "paced-team")
    agent = _spawn(
        [
            str(BIN / "switchyard-agent"),
            "--gateway",
            local_stack.base_url,
            "--api-key",
            account["api_key"],
            "--upstream",
            server.url,
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "5",
        ],
        tmp_path_factory.mktemp("paced"),
    )
    try:
        _wait_for_line(agent, r"registered provider")
        yield account["api_key"]
    finally:
        _stop(agent)
        server.close()


def test_the_first_event_reaches_the_client_long_before_the_provider_pause_ends(local_stack, paced_account):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    arrivals: list[tuple[float, str]] = []
    with httpx.Client(timeout=30, trust_env=False) as client:
        for _ in range(2):  # a fresh and a kept-alive connection, at every hop
            arrivals.clear()
            started = time.perf_counter()
            with client.stream(
                "POST",
                f"{local_stack.base_url}/v1/chat/completions",
                json=body,
                headers=local_stack.headers(paced_account),
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        arrivals.append((time.perf_counter() - started, line))
            first_at, first = arrivals[0]
            assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "first"
            assert first_at < PAUSE_SECONDS / 2, arrivals  # not held until the next event comes
            assert arrivals[1][0] >= PAUSE_SECONDS  # and the second really came after the pause
            assert arrivals[-1][1] == "data: [DONE]"
