"""Lazily built, cached boto3 clients and resources (nothing is created at import time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from switchyard import caches

if TYPE_CHECKING:  # the stubs are a dev dependency: the layer never imports them
    from types_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from types_boto3_dynamodb.service_resource import Table
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient
    from types_boto3_stepfunctions import SFNClient

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _build(kind: str, service: Any) -> Any:  # Any: the typed overloads of client() and resource() narrow it
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


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
def client(service: str) -> Any:
    return _cached("client", service)


def resource(service: Literal["dynamodb"]) -> DynamoDBServiceResource:
    found: DynamoDBServiceResource = _cached("resource", service)
    return found


def table(name: str) -> Table:
    return resource("dynamodb").Table(name)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    with _lock:
        _clients.clear()


caches.on_reset(reset_clients)


def item_pages(call: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
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


def item_count(call: Callable[..., Mapping[str, Any]], **kwargs: Any) -> int:
    """How many items a Table's `query` or `scan` matches (Select=COUNT: no item leaves DynamoDB, though
    every item scanned is still read and billed)."""
    total = 0
    for page in _count_pages(call, **kwargs):
        total += page
    return total


def _count_pages(call: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Iterator[int]:
    kwargs["Select"] = "COUNT"
    while True:
        page = call(**kwargs)
        yield int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
