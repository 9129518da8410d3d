"""The template on in-process moto with the real API handler, for benchmarks that count AWS calls.

No servers and no network: moto's `mock_aws`, the ApiFunction handler loaded as Lambda would, an account
with a key, and (if asked) the fake model server registered as the account's provider by heartbeat.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "LOG_LEVEL": "ERROR",
}


@dataclass
class ApiOnMoto:
    environment: dict[str, str]
    api: Any  # the ApiFunction handler
    account_id: str
    headers: dict[str, str]
    provider_url: str | None

    def call(self, method: str, path: str, body: Any = None) -> dict:
        """The handler's raw result for one HTTP API event from the bench account."""
        from tests.conftest import http_event, lambda_context

        return self.api(http_event(method, path, body=body, headers=self.headers), lambda_context())

    def json(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.call(method, path, body)["body"])


@contextmanager
def api_on_moto(*, provider: bool = False, provider_concurrency: int = 4) -> Iterator[ApiOnMoto]:
    os.environ.update(ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws
    from switchyard.ttl_cache import wait_for_refreshes
    from switchyard_agent.fake_model_server import FakeServerConfig, create_app
    from switchyard_agent.serving import serve_in_thread
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.handler_loading import load_handler
    from switchyard_local.provision import provision

    from tests.conftest import heartbeat_body, reset_switchyard_caches

    dynamodb_atomicity.install()
    with ExitStack() as stack:
        stack.enter_context(mock_aws())
        provider_url = (
            stack.enter_context(serve_in_thread(create_app(FakeServerConfig(stream_delay_ms=0))))
            if provider
            else None
        )
        provisioned = provision(
            ROOT / "template.yaml",
            # One account making thousands of requests: limits far above what a benchmark sends.
            {
                "ProviderEndpointPolicy": "loopback",
                "AccountRequestsPerMinute": "100000000",
                "AccountMaxActiveJobs": "100000000",
            },
        )
        os.environ.update({name: str(value) for name, value in provisioned.environment.items()})
        reset_switchyard_caches()
        from switchyard.services.accounts import get_accounts_service

        accounts = get_accounts_service()
        account = accounts.create_account("bench")
        headers = {"authorization": f"Bearer {accounts.create_api_key(account.account_id).secret}"}
        bench = ApiOnMoto(
            dict(provisioned.environment),
            load_handler(ROOT / "functions" / "api", "app.handler"),
            account.account_id,
            headers,
            provider_url,
        )
        if provider_url:
            beat = heartbeat_body(provider_url, max_concurrency=provider_concurrency)
            assert bench.call("POST", "/api/inference/agent/heartbeat/", beat)["statusCode"] == 200
        try:
            yield bench
        finally:
            wait_for_refreshes()  # nothing may reach past mock_aws
