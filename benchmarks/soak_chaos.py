"""Soak and chaos: async jobs through the local stack while faults are injected, then an audit of every job
against the providers' own logs of their calls.

    .venv/bin/python benchmarks/soak_chaos.py [--jobs 10000] [--window 400] [--workdir DIR]

Processes, all on 127.0.0.1: the local stack (its embedded AWS in a child process of its own), started with
`--poll-elsewhere DispatcherFunction`, so the dispatcher's SQS event source runs in a separate worker
process (`switchyard-local poll DispatcherFunction`); and two providers, each a fake model server behind the
real agent. The embedded AWS outlives every fault below: tables and queues persist, as AWS's would.

Faults, during the run:
- every model server fails 10% of its calls with HTTP 500 (`--fail-rate 0.1`, seeded);
- provider B (agent and model server) is killed with SIGKILL at 40% of the run and started again 5 s
  later on new ports (its agent heartbeats the new endpoint under the same provider id);
- duplicated SQS deliveries: all along, a message of the jobs queue is peeked (received with a zero
  visibility timeout, so it stays deliverable) and sent again, about 4 a second;
- the dispatcher's process is killed with SIGKILL while it has batches in flight (it reports each batch's
  start and end), at 25% and 60% of the run, and started again 1 s later: a Lambda container dying
  mid-batch, leaving messages received and not deleted, jobs claimed and not finished, provider slots held.

Audit, when every job has ended: every job is read back, and every provider call is read from the model
servers' own call logs (JSON lines written as calls arrive and are answered, so a killed server's record
survives). A call is tied to its job by the job's unique prompt; an answer names its call (the fake
server's `--call-log` puts the call id in `system_fingerprint`), so a stored result names the call that
produced it. Counted: jobs lost (never ended), results overwritten (a result seen during the run that
later changed, or a result no provider call answered), jobs whose provider call succeeded but whose result
is missing, and duplicate provider calls (a job's calls past its first), each explained by an injected fault
or reported as unexplained:
- the call before it was failed on purpose (HTTP 500), or
- the call before it was in flight on provider B when B was killed, or
- the call before it was answered, and the dispatcher was killed between that call and this one (the
  answer was never stored; the job was run again once its lease ran out).
A duplicated SQS delivery explains nothing: a duplicate message must never cause a provider call.

The local stack runs with JobUpstreamTimeoutSeconds=10 (so a job's lease is 45 s, Mappings.JobTimeouts),
JobMaxAttempts=6, a 2 s sweeper, LOST_MESSAGE_AFTER_SECONDS=20 and REDRIVE_AFTER_SECONDS=5, so recovery
from a killed dispatcher takes under a minute instead of the deployed defaults' minutes. tests/soak runs a
short form (300 jobs) in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AGENT_SECRET = "soak-secret-0123456789abcdef"
DISPATCHER = "DispatcherFunction"
STACK_ENVIRONMENT = {"LOST_MESSAGE_AFTER_SECONDS": "20", "REDRIVE_AFTER_SECONDS": "5"}
STACK_PARAMETERS = ("JobUpstreamTimeoutSeconds=10", "JobMaxAttempts=6", "NoProviderGraceSeconds=300")


# ---------------------------------------------------------------- processes


class Child:
    """A process whose stdout lines are collected by a thread (so its pipe never fills up)."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self._log = (workdir / f"{name}.log").open("a")
        self.process = subprocess.Popen(
            args,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if match := re.search(pattern, line):
                return match
        raise RuntimeError(f"{self.name} did not print {pattern!r} (see {self._log.name})")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, like a crashed host or a Lambda container torn down."""
        with suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@dataclass
class Provider:
    name: str
    server: Child
    agent: Child
    call_log: Path


@dataclass
class DispatcherWorker:
    """The dispatcher's event source in its own process; counts the batches it has in flight."""

    child: Child
    in_flight_batches: int = 0
    in_flight_records: int = 0
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self) -> None:
        threading.Thread(target=self._follow, name="dispatcher-batches", daemon=True).start()

    def _follow(self) -> None:
        while self.child.process.poll() is None:
            try:
                line = self.child.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                if event.get("batch") == "start":
                    self.in_flight_batches += 1
                    self.in_flight_records += int(event["records"])
                    self.batches += 1
                elif event.get("batch") == "end":
                    self.in_flight_batches -= 1
                    self.in_flight_records -= int(event["records"])

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.in_flight_batches, self.in_flight_records


