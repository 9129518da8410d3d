"""Schemathesis against the local stack's own /openapi.json: coverage, fuzzing and stateful phases, every
check (tests/e2e/schemathesis.toml), with the real agent and fake model server behind the inference routes.

It must find no server error and no answer that differs from the document, and raise no warning: an
operation whose schema is looser than what the API accepts fails the run, as does one it never reaches.
Its own stack (the fuzzer registers providers, submits batches and starts runs nobody else should see).

    SCHEMATHESIS_MAX_EXAMPLES=100 SCHEMATHESIS_SEED=random .venv/bin/pytest tests/e2e/test_e2e_fuzz.py -s
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LocalStack, Provider, _stop, start_local_stack, start_provider

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).parent / "st"
# Examples per operation and phase: ~30 operations, so the whole run takes about two minutes here.
DEFAULT_MAX_EXAMPLES = 15
DEFAULT_SEED = 20261201


@dataclass
class FuzzTarget:
    stack: LocalStack
    provider: Provider
    seeds: dict[str, str]


def _wait_for(client: httpx.Client, path: str, done, timeout: float = 60.0) -> dict:
    """GET `path` until `done(answer)`; fail, naming it, if it never is: a seed that is not there makes
    every case of its operations a 404, which schemathesis reports only as "missing test data"."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path).json()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"seed {path} not ready after {timeout:.0f} s: {answer}"
        time.sleep(0.2)


def seed_resources(stack: LocalStack, provider: Provider) -> dict[str, str]:
    """A finished LLM job, a finished media job (an asset), a batch and a run waiting at its gate: ids that
    exist, for the operations that read one."""
    with httpx.Client(
        base_url=stack.base_url, headers=stack.headers(), timeout=30, trust_env=False
    ) as client:
        chat = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "async": True}
        job = client.post("/v1/chat/completions", json=chat).json()
        image = {"model": "fake-image", "prompt": "a lamp", "async": True}
        media = client.post("/v1/images/generations", json=image).json()
        batch = client.post(
            "/v1/batches", json={"requests": [{"endpoint": "/v1/chat/completions", "body": chat}]}
        ).json()
        gated = {"spec": {"steps": [{"id": "review", "type": "gate"}]}}
        runs = {name: client.post("/v1/workflows/runs", json=gated).json()["id"] for name in RUNS}
        # Webhooks on a loopback port nobody listens on (the local stack allows loopback): registering one
        # calls nothing; its test delivery fails to connect and is recorded, which gives a delivery id.
        hooks = {
            name: client.post("/v1/webhooks", json={"url": WEBHOOK_URL}).json()["id"] for name in WEBHOOKS
        }
        delivery = client.post(f"/v1/webhooks/{hooks['SEED_WEBHOOK_ID']}/test").json()
        for job_id in (job["id"], media["id"]):
            _wait_for(client, f"/v1/jobs/{job_id}", lambda j: j["status"] == "PROCESSED")
        for run_id in runs.values():
            _wait_for(client, f"/v1/workflows/runs/{run_id}", lambda r: r["steps"][0]["status"] == "waiting")
        for webhook_id in hooks.values():
            _wait_for(
                client, f"/v1/webhooks/{webhook_id}", lambda w, wanted=webhook_id: w.get("id") == wanted
            )
        delivery_path = f"/v1/webhooks/{hooks['SEED_WEBHOOK_ID']}/deliveries/{delivery['id']}"
        _wait_for(client, delivery_path, lambda d: d.get("id") == delivery["id"])
    return {
        "SEED_JOB_ID": job["id"],
        "SEED_MEDIA_JOB_ID": media["id"],
        "SEED_BATCH_ID": batch["id"],
        **runs,
        **hooks,
        "SEED_DELIVERY_ID": delivery["id"],
        "SEED_ENDPOINT_URL": provider.agent_url,
        "SEED_WEBHOOK_URL": WEBHOOK_URL,
    }


RUNS = ("SEED_RUN_ID", "SEED_APPROVE_RUN_ID", "SEED_REJECT_RUN_ID", "SEED_CANCEL_RUN_ID")
# One webhook the fuzzer reads, tests and rotates; another it may delete.
WEBHOOKS = ("SEED_WEBHOOK_ID", "SEED_DELETE_WEBHOOK_ID")
WEBHOOK_URL = "http://127.0.0.1:9/hooks"


def start_fuzz_target(workdir: Path) -> FuzzTarget:
    # Limits far above what the run sends: the fuzzer is one account making thousands of requests (and
    # registering a few hundred webhooks, which the stack's process reads from its environment).
    os.environ["WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT"] = "100000"
    try:
        stack = start_local_stack(
            workdir,
            "NoProviderGraceSeconds=2",
            "JobUpstreamTimeoutSeconds=10",  # one of the values Mappings.JobTimeouts derives from
            "AccountRequestsPerMinute=1000000",
            "AccountMaxActiveJobs=1000000",
        )
    finally:
        del os.environ["WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT"]
    try:
        provider = start_provider(stack, workdir)
        return FuzzTarget(stack, provider, seed_resources(stack, provider))
    except BaseException:
        _stop(stack.process)
        raise


def stop_fuzz_target(target: FuzzTarget) -> None:
    for process in target.provider.processes:
        _stop(process)
    _stop(target.stack.process)


def run_schemathesis(target: FuzzTarget, *extra: str) -> subprocess.CompletedProcess:
    seed = os.environ.get("SCHEMATHESIS_SEED", str(DEFAULT_SEED))
    if seed == "random":
        seed = str(random.randrange(2**32))  # noqa: S311 - a fuzzing seed, printed for replay
    # Schemathesis reads ${VARIABLES} of its config from the environment, but not inside dictionaries.
    values = {**target.seeds, "SWITCHYARD_API_KEY": target.stack.api_key}
    config = target.stack.workdir / CONFIG.name
    text = CONFIG.read_text()
    for name, value in values.items():
        text = text.replace(f"${{{name}}}", value)
    config.write_text(text)
    environment = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{target.stack.base_url}/openapi.json",
            "--phases",
            "coverage,fuzzing,stateful",
            "--seed",
            seed,
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", str(DEFAULT_MAX_EXAMPLES)),
            *extra,
        ],
        cwd=target.stack.workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory) -> Iterator[FuzzTarget]:
    target = start_fuzz_target(tmp_path_factory.mktemp("fuzz"))
    yield target
    stop_fuzz_target(target)


def test_schemathesis_finds_no_server_error_no_schema_mismatch_and_no_warning(fuzz_target):
    started = time.monotonic()
    result = run_schemathesis(fuzz_target)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    print(f"schemathesis took {time.monotonic() - started:.0f} s\n{summary}")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    assert "Warnings:" not in summary
