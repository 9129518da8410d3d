"""A tiny time-bounded cache for values that are safe to serve slightly stale (keys, provider lists).

With `refresh_ahead_seconds`, an entry that has less than that left to live is still served, and one
background thread reloads it. Under steady traffic no request waits for a reload (the request that
found a provider list expired used to pay a whole DynamoDB query, every 2 s), and no value is ever
served older than `ttl_seconds`: a request that finds an entry fully expired loads it itself.

On Lambda the sandbox freezes between invocations, so a reload may stop halfway and resume at the next
invocation; one that resumes after its entry has expired gives up (that request loads inline anyway).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

V = TypeVar("V")

log = logging.getLogger(__name__)

_refreshes: set[threading.Thread] = set()
_refreshes_lock = threading.Lock()


class _Entry(NamedTuple, Generic[V]):
    refresh_at: float
    expires_at: float
    ticket: int  # when its load began, in the cache's sequence: a newer load's entry wins
    value: V


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        *,
        refresh_ahead_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl_seconds = ttl_seconds
        self.refresh_ahead_seconds = min(refresh_ahead_seconds, ttl_seconds)
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, _Entry[V]] = {}
        # Every load takes a ticket first; invalidate() and clear() take one too. A load whose ticket is
        # older than the key's last invalidation read what was there before it, and is not stored.
        self._tickets = itertools.count(1)
        self._invalidated: dict[Hashable, int] = {}
        self._cleared = 0
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > now:
            if entry.refresh_at <= now:
                self._refresh_in_background(key, load, entry)
            return entry.value
        ticket = next(self._tickets)
        value = load()
        self._store(key, value, loaded_at=now, ticket=ticket)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._invalidated[key] = next(self._tickets)
            if len(self._invalidated) > self.max_entries:  # bounded: forget them all, block every older load
                self._invalidated.clear()
                self._cleared = next(self._tickets)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._invalidated.clear()
            self._cleared = next(self._tickets)

    def _store(self, key: Hashable, value: V, *, loaded_at: float, ticket: int) -> None:
        with self._lock:
            if ticket < self._cleared or ticket < self._invalidated.get(key, 0):
                return  # invalidated while loading: the next request reads afresh
            current = self._entries.get(key)
            if current is not None and current.ticket > ticket:
                return  # a load that began later has already stored newer data
            if current is None and len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded memory beats LRU bookkeeping on this path
            expires_at = loaded_at + self.ttl_seconds
            self._entries[key] = _Entry(expires_at - self.refresh_ahead_seconds, expires_at, ticket, value)

    def _refresh_in_background(self, key: Hashable, load: Callable[[], V], entry: _Entry[V]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                started = self._clock()
                if started >= entry.expires_at:
                    return  # frozen past the entry's life (Lambda): a request has loaded or will load it
                ticket = next(self._tickets)
                value = load()
            except Exception:
                # The entry stays until it expires (a throttled table must not turn every request into a
                # load); then a request loads it itself and reports whatever is wrong (a revoked key...).
                log.info("Background reload of a cache entry failed", exc_info=True)
            else:
                self._store(key, value, loaded_at=started, ticket=ticket)
            finally:
                self._done_refreshing(key, thread)

        thread = threading.Thread(target=refresh, name="cache-refresh", daemon=True)
        with _refreshes_lock:
            _refreshes.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: serving the entry matters more than reloading it
            log.warning("Could not start a background cache reload", exc_info=True)
            self._done_refreshing(key, thread)

    def _done_refreshing(self, key: Hashable, thread: threading.Thread) -> None:
        with self._lock:
            self._refreshing.discard(key)
        with _refreshes_lock:
            _refreshes.discard(thread)


def wait_for_refreshes(timeout: float = 10) -> None:
    """Block until background reloads in flight have finished (tests: before their AWS double goes)."""
    with _refreshes_lock:
        pending = list(_refreshes)
    for thread in pending:
        thread.join(timeout)
