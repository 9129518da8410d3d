"""The warm-path cache: bounded staleness, and reloads that no request waits for under steady traffic."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from switchyard.ttl_cache import TtlCache, WouldLoad, cached_only, wait_for_refreshes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Loader:
    """Counts loads; each returns the next number, or raises what `fail_with` holds."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_with: Exception | None = None
        self.gate: threading.Event | None = None
        self.threads: list[str] = []

    def __call__(self) -> int:
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        self.calls += 1
        return self.calls


def loaded_cache_in_its_last_stretch(clock: Clock) -> tuple[TtlCache, Loader]:
    """A 2 s cache reloading in its last 0.5 s, holding "k" (loaded once, value 1), 1.6 s later."""
    cache, load = TtlCache(2.0, refresh_ahead_seconds=0.5, clock=clock), Loader()
    cache.get_or_load("k", load)
    clock.now += 1.6
    return cache, load


def test_a_fresh_entry_is_served_without_loading(clock):
    cache, load = TtlCache(2.0, refresh_ahead_seconds=0.5, clock=clock), Loader()
    assert cache.get_or_load("k", load) == 1
    clock.now += 1.4
    assert cache.get_or_load("k", load) == 1
    assert load.calls == 1


def test_in_its_last_stretch_an_entry_is_served_while_one_background_reload_runs(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    load.gate = threading.Event()
    # Many requests in the window: every one gets the cached value at once, one reload starts.
    assert [cache.get_or_load("k", load) for _ in range(5)] == [1] * 5
    load.gate.set()
    wait_for_refreshes()
    assert load.calls == 2 and load.threads[-1] == "cache-refresh"
    assert cache.get_or_load("k", load) == 2


def test_an_expired_entry_is_loaded_by_the_request_itself(clock):
    cache, load = TtlCache(2.0, refresh_ahead_seconds=0.5, clock=clock), Loader()
    cache.get_or_load("k", load)
    clock.now += 2.0
    assert cache.get_or_load("k", load) == 2
    assert load.threads == ["MainThread", "MainThread"]


def test_without_refresh_ahead_nothing_runs_in_the_background(clock):
    cache, load = TtlCache(2.0, clock=clock), Loader()
    cache.get_or_load("k", load)
    clock.now += 1.9
    assert cache.get_or_load("k", load) == 1
    wait_for_refreshes()
    assert load.calls == 1


def test_a_reload_that_began_before_an_invalidation_is_not_stored(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    load.gate = threading.Event()
    cache.get_or_load("k", load)  # starts the background reload, which reads "before" the write below
    cache.invalidate("k")  # e.g. a heartbeat or a revoked key
    load.gate.set()
    wait_for_refreshes()
    load.gate = None
    assert cache.get_or_load("k", load) == 3  # read afresh, not the reload's value 2


def test_a_failed_background_reload_keeps_the_entry_until_it_expires(clock):
    cache, load = TtlCache(10.0, refresh_ahead_seconds=2.5, clock=clock), Loader()
    cache.get_or_load("key-hash", load)
    clock.now += 8
    load.fail_with = PermissionError("revoked")
    assert cache.get_or_load("key-hash", load) == 1  # still within its life: the reload fails behind it
    wait_for_refreshes()
    assert cache.get_or_load("key-hash", load) == 1  # a throttled table does not make every request load
    clock.now += 2
    with pytest.raises(PermissionError):  # expired: the request loads, and finds out
        cache.get_or_load("key-hash", load)


def test_a_slow_background_reload_does_not_overwrite_a_newer_load(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    load.gate = threading.Event()
    cache.get_or_load("k", load)  # the background reload starts and hangs
    clock.now += 0.5  # the entry expires; this request loads inline
    inline = threading.Thread(target=lambda: cache.get_or_load("k", load))
    inline.start()
    load.gate.set()
    inline.join(5)
    wait_for_refreshes()
    load.gate = None
    clock.now += 1.0
    assert cache.get_or_load("k", load) in (2, 3)
    assert cache._entries["k"].expires_at == pytest.approx(clock.now - 1.0 + 2.0)


def test_a_reload_frozen_past_the_entrys_life_gives_up(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    thread_started = threading.Event()
    real_start = threading.Thread.start

    def start_late(thread):  # as if the sandbox froze between scheduling the thread and running it
        clock.now += 1.0
        thread_started.set()
        real_start(thread)

    threading.Thread.start = start_late
    try:
        assert cache.get_or_load("k", load) == 1
    finally:
        threading.Thread.start = real_start
    wait_for_refreshes()
    assert thread_started.is_set() and load.calls == 1


def test_clear_during_a_reload_keeps_it_from_being_stored(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    load.gate = threading.Event()
    cache.get_or_load("k", load)
    cache.invalidate("k")
    cache.clear()  # must not forget the invalidation
    load.gate.set()
    wait_for_refreshes()
    load.gate = None
    assert cache.get_or_load("k", load) == 3


class Timers:
    """Stands in for threading.Timer: keeps what was scheduled; `fire()` runs what is due, in order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None], Timers.Handle]] = []

    class Handle:
        cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __call__(self, delay: float, action: Callable[[], None]) -> Timers.Handle:
        handle = Timers.Handle()
        self.pending.append((self.clock.now + delay, action, handle))
        return handle

    def live(self) -> list[float]:
        return [due for due, _action, handle in self.pending if not handle.cancelled]

    def advance_and_fire(self, seconds: float) -> None:
        self.clock.now += seconds
        due = [item for item in self.pending if item[0] <= self.clock.now and not item[2].cancelled]
        self.pending = [item for item in self.pending if item not in due]
        for _when, action, _handle in due:
            action()


def keep_warm_cache(clock: Clock, keep_warm_seconds: float = 60.0) -> tuple[TtlCache, Loader, Timers]:
    timers = Timers(clock)
    cache = TtlCache(
        2.0, refresh_ahead_seconds=0.5, keep_warm_seconds=keep_warm_seconds, clock=clock, schedule=timers
    )
    return cache, Loader(), timers


def test_an_entry_in_use_is_reloaded_at_its_refresh_time_even_when_no_request_comes(clock):
    cache, load, timers = keep_warm_cache(clock)
    assert cache.get_or_load("k", load) == 1
    assert timers.live() == [clock.now + 1.5]  # its refresh time
    for _ in range(3):  # a pause several times the TTL long: the timers reload it, nothing else does
        timers.advance_and_fire(1.5)
    assert load.calls == 4 and len(timers.live()) == 1
    clock.now += 1.0
    # The request after the pause is served from the cache: it waits for no load.
    load.threads.clear()
    assert cache.get_or_load("k", load) == 4
    assert load.threads == []


def test_an_entry_nobody_reads_for_keep_warm_seconds_is_left_to_expire(clock):
    cache, load, timers = keep_warm_cache(clock, keep_warm_seconds=5.0)
    cache.get_or_load("k", load)
    for _ in range(6):
        timers.advance_and_fire(1.5)
    assert load.calls == 4  # reloads at 1.5, 3.0 and 4.5 s; at 6.0 s it was last read 6 s ago
    assert timers.live() == []
    clock.now += 2.0
    load.threads.clear()
    assert cache.get_or_load("k", load) == 5
    assert load.threads == ["MainThread"]  # expired: the request loaded it, and keep-warm starts again
    assert len(timers.live()) == 1


def test_keep_warm_leaves_no_trace_of_keys_that_failed_to_load(clock):
    cache, load, timers = keep_warm_cache(clock)
    load.fail_with = PermissionError("no such key")
    for token in range(100):
        with pytest.raises(PermissionError):
            cache.get_or_load(f"bad-{token}", load)
    assert timers.live() == [] and cache._last_read == {} and cache._loaders == {}


def test_clear_stops_keeping_entries_warm(clock):
    cache, load, timers = keep_warm_cache(clock)
    cache.get_or_load("k", load)
    cache.clear()
    timers.advance_and_fire(1.5)
    assert load.calls == 1 and timers.live() == []


def test_an_update_changes_the_cached_value_but_not_its_expiry(clock):
    cache, load = TtlCache(2.0, refresh_ahead_seconds=0.5, clock=clock), Loader()
    cache.get_or_load("k", load)
    clock.now += 1.0
    cache.update("k", lambda value: value + 10)  # e.g. a heartbeat the gateway has just written
    assert cache.get_or_load("k", load) == 11 and load.calls == 1
    clock.now += 1.0
    assert cache.get_or_load("k", load) == 2  # expired when the loaded entry would have: reloaded


def test_an_update_with_nothing_cached_changes_nothing(clock):
    cache, load = TtlCache(2.0, clock=clock), Loader()
    cache.update("k", lambda value: value + 10)
    assert cache.get_or_load("k", load) == 1


def test_a_reload_that_began_before_an_update_is_not_stored(clock):
    cache, load = loaded_cache_in_its_last_stretch(clock)
    load.gate = threading.Event()
    cache.get_or_load("k", load)  # the background reload reads "before" the write below
    cache.update("k", lambda value: value + 10)
    load.gate.set()
    wait_for_refreshes()
    assert cache.get_or_load("k", load) == 11  # not the reload's 2, which lacks the write


def test_a_kept_warm_entry_whose_reload_raced_an_update_is_reloaded_again_and_stays_warm(clock):
    cache, load, timers = keep_warm_cache(clock)
    writes_during_load: list[int] = []

    def load_then_heartbeat() -> int:
        value = load()
        for _ in writes_during_load:  # a write that lands after this load has read the table
            cache.update("k", lambda cached: cached + 10)
        writes_during_load.clear()
        return value

    cache.get_or_load("k", load_then_heartbeat)
    writes_during_load.append(1)
    timers.advance_and_fire(1.5)  # the keep-warm reload raced the write: its 2 lacks it, not stored
    assert cache._entries["k"].value == 11
    assert timers.live() == [clock.now]  # reloaded again at once, not left to expire
    timers.advance_and_fire(0)
    clock.now += 1.0  # past the first load's expiry: still warm, no request waits for a load
    load.threads.clear()
    assert cache.get_or_load("k", load_then_heartbeat) == 3
    assert load.threads == []


def test_inside_cached_only_a_miss_raises_would_load_and_a_hit_is_served(clock):
    cache, load = TtlCache(2.0, refresh_ahead_seconds=0.5, clock=clock), Loader()
    with cached_only(), pytest.raises(WouldLoad):
        cache.get_or_load("k", load)
    assert load.calls == 0
    cache.get_or_load("k", load)  # outside: loads
    clock.now += 1.6
    with cached_only():
        assert cache.get_or_load("k", load) == 1  # in its last stretch: served, reloaded behind it
    wait_for_refreshes()
    assert load.calls == 2


def test_a_background_reload_waits_until_no_stream_is_on_its_way_to_its_first_byte(clock, monkeypatch):
    # Its Python would hold the GIL that the streaming front's event loop needs (first_byte_windows).
    from switchyard import ttl_cache
    from switchyard.first_byte_windows import open_window

    # A bound far longer than the test takes, so that only the window's closing can let the reload go.
    monkeypatch.setattr(ttl_cache, "_FIRST_BYTE_WAIT_SECONDS", 30.0)
    cache, load = TtlCache(100.0, refresh_ahead_seconds=40.0, clock=clock), Loader()
    cache.get_or_load("k", load)
    clock.now += 70
    started = threading.Event()

    def loading() -> int:
        started.set()
        return load()

    window = open_window()
    try:
        assert cache.get_or_load("k", loading) == 1  # served at once; the reload waits for the window
        assert not started.wait(0.05)
    finally:
        window.close()
    assert started.wait(5)
    wait_for_refreshes()
    assert cache.get_or_load("k", loading) == 2


def test_a_background_reload_waits_for_first_bytes_only_a_bounded_while(clock):
    # A front that always has a stream on its way to its first byte still has its caches reloaded.
    from switchyard.first_byte_windows import open_window

    cache, load = loaded_cache_in_its_last_stretch(clock)
    window = open_window()
    try:
        assert cache.get_or_load("k", load) == 1
        wait_for_refreshes()
        assert load.calls == 2
    finally:
        window.close()
