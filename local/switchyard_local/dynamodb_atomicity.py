"""Make moto's DynamoDB calls atomic, as DynamoDB's are.

moto checks a ConditionExpression and then writes, with nothing in between to stop a second thread doing
the same: two concurrent conditional updates of one item can both succeed. Real DynamoDB never allows
that, and the dispatcher's "a job is never run twice" rests on it. Reads have the mirror problem: moto
hands back the stored item and turns it into a response afterwards, so a write landing meanwhile fails
the read ("dictionary changed size during iteration"). One lock around each whole DynamoDB call (parse,
backend, response) restores both guarantees for the embedded AWS, in-process or behind the moto server.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def serialized(self, *args, **kwargs):
        with _lock:
            return original(self, *args, **kwargs)

    DynamoHandler.call_action = serialized
    _installed = True
