"""The part of a streaming chat/completions request that happens before the first byte.

The front (local stack, or the StreamFunction on AWS) calls this on its event loop inside
`ttl_cache.cached_only()` when everything is in memory (the key, the providers, a rate-limit lease), and
in a worker thread when something must be read or written first; then it relays the provider's
Server-Sent Events itself, chunk by chunk, since a buffered Lambda response cannot stream.
"""

from __future__ import annotations

import dataclasses

from switchyard.catalog import endpoint_for
from switchyard.errors import ApiError, NotFound
from switchyard.services.accounts import get_accounts_service
from switchyard.services.inference import ProviderCall, plan_json_call
from switchyard.services.rate_limits import get_rate_limiter
from switchyard.ttl_cache import WouldLoad
from switchyard.validation import parse_json_object


def prepare_stream(
    authorization: str | None, path: str, body: bytes, request_id: str | None = None
) -> ProviderCall:
    """Authenticate, count the request against the account's limits (as api/app.py does for every other
    request), validate and choose the provider; every answer after the count carries its headers."""
    account_id = get_accounts_service().authenticate(authorization)
    limiter = get_rate_limiter()
    # Admitted from this instance's lease, or raises WouldLoad on the loop (before counting anything).
    allowance = limiter.admit(account_id)
    try:
        endpoint = endpoint_for(path)
        if endpoint is None or not endpoint.streams:
            raise NotFound(f"{path} does not stream.")
        call = plan_json_call(account_id, endpoint, parse_json_object(body), request_id)
    except ApiError as error:
        error.extra_headers.update(allowance.headers())
        raise
    except WouldLoad:
        limiter.give_back(account_id, allowance)  # the worker thread it goes to admits it again
        raise
    return dataclasses.replace(call, response_headers=allowance.headers())
