"""The command lines: option parsing, and both programs started for real and stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from switchyard_agent.config import default_provider_id, parse_args, parse_listen

REQUIRED = [
    "--gateway",
    "http://127.0.0.1:8787",
    "--api-key",
    "sk-1",
    "--upstream",
    "http://127.0.0.1:8000/v1/",
]


def test_defaults_and_upstream_normalisation(monkeypatch):
    monkeypatch.delenv("SWITCHYARD_AGENT_SECRET", raising=False)
    config = parse_args(REQUIRED)
    assert config.upstream_url == "http://127.0.0.1:8000"  # a pasted /v1 base URL is fine
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9100)
    assert config.max_concurrency is None  # the model server's own figure, else 4 (runtime)
    assert config.heartbeat_interval == 15
    assert len(config.secret) >= 16
    assert parse_args(REQUIRED).secret != config.secret  # random per run


def test_environment_fallbacks(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_GATEWAY_URL", "http://gw:8787/")
    monkeypatch.setenv("SWITCHYARD_API_KEY", "sk-env")
    monkeypatch.setenv("SWITCHYARD_AGENT_SECRET", "env-secret-0123456789")
    config = parse_args(["--upstream", "http://127.0.0.1:11434"])
    assert (config.gateway_url, config.api_key, config.secret) == (
        "http://gw:8787",
        "sk-env",
        "env-secret-0123456789",
    )


def test_model_types_and_options():
    config = parse_args(
        [*REQUIRED, "--model-type", "flux*=image", "--model-type", "my=asr=stt", "--listen", ":0",
         "--default-service-type", "tts", "--max-concurrency", "2", "--upstream-api-key", "up"]
    )  # fmt: skip
    assert config.model_types == {"flux*": "image", "my=asr": "stt"}
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 0)
    assert config.default_service_type == "tts" and config.upstream_api_key == "up"


@pytest.mark.parametrize(
    "extra",
    [
        ["--secret", "short"],
        ["--model-type", "x=robot"],
        ["--listen", "0.0.0.0:9100"],  # all interfaces needs an explicit --public-url
        ["--provider-id", "has spaces"],
        ["--max-concurrency", "0"],
    ],
)
def test_bad_options_are_refused(extra, capsys):
    with pytest.raises(SystemExit):
        parse_args([*REQUIRED, *extra])


def test_listen_forms():
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:9100") == ("::1", 9100)


def test_default_provider_id_is_stable_and_valid():
    first = default_provider_id("127.0.0.1", 9100)
    assert first == default_provider_id("127.0.0.1", 9100) != default_provider_id("127.0.0.1", 9101)
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", first)


class LineReader:
    """Collects a child process's stdout lines on a thread, so tests can wait for one without blocking."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:  # closed here, once the child is gone, so no pipe is left open
            for line in process.stdout:
                self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines!r}")


def _spawn(module_main: str, *args: str) -> subprocess.Popen[str]:
    code = f"import sys; from {module_main} import main; sys.exit(main())"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
    )


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_both_programs_run_register_relay_and_stop_cleanly(gateway):
    fake = _spawn("switchyard_agent.fake_model_server", "--port", "0", "--host", "127.0.0.1")
    agent = None
    try:
        fake_url = LineReader(fake).wait_for(r"listening on (http://127\.0\.0\.1:\d+)")[1]
        secret = "cli-secret-0123456789"
        agent = _spawn(
            "switchyard_agent.cli",
            "--gateway", gateway.url, "--api-key", "sk-cli", "--upstream", fake_url,
            "--listen", "127.0.0.1:0", "--secret", secret, "--heartbeat-interval", "5",
        )  # fmt: skip
        output = LineReader(agent)
        agent_url = output.wait_for(r"listening on (http://127\.0\.0\.1:\d+)")[1]
        output.wait_for(r"registered provider")
        assert gateway.beats[0]["endpoint_url"] == agent_url
        response = httpx.post(
            f"{agent_url}/v1/chat/completions",
            json={"model": "fake-llm", "messages": [{"role": "user", "content": "ping"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert "ping" in response.json()["choices"][0]["message"]["content"]
        assert _stop(agent) == 0  # SIGTERM is a clean stop, not death by signal
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            _stop(agent)
        assert _stop(fake) == 0