@dataclass
class Stack:
    base_url: str
    api_key: str
    state_file: Path
    state: dict[str, Any]
    child: Child


def start_stack(workdir: Path) -> Stack:
    state_file = workdir / "local-stack.json"
    child = Child(
        "stack",
        [
            str(BIN / "switchyard-local"),
            "up",
            "--port",
            "0",
            "--json",
            "--template",
            str(ROOT / "template.yaml"),
            "--schedule-seconds",
            "2",
            "--state-file",
            str(state_file),
            "--poll-elsewhere",
            DISPATCHER,
            "--parameter-overrides",
            *STACK_PARAMETERS,
        ],
        workdir,
        STACK_ENVIRONMENT,
    )
    ready = json.loads(child.wait_for(r"^\{.*\}$", timeout=180).group(0))
    return Stack(ready["base_url"], ready["api_key"], state_file, json.loads(state_file.read_text()), child)


def start_dispatcher(workdir: Path, stack: Stack, number: int) -> DispatcherWorker:
    child = Child(
        f"dispatcher-{number}",
        [
            str(BIN / "switchyard-local"),
            "poll",
            DISPATCHER,
            "--state-file",
            str(stack.state_file),
            "--report-batches",
        ],
        workdir,
        STACK_ENVIRONMENT,
    )
    child.wait_for(r'"polling"', timeout=90)
    worker = DispatcherWorker(child)
    worker.watch()
    return worker


def start_provider(workdir: Path, stack: Stack, name: str, number: int, seed: int) -> Provider:
    call_log = workdir / f"calls-{name}-{number}.jsonl"
    server = Child(
        f"model-server-{name}-{number}",
        [
            str(BIN / "switchyard-fake-model-server"),
            "--port",
            "0",
            "--latency-ms",
            "40",
            "--stream-delay-ms",
            "0",
            "--fail-rate",
            "0.1",
            "--seed",
            str(seed),
            "--history-size",
            "10",
            "--call-log",
            str(call_log),
        ],
        workdir,
    )
    upstream = server.wait_for(r"listening on (http://127\.0\.0\.1:\d+)").group(1)
    agent = Child(
        f"agent-{name}-{number}",
        [
            str(BIN / "switchyard-agent"),
            "--gateway",
            stack.base_url,
            "--api-key",
            stack.api_key,
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
            "--secret",
            AGENT_SECRET,
            "--provider-id",
            f"soak-{name}",
            "--max-concurrency",
            "16",
            "--log-level",
            "info",
        ],
        workdir,
    )
    agent.wait_for(r"registered provider", timeout=90)
    return Provider(name, server, agent, call_log)


# ---------------------------------------------------------------- the run


@dataclass
class Faults:
    """What was injected, and when (time.time())."""

    dispatcher_kills: list[dict[str, Any]] = field(default_factory=list)
    provider_kills: list[dict[str, Any]] = field(default_factory=list)
    duplicate_deliveries: int = 0


@dataclass
class Run:
    tag: str
    jobs: int
    submitted: dict[int, str] = field(default_factory=dict)  # index -> job id
    first_seen: dict[str, str | None] = field(default_factory=dict)  # job id -> call id first seen stored
    faults: Faults = field(default_factory=Faults)
    started: float = 0.0
    ended: float = 0.0
    active: int = 0  # the queue summary's active count, last read
    lock: threading.Lock = field(default_factory=threading.Lock)

    def marker(self, index: int) -> str:
        return f"soak {self.tag} {index}"

    def progress(self) -> float:
        with self.lock:
            done = len(self.submitted) - self.active
        return max(0.0, done) / self.jobs


