"""Who had the cores while streams waited for their first token: the streaming benchmark under a kernel trace.

Runs sync_latency.py's streaming rounds with the kernel's scheduler events recorded (tracefs
`sched_switch` and `sched_wakeup`, every task of the machine) and a mark at each stream's start and at its
first `data:` line; then prints the usual figures and, for the gateway's streams and the agent's, how much
CPU each task (comm[process id]) had inside the first-token windows of the fastest half and of the slowest
tenth, and the slowest streams one by one. A slow stream whose window holds another thread of the front's
process, the embedded AWS or a task outside the setup shows whose time it was. The marks are written by
the client inside its timed window (a write of a few microseconds, the same on every path).

Linux only, as root (tracefs at /sys/kernel/tracing). The trace is kept in memory by the kernel (256 MB per
CPU, far more than 600 rounds need) and read once the run is over.

    sudo .venv/bin/python benchmarks/first_token_trace.py [--rounds 120] [--pacing-ms 200]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_latency
from sync_latency import Stream, event_arrivals

TRACEFS = Path("/sys/kernel/tracing")
_LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\(\s*(\S+)\)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)")


class Marks:
    """Writes the stream marks into the trace (trace_marker) while it runs."""

    def __init__(self) -> None:
        self._marker = (TRACEFS / "trace_marker").open("w", buffering=1)
        self._count = 0

    def read_stream(self, client: httpx.Client, url: str, headers: dict, body: dict, path: str) -> Stream:
        """sync_latency.event_arrivals, with a mark at the start and at the first `data:` line."""
        self._count += 1
        tag = f"{self._count} {path.replace(' ', '_')}"
        return event_arrivals(
            client, url, headers, body, mark=lambda kind: self._marker.write(f"{kind} {tag}\n")
        )

    def close(self) -> None:
        self._marker.close()


def _write(name: str, value: str) -> None:
    (TRACEFS / name).write_text(value)


def _settings() -> dict[str, str]:
    """The tracefs settings this script changes, as they are now (trace_clock marks its choice: [mono])."""
    clock = re.search(r"\[(\w+)\]", (TRACEFS / "trace_clock").read_text())
    # "7 (expanded: 1408)" until a trace first fills the buffer: 1408 is its size.
    size = re.findall(r"\d+", (TRACEFS / "buffer_size_kb").read_text())
    return {
        "buffer_size_kb": size[-1],
        "set_event": (TRACEFS / "set_event").read_text(),
        "options/record-tgid": (TRACEFS / "options/record-tgid").read_text().strip(),
        "trace_clock": clock.group(1) if clock else "local",
    }


def start_tracing() -> dict[str, str]:
    """Start recording; returns the settings it changed, for restore_tracing."""
    saved = _settings()
    _write("tracing_on", "0")
    _write("trace", "")
    _write("buffer_size_kb", "262144")
    _write("set_event", "sched:sched_switch\nsched:sched_wakeup\n")
    _write("options/record-tgid", "1")
    _write("trace_clock", "mono")
    _write("tracing_on", "1")
    return saved


def stop_tracing() -> None:
    _write("tracing_on", "0")


def restore_tracing(saved: dict[str, str]) -> None:
    _write("trace", "")
    for name, value in saved.items():
        _write(name, value or "\n")


@dataclass
class Trace:
    """Which task ran on each CPU when, and the marked windows (start, first token, path)."""

    ran: dict[int, list[tuple[float, float, int, str]]] = field(default_factory=dict)
    process_of: dict[int, int] = field(default_factory=dict)
    windows: list[tuple[float, float, str]] = field(default_factory=list)
    starts: dict[int, list[float]] = field(default_factory=dict)  # per CPU, each run's start, for bisect

    def cpu_by_task(self, start: float, end: float) -> collections.Counter[str]:
        """Milliseconds each task ran between `start` and `end`, idle left out."""
        used: collections.Counter[str] = collections.Counter()
        for cpu, runs in self.ran.items():
            index = max(0, bisect.bisect_right(self.starts[cpu], start) - 1)
            while index < len(runs) and runs[index][0] < end:
                begin, finish, task, comm = runs[index]
                overlap = min(finish, end) - max(begin, start)
                if overlap > 0 and task != 0:
                    used[self.label(task, comm)] += overlap * 1000
                index += 1
        return used

    def label(self, task: int, comm: str) -> str:
        process = self.process_of.get(task, task)
        return f"{comm}[{process}]" + ("" if process == task else " (thread)")


def read_trace(lines: Iterator[str]) -> Trace:
    trace = Trace()
    running: dict[int, tuple[int, str, float]] = {}
    begins: dict[str, float] = {}
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        _comm, task, process, cpu_text, stamp, event, rest = match.groups()
        cpu, at = int(cpu_text), float(stamp)
        if process.isdigit():
            trace.process_of[int(task)] = int(process)
        if event == "tracing_mark_write":
            kind, number, path = rest.split()[:3]
            if kind == "BEGIN":
                begins[number] = at
            elif number in begins:
                trace.windows.append((begins.pop(number), at, path.replace("_", " ")))
        elif event == "sched_switch":
            fields = dict(_FIELD.findall(rest))
            if cpu in running:
                previous, comm, since = running[cpu]
                trace.ran.setdefault(cpu, []).append((since, at, previous, comm))
            running[cpu] = (int(fields["next_pid"]), fields["next_comm"], at)
    trace.starts = {cpu: [run[0] for run in runs] for cpu, runs in trace.ran.items()}
    return trace


def print_windows(trace: Trace, path: str) -> None:
    windows = sorted(
        (window for window in trace.windows if window[2] == path), key=lambda window: window[1] - window[0]
    )
    if not windows:
        return
    lengths = [(end - start) * 1000 for start, end, _ in windows]
    print(
        f"\n{path}: {len(windows)} first tokens, p50 {lengths[len(lengths) // 2]:.2f} ms, "
        f"slowest {lengths[-1]:.2f} ms (from the client's marks)"
    )
    groups = (
        ("fastest half", windows[: len(windows) // 2]),
        ("slowest tenth", windows[-max(1, len(windows) // 10) :]),
    )
    for name, group in groups:
        used: collections.Counter[str] = collections.Counter()
        for start, end, _ in group:
            used.update(trace.cpu_by_task(start, end))
        mean = sum(end - start for start, end, _ in group) / len(group) * 1000
        print(f"  {name}: window {mean:.2f} ms on average; CPU per stream by task (ms):")
        for task, total in used.most_common(8):
            print(f"    {total / len(group):6.2f}  {task}")
    print("  the slowest, one by one (ms of CPU by task inside the window):")
    for start, end, _ in windows[-8:]:
        used = trace.cpu_by_task(start, end)
        tasks = ", ".join(f"{task} {total:.2f}" for task, total in used.most_common(6))
        print(f"    {(end - start) * 1000:6.2f} ms: {tasks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=120, help="streams per path")
    parser.add_argument("--pacing-ms", type=int, default=200, help="the model server's pause between events")
    args = parser.parse_args()
    if not os.access(TRACEFS / "trace_marker", os.W_OK):
        sys.exit(f"needs root and tracefs at {TRACEFS} (mount -t tracefs nodev {TRACEFS})")

    marks = Marks()
    saved = start_tracing()
    try:
        figures = sync_latency.measure_streaming(args.pacing_ms, args.rounds, read_stream=marks.read_stream)
    finally:
        stop_tracing()
        marks.close()
    try:
        with (TRACEFS / "trace").open() as text:
            trace = read_trace(text)
    finally:
        restore_tracing(saved)
    sync_latency.print_streaming(args.pacing_ms, args.rounds, figures)
    print(f"\nThis script, the client: pid {os.getpid()}. Warm-up streams are left out below.")
    for path in ("gateway", "agent"):
        print_windows(trace, path)


if __name__ == "__main__":
    main()
