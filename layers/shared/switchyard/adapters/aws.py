"""Lazily built, cached boto3 clients and resources (nothing is created at import time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from switchyard import caches

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _build(kind: str, service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Tight retries and connection reuse: these calls sit on the request path.
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50)
    session = boto3.session.Session()
    return (
        session.client(service, config=config)
        if kind == "client"
        else session.resource(service, config=config)
    )


def _cached(kind: str, service: str) -> Any:
    key = f"{kind}:{service}"
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key) or _build(kind, service)
            _clients[key] = found
    return found


def client(service: str) -> Any:
    return _cached("client", service)


def resource(service: str) -> Any:
    return _cached("resource", service)


def table(name: str) -> Any:
    return resource("dynamodb").Table(name)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    with _lock:
        _clients.clear()


caches.on_reset(reset_clients)


def item_pages(call: Callable[..., dict], **kwargs: Any) -> Iterator[list[dict]]:
    """The Items of a Table's `query` or `scan`, one page (up to 1 MB) at a time, each fetched only when
    the one before has been consumed: a caller that has enough stops paying for reads.

    (A boto3 paginator would do this for the low-level client, whose items come back as typed
    DynamoDB JSON; the handlers use the Table resource, which has none.)
    """
    while True:
        page = call(**kwargs)
        yield page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def item_count(call: Callable[..., dict], **kwargs: Any) -> int:
    """How many items a Table's `query` or `scan` matches (Select=COUNT: no item leaves DynamoDB, though
    every item scanned is still read and billed)."""
    total = 0
    for page in _count_pages(call, **kwargs):
        total += page
    return total


def _count_pages(call: Callable[..., dict], **kwargs: Any) -> Iterator[int]:
    kwargs["Select"] = "COUNT"
    while True:
        page = call(**kwargs)
        yield int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
