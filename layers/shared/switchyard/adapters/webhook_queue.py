"""The SQS queue that wakes the webhook delivery function: "attempt delivery D of endpoint W now".

A message is only a wake-up: the delivery item is the truth, and every attempt is recorded against it
conditionally. A small body rides along (SQS bills each 64 KB of a message as one request), so the
common attempt needs no read of the delivery item.

Sends from threads that run at the same moment (the dispatcher handles a batch's records concurrently)
are coalesced into SendMessageBatch calls of up to 10. A caller waits at most `linger_seconds` for
company and returns once its own message is sent, so nothing is left behind when a Lambda invocation
ends and its sandbox freezes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from switchyard.adapters import aws
from switchyard.caches import cached
from switchyard.settings import get_settings

MAX_DELAY_SECONDS = 900  # SQS's own limit
INLINE_BODY_LIMIT = 48_000  # bytes of body that ride along in the message (one 64 KB SQS request)
BATCH_LIMIT = 10  # SendMessageBatch's limit


@dataclass(frozen=True)
class DeliveryMessage:
    webhook_id: str
    delivery_id: str
    index: int | None = None  # the scheduled attempt this message is for; None for a manual one
    token: str | None = None  # a manual attempt's token (redelivery or test)
    event: str | None = None  # for the X-Inference-* headers, so that no read is needed
    generation_id: str | None = None
    body: str | None = None

    def to_body(self) -> str:
        data: dict[str, Any] = {"webhook_id": self.webhook_id, "delivery_id": self.delivery_id}
        for name in ("event", "generation_id"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.index is not None:
            data["index"] = self.index
        if self.token is not None:
            data["token"] = self.token
        if self.body is not None and len(self.body.encode()) <= INLINE_BODY_LIMIT:
            data["body"] = self.body
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_body(cls, text: str) -> DeliveryMessage:
        try:
            data = json.loads(text)
            index = data.get("index")
            return cls(
                webhook_id=str(data["webhook_id"]),
                delivery_id=str(data["delivery_id"]),
                index=int(index) if index is not None else None,
                token=str(data["token"]) if data.get("token") is not None else None,
                event=str(data["event"]) if data.get("event") is not None else None,
                generation_id=str(data["generation_id"]) if data.get("generation_id") else None,
                body=data.get("body") if isinstance(data.get("body"), str) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a webhook delivery message: {text[:200]!r}") from exc


class SendFailed(Exception):
    """SQS did not take the message (the delivery's wake time makes the sweeper send it later)."""


@dataclass
class _Pending:
    body: str
    delay_seconds: int
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class WebhookQueue:
    def __init__(self, queue_url: str, linger_seconds: float = 0.02):
        self.queue_url = queue_url
        self._linger = linger_seconds
        self._changed = threading.Condition()
        self._waiting: list[_Pending] = []
        self._leader_present = False

    def send(self, message: DeliveryMessage, delay_seconds: int = 0) -> None:
        """Send one message (coalesced with concurrent sends); raises SendFailed if SQS refused it.

        Whoever finds no sender at work becomes it for one batch: it waits up to the linger time for the
        batch to fill, takes the oldest 10 and sends them; the others wait for their message's turn.
        """
        mine = _Pending(message.to_body(), max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)))
        with self._changed:
            self._waiting.append(mine)
            self._changed.notify_all()
        while True:
            with self._changed:
                if mine.done.is_set():
                    break
                if self._leader_present:
                    self._changed.wait(timeout=1.0)
                    continue
                self._leader_present = True
                self._changed.wait_for(lambda: len(self._waiting) >= BATCH_LIMIT, timeout=self._linger)
                batch, self._waiting = self._waiting[:BATCH_LIMIT], self._waiting[BATCH_LIMIT:]
            try:
                self._send_batch(batch)
            finally:
                with self._changed:
                    self._leader_present = False
                    self._changed.notify_all()
        if mine.error:
            raise SendFailed(mine.error)

    def _send_batch(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                aws.client("sqs").send_message(
                    QueueUrl=self.queue_url, MessageBody=batch[0].body, DelaySeconds=batch[0].delay_seconds
                )
                failed: dict[str, str] = {}
            else:
                answer = aws.client("sqs").send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "MessageBody": pending.body, "DelaySeconds": pending.delay_seconds}
                        for i, pending in enumerate(batch)
                    ],
                )
                failed = {
                    f["Id"]: f.get("Message", f.get("Code", "refused")) for f in answer.get("Failed", [])
                }
        except Exception as exc:  # noqa: BLE001 - reported to each sender
            failed = {str(i): f"{type(exc).__name__}: {exc}" for i in range(len(batch))}
        for i, pending in enumerate(batch):
            pending.error = failed.get(str(i))
            pending.done.set()


@cached
def get_webhook_queue() -> WebhookQueue:
    return WebhookQueue(get_settings().webhook_queue_url)
