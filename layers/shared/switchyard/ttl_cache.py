"""A tiny time-bounded cache for values that are safe to serve slightly stale (keys, provider lists).

With `refresh_ahead_seconds`, an entry that has less than that left to live is still served, and one
background thread reloads it. Under steady traffic no request waits for a reload (the request that
found a provider list expired used to pay a whole DynamoDB query, every 2 s), and no value is ever
served older than `ttl_seconds`: a request that finds an entry fully expired loads it itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

V = TypeVar("V")

log = logging.getLogger(__name__)

_refreshes: set[threading.Thread] = set()
_refreshes_lock = threading.Lock()


class _Entry(NamedTuple):
    refresh_at: float
    expires_at: float
    value: object


class TtlCache(Generic[V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, *, refresh_ahead_seconds: float = 0.0):
        self.ttl_seconds = ttl_seconds
        self.refresh_ahead_seconds = min(refresh_ahead_seconds, ttl_seconds)
        self.max_entries = max_entries
        self._entries: dict[Hashable, _Entry] = {}
        # Bumped by invalidate(): a load that began before an invalidation must not store what it read.
        self._generations: dict[Hashable, int] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > now:
            if entry.refresh_at <= now:
                self._refresh_in_background(key, load)
            return entry.value  # type: ignore[return-value]
        generation = self._generations.get(key, 0)
        value = load()
        self._store(key, value, loaded_at=now, generation=generation)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._generations[key] = self._generations.get(key, 0) + 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generations.clear()

    def _store(self, key: Hashable, value: V, *, loaded_at: float, generation: int) -> None:
        with self._lock:
            if self._generations.get(key, 0) != generation:
                return  # invalidated while loading: the next request reads afresh
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded memory beats LRU bookkeeping on this path
                self._generations.clear()
            expires_at = loaded_at + self.ttl_seconds
            self._entries[key] = _Entry(expires_at - self.refresh_ahead_seconds, expires_at, value)

    def _refresh_in_background(self, key: Hashable, load: Callable[[], V]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            generation = self._generations.get(key, 0)

        def refresh() -> None:
            started = time.monotonic()
            try:
                value = load()
            except Exception:
                # Whatever changed (a revoked key, a failing table) is for a request to find out and report.
                log.info("Background refresh of a cache entry failed; dropping the entry", exc_info=True)
                self.invalidate(key)
            else:
                self._store(key, value, loaded_at=started, generation=generation)
            finally:
                with self._lock:
                    self._refreshing.discard(key)
                with _refreshes_lock:
                    _refreshes.discard(thread)

        thread = threading.Thread(target=refresh, name="cache-refresh", daemon=True)
        with _refreshes_lock:
            _refreshes.add(thread)
        thread.start()


def wait_for_refreshes(timeout: float = 10) -> None:
    """Block until background refreshes in flight have finished (tests: before their AWS double goes)."""
    with _refreshes_lock:
        pending = list(_refreshes)
    for thread in pending:
        thread.join(timeout)
