"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

moto checks a ConditionExpression and then writes, with nothing in between to stop a second thread doing
the same: two concurrent conditional updates of one item can both succeed. Real DynamoDB never allows
that, and the dispatcher's "a job is never run twice" rests on it. One lock around each write (and the
transactional calls) restores the guarantee for the embedded AWS, in-process or behind the moto server.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        @functools.wraps(original)
        def serialized(self, *args, __original=original, **kwargs):
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, serialized)
    _installed = True
