"""Structured logs: one Powertools Logger, and the keys of the invocation and of the job being worked on.

Every `logging.getLogger("switchyard.…")` logger of the package is a child of the Powertools logger
named "switchyard", so every line of the package comes out as one JSON object with the same keys.

Why not `Logger.inject_lambda_context` and `append_keys`: they keep the invocation's keys (function
name, request id, correlation id) on the one formatter every Logger of the service shares. On Lambda a
container runs one invocation at a time, so that is harmless there; the local stack runs every function
in one process, in threads (the front's workers, the SQS pollers, Step Functions' Lambda tasks), and
there the keys of whichever invocation started last ended up on every line: the dispatcher logged as
the ApiFunction with an API request's correlation id. Here the keys live in a context variable
(Powertools' "thread-safe keys"), so each thread, and each asyncio task of the dispatcher's batch, logs
its own invocation and its own job. `asyncio.to_thread`, `contextvars.copy_context` and Starlette's
thread pool carry them into the threads they start; a bare `threading.Thread` or a ThreadPoolExecutor
starts without them (wrap its work in `carry_log_keys`).

The correlation id: an HTTP request's API Gateway request id; inside the work on one job, the job id
(`job_log_context`), so every line of a job's life, from its submission through each dispatch to its
end, can be found by one id (the template's saved Logs Insights queries filter on it).
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.utilities.jmespath_utils import query

SERVICE = "switchyard"  # also the stdlib logger name every module's logger is a child of

logger = Logger(service=SERVICE)

F = TypeVar("F", bound=Callable[..., Any])

_seen_functions: set[str] = set()
_seen_lock = threading.Lock()


def _cold_start(function_name: str) -> bool:
    """The first invocation of this function in this process (per function: locally they share one)."""
    with _seen_lock:
        if function_name in _seen_functions:
            return False
        _seen_functions.add(function_name)
        return True


def current_keys() -> dict[str, Any]:
    return dict(logger.thread_safe_get_current_keys())


@contextmanager
def log_keys(**keys: Any) -> Iterator[None]:
    """Add keys to every line logged in this context (thread, task) until the block ends."""
    before = current_keys()
    logger.thread_safe_clear_keys()  # a fresh dict: the one before may be shared with other contexts
    logger.thread_safe_append_keys(**{**before, **keys})
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(**before)


def carry_log_keys(function: F) -> F:
    """`function`, run with this context's log keys in whatever thread calls it (a thread pool's)."""
    context = contextvars.copy_context()

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(function, *args, **kwargs)  # one Context cannot run in two threads

    return cast(F, run)


def job_log_context(job_id: str) -> Any:
    """Inside the work on one job: its id is the correlation id of every line."""
    return log_keys(correlation_id=job_id, job_id=job_id)


def logged_invocation(correlation_id_path: str | None = None) -> Callable[[F], F]:
    """Decorate a Lambda handler: its lines carry the function's name, request id and cold start, and
    the correlation id found at `correlation_id_path` (a JMESPath into the event), if any."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            invocation = build_lambda_context_model(context)
            correlation_id = None
            if correlation_id_path and isinstance(event, dict):
                correlation_id = query(data=event, envelope=correlation_id_path)
            with log_keys(
                cold_start=_cold_start(invocation.function_name),
                function_name=invocation.function_name,
                function_memory_size=invocation.function_memory_size,
                function_arn=invocation.function_arn,
                function_request_id=invocation.function_request_id,
                correlation_id=correlation_id,
            ):
                return handler(event, context, *args, **kwargs)

        return cast(F, invoke)

    return decorate