def chat(run: Run, index: int) -> dict[str, Any]:
    return {
        "model": "fake-llm",
        "messages": [{"role": "user", "content": run.marker(index)}],
        "max_tokens": 16,
        "async": True,
    }


def submitter(stack: Stack, run: Run, indices: Iterator[int], window: int, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.base_url, timeout=60, trust_env=False) as client:
        for index in indices:
            while not stop.is_set():  # keep at most `window` jobs active: moto slows with queue depth
                with run.lock:
                    if run.active < window:
                        break
                time.sleep(0.05)
            for attempt in range(20):  # a retry with the same Idempotency-Key never creates a second job
                try:
                    response = client.post(
                        "/v1/chat/completions",
                        json=chat(run, index),
                        headers={**headers, "Idempotency-Key": f"{run.tag}-{index}"},
                    )
                    if response.status_code == 202:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(min(2.0, 0.1 * 2**attempt))
            else:
                raise RuntimeError(f"could not submit job {index}")
            with run.lock:
                run.submitted[index] = response.json()["id"]
                run.active += 1  # counted until the next summary says otherwise


def summary_poller(stack: Stack, run: Run, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.base_url, timeout=60, trust_env=False) as client:
        while not stop.is_set():
            with suppress(httpx.HTTPError, ValueError, KeyError):
                active = client.get("/api/inference/queue/summary", headers=headers).json()["active"]
                with run.lock:
                    run.active = active
            stop.wait(1.0)  # each summary is a query of the jobs table: moto answers it by scanning it all


