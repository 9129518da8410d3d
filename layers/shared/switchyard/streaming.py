"""The part of a streaming chat/completions request that happens before the first byte.

The front (local stack, or the StreamFunction on AWS) calls this in a worker thread (the rate-limit
admission is a DynamoDB write, so even a warm request goes there), then relays the
provider's Server-Sent Events itself, chunk by chunk, since a buffered Lambda response cannot stream.
"""

from __future__ import annotations

import dataclasses

from switchyard.catalog import endpoint_for
from switchyard.errors import ApiError, NotFound
from switchyard.services.accounts import get_accounts_service
from switchyard.services.inference import ProviderCall, plan_json_call
from switchyard.services.rate_limits import get_rate_limiter
from switchyard.ttl_cache import refuse_io_if_cached_only
from switchyard.validation import parse_json_object


def prepare_stream(
    authorization: str | None, path: str, body: bytes, request_id: str | None = None
) -> ProviderCall:
    """Authenticate, count the request against the account's limits (as api/app.py does for every other
    request), validate and choose the provider; every answer after the count carries its headers."""
    account_id = get_accounts_service().authenticate(authorization)
    # The admission is a DynamoDB write on every request: never on the front's event loop, where it would
    # stall every other stream's events for as long as it takes.
    refuse_io_if_cached_only()
    allowance = get_rate_limiter().admit(account_id)
    try:
        endpoint = endpoint_for(path)
        if endpoint is None or not endpoint.streams:
            raise NotFound(f"{path} does not stream.")
        call = plan_json_call(account_id, endpoint, parse_json_object(body), request_id)
    except ApiError as error:
        error.extra_headers.update(allowance.headers())
        raise
    return dataclasses.replace(call, response_headers=allowance.headers())
