"""Run the template's Lambda handlers in-process, for every way moto invokes a function.

moto runs Lambda code in Docker, which the local stack does not have. Every invocation path (boto3
`invoke`, `InvocationType=Event`, Step Functions Lambda tasks, moto's own event sources) goes through
`moto.awslambda.models.LambdaFunction.invoke`; replacing that one method with a call into the real
handler makes all of them run real code. Not emulated: the function timeout and per-function isolation
(all handlers share one interpreter and one environment).
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


# ---------------------------------------------------------------- the moto patch

_original_invoke: Any = None


def install_lambda_patch(runtime: LocalFunctionRuntime) -> None:
    """Route moto's Lambda invocations of the runtime's functions to their handlers in-process."""
    from moto.awslambda.models import LambdaFunction

    global _original_invoke
    if _original_invoke is None:
        _original_invoke = LambdaFunction.invoke
    original = _original_invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        function = runtime.function(self.function_name)
        if function is None:  # created by someone else: moto's own behaviour
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        if invocation_type == "Event":
            runtime.invoke_in_background(function, event)
            return b""
        if invocation_type == "DryRun":
            return b""
        try:
            result = runtime.invoke(function, event)
            return json.dumps(result).encode()
        except Exception as error:
            log.info("%s raised %s: %s", function.logical_id, type(error).__name__, error, exc_info=True)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error_payload(error)).encode()

    LambdaFunction.invoke = invoke


def uninstall_lambda_patch() -> None:
    from moto.awslambda.models import LambdaFunction

    global _original_invoke
    if _original_invoke is not None:
        LambdaFunction.invoke = _original_invoke
        _original_invoke = None


def _header(headers: Any, name: str) -> str | None:
    # werkzeug and botocore headers are case-insensitive; moto's internal callers pass plain dicts.
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in dict(headers).items() if k.lower() == name), None)
    return value
