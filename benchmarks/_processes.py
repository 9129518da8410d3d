"""Start the local stack, a fake model server and the real agent as separate processes (for benchmarks)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


BENCH_LIMITS = ("AccountRequestsPerMinute=100000000", "AccountMaxActiveJobs=100000000")


@dataclass
class Setup:
    gateway_url: str
    api_key: str
    model_server_url: str
    agent_url: str
    agent_secret: str
    workdir: Path


def _wait_for(process: subprocess.Popen, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        match = re.search(pattern, line or "")
        if match:
            return match
    raise RuntimeError(f"{process.args[0]} did not print {pattern!r}")


def _keep_draining(process: subprocess.Popen, log: Path) -> None:
    """Copy what `process` prints from now on into `log`, in a daemon thread. A pipe nobody reads fills
    at 64 KiB, and the next print then blocks the process (a stack with metrics on prints an EMF line per
    request; an agent logs every failed call): the benchmark would hang, or measure that wait."""

    def copy() -> None:
        with log.open("a") as out:
            for line in process.stdout:
                out.write(line)

    threading.Thread(target=copy, name=f"drain {log.name}", daemon=True).start()


@contextmanager
def running_stack(
    *, overrides: tuple[str, ...] = (), server_args: tuple[str, ...] = (), agent_args: tuple[str, ...] = ()
):
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes: list[subprocess.Popen] = []
    # The stack's log (handlers log to it): kept in the run's directory for a look after a surprising figure.
    stack_log = (workdir / "stack.log").open("w")
    try:
        stack = subprocess.Popen(
            [
                str(BIN / "switchyard-local"),
                "up",
                "--port",
                "0",
                "--json",
                "--template",
                str(ROOT / "template.yaml"),
                # A benchmark is one account making thousands of requests: limits far above what it sends.
                "--parameter-overrides",
                *BENCH_LIMITS,
                *overrides,
            ],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=stack_log,
            text=True,
            env=env,
        )
        processes.append(stack)
        ready = json.loads(stack.stdout.readline())
        _keep_draining(stack, workdir / "stack.out")
        server = subprocess.Popen(
            [
                str(BIN / "switchyard-fake-model-server"),
                "--port",
                "0",
                "--stream-delay-ms",
                "0",
                *server_args,
            ],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        processes.append(server)
        model_server_url = _wait_for(server, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        _keep_draining(server, workdir / "model-server.log")
        secret = "benchmark-secret-0123456789abcdef"
        agent = subprocess.Popen(
            [
                str(BIN / "switchyard-agent"),
                "--gateway",
                ready["base_url"],
                "--api-key",
                ready["api_key"],
                "--upstream",
                model_server_url,
                "--listen",
                "127.0.0.1:0",
                "--secret",
                secret,
                *agent_args,
            ],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        processes.append(agent)
        agent_url = _wait_for(agent, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        _wait_for(agent, r"registered provider")
        _keep_draining(agent, workdir / "agent.log")
        yield Setup(ready["base_url"], ready["api_key"], model_server_url, agent_url, secret, workdir)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            _stop(process)
        stack_log.close()


def _stop(process: subprocess.Popen) -> None:
    """Terminate (a no-op if it already was), wait up to 15 s, then kill."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@contextmanager
def running_byte_relay(upstream_url: str):
    """A bare TCP relay (benchmarks/_byte_relay.py) in front of `upstream_url`; yields its URL."""
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "_byte_relay.py"), "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = _wait_for(relay, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        _keep_draining(relay, Path(os.devnull))  # it prints nothing more; if it ever does, it must not block
        yield url
    finally:
        _stop(relay)


@dataclass
class CpuTimes:
    """This machine's CPU time so far, all CPUs together (seconds), from /proc/stat."""

    busy: float  # running anything: user, nice, system, interrupts
    steal: float  # wanted to run but the hypervisor ran another guest (virtual machines only)


def cpu_times() -> CpuTimes | None:
    """None where there is no /proc/stat (not Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return CpuTimes(busy=(user + nice + system + irq + softirq) / ticks, steal=steal / ticks)


def steal_report(before: CpuTimes | None, after: CpuTimes | None) -> str:
    """How much CPU the host took from this (virtual) machine between two readings, as a printed line."""
    if before is None or after is None:
        return "CPU steal: not measured (no /proc/stat)"
    steal = after.steal - before.steal
    wanted = after.busy - before.busy + steal
    share = steal / wanted if wanted > 0 else 0.0
    return (
        f"CPU steal while it ran: {steal:.1f} s of the {wanted:.1f} s this machine's CPUs wanted to run "
        f"({share:.0%}) went to other guests of the host. A stolen slice stalls whichever process is on the "
        "path: compare p99 figures between runs with similar steal only"
    )
