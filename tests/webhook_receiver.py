"""A webhook receiver on loopback for tests: records every request byte for byte and answers as scripted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        import json

        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class WebhookReceiver:
    """`answers` are used in order, one per request; once they run out every request gets 200."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self._answers: list[Answer] = []
        self._changed = threading.Condition()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET", "OPTIONS"])])

    def answer(self, *answers: int | Answer) -> None:
        with self._changed:
            self._answers = [a if isinstance(a, Answer) else Answer(a) for a in answers]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        record = Received(
            request.method, request.url.path, request.url.query, dict(request.headers), body, time.time()
        )
        with self._changed:
            self.received.append(record)
            answer = self._answers.pop(0) if self._answers else Answer()
            self._changed.notify_all()
        return Response(answer.body, answer.status, headers=answer.headers)

    def wait_for(self, count: int, timeout: float = 15.0, *, event: str | None = None) -> list[Received]:
        """The first `count` requests (of one event type, if given), waiting up to `timeout` for them."""

        def matching() -> list[Received]:
            return [r for r in self.received if event is None or r.headers.get("x-inference-event") == event]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(
                    f"{len(matching())} of {count} webhook requests arrived: {self.received}"
                )
            return matching()[:count]

    def of_delivery(self, webhook_id: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("webhook-id") == webhook_id]


@contextmanager
def running_receiver(path: str = "/hooks") -> Iterator[WebhookReceiver]:
    from switchyard_agent.serving import serve_in_thread

    receiver = WebhookReceiver()
    with serve_in_thread(receiver.app) as base_url:
        receiver.url = base_url + path
        yield receiver
