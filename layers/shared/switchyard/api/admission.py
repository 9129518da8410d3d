"""Which requests count against an account's rate limits, and the jobs each would create.

Admission happens once per request, before routing (api/app.py): every answer to a limited request,
whatever it is, carries the rate-limit headers, and a request over the limit never reaches a route. A
request that reserved jobs and created fewer (an Idempotency-Key replay, a refused body, a failed retry)
gives the rest back when it is answered: routes say what they created with `note_jobs_created`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from switchyard.catalog import endpoint_for
from switchyard.services.batches import MAX_ITEMS
from switchyard.services.rate_limits import Allowance
from switchyard.validation import loads_strict

_RETRY = re.compile(r"^/v1/jobs/[^/]+/retry/?$")
_COUNTED = ("/v1/batches", "/v1/workflows/runs")
# inference.net's background path (api/background_routes.py): every request there is an async submit.
_BACKGROUND = re.compile(r"^/v1/(slow|async)/(chat/completions|completions|embeddings)/?$")
# Webhook management that makes the gateway send HTTP (test, redeliver) or writes (create, rotate): each
# counts as a request, so a key cannot make the gateway POST to a receiver as fast as it can ask. Reads
# and deletes are not counted, like GET /v1/jobs.
_WEBHOOK_WRITES = re.compile(r"^/v1/webhooks(/[^/]+/(rotate-secret|test|deliveries/[^/]+/redeliver))?/?$")


@dataclass
class Admission:
    """One admitted request: what the limiter allowed and what its route created."""

    account_id: str
    allowance: Allowance
    created: int = 0

    @property
    def unused(self) -> int:
        return max(0, self.allowance.jobs_reserved - self.created)


def note_jobs_created(app: Any, jobs: int) -> None:
    """A route created `jobs` jobs for the current request (counted against what it reserved)."""
    admission = app.context.get("admission")
    if isinstance(admission, Admission):
        admission.created += jobs


def jobs_requested(method: str, path: str, event: dict[str, Any]) -> int | None:
    """None: the request is not limited. Else how many jobs in flight it would add if it succeeds."""
    if method != "POST":
        return None
    endpoint = endpoint_for(path)
    if endpoint is not None:
        return 1 if endpoint.can_queue and _asks_async(event) else 0
    if _BACKGROUND.match(path):
        return 1
    if _WEBHOOK_WRITES.match(path):
        return 0
    normalised = path.rstrip("/") or path
    if normalised == "/v1/batches":
        return _batch_size(event)
    if normalised in _COUNTED:
        return 0
    if _RETRY.match(path):
        return 1
    return None


def _body(event: dict[str, Any]) -> Any:
    raw = event.get("body") or ""
    try:
        text = base64.b64decode(raw).decode("utf-8") if event.get("isBase64Encoded") else raw
        return loads_strict(text)
    except (ValueError, binascii.Error):
        return None  # the route answers a bad body; it reserves nothing


def _asks_async(event: dict[str, Any]) -> bool:
    if '"async"' not in (event.get("body") or "") and not event.get("isBase64Encoded"):
        return False  # spares a JSON parse on every synchronous request
    body = _body(event)
    return isinstance(body, dict) and body.get("async") is True


def _batch_size(event: dict[str, Any]) -> int:
    body = _body(event)
    requests = body.get("requests") if isinstance(body, dict) else None
    return len(requests) if isinstance(requests, list) and len(requests) <= MAX_ITEMS else 0
