"""The embedded AWS in a process of its own, started and stopped by the local stack.

Why a second process: moto answers every AWS call in Python. Sharing one interpreter with the gateway
put moto's CPU and the gateway's under one lock, so a synchronous request waited behind whatever moto
was doing for the async jobs, and the whole stack ran on one core of a two-core box.

The child is `python -m switchyard_local.aws_process --lambda-endpoint URL`. It serves moto on a free
127.0.0.1 port, forwards moto's Lambda invocations to the stack's `LambdaEndpoint`, prints one JSON line
`{"endpoint_url": ..., "port": ...}` when it serves, and stops when its stdin closes: when the stack
stops it, or when the stack's process dies in any way, so no moto is left behind.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading

from switchyard_local.embedded_aws import point_process_at
from switchyard_local.lambda_endpoint import LambdaEndpoint
from switchyard_local.lambda_patch import LambdaInvoker
from switchyard_local.process_io import claim_stdout

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 5


class EmbeddedAwsProcess:
    """Starts the child and the Lambda endpoint its invocations come back to; stops both.

    Until `serve_lambda()` names the functions, an invocation fails (503) rather than waiting.
    """

    def __init__(self, *, log_level: str = "WARNING"):
        self._lambda_endpoint = LambdaEndpoint()
        self._log_level = log_level
        self._process: subprocess.Popen | None = None
        self.returncode: int | None = None  # once stopped: 0 when the child stopped cleanly
        self.endpoint_url = ""
        self.port = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def serve_lambda(self, invoker: LambdaInvoker) -> None:
        self._lambda_endpoint.serve(invoker)

    def start(self) -> str:
        try:
            return self._start_child(self._lambda_endpoint.start())
        except BaseException:
            self._lambda_endpoint.stop()
            raise

    def _start_child(self, lambda_endpoint_url: str) -> str:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "switchyard_local.aws_process",
                "--lambda-endpoint",
                lambda_endpoint_url,
                "--log-level",
                self._log_level,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # the ready line only; the child sends everything else to stderr
            text=True,
        )
        line = _read_line(self._process.stdout, START_TIMEOUT_SECONDS)
        if not line:
            process, self._process = self._process, None
            timed_out = process.poll() is None
            if timed_out:
                process.kill()  # first: the reader thread may still be blocked on its stdout
            code = process.wait()
            process.stdin.close()
            process.stdout.close()
            if timed_out:
                raise RuntimeError(f"the embedded AWS was not ready within {START_TIMEOUT_SECONDS} s")
            raise RuntimeError(
                f"the embedded AWS exited with code {code} before it was ready (its log is above)"
            )
        self._process.stdout.close()
        ready = json.loads(line)
        self.endpoint_url, self.port = ready["endpoint_url"], ready["port"]
        return self.endpoint_url

    def stop(self) -> None:
        """The child first (moto's executions may still call back), then the Lambda endpoint."""
        process, self._process = self._process, None
        if process is not None:
            process.stdin.close()  # the child's signal to stop
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("the embedded AWS did not stop within %s s; killing it", STOP_TIMEOUT_SECONDS)
                process.kill()
            self.returncode = process.wait()
        self._lambda_endpoint.stop()


# ---------------------------------------------------------------- the child


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m switchyard_local.aws_process", description=__doc__)
    parser.add_argument("--lambda-endpoint", required=True, help="the stack's Lambda Invoke endpoint")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s (aws): %(message)s"
    )
    # Ctrl-C in a terminal reaches the whole process group: the stack stops its consumers first and then
    # closes this process's stdin. SIGTERM stops it at once (sent to a whole group, e.g. by a service
    # manager, that stops moto before the stack has stopped its consumers: they log failed calls).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    stopped = threading.Event()
    ready_output = claim_stdout()

    from switchyard_local import dynamodb_atomicity
    from switchyard_local.embedded_aws import EmbeddedAws
    from switchyard_local.lambda_endpoint import ForwardingInvoker
    from switchyard_local.lambda_patch import install_lambda_patch

    # The server answers each request on its own thread: conditional writes must not race.
    dynamodb_atomicity.install()
    install_lambda_patch(ForwardingInvoker(args.lambda_endpoint))
    aws = EmbeddedAws()
    endpoint_url = aws.start()
    # moto's Step Functions interpreter calls Lambda, SQS and DynamoDB through boto3, back into this server.
    point_process_at(endpoint_url, aws.port)
    threading.Thread(
        target=_wait_for_stdin_to_close, args=(stopped,), name="parent-watch", daemon=True
    ).start()
    # moto's modules and botocore's models live as long as the process: keep them out of the collector's way.
    gc.freeze()
    ready_output.write(json.dumps({"endpoint_url": endpoint_url, "port": aws.port}) + "\n")
    ready_output.close()
    try:
        stopped.wait()
    except _Stop:
        pass
    finally:
        aws.stop()
    return 0


class _Stop(Exception):
    """SIGTERM, raised in the main thread. (Setting the event from the handler could deadlock: the
    handler runs on the main thread, which may be holding the event's lock inside wait().)"""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def _read_line(stream, timeout: float) -> str:
    """The child's first line, or "" if it closes stdout or says nothing within `timeout`."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


def _wait_for_stdin_to_close(stopped: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader holds its lock, and the
    # interpreter aborts when it finds that lock taken at shutdown.
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    finally:  # EOF, or stdin unusable: either way nobody can stop this process through it any more
        stopped.set()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except _Stop:  # SIGTERM before the server was up
        sys.exit(0)
