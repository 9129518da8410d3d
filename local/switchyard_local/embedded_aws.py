"""The embedded AWS: a moto server on a loopback port, and the process environment that points at it."""

from __future__ import annotations

import logging
import os

LOCAL_REGION = "us-east-1"


class EmbeddedAws:
    """moto's ThreadedMotoServer bound to 127.0.0.1 (its default is every interface)."""

    def __init__(self, port: int = 0):
        self._requested_port = port
        self._server = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        from switchyard_local.moto_speedups import defer_moto_batch_import, speed_up_sqs

        defer_moto_batch_import()
        speed_up_sqs()

        # One log line per AWS call drowns everything else out.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


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
