"""Standard Webhooks signatures and the headers of one delivery attempt.

`webhook-signature` is `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, one per
active secret, space-separated (two during the 24 h after a rotation). The signing itself is the
`standardwebhooks` reference library's, so what a receiver verifies with it (or with any other Standard
Webhooks library, such as the openai SDK's `client.webhooks.unwrap`) is exactly what was computed here.

The timestamp is the attempt's, not the event's: receivers refuse timestamps more than 5 minutes off,
and a retry may come days after the event. The id and the body stay the same on every attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signature_header(secrets: list[str], webhook_id: str, timestamp: int, body: str) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(webhook_id, moment, body) for secret in secrets)


def delivery_headers(
    *,
    secrets: list[str],
    webhook_id: str,
    timestamp: int,
    body: str,
    event: str,
    endpoint_id: str,
    generation_id: str | None,
) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
        # inference.net's headers, for receivers written against it.
        "x-inference-event": event,
        "x-inference-webhook-id": endpoint_id,
    }
    if generation_id:
        headers["x-inference-generation-id"] = generation_id
    return headers
