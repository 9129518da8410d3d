"""Time as the gateway stores and shows it: epoch milliseconds inside, one ISO format outside.

Stored times are integer epoch milliseconds (`*_ms` attributes), so durations keep their precision.
Every time a client reads is `2026-06-13T12:00:00Z` (UTC, whole seconds: the seed documents' format),
for jobs, runs, steps and gates alike; a client wanting precision reads `duration_ms`. The exception is
inference.net's shapes (GenerationForClient, the webhook envelope, webhook deliveries), which carry
JavaScript's `toISOString()` form, `2026-06-13T12:00:00.123Z`: a receiver measures delays from them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as the API shows a time (None, or 0, for a time that has not happened)."""
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds in UTC with milliseconds (inference.net's shapes); None for no time."""
    if not ms:
        return None
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def ms_from_iso(text: str | None) -> int | None:
    """An ISO 8601 time (Step Functions' `$$.State.EnteredTime`, UTC) as epoch milliseconds."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