def result_watcher(stack: Stack, run: Run, stop: threading.Event) -> None:
    """Remember which call's answer each job was first seen PROCESSED with (the newest 200 jobs, every
    3 s): the final audit checks none of them changed afterwards."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.base_url, timeout=60, trust_env=False) as client:
        while not stop.wait(3):
            after = None
            for _ in range(2):
                params: dict[str, Any] = {"status": "PROCESSED", "limit": 100}
                if after:
                    params["after"] = after
                try:
                    page = client.get("/v1/jobs", params=params, headers=headers).json()
                except (httpx.HTTPError, ValueError):
                    break
                with run.lock:
                    for job in page.get("data", []):
                        run.first_seen.setdefault(job["id"], call_of(job))
                if not page.get("has_more"):
                    break
                after = page.get("last_id")


def duplicator(stack: Stack, run: Run, stop: threading.Event) -> None:
    """Duplicated SQS deliveries: peek a message (zero visibility timeout: it stays deliverable) and send
    its body again."""
    import boto3

    sqs = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=stack.state["region"]
    ).client("sqs", endpoint_url=stack.state["aws_endpoint_url"])
    queue_url = stack.state["environment"]["JOBS_QUEUE_URL"]
    while not stop.wait(0.25):
        with suppress(Exception):
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=0)
            for message in messages.get("Messages", []):
                sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
                run.faults.duplicate_deliveries += 1


def run_soak(
    jobs: int, workdir: Path, *, window: int = 400, clients: int = 4, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run `jobs` async jobs through a fresh local stack with the faults above; the audit's figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(tag=secrets.token_hex(3), jobs=jobs)
    children: list[Child] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        stack = start_stack(workdir)
        children.append(stack.child)
        providers = {
            name: start_provider(workdir, stack, name, 0, seed) for name, seed in (("a", 1), ("b", 2))
        }
        children += [p for provider in providers.values() for p in (provider.server, provider.agent)]
        dispatcher = start_dispatcher(workdir, stack, 0)
        children.append(dispatcher.child)
        say(f"soak {run.tag}: {jobs} jobs, window {window}, workdir {workdir}")
        run.started = time.time()
        indices = iter(range(jobs))
        lock = threading.Lock()

        def next_index() -> Iterator[int]:
            while True:
                with lock:
                    index = next(indices, None)
                if index is None:
                    return
                yield index

        for target, args in [
            (summary_poller, (stack, run, stop)),
            (result_watcher, (stack, run, stop)),
            (duplicator, (stack, run, stop)),
            *[(submitter, (stack, run, next_index(), window, stop)) for _ in range(clients)],
        ]:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            threads.append(thread)

        plan = [(0.25, "dispatcher"), (0.40, "provider"), (0.60, "dispatcher")]
        restarts = 0
        deadline = time.monotonic() + 300 + jobs * 0.5
        last_report = 0.0
        while True:
            progress = run.progress()
            if plan and progress >= plan[0][0]:
                kind = plan.pop(0)[1]
                if kind == "dispatcher":
                    restarts += 1
                    dispatcher = kill_dispatcher_mid_batch(workdir, stack, dispatcher, restarts, run)
                    children.append(dispatcher.child)
                else:
                    providers["b"] = kill_provider(workdir, stack, providers["b"], run)
                    children += [providers["b"].server, providers["b"].agent]
                say(f"  {time.time() - run.started:6.1f} s  {progress:5.1%}  {kind} killed")
            with run.lock:
                finished = len(run.submitted) == jobs and run.active == 0
            if finished and not plan and all_ended(stack, run):
                break
            if time.monotonic() > deadline:
                say("  the run did not end before its deadline: auditing what there is")
                break
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                say(
                    f"  {time.time() - run.started:6.1f} s  {progress:5.1%}  {len(run.submitted)} submitted, {run.active} active"
                )
            time.sleep(0.2)
        run.ended = time.time()
        stop.set()
        for thread in threads:
            thread.join(30)
        return audit(stack, run, sorted(workdir.glob("calls-*.jsonl")), killed_logs(run))
    finally:
        stop.set()
        for child in reversed(children):
            child.stop()


def calls_in_flight(paths: list[Path]) -> int:
    """Calls a model server has received and not answered yet (from the tails of the call logs)."""
    open_calls: set[str] = set()
    for path in paths:
        with suppress(OSError), path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 65_536))
            for line in handle.read().decode(errors="replace").splitlines()[1:]:
                with suppress(ValueError, KeyError):
                    record = json.loads(line)
                    if record["event"] == "received":
                        open_calls.add(record["call"])
                    else:
                        open_calls.discard(record["call"])
    return len(open_calls)


def kill_dispatcher_mid_batch(
    workdir: Path, stack: Stack, worker: DispatcherWorker, number: int, run: Run
) -> DispatcherWorker:
    """SIGKILL the dispatcher while it has batches in flight, preferably while a provider call of one of
    them is running (its answer is then lost, and the job must run again)."""
    deadline, wanted_call_until = time.monotonic() + 60, time.monotonic() + 10
    logs = sorted(workdir.glob("calls-*.jsonl"))
    while time.monotonic() < deadline:
        batches, records = worker.snapshot()
        if batches > 0 and records > 0 and (time.monotonic() > wanted_call_until or calls_in_flight(logs)):
            break
        time.sleep(0.005)
    else:
        raise RuntimeError("the dispatcher never had a batch in flight to be killed in")
    worker.child.kill()
    run.faults.dispatcher_kills.append(
        {"t": time.time(), "batches_in_flight": batches, "records_in_flight": records}
    )
    time.sleep(1)  # a new container starts
    return start_dispatcher(workdir, stack, number)


def kill_provider(workdir: Path, stack: Stack, provider: Provider, run: Run) -> Provider:
    """SIGKILL the provider's agent and model server, preferably with a call in flight; start both again
    5 s later, on new ports, under the same provider id."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not calls_in_flight([provider.call_log]):
        time.sleep(0.005)
    provider.agent.kill()
    provider.server.kill()
    run.faults.provider_kills.append({"t": time.time(), "call_log": provider.call_log.name})
    time.sleep(5)
    number = len(run.faults.provider_kills)
    return start_provider(workdir, stack, provider.name, number, seed=100 + number)


def killed_logs(run: Run) -> dict[str, float]:
    return {kill["call_log"]: kill["t"] for kill in run.faults.provider_kills}


def all_ended(stack: Stack, run: Run) -> bool:
    jobs = read_jobs(stack)
    return all(
        jobs.get(job_id, {}).get("status") in ("PROCESSED", "FAILED", "CANCELED")
        for job_id in run.submitted.values()
    )


