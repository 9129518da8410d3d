"""`switchyard-local up --poll-elsewhere DispatcherFunction` leaves the dispatcher's queue to
`switchyard-local poll DispatcherFunction`, a process of its own (that the soak benchmark kills)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import heartbeat_body
from tests.local.test_local_cli import read_first_line

ROOT = Path(__file__).resolve().parents[2]


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}


def _job_status(base_url: str, headers: dict[str, str], job_id: str) -> str:
    return httpx.get(f"{base_url}/v1/jobs/{job_id}", headers=headers).json()["status"]


def test_a_function_polled_elsewhere_runs_in_the_poll_worker_which_reports_its_batches(
    tmp_path: Path, start_fake_server
) -> None:
    command = [sys.executable, "-m", "switchyard_local.cli", "up", "--port", "0", "--json"]
    command += ["--template", str(ROOT / "template.yaml"), "--poll-elsewhere", "DispatcherFunction"]
    stack = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    worker = None
    try:
        ready = json.loads(read_first_line(stack, timeout=60))
        base_url, headers = ready["base_url"], {"Authorization": f"Bearer {ready['api_key']}"}
        provider = start_fake_server(stream_delay_ms=0)
        httpx.post(
            f"{base_url}/api/inference/agent/heartbeat/", json=heartbeat_body(provider.url), headers=headers
        )
        body = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "async": True}
        job_id = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=headers).json()["id"]
        time.sleep(2)
        assert _job_status(base_url, headers, job_id) == "QUEUED"  # nobody polls its queue in the stack

        worker = subprocess.Popen(
            [sys.executable, "-m", "switchyard_local.cli", "poll", "DispatcherFunction", "--report-batches"],
            cwd=tmp_path,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        polling = json.loads(read_first_line(worker, timeout=60))
        assert polling["function"] == "DispatcherFunction" and polling["polling"][0].endswith("JobsQueue")
        assert json.loads(worker.stdout.readline()) == {"batch": "start", "records": 1}
        assert json.loads(worker.stdout.readline()) == {"batch": "end", "records": 1}
        deadline = time.monotonic() + 20
        while _job_status(base_url, headers, job_id) != "PROCESSED":
            assert time.monotonic() < deadline
            time.sleep(0.2)

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        unknown = subprocess.run(
            [sys.executable, "-m", "switchyard_local.cli", "poll", "NoSuchFunction"],
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode == 2 and "has no function 'NoSuchFunction'" in unknown.stderr
    finally:
        for process in (worker, stack):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
