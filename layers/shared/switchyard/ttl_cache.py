"""A tiny time-bounded cache for values that are safe to serve slightly stale (keys, provider lists).

With `refresh_ahead_seconds`, an entry that has less than that left to live is still served, and one
background thread reloads it. Under steady traffic no request waits for a reload (the request that
found a provider list expired used to pay a whole DynamoDB query, every 2 s), and no value is ever
served older than `ttl_seconds`: a request that finds an entry fully expired loads it itself.

With `keep_warm_seconds` as well, an entry read within that long is also reloaded when its refresh time
comes and no request is there to notice: traffic that pauses longer than the TTL (a chat user reading
the answer, one request every 30 s) still never waits for a reload. Measured on the local stack, that
wait was the whole of the ~20 ms a streamed first token spent in the gateway. The staleness bound is
unchanged; the price is one load per refresh period per entry in use. A key nobody read for
`keep_warm_seconds` is left to expire.

On Lambda the sandbox freezes between invocations, so a reload may stop halfway and resume at the next
invocation; one that resumes after its entry has expired gives up (that request loads inline anyway).
Keep-warm timers do not fire while frozen either, so there it changes nothing: turn it on where the
process keeps running (the local stack does).

Either reload first waits (at most 0.1 s) until no stream is on its way to its first byte: its Python
would hold the GIL that the streaming front's event loop needs (first_byte_windows).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from switchyard.first_byte_windows import wait_for_first_bytes

V = TypeVar("V")

log = logging.getLogger(__name__)

# The longest a background reload waits for streams on their way to their first byte.
_FIRST_BYTE_WAIT_SECONDS = 0.1


class WouldLoad(Exception):
    """Raised by `get_or_load` inside `cached_only()` where it would have had to load."""


# False inside cached_only(): a context variable, so it holds for this thread or task only.
_loads_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("ttl_cache_loads_allowed", default=True)


@contextlib.contextmanager
def cached_only() -> Iterator[None]:
    """Within this block a cache miss raises WouldLoad instead of loading.

    For an event loop that would rather not hand a request to a worker thread when everything it needs
    is cached (the streaming front): it tries inline first, and only a miss goes to a thread.
    """
    token = _loads_allowed.set(False)
    try:
        yield
    finally:
        _loads_allowed.reset(token)


def refuse_io_if_cached_only() -> None:
    """For a call that always does I/O (not a cache load): inside cached_only() it raises WouldLoad too,
    so the caller's event loop hands the request to a thread instead of blocking on it."""
    if not _loads_allowed.get():
        raise WouldLoad


_refreshes: set[threading.Thread] = set()
_refreshes_lock = threading.Lock()
_kept_warm: weakref.WeakSet[TtlCache[Any]] = weakref.WeakSet()


class _Entry(NamedTuple, Generic[V]):
    refresh_at: float
    expires_at: float
    ticket: int  # when its load began, in the cache's sequence: a newer load's entry wins
    value: V


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


