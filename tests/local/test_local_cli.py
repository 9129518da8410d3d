"""`switchyard-local up --json` as a subprocess: ready line, a working API, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def read_first_line(process: subprocess.Popen, timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        process.kill()
        raise AssertionError(f"no ready line within {timeout} s; stderr: {process.stderr.read()}")
    return lines[0]


def test_up_serves_the_api_then_stops_cleanly(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    command = [sys.executable, "-m", "switchyard_local.cli", "up", "--port", "0", "--json"]
    command += ["--template", str(ROOT / "template.yaml")]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Given the stack is up
        ready = json.loads(read_first_line(process, timeout=25))
        assert ready["openai_base_url"] == ready["base_url"] + "/v1"
        assert ready["base_url"].startswith("http://127.0.0.1:")
        assert ready["aws_endpoint_url"].startswith("http://127.0.0.1:")
        state_file = tmp_path / ".switchyard" / "local-stack.json"
        state = json.loads(state_file.read_text())
        assert state["api_key"] == ready["api_key"] and state["environment"]["ACCOUNTS_TABLE"]

        # When the bootstrap key calls the API, Then the real handler answers
        headers = {"Authorization": f"Bearer {ready['api_key']}"}
        assert httpx.get(f"{ready['base_url']}/v1/models", headers=headers).status_code == 200
        assert httpx.get(f"{ready['base_url']}/v1/models").status_code == 401

        # And SIGTERM stops everything, its embedded AWS process included, and removes the state file
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert not state_file.exists()
        assert process.stdout.read() == ""  # stdout carried the ready line and nothing else
        with pytest.raises(httpx.ConnectError):
            httpx.get(ready["aws_endpoint_url"], timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