def read_jobs(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every job of the account (the list, newest first, 100 a page)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=stack.base_url, timeout=120, trust_env=False) as client:
        after = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            page = client.get("/v1/jobs", params=params, headers=headers).json()
            for job in page["data"]:
                found[job["id"]] = job
            if not page["has_more"]:
                return found
            after = page["last_id"]


def call_of(job: dict[str, Any]) -> str | None:
    """The provider call whose answer a PROCESSED job stored (the fake server signs its answers)."""
    result = job.get("result")
    return result.get("system_fingerprint") if isinstance(result, dict) else None


# ---------------------------------------------------------------- the audit


@dataclass
class Call:
    call_id: str
    log: str
    marker: str
    received: float
    status: int | None = None
    injected: bool = False
    answered: float | None = None


def read_calls(paths: list[Path]) -> list[Call]:
    calls: dict[str, Call] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if record.get("path") not in (None, "/v1/chat/completions"):
                continue
            if record["event"] == "received":
                calls[record["call"]] = Call(record["call"], path.name, record["marker"], record["t"])
            elif record["event"] == "answered" and record["call"] in calls:
                call = calls[record["call"]]
                call.status, call.injected, call.answered = record["status"], record["injected"], record["t"]
    return sorted(calls.values(), key=lambda call: call.received)


def audit(stack: Stack, run: Run, logs: list[Path], killed: dict[str, float]) -> dict[str, Any]:
    jobs = read_jobs(stack)
    calls = read_calls(logs)
    by_marker = {run.marker(index): job_id for index, job_id in run.submitted.items()}
    calls_of: dict[str, list[Call]] = defaultdict(list)
    stray = 0
    for call in calls:
        job_id = by_marker.get(call.marker)
        if job_id is None:
            stray += 1
        else:
            calls_of[job_id].append(call)
    kills = [kill["t"] for kill in run.faults.dispatcher_kills]

    lost = [
        job_id
        for job_id in run.submitted.values()
        if jobs.get(job_id, {}).get("status") not in ("PROCESSED", "FAILED")
    ]
    statuses = Counter(jobs[job_id]["status"] for job_id in run.submitted.values() if job_id in jobs)
    failures = Counter(
        (jobs[job_id].get("error") or {}).get("type", "?")
        for job_id in run.submitted.values()
        if jobs.get(job_id, {}).get("status") == "FAILED"
    )
    overwritten, missing, explanations, unexplained = [], [], Counter(), []
    for job_id in run.submitted.values():
        job, mine = jobs.get(job_id, {}), calls_of.get(job_id, [])
        answered_ok = {call.call_id for call in mine if call.status == 200}
        stored = call_of(job) if job.get("status") == "PROCESSED" else None
        if answered_ok and stored is None:
            missing.append(job_id)
        first = run.first_seen.get(job_id)
        if (stored is not None and stored not in answered_ok) or (first is not None and first != stored):
            overwritten.append(job_id)
        for before, after in zip(mine, mine[1:], strict=False):
            reason = explain(before, after, killed, kills)
            if reason is None:
                unexplained.append((job_id, before.call_id, after.call_id))
            else:
                explanations[reason] += 1
    duplicates = sum(max(0, len(mine) - 1) for mine in calls_of.values())
    elapsed = run.ended - run.started
    return {
        "jobs_submitted": len(run.submitted),
        "jobs_by_status": dict(statuses),
        "failed_by_type": dict(failures),
        "jobs_lost": len(lost),
        "results_overwritten": len(overwritten),
        "results_checked_while_running": len(run.first_seen),
        "succeeded_call_but_result_missing": len(missing),
        "provider_calls": len(calls),
        "provider_calls_not_of_a_job": stray,
        "injected_500s": sum(1 for call in calls if call.injected),
        "duplicate_provider_calls": duplicates,
        "duplicates_explained": dict(explanations),
        "duplicates_unexplained": len(unexplained),
        "faults": {
            "dispatcher_kills": run.faults.dispatcher_kills,
            "provider_kills": run.faults.provider_kills,
            "duplicate_sqs_deliveries_injected": run.faults.duplicate_deliveries,
            "provider_calls_in_flight_when_killed": sum(
                1
                for call in calls
                if call.log in killed and call.received <= killed[call.log] and call.answered is None
            ),
            "provider_calls_in_flight_when_the_dispatcher_was_killed": [
                sum(1 for call in calls if call.received <= kill <= (call.answered or call.received))
                for kill in kills
            ],
        },
        "elapsed_seconds": round(elapsed, 1),
        "jobs_per_second": round(len(run.submitted) / elapsed, 2) if elapsed else 0.0,
        "examples": {
            "lost": lost[:5],
            "overwritten": overwritten[:5],
            "missing": missing[:5],
            "unexplained": unexplained[:5],
        },
    }