def start_timer(delay: float, action: Callable[[], None]) -> Cancellable:
    """Run `action` in its own daemon thread after `delay` seconds."""
    timer = threading.Timer(delay, action)
    timer.name = "cache-keep-warm"
    timer.daemon = True
    timer.start()
    return timer


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        *,
        refresh_ahead_seconds: float = 0.0,
        keep_warm_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[float, Callable[[], None]], Cancellable] = start_timer,
    ):
        self.ttl_seconds = ttl_seconds
        self.refresh_ahead_seconds = min(refresh_ahead_seconds, ttl_seconds)
        # Keeping warm is reloading ahead without a request: it needs a window to reload in.
        self.keep_warm_seconds = keep_warm_seconds if self.refresh_ahead_seconds > 0 else 0.0
        self.max_entries = max_entries
        self._clock = clock
        self._schedule = schedule
        if self.keep_warm_seconds:
            _kept_warm.add(self)
        self._entries: dict[Hashable, _Entry[V]] = {}
        # Every load takes a ticket first; invalidate() and clear() take one too. A load whose ticket is
        # older than the key's last invalidation read what was there before it, and is not stored.
        self._tickets = itertools.count(1)
        self._invalidated: dict[Hashable, int] = {}
        self._cleared = 0
        self._refreshing: set[Hashable] = set()
        # Keep-warm bookkeeping, only with keep_warm_seconds: when each key was last asked for, the loader
        # that asked, and the one timer per key that wakes at the entry's refresh time.
        self._last_read: dict[Hashable, float] = {}
        self._loaders: dict[Hashable, Callable[[], V]] = {}
        self._timers: dict[Hashable, tuple[int, Cancellable]] = {}
        self._timer_numbers = itertools.count(1)
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > now:
            if self.keep_warm_seconds:
                self._last_read[key] = now
            if entry.refresh_at <= now:
                self._refresh_in_background(key, load, entry)
            return entry.value
        if not _loads_allowed.get():
            raise WouldLoad(key)
        ticket = next(self._tickets)
        value = load()
        if self.keep_warm_seconds:  # only keys that loaded: failed lookups (bad keys) leave no trace
            self._last_read[key] = now
            self._loaders[key] = load
        self._store(key, value, loaded_at=now, ticket=ticket)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._block_older_loads(key)

    def update(self, key: Hashable, change: Callable[[V], V]) -> None:
        """Apply a write the caller has just made to the cached value, if one is cached.

        The entry keeps its expiry (the rest of the value is no fresher than it was), and a load that
        began before this call is not stored: it may have read the table before the write.
        """
        with self._lock:
            entry = self._entries.get(key)
            ticket = self._block_older_loads(key)
            if entry is not None and entry.expires_at > self._clock():
                self._entries[key] = entry._replace(ticket=ticket, value=change(entry.value))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._invalidated.clear()
            self._cleared = next(self._tickets)
            self._forget_all_reads()

    def _block_older_loads(self, key: Hashable) -> int:
        ticket = next(self._tickets)
        self._invalidated[key] = ticket
        if len(self._invalidated) > self.max_entries:  # bounded: forget them all, block every older load
            self._invalidated.clear()
            self._cleared = ticket
        return ticket

    def _forget_all_reads(self) -> None:
        for _number, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._last_read.clear()
        self._loaders.clear()

    def _store(self, key: Hashable, value: V, *, loaded_at: float, ticket: int) -> None:
        with self._lock:
            current = self._entries.get(key)
            if ticket < self._cleared or ticket < self._invalidated.get(key, 0):
                # Invalidated while loading: the next request reads afresh. Or updated (the entry is still
                # here, with the write in it): a kept-warm entry is then reloaded again at once. Left alone
                # it had no timer any more and expired, and the next request paid the load inline: on the
                # local stack, a heartbeat landing during a provider-list reload did that (a 30 ms first
                # token, one stream in a hundred).
                if current is not None and self.keep_warm_seconds and key in self._last_read:
                    self._wake_at_refresh_time(key, current)
                return
            if current is not None and current.ticket > ticket:
                return  # a load that began later has already stored newer data
            if current is None and len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded memory beats LRU bookkeeping on this path
                self._forget_all_reads()
            expires_at = loaded_at + self.ttl_seconds
            entry = _Entry(expires_at - self.refresh_ahead_seconds, expires_at, ticket, value)
            self._entries[key] = entry
            if self.keep_warm_seconds and key in self._last_read:
                self._wake_at_refresh_time(key, entry)

    def _wake_at_refresh_time(self, key: Hashable, entry: _Entry[V]) -> None:
        """(Under the lock) one timer per key, replaced whenever a newer entry is stored."""
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous[1].cancel()
        number = next(self._timer_numbers)
        try:
            timer = self._schedule(
                max(0.0, entry.refresh_at - self._clock()), lambda: self._keep_warm(key, number)
            )
        except RuntimeError:  # no thread to be had: the entry merely expires as it would without keep-warm
            log.warning("Could not schedule a cache keep-warm reload", exc_info=True)
            return
        self._timers[key] = (number, timer)

    def _keep_warm(self, key: Hashable, number: int) -> None:
        now = self._clock()
        with self._lock:
            current = self._timers.get(key)
            if current is None or current[0] != number:
                return  # replaced (a newer entry has its own timer) or cancelled after it had fired
            del self._timers[key]
            entry = self._entries.get(key)
            last_read = self._last_read.get(key)
            load = self._loaders.get(key)
            if entry is None or load is None or last_read is None or now - last_read > self.keep_warm_seconds:
                # Unused for a while (or gone): let it expire; the next request loads it and starts over.
                self._last_read.pop(key, None)
                self._loaders.pop(key, None)
                return
            if now < entry.refresh_at:  # woke early: sleep again
                self._wake_at_refresh_time(key, entry)
                return
            if key in self._refreshing:  # a request's refresh-ahead got there first
                return
            # Claimed and registered under the lock stop_keeping_warm() takes: after that call, every
            # keep-warm reload is either abandoned or visible to wait_for_refreshes().
            self._refreshing.add(key)
            thread = threading.current_thread()
            with _refreshes_lock:
                _refreshes.add(thread)
        self._refresh(key, load, entry, thread)

    def stop_keeping_warm(self) -> None:
        """Cancel the keep-warm timers; entries stay and expire as usual, and a request starts it again."""
        with self._lock:
            self._forget_all_reads()

    def _refresh_in_background(self, key: Hashable, load: Callable[[], V], entry: _Entry[V]) -> None:
        if not self._claim_refresh(key):
            return
        thread = threading.Thread(
            target=lambda: self._refresh(key, load, entry, thread), name="cache-refresh", daemon=True
        )
        with _refreshes_lock:
            _refreshes.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: serving the entry matters more than reloading it
            log.warning("Could not start a background cache reload", exc_info=True)
            self._done_refreshing(key, thread)

    def _claim_refresh(self, key: Hashable) -> bool:
        """True for the one caller that may reload `key` now (no other reload of it is running)."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def _refresh(
        self, key: Hashable, load: Callable[[], V], entry: _Entry[V], thread: threading.Thread
    ) -> None:
        """Reload `key` in this background thread, which holds its claim and is in `_refreshes`."""
        try:
            # Not while a stream is on its way to its first token: this thread's Python would hold the GIL
            # the front's event loop needs (first_byte_windows). Bounded well inside the refresh-ahead
            # window, so that a front that is never idle still reloads in time.
            wait_for_first_bytes(min(_FIRST_BYTE_WAIT_SECONDS, self.refresh_ahead_seconds / 4))
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

    def _done_refreshing(self, key: Hashable, thread: threading.Thread) -> None:
        with self._lock:
            self._refreshing.discard(key)
        with _refreshes_lock:
            _refreshes.discard(thread)


def stop_keeping_warm() -> None:
    """Cancel every cache's keep-warm timers (tests: before their AWS double goes; then wait_for_refreshes)."""
    for cache in list(_kept_warm):
        cache.stop_keeping_warm()


def wait_for_refreshes(timeout: float = 10) -> None:
    """Block until background reloads in flight have finished (tests: before their AWS double goes)."""
    with _refreshes_lock:
        pending = list(_refreshes)
    for thread in pending:
        thread.join(timeout)
