"""`switchyard-local up --json` as a subprocess: ready line, a working API, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Hang guards, not timing checks. The stack bounds its own start (its embedded AWS must be up within
# aws_process.START_TIMEOUT_SECONDS, every provisioning call has a timeout) and its own stop (each step
# has one), and exits with an error when one runs out; what is checked here is that it gets ready, serves,
# and stops cleanly. These limits only keep a stack that hangs regardless from hanging the suite: on this
# 2-core machine, loaded by parallel work, a healthy start took longer than the 25 s once allowed.
START_GUARD_SECONDS = 180
STOP_GUARD_SECONDS = 60


def drain(stream) -> list[str]:
    """Read `stream` to its end on a thread, so the child can never block on a full pipe (it logs to
    stderr); the lines are kept for failure messages."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines


def read_first_line(process: subprocess.Popen, timeout: float, stderr: Sequence[str] = ()) -> str:
    """The ready line: waits for it or for the process to end, whichever comes first (`stderr`: what the
    process wrote there so far, for the failure message, when the caller drains it)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        process.kill()
        process.wait()
        raise AssertionError(f"no ready line (exit code {process.returncode}); stderr: {''.join(stderr)}")
    return lines[0]


def test_up_serves_the_api_then_stops_cleanly(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    command = [sys.executable, "-m", "switchyard_local.cli", "up", "--port", "0", "--json"]
    command += ["--template", str(ROOT / "template.yaml")]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stderr = drain(process.stderr)
    try:
        # Given the stack is up
        ready = json.loads(read_first_line(process, START_GUARD_SECONDS, stderr))
        assert ready["openai_base_url"] == ready["base_url"] + "/v1"
        assert ready["base_url"].startswith("http://127.0.0.1:")
        assert ready["aws_endpoint_url"].startswith("http://127.0.0.1:")
        state_file = tmp_path / ".switchyard" / "local-stack.json"
        state = json.loads(state_file.read_text())
        assert state["api_key"] == ready["api_key"] and state["environment"]["ACCOUNTS_TABLE"]

        # When the bootstrap key calls the API, Then the real handler answers
        # (httpx's default 5 s is a timing check this test does not mean to make: the first request reads
        # DynamoDB on moto, which a loaded machine can slow to seconds.)
        headers = {"Authorization": f"Bearer {ready['api_key']}"}
        models = f"{ready['base_url']}/v1/models"
        assert httpx.get(models, headers=headers, timeout=30).status_code == 200
        assert httpx.get(models, timeout=30).status_code == 401

        # And SIGTERM stops everything, its embedded AWS process included, and removes the state file
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_GUARD_SECONDS) == 0, "".join(stderr)
        assert not state_file.exists()
        assert process.stdout.read() == ""  # stdout carried the ready line and nothing else
        with pytest.raises(httpx.ConnectError):
            httpx.get(ready["aws_endpoint_url"], timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
