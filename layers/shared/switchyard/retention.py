"""How long what the gateway stores is kept: RETENTION_DAYS days (the template's RetentionDays, 30 by
default), counted from a moment that makes every reference outlive what it points at (pure).

- Jobs (and so inference.net's generations, which are jobs): from their creation. Their bodies,
  results and media in S3 are deleted by the bucket's lifecycle rule the same number of days after they
  were written, which is at or after the job's creation: a job's objects outlive its item.
- Batches: from their creation. Workflow runs and their steps: from the latest moment the run could end
  (every step waiting as long as it may, then running as long as it may), so a long gate never loses
  its run. Providers: from their last heartbeat.
- Accounts and API keys are kept until deleted (switchyard-admin); idempotency records for 24 h.

DynamoDB deletes an item some time after its `expires_at` (epoch seconds, the TTL attribute of every
table that has one) has passed, usually within days; reads treat an expired item as gone already, so
nothing is shown whose objects the lifecycle rule may have deleted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

EXPIRES_AT = "expires_at"
DAY_SECONDS = 86_400


def expires_at(from_ms: int, retention_days: int, *, later_seconds: int = 0) -> int:
    """The TTL (epoch seconds) of an item kept `retention_days` after `from_ms` (+ `later_seconds`)."""
    return from_ms // 1000 + later_seconds + retention_days * DAY_SECONDS


def is_expired(item: Mapping[str, Any], now_seconds: float | None = None) -> bool:
    value = item.get(EXPIRES_AT)
    return value is not None and int(value) < (time.time() if now_seconds is None else now_seconds)
