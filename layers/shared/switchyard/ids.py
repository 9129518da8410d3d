"""Identifiers: strings, sortable by creation time, unguessable."""

from __future__ import annotations

import secrets
import time
import uuid

# Fixed, so that one id always maps to the same UUID (a retried job sends the same one). The agent uses it
# too, so the two sides agree whichever of them did the mapping.
_PROVIDER_REQUEST_NAMESPACE = uuid.UUID("6f1d7c52-3a0e-4b8e-9a44-5d0c2b7e9f10")


def new_id(prefix: str = "") -> str:
    # 12 hex digits of milliseconds (sorts until year 10889) + 10 random hex digits.
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"


def provider_request_id(request_id: str) -> str:
    """The `X-Request-ID` a provider is sent for one of our ids: a UUID, the form model servers accept.

    llama-cpp-python's server answers 400 with an empty body to an X-Request-ID that is not a UUID, and
    ours are not (job ids "job_...", API Gateway's request ids). A UUID passes as it is (in canonical
    form); anything else becomes a UUID derived from it, the same every time.
    """
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        return str(uuid.uuid5(_PROVIDER_REQUEST_NAMESPACE, request_id))
