#!/bin/bash
# StreamFunction's handler. With AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap, the Lambda Web Adapter layer
# runs this script instead of the Python runtime's own bootstrap; the adapter (a Lambda extension)
# waits until the port below accepts connections, then relays each Function URL request to it and
# streams the response back (AWS_LWA_INVOKE_MODE=response_stream).
#
# The wrapper does not hand us the runtime's sys.path: add the function code and the layers
# (/opt/python holds SharedLayer: switchyard, uvicorn, starlette, ...) ourselves. Only loopback is
# bound: nothing but the adapter in the same sandbox talks to this server.
set -euo pipefail

export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}:/opt/python${PYTHONPATH:+:$PYTHONPATH}"

# `python` is the runtime's interpreter (/var/lang/bin comes first on PATH). Amazon Linux 2023 has no
# /usr/bin/python, so a broken PATH fails loudly instead of starting the OS's older python3.

# --http: uvicorn's httptools protocol, sending a stream's head and first event as one segment.
exec python -m uvicorn switchyard.front.lambda_app:app \
    --http switchyard.front.http_protocol:CoalescingHttpToolsProtocol \
    --host 127.0.0.1 \
    --port "${AWS_LWA_PORT:-8080}" \
    --no-server-header
