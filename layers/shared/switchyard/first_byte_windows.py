"""Streams on their way to their first byte, and background work that waits until none is.

All of a Python process's threads share one GIL. A background cache reload (ttl_cache: botocore building
a DynamoDB query and parsing its answer) runs 2-4 ms of Python; a streaming request that arrives
meanwhile, or that starts the reload itself (refresh-ahead), has its event loop wait for the GIL in
between, on the way to the stream's first token. Traced on the local stack (sched_switch, 120 streams at
200 ms pacing): a stream whose first token overlapped a keep-warm reload or another thread's Python
arrived 1-3 ms late, one stream in forty in one run: at that rate the p99 of the gateway's first token
falls among them.

So the streaming front opens a window for each stream from its arrival until its first byte is written to
the client, and background reloads wait, a bounded while, until no window is open. A reload already
running when a stream arrives is not stopped: that overlap remains (a reload lasts a few milliseconds,
once per refresh period).
"""

from __future__ import annotations

import threading
import time


class Window:
    """One stream's way to its first byte; `close()` may be called more than once."""

    def __init__(self, windows: FirstByteWindows):
        self._windows = windows
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._windows._closed()


class FirstByteWindows:
    def __init__(self) -> None:
        self._open = 0
        self._none_open = threading.Condition()

    def open(self) -> Window:
        with self._none_open:
            self._open += 1
        return Window(self)

    def _closed(self) -> None:
        with self._none_open:
            self._open -= 1
            if self._open == 0:
                self._none_open.notify_all()

    def wait_until_none_open(self, timeout: float) -> bool:
        """Block (without the GIL) until no window is open, or `timeout` seconds; False if it timed out.

        Bounded: under steady concurrent streams some window is nearly always open, and the work that
        waits (a reload ahead of an entry's expiry) must still happen in time."""
        deadline = time.monotonic() + timeout
        with self._none_open:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._none_open.wait(left)
        return True


# The process's windows: the streaming front opens them, background reloads wait on them.
_windows = FirstByteWindows()


def open_window() -> Window:
    return _windows.open()


def wait_for_first_bytes(timeout: float) -> bool:
    return _windows.wait_until_none_open(timeout)
