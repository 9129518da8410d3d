"""The warm-path cache: bounded staleness, and reloads that no request waits for under steady traffic."""

from __future__ import annotations

import threading

import pytest
from switchyard.ttl_cache import TtlCache, wait_for_refreshes


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
