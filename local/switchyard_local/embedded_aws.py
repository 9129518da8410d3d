"""The embedded AWS: a moto server on a loopback port, and the process environment that points at it."""

from __future__ import annotations

import logging
import os
from typing import Any

from switchyard_local.loopback_server import ServingThread, disable_nagle

LOCAL_REGION = "us-east-1"


class EmbeddedAws:
    """moto's server app on 127.0.0.1, served by werkzeug's threaded server with keep-alive connections.

    moto's own ThreadedMotoServer binds every interface by default and closes the connection after each
    response (werkzeug's choice), so every AWS call of the stack paid a TCP connect, a new server thread
    and a close: a DynamoDB GetItem took 5.2-6.8 ms that way here, 4.0-4.7 ms on a kept connection.
    """

    def __init__(self, port: int = 0):
        self._requested_port = port
        self._serving: ServingThread | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        from switchyard_local.moto_speedups import (
            cache_moto_module_list,
            defer_moto_batch_import,
            speed_up_dynamodb_responses,
            speed_up_sqs,
        )

        defer_moto_batch_import()
        speed_up_sqs()
        speed_up_dynamodb_responses()
        cache_moto_module_list()

        # One log line per AWS call drowns everything else out.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = make_server(
            "127.0.0.1",
            self._requested_port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=keep_alive_request_handler(),
        )
        self.port = server.server_address[1]
        self._serving = ServingThread(server, "embedded-aws")
        return self.endpoint_url

    @property
    def server_address(self) -> tuple[str, int]:
        if self._serving is None:
            raise RuntimeError("start() first")
        return self._serving.server.server_address

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None


def keep_alive_request_handler() -> type:
    """moto's request handler, keeping HTTP/1.1 connections open between requests.

    werkzeug closes every connection, and after each response drains whatever the client sent next
    (safe only because the connection is closing). Here the request body is handed to the app as a
    stream limited to its Content-Length, the drain sees an empty reader, and the unread rest of the body
    is skipped after the response, so the next request on the connection starts where it should. A
    chunked request body keeps werkzeug's behaviour: the connection closes.
    """
    import io

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.wsgi import LimitedStream

    class KeepAliveRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        _request_body: Any = None
        _connection_reader: Any = None

        def setup(self) -> None:
            super().setup()
            disable_nagle(self.connection)

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            length = environ.get("CONTENT_LENGTH") or "0"
            if environ.get("wsgi.input_terminated") or not length.isdigit():
                return environ
            self._request_body = LimitedStream(self.rfile, int(length))
            environ["wsgi.input"] = self._request_body
            self._connection_reader, self.rfile = self.rfile, io.BytesIO()
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if (
                self._request_body is not None
                and keyword.lower() == "connection"
                and value.lower() == "close"
            ):
                return
            super().send_header(keyword, value)

        def run_wsgi(self) -> None:
            try:
                super().run_wsgi()
            finally:
                if self._connection_reader is not None:
                    self.rfile = self._connection_reader
                    self._request_body.exhaust()
                self._request_body = self._connection_reader = None

    return KeepAliveRequestHandler


def point_process_at(endpoint_url: str, port: int, region: str = LOCAL_REGION) -> None:
    """Make every boto3 client of this process (handlers, moto's Step Functions interpreter) use moto."""
    # A developer's real profile or session must never leak into (or out of) the local stack.
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            # moto's Step Functions interpreter calls http://localhost:$MOTO_PORT; ThreadedMotoServer does
            # not set it, and without it every Lambda/SQS/DynamoDB task fails to connect.
            "MOTO_PORT": str(port),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    # Locally there is no CloudWatch agent or X-Ray daemon: EMF blobs on stdout are only noise.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
