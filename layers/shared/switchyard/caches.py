"""Process-wide caches of built objects (settings, clients, services), forgotten together.

A Lambda container builds each service once and keeps it for every invocation; tests and the local
stack change the environment between cases and must start from nothing. Every cached factory is
declared with `@cached` and every other process-wide cache registers its reset with `on_reset`, so
`reset_all()` forgets all of them without anyone keeping a list. A factory registers when its module
is imported; a module never imported has built nothing that needs forgetting.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_resets: list[Callable[[], None]] = []


def cached(factory: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
    """A factory without arguments whose result is built once, until `reset_all()` (or its own
    `cache_clear()`)."""
    memoized = functools.cache(factory)
    on_reset(memoized.cache_clear)
    return memoized


def on_reset(reset: Callable[[], None]) -> None:
    with _lock:
        _resets.append(reset)


def reset_all() -> None:
    """Forget everything built for the previous environment; each is rebuilt on its next use."""
    with _lock:
        resets = list(_resets)
    for reset in resets:
        reset()
