"""The local stack's logs: every function runs in one process (threads), yet each line names its own
function, and every line of a job's path (API -> SQS poller -> dispatcher -> provider -> end) carries
the job's id as its correlation id, while requests running at the same time keep theirs."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import _stop, start_local_stack, start_provider

pytestmark = pytest.mark.e2e

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello"}]}


def wait_until_ended(http: httpx.Client, headers: dict, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("PROCESSED", "FAILED", "CANCELED"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """A stack of its own whose standard error (the handlers' JSON lines) goes to a file; some async jobs
    and sync calls at the same time; then the stack stops and the lines are read back."""
    workdir = tmp_path_factory.mktemp("observed")
    log_path = workdir / "stack.stderr"
    with log_path.open("w") as stderr:
        stack = start_local_stack(workdir, stderr=stderr)
    provider = start_provider(stack, tmp_path_factory.mktemp("observed-provider"))
    try:
        with httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False) as http:
            headers = stack.headers()

            def submit(_: int) -> str:
                answer = http.post("/v1/chat/completions", json={**CHAT, "async": True}, headers=headers)
                assert answer.status_code == 202, answer.text
                return answer.json()["id"]

            def sync(_: int) -> int:
                return http.post("/v1/chat/completions", json=CHAT, headers=headers).status_code

            with ThreadPoolExecutor(8) as pool:
                submitted = pool.map(submit, range(4))
                answered = pool.map(sync, range(4))
                job_ids = list(submitted)
                assert list(answered) == [200] * 4
            jobs = [wait_until_ended(http, headers, job_id) for job_id in job_ids]
            assert [job["status"] for job in jobs] == ["PROCESSED"] * 4
    finally:
        for process in provider.processes:
            _stop(process)
        _stop(stack.process)
    lines = []
    for text in log_path.read_text().splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return job_ids, lines


def test_given_jobs_and_requests_at_once_then_every_line_of_a_job_carries_its_id_and_names_its_function(
    logged_run,
):
    job_ids, lines = logged_run

    for job_id in job_ids:
        mine = [
            line for line in lines if line.get("correlation_id") == job_id or line.get("job_id") == job_id
        ]
        assert {line.get("correlation_id") for line in mine} == {job_id}
        assert {line.get("job_id") for line in mine} == {job_id}
        said = {(line["function_name"].rsplit("-", 1)[-1], line["message"]) for line in mine}
        assert ("ApiFunction", "job submitted") in said
        assert ("DispatcherFunction", "dispatched") in said
        assert ("DispatcherFunction", "job ended") in said
        functions = {function for function, _ in said}
        assert functions <= {"ApiFunction", "DispatcherFunction", "SweeperFunction"}


def test_given_the_logs_then_each_function_logs_under_its_own_name(logged_run):
    _, lines = logged_run

    by_message: dict[str, set[str]] = {}
    for line in lines:
        if "function_name" in line:
            by_message.setdefault(line["message"], set()).add(line["function_name"].rsplit("-", 1)[-1])
    assert by_message["dispatched"] == {"DispatcherFunction"}
    assert by_message["job submitted"] == {"ApiFunction"}
    assert by_message["swept"] == {"SweeperFunction"}
    assert all(line.get("service") == "switchyard" for line in lines if "function_name" in line)
    sweeps = [line for line in lines if line["message"] == "swept"]
    assert all("correlation_id" not in line for line in sweeps)
