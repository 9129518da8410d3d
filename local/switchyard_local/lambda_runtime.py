"""Run the template's Lambda handlers in this process, as Lambda's Invoke would.

Not emulated: the function timeout and per-function isolation (all handlers share one interpreter and
one environment).
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any

from switchyard.front.lambda_context import LambdaContext

from switchyard_local.handler_loading import Handler, load_handler
from switchyard_local.lambda_patch import InvocationResult
from switchyard_local.stack import FunctionSpec

log = logging.getLogger(__name__)


class LocalFunctionRuntime:
    """Finds a function by name or ARN, loads its handler once, and calls it with a context."""

    def __init__(self, functions: Iterable[FunctionSpec]):
        self._functions: dict[str, FunctionSpec] = {}
        for function in functions:
            for key in (function.name, function.arn, function.logical_id):
                self._functions[key] = function
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._background: set[threading.Thread] = set()

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        found = self._functions.get(name_or_arn)
        if found is None and ":function:" in name_or_arn:
            # arn:aws:lambda:region:account:function:name[:qualifier], or account:function:name
            found = self._functions.get(name_or_arn.split(":function:", 1)[1].split(":", 1)[0])
        return found

    def handler(self, function: FunctionSpec) -> Handler:
        handler = self._handlers.get(function.logical_id)
        if handler is None:
            with self._lock:  # two first invocations at once must not import the module twice
                handler = self._handlers.get(function.logical_id)
                if handler is None:
                    handler = self._handlers[function.logical_id] = load_handler(
                        function.code_dir, function.handler
                    )
        return handler

    def context(self, function: FunctionSpec, request_id: str | None = None) -> LambdaContext:
        return LambdaContext.for_invocation(
            function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory_mb,
            timeout_seconds=function.timeout_seconds,
            aws_request_id=request_id,
        )

    def invoke(self, function: FunctionSpec, event: Any) -> Any:
        """Call the handler; its exceptions propagate."""
        return self.handler(function)(event, self.context(function))

    def handle_invocation(
        self, function_name: str, payload: bytes, invocation_type: str
    ) -> InvocationResult | None:
        """Lambda's Invoke: `RequestResponse` runs the handler and answers its result (an exception comes
        back as Lambda's error payload, flagged `Unhandled`), `Event` starts it in the background,
        `DryRun` only checks the function exists. None when no function has that name or ARN."""
        function = self.function(function_name)
        if function is None:
            return None
        event = json.loads(payload) if payload else {}
        if invocation_type == "Event":
            self.invoke_in_background(function, event)
            return InvocationResult(b"")
        if invocation_type == "DryRun":
            return InvocationResult(b"")
        try:
            return InvocationResult(json.dumps(self.invoke(function, event)).encode())
        except Exception as error:
            log.info("%s raised %s: %s", function.logical_id, type(error).__name__, error, exc_info=True)
            return InvocationResult(json.dumps(error_payload(error)).encode(), function_error="Unhandled")

    def invoke_in_background(self, function: FunctionSpec, event: Any) -> None:
        """`InvocationType=Event`: the caller gets its answer at once, errors only reach the log."""

        def run() -> None:
            try:
                self.invoke(function, event)
            except Exception:
                log.exception("Asynchronous invocation of %s failed", function.logical_id)
            finally:
                with self._lock:
                    self._background.discard(thread)

        thread = threading.Thread(target=run, name=f"lambda-event-{function.logical_id}", daemon=True)
        with self._lock:
            self._background.add(thread)
        thread.start()

    def wait_for_background(self, timeout: float) -> None:
        with self._lock:
            pending = list(self._background)
        for thread in pending:
            thread.join(timeout)


def error_payload(error: BaseException) -> dict[str, Any]:
    """The body Lambda returns for an unhandled exception (Step Functions matches on errorType)."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