def explain(before: Call, after: Call, killed: dict[str, float], dispatcher_kills: list[float]) -> str | None:
    """Why a job's provider was called again after `before`: the fault that made the gateway retry."""
    if before.injected:
        return "the call before failed on purpose (HTTP 500)"
    kill = killed.get(before.log)
    if (
        kill is not None
        and before.received <= kill
        and (before.answered is None or before.answered >= kill - 1)
    ):
        return "the call before was in flight on the provider when it was killed"
    settled = before.answered or before.received
    # Killed while the call ran, or just after its answer, before the result was written (under load a
    # finishing write can take a while): the job ran again once its lease ran out.
    if any(before.received - 0.5 <= kill <= min(settled + 5, after.received) for kill in dispatcher_kills):
        return "the dispatcher was killed before it stored the call before"
    return None


# ---------------------------------------------------------------- printing


def print_report(figures: dict[str, Any]) -> None:
    faults = figures["faults"]
    print()
    print(
        f"Soak and chaos: {figures['jobs_submitted']} async jobs in {figures['elapsed_seconds']} s ({figures['jobs_per_second']} jobs/s)"
    )
    print(
        f"  jobs by status                      {figures['jobs_by_status']}  failed by type {figures['failed_by_type']}"
    )
    print(f"  jobs lost                           {figures['jobs_lost']}")
    print(
        f"  results overwritten                 {figures['results_overwritten']}  ({figures['results_checked_while_running']} results seen while running, checked again at the end)"
    )
    print(f"  provider call succeeded, no result  {figures['succeeded_call_but_result_missing']}")
    print(
        f"  provider calls                      {figures['provider_calls']}  ({figures['injected_500s']} answered 500 on purpose; {figures['provider_calls_not_of_a_job']} not of a job)"
    )
    print(
        f"  duplicate provider calls            {figures['duplicate_provider_calls']}  unexplained {figures['duplicates_unexplained']}"
    )
    for reason, count in sorted(figures["duplicates_explained"].items()):
        print(f"    {count:6d}  {reason}")
    print("  faults injected")
    calls_at_kills = faults["provider_calls_in_flight_when_the_dispatcher_was_killed"]
    for kill, calls in zip(faults["dispatcher_kills"], calls_at_kills, strict=True):
        print(
            f"    dispatcher killed mid-batch: {kill['batches_in_flight']} batches, {kill['records_in_flight']}"
            f" records in flight, {calls} provider calls running"
        )
    print(
        f"    provider killed: {len(faults['provider_kills'])} times, {faults['provider_calls_in_flight_when_killed']} calls in flight"
    )
    print(f"    duplicated SQS deliveries: {faults['duplicate_sqs_deliveries_injected']}")
    if any(figures["examples"].values()):
        print(f"  examples: {figures['examples']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=400, help="most jobs active at once")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None, help="where logs and call logs go (kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="switchyard-soak-"))
    figures = run_soak(args.jobs, workdir, window=args.window, clients=args.clients)
    print_report(figures)
    if args.json:
        print(json.dumps(figures, indent=2))
    ok = (
        figures["jobs_lost"]
        == figures["results_overwritten"]
        == figures["succeeded_call_but_result_missing"]
        == 0
    )
    return 0 if ok and figures["duplicates_unexplained"] == 0 else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
