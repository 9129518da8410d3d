"""`Idempotency-Key` for submissions, on Powertools' idempotency utility (DynamoDB persistence).

The key is scoped to the account and the kind of submission; the request body is the payload that must
match: the same key with a different body is a conflict, not a silent duplicate. A replay returns the
existing resource as it is now (through `replay`), not a stale copy of the first answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from switchyard.caches import cached
from switchyard.errors import Conflict, InvalidRequest
from switchyard.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

EXPIRES_AFTER_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@cached
def _persistence() -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)


def body_fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def run_once(
    *,
    account_id: str,
    key: str,
    scope: str,
    payload: Any,
    create: Callable[[], dict[str, Any]],
    replay: Callable[[dict[str, Any]], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Run `create` once per (account, scope, key); later calls get `replay(first answer)`."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", param="Idempotency-Key"
        )
    config = IdempotencyConfig(
        event_key_jmespath="[account_id, scope, key]",
        payload_validation_jmespath="fingerprint",
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
        raise_on_no_idempotency_key=True,
        response_hook=lambda response, _record: replay(response),
    )
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        # Lets Powertools expire an in-progress record if this invocation times out mid-submission.
        config.register_lambda_context(lambda_context)

    def submit_once(request: dict[str, Any]) -> dict[str, Any]:
        return create()

    guarded = idempotent_function(
        submit_once,
        data_keyword_argument="request",
        persistence_store=_persistence(),
        config=config,
        key_prefix=f"switchyard#{scope}",
    )
    request = {"account_id": account_id, "scope": scope, "key": key, "fingerprint": body_fingerprint(payload)}
    try:
        answer: dict[str, Any] = guarded(request=request)
        return answer
    except IdempotencyValidationError as exc:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body; use a new key for a new request."
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        ) from exc
