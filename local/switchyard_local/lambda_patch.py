"""Make moto's Lambda run our handlers: every way moto invokes a function ends in one patched method.

moto runs Lambda code in Docker, which the local stack does not have. Every invocation path (boto3
`invoke`, `InvocationType=Event`, Step Functions Lambda tasks, moto's own event sources) goes through
`moto.awslambda.models.LambdaFunction.invoke`; replacing that one method with a call to an invoker makes
all of them run real code. The invoker is the in-process runtime (tests with `mock_aws`) or a client of
the local stack's Lambda endpoint (the embedded AWS runs in its own process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class InvocationResult:
    """What Lambda's Invoke answers: the payload, and `Unhandled` when the function raised."""

    payload: bytes
    function_error: str | None = None


class LambdaInvoker(Protocol):
    def handle_invocation(
        self, function_name: str, payload: bytes, invocation_type: str
    ) -> InvocationResult | None:
        """Run (or, for `Event`, start) the named function; None when the name is not one of ours."""


_original_invoke: Any = None


def install_lambda_patch(invoker: LambdaInvoker) -> None:
    """Route moto's Lambda invocations to `invoker`; functions it does not know keep moto's behaviour."""
    from moto.awslambda.models import LambdaFunction

    global _original_invoke
    if _original_invoke is None:
        _original_invoke = LambdaFunction.invoke
    original = _original_invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        payload = body if isinstance(body, bytes) else (body or "").encode()
        result = invoker.handle_invocation(self.function_name, payload, invocation_type)
        if result is None:  # created by someone else: moto's own behaviour
            return original(self, body, request_headers, response_headers)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        return result.payload

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
