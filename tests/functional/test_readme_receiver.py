"""The README's webhook receiver example works as printed: it accepts a signed delivery and refuses a
tampered one (run on loopback, the example's listen line swapped for an ephemeral port)."""

from __future__ import annotations

import re
import threading
import time
from http.server import HTTPServer
from pathlib import Path

import httpx
from switchyard.webhook_model import new_secret
from switchyard.webhook_signing import delivery_headers

README = Path(__file__).resolve().parents[2] / "README.md"
LISTEN = 'HTTPServer(("0.0.0.0", 8000), Receiver).serve_forever()'


def receiver_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "class Receiver" in block]
    assert LISTEN in example
    return example.replace(LISTEN, "")


def test_the_readme_receiver_verifies_the_raw_body(capsys):
    secret = new_secret()
    namespace: dict = {}
    exec(receiver_example().replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102 - our own README
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        body = '{"event":"generation.completed","type":"generation.completed","generation_id":"job_1","data":{"state":"Success","response":{}}}'
        headers = delivery_headers(
            secrets=[secret],
            webhook_id="msg_1",
            timestamp=int(time.time()),
            body=body,
            event="generation.completed",
            endpoint_id="wh_1",
            generation_id="job_1",
        )
        assert httpx.post(url, content=body, headers=headers, trust_env=False).status_code == 204
        assert httpx.post(url, content=body, headers=headers, trust_env=False).status_code == 204  # a retry
        tampered = body.replace("Success", "Failed")
        assert httpx.post(url, content=tampered, headers=headers, trust_env=False).status_code == 400
    finally:
        server.shutdown()
    assert capsys.readouterr().out.count("job_1 Success") == 1  # handled once, though delivered twice
