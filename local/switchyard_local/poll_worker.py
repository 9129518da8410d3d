"""`switchyard-local poll FUNCTION`: one function's SQS event source, in a process of its own.

The local stack runs every handler in its own process. A Lambda container, though, can die in the middle
of a batch (a timeout, out of memory, a host failure), and what that leaves behind (messages received and
never deleted, jobs claimed and never finished, provider slots held) is exactly what the design must
recover from. `switchyard-local up --poll-elsewhere DispatcherFunction` leaves that function's queue to
this command, which reads the running stack's state file, points itself at the same embedded AWS, loads
the same handler and plays the same event source (batches, partial failures, visibility timeouts).
Killing this process with SIGKILL mid-batch is then a realistic crash of a dispatcher; starting it again
is a fresh container. The soak benchmark (benchmarks/soak_chaos.py) does both, twice.

It prints one JSON line when it polls (`{"polling": [queue urls], "pid": ...}`) and, with
`--report-batches`, `{"batch": "start" | "end", "records": n}` around every invocation, so a caller can
kill it while a batch is in flight. SIGTERM stops it cleanly (batches in flight finish).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from switchyard_local.process_io import claim_stdout


def run_poll_worker(function_name: str, state_path: Path, *, report_batches: bool = False) -> int:
    try:
        state = json.loads(Path(state_path).read_text())
    except (OSError, ValueError) as error:
        print(
            f"switchyard-local poll: cannot read the stack's state file {state_path}: {error}",
            file=sys.stderr,
        )
        return 2
    functions = state.get("functions") or {}
    if function_name not in functions:
        known = ", ".join(sorted(functions)) or "none"
        print(
            f"switchyard-local poll: the stack has no function {function_name!r} (it has {known})",
            file=sys.stderr,
        )
        return 2
    output = claim_stdout()  # handlers log to stdout: keep the real one for this process's own lines
    lock = threading.Lock()

    def say(line: dict[str, Any]) -> None:
        with lock:
            output.write(json.dumps(line) + "\n")
            output.flush()

    from switchyard_local.embedded_aws import point_process_at

    os.environ.update(state.get("environment") or {})
    endpoint = str(state["aws_endpoint_url"])
    point_process_at(endpoint, urlparse(endpoint).port or 0, state.get("region") or "us-east-1")

    from switchyard_local.event_sources import sqs_pollers
    from switchyard_local.lambda_runtime import LocalFunctionRuntime
    from switchyard_local.local_stack import sqs_client
    from switchyard_local.stack import FunctionSpec

    spec = FunctionSpec.from_json(functions[function_name])
    runtime = LocalFunctionRuntime([spec])
    runtime.handler(spec)  # imported before the first batch, as a warm container would have it

    def invoke(event: dict[str, Any]) -> Any:
        records = len(event.get("Records") or [])
        if report_batches:
            say({"batch": "start", "records": records})
        try:
            return runtime.invoke(spec, event)
        finally:
            if report_batches:
                say({"batch": "end", "records": records})

    pollers = sqs_pollers(state.get("region") or "us-east-1", runtime, spec, sqs_client(endpoint), invoke)
    if not pollers:
        print(f"switchyard-local poll: {function_name} has no SQS event source", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    for poller in pollers:
        poller.start()
    queues = [event.queue_url for event in spec.events_of_type("SQS")]
    say({"polling": queues, "function": function_name, "pid": os.getpid()})
    while not stop.wait(0.5):
        pass
    for poller in pollers:
        poller.stop(timeout=10)
    return 0
