"""Streams on their way to their first byte, counted for the background work that waits for none."""

from __future__ import annotations

import threading

from switchyard.first_byte_windows import FirstByteWindows


def test_a_wait_returns_at_once_when_no_window_is_open():
    assert FirstByteWindows().wait_until_none_open(0)


def test_a_wait_ends_when_the_last_open_window_closes():
    windows = FirstByteWindows()
    first, second = windows.open(), windows.open()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: windows.wait_until_none_open(10) and done.set())
    waiter.start()
    first.close()
    first.close()  # a second close of the same window counts once
    assert not done.wait(0.05)
    second.close()
    assert done.wait(5)
    waiter.join(5)


def test_a_wait_gives_up_after_its_timeout_while_a_window_stays_open():
    windows = FirstByteWindows()
    windows.open()
    assert windows.wait_until_none_open(0.01) is False
