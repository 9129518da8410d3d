"""Lambda's Invoke API between the embedded AWS's process and the process that runs the handlers.

The embedded AWS (moto) runs in a process of its own, so that its CPU does not compete with the
gateway's for one interpreter lock. Handlers stay in the stack's process: they share its caches, its
log and its shutdown. moto's invocations (Step Functions Lambda tasks, boto3 `invoke`) therefore cross
over: `ForwardingInvoker` (in moto's process) posts them, as Lambda's own Invoke request
`POST /2015-03-31/functions/{name}/invocations`, to `LambdaEndpoint` (in the stack's process).
"""

from __future__ import annotations

import http.client
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

from switchyard_local.lambda_patch import InvocationResult, LambdaInvoker
from switchyard_local.loopback_server import ServingThread, disable_nagle

log = logging.getLogger(__name__)

_PATH_PREFIX = "/2015-03-31/functions/"
_PATH_SUFFIX = "/invocations"
# A Lambda function may run for 15 minutes; Step Functions waits that long for a task.
_INVOKE_TIMEOUT_SECONDS = 15 * 60 + 30
_NOT_FOUND = "ResourceNotFoundException"


class LambdaEndpoint:
    """Serves Invoke on 127.0.0.1 for an invoker that is set once the stack's functions are known."""

    def __init__(self) -> None:
        self._invoker: LambdaInvoker | None = None
        self._serving: ServingThread | None = None

    @property
    def url(self) -> str:
        if self._serving is None:
            raise RuntimeError("start() first")
        return f"http://127.0.0.1:{self._serving.server.server_address[1]}"

    def start(self) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self._serving = ServingThread(server, "lambda-endpoint")
        return self.url

    def serve(self, invoker: LambdaInvoker) -> None:
        self._invoker = invoker

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def answer(self, function_name: str, payload: bytes, invocation_type: str) -> InvocationResult | None:
        if self._invoker is None:
            raise EndpointNotReady("the stack's functions are not loaded yet")
        return self._invoker.handle_invocation(function_name, payload, invocation_type)


class EndpointNotReady(Exception):
    pass


def _handler_class(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class InvokeRequestHandler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            disable_nagle(self.connection)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if not (path.startswith(_PATH_PREFIX) and path.endswith(_PATH_SUFFIX)):
                self._error(400, "UnknownOperationException", f"Unknown operation {path}")
                return
            function_name = unquote(path[len(_PATH_PREFIX) : -len(_PATH_SUFFIX)])
            payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
            try:
                if payload:
                    json.loads(payload)
            except ValueError:
                self._error(400, "InvalidRequestContentException", "Could not parse request body into json")
                return
            try:
                result = endpoint.answer(function_name, payload, invocation_type)
            except EndpointNotReady as error:
                self._error(503, "ServiceException", str(error))
                return
            except Exception as error:
                log.exception("Local invocation of %s failed", function_name)
                self._error(500, type(error).__name__, str(error))
                return
            if result is None:
                self._error(404, _NOT_FOUND, f"Function not found: {function_name}")
                return
            if invocation_type == "DryRun":
                self.send_response(204)
                self.end_headers()
                return
            headers = {"X-Amz-Function-Error": result.function_error} if result.function_error else {}
            self._reply(202 if invocation_type == "Event" else 200, result.payload, headers)

        def _error(self, status: int, error_type: str, message: str) -> None:
            # Lambda's error shape: the type in a header and in the body.
            body = json.dumps({"Type": "User", "message": message}).encode()
            self._reply(status, body, {"X-Amzn-ErrorType": error_type})

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            log.debug("lambda endpoint: " + format, *args)

    return InvokeRequestHandler


class ForwardingInvoker:
    """An invoker for moto's Lambda patch that forwards each invocation to a `LambdaEndpoint`."""

    def __init__(self, endpoint_url: str):
        parts = urlsplit(endpoint_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80

    def handle_invocation(
        self, function_name: str, payload: bytes, invocation_type: str
    ) -> InvocationResult | None:
        # A connection per invocation: these are Step Functions tasks, a handful a second at most.
        connection = http.client.HTTPConnection(self._host, self._port, timeout=_INVOKE_TIMEOUT_SECONDS)
        try:
            connection.request(
                "POST",
                f"{_PATH_PREFIX}{quote(function_name, safe='')}{_PATH_SUFFIX}",
                body=payload,
                headers={"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status == 404 and response.getheader("X-Amzn-ErrorType") == _NOT_FOUND:
            return None
        if response.status >= 300:
            raise RuntimeError(f"the local Lambda endpoint answered {response.status}: {body[:200]!r}")
        return InvocationResult(body, response.getheader("X-Amz-Function-Error"))
