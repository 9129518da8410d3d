"""`switchyard-local up`: the whole gateway on this machine, on 127.0.0.1 only (moto in a child process)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from switchyard_local.process_io import claim_stdout
from switchyard_local.state_file import STATE_FILE, remove_state_file, write_state_file

log = logging.getLogger("switchyard_local")


class _Stop(Exception):
    """SIGTERM, turned into an exception so that cleanup runs (the default action kills the process)."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    if args.command == "poll":
        from switchyard_local.poll_worker import run_poll_worker

        return run_poll_worker(args.function, args.state_file, report_batches=args.report_batches)
    return 2  # argparse already refused anything else


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard-local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local stack and serve the API until Ctrl-C")
    up_parser.add_argument("--port", type=int, default=8787, help="API port on 127.0.0.1 (0 = any free port)")
    up_parser.add_argument(
        "--template", type=Path, default=None, help="SAM template (default: ./template.yaml)"
    )
    up_parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="template parameter values"
    )
    up_parser.add_argument(
        "--schedule-seconds",
        type=float,
        default=None,
        help="run every Schedule event this often (default: its rate; env SWITCHYARD_LOCAL_SCHEDULE_SECONDS)",
    )
    up_parser.add_argument("--state-file", type=Path, default=STATE_FILE, help="where to describe the stack")
    up_parser.add_argument(
        "--json", action="store_true", help="print one JSON line when ready (stdout carries nothing else)"
    )
    up_parser.add_argument("--log-level", default="WARNING", help="log level of the local stack itself")
    up_parser.add_argument(
        "--poll-elsewhere",
        nargs="*",
        default=[],
        metavar="FUNCTION",
        help="do not poll these functions' queues here; `switchyard-local poll FUNCTION` does, in its own process",
    )
    poll_parser = commands.add_parser(
        "poll",
        help="play the SQS event source of one function of a running stack, in this process (until SIGTERM)",
    )
    poll_parser.add_argument("function", help="the function's logical id, e.g. DispatcherFunction")
    poll_parser.add_argument(
        "--state-file", type=Path, default=STATE_FILE, help="the running stack's state file"
    )
    poll_parser.add_argument(
        "--report-batches",
        action="store_true",
        help="print a JSON line to stdout when each batch starts and ends (soak tests kill it mid-batch)",
    )
    return parser


def up(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    ready_output = claim_stdout() if args.json else sys.stdout
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # Metrics are disabled locally (no CloudWatch); Powertools still warns on every empty flush.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    try:
        overrides = _parse_overrides(args.parameter_overrides)
        template = _find_template(args.template)
        listener = _listen(args.port)
    except (ValueError, OSError) as error:
        print(f"switchyard-local: {error}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _raise_stop)
    running = None
    state_path = args.state_file.resolve()
    try:
        from switchyard_local.local_stack import start_local_stack

        running = start_local_stack(
            template,
            overrides,
            schedule_seconds=args.schedule_seconds,
            log_level=args.log_level,
            polled_elsewhere=frozenset(args.poll_elsewhere),
        )
        app = _front_app(running)
        port = listener.getsockname()[1]
        state = _state(running, port)

        def on_ready() -> None:
            # Everything built so far (botocore models, handler modules, the app) lives as long as the
            # process: keep it out of the collector's way, or a full collection stalls requests for tens of ms.
            gc.freeze()
            write_state_file(state, state_path)
            seconds = time.perf_counter() - started
            if args.json:
                ready_output.write(json.dumps(_ready_line(state, state_path)) + "\n")
                ready_output.flush()
            else:
                _print_banner(state, state_path, seconds)

        from switchyard_agent.serving import run_event_loop  # uvloop when installed: cheaper per request

        run_event_loop(_serve(app, listener, on_ready))
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if running is not None:
            running.stop()
        remove_state_file(state_path)
        listener.close()
    return 0


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"--parameter-overrides takes KEY=VALUE pairs, got {pair!r}")
        overrides[name] = value
    return overrides


def _find_template(explicit: Path | None) -> Path:
    candidates = (
        [explicit]
        if explicit
        else [Path("template.yaml"), Path(__file__).resolve().parents[2] / "template.yaml"]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ValueError(f"no SAM template at {candidates[0]} (pass --template)")


def _listen(port: int) -> socket.socket:
    # Bound before anything else starts, so a busy port fails in milliseconds, not after provisioning.
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without it
    # Nagle stalls multi-part responses ~40 ms behind the client's delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as error:
        listener.close()
        raise OSError(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); try --port 0") from error
    return listener


def _front_app(running: Any) -> Any:
    from switchyard.front import create_app

    api = running.stack.api_function()
    handler = running.runtime.handler(api)  # imported now: the first request should not pay for it
    return create_app(
        handler, function_name=api.name, memory_mb=api.memory_mb, timeout_seconds=api.timeout_seconds
    )


async def _serve(app: Any, listener: socket.socket, on_ready) -> None:
    import uvicorn
    from switchyard.front.http_protocol import CoalescingHttpToolsProtocol

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        http=CoalescingHttpToolsProtocol,  # a stream's head and first event in one segment
    )
    server = uvicorn.Server(config)

    async def announce_when_started() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        on_ready()

    announcer = asyncio.create_task(announce_when_started())
    try:
        await server.serve(sockets=[listener])
    finally:
        announcer.cancel()


def _state(running: Any, port: int) -> dict[str, Any]:
    return {
        "base_url": f"http://127.0.0.1:{port}",
        "aws_endpoint_url": running.aws.endpoint_url,
        "region": running.stack.region,
        "environment": running.stack.environment,
        "api_key": running.credentials.api_key,
        "account_id": running.credentials.account_id,
        "pid": os.getpid(),
        # What `switchyard-local poll FUNCTION` needs to run a function's event source elsewhere.
        "functions": {name: spec.to_json() for name, spec in running.stack.functions.items()},
    }


def _ready_line(state: dict[str, Any], state_path: Path) -> dict[str, Any]:
    return {
        "base_url": state["base_url"],
        "openai_base_url": state["base_url"] + "/v1",
        "dashboard_url": state["base_url"] + "/dashboard/",
        "api_key": state["api_key"],
        "account_id": state["account_id"],
        "aws_endpoint_url": state["aws_endpoint_url"],
        "region": state["region"],
        "state_file": str(state_path),
    }


def _print_banner(state: dict[str, Any], state_path: Path, seconds: float) -> None:
    try:
        shown_path = state_path.relative_to(Path.cwd())
    except ValueError:
        shown_path = state_path
    print(
        "\n".join(
            [
                "",
                f"Switchyard local stack is up ({seconds:.1f} s).",
                f"  OpenAI base URL   {state['base_url']}/v1",
                f"  Dashboard         {state['base_url']}/dashboard  (sign in with the key below)",
                f"  API key           {state['api_key']}",
                f"  Account           {state['account_id']}",
                f"  Embedded AWS      {state['aws_endpoint_url']}  (moto)",
                f"  State file        {shown_path}",
                "Press Ctrl-C to stop.",
                "",
            ]
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
