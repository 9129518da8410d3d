"""Provision template.yaml's local resources with boto3: the template is the only list of resources.

Works against a moto server (pass `endpoint_url`) and inside `moto.mock_aws()` (no endpoint). It refuses
to run when neither is in play, so a mistake can never create resources in a real AWS account.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from switchyard_local.resource_provisioners import PROVISIONERS, ProvisionContext
from switchyard_local.stack import ProvisionedStack
from switchyard_local.template import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    LOCAL_ACCOUNT_ID,
    ResourceReference,
    TemplateError,
    TemplateResolver,
    apply_globals,
    load_template,
    referenced_logical_ids,
    resolve_parameters,
)

log = logging.getLogger(__name__)

# Credentials for the embedded AWS: moto maps any key to its default account, 123456789012.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def provision(
    template_path: str | Path,
    parameter_overrides: Mapping[str, Any] | None = None,
    *,
    endpoint_url: str | None = None,
    region: str = DEFAULT_REGION,
    stack_name: str = DEFAULT_STACK_NAME,
) -> ProvisionedStack:
    """Create every supported resource of the template, in dependency order, and describe the result."""
    template_path = Path(template_path).resolve()
    template = load_template(template_path)
    parameters = resolve_parameters(template, parameter_overrides)
    _refuse_real_aws(endpoint_url)

    stack = ProvisionedStack(
        stack_name=stack_name,
        region=region,
        account_id=LOCAL_ACCOUNT_ID,
        endpoint_url=endpoint_url,
        template_path=template_path,
        parameters=parameters,
    )

    def lookup(logical_id: str) -> ResourceReference | None:
        found = stack.physical.get(logical_id)
        return found.reference() if found else None

    resolver = TemplateResolver(template, parameters, lookup, region=region, stack_name=stack_name)
    resources: dict[str, dict] = template["Resources"]
    wanted = []
    for logical_id, resource in resources.items():
        if not resolver.resource_enabled(logical_id):
            continue
        if resource.get("Type") in PROVISIONERS:
            wanted.append(logical_id)
        else:
            stack.skipped[logical_id] = str(resource.get("Type"))

    if any(resources[logical_id]["Type"] == "AWS::Serverless::StateMachine" for logical_id in wanted):
        enable_step_functions_execution(endpoint_url)

    ctx = ProvisionContext(
        stack=stack, client=_client_factory(endpoint_url, region), template_dir=template_path.parent
    )
    for logical_id in provisioning_order(resources, wanted):
        resource = resources[logical_id]
        properties = apply_globals(template, resource["Type"], resource.get("Properties") or {})
        physical = PROVISIONERS[resource["Type"]](ctx, logical_id, resolver.resolve(properties))
        if physical is None:
            stack.skipped[logical_id] = resource["Type"]
        else:
            stack.physical[logical_id] = physical
    _warn_about_environment_clashes(stack)
    return stack


def provisioning_order(resources: Mapping[str, Mapping[str, Any]], wanted: list[str]) -> list[str]:
    """`wanted` sorted so every resource comes after the wanted resources it refers to."""
    wanted_set = set(wanted)
    ordered: list[str] = []
    state: dict[str, str] = {}

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if state.get(logical_id) == "done":
            return
        if state.get(logical_id) == "visiting":
            raise TemplateError(f"Circular dependency: {' -> '.join((*path, logical_id))}")
        state[logical_id] = "visiting"
        resource = resources[logical_id]
        depends_on = resource.get("DependsOn") or []
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        dependencies = {*referenced_logical_ids(resource.get("Properties") or {}), *depends_on}
        for dependency in sorted(dependencies & wanted_set - {logical_id}):
            visit(dependency, (*path, logical_id))
        state[logical_id] = "done"
        ordered.append(logical_id)

    for logical_id in wanted:
        visit(logical_id, ())
    return ordered


def enable_step_functions_execution(endpoint_url: str | None) -> None:
    """moto only runs state machines when told to, and only those created after it was told."""
    settings = {"stepfunctions": {"execute_state_machine": True}}
    if endpoint_url:
        request = urllib.request.Request(  # noqa: S310 - http:// to the loopback moto server, never file:
            f"{endpoint_url.rstrip('/')}/moto-api/config",
            data=json.dumps(settings).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the Request above
            response.read()
        return
    from moto.core.config import default_user_config

    # Replace (not mutate) the section: mock_aws() restores the dict it patched when it stops.
    default_user_config["stepfunctions"] = {
        **default_user_config.get("stepfunctions", {}),
        **settings["stepfunctions"],
    }


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _client_factory(endpoint_url: str | None, region: str):
    """boto3 clients, cached across provision() calls: building one costs ~50 ms of model loading, and
    functional tests provision the template once per test. (moto intercepts clients created before a
    mock_aws() context as well as inside it, so a cached client stays valid.)"""
    import boto3

    def client(service: str) -> Any:
        key = (service, endpoint_url, region, os.environ.get("AWS_ENDPOINT_URL"))
        with _clients_lock:
            if key not in _clients:
                if "session" not in _clients:
                    _clients["session"] = boto3.session.Session()
                session = _clients["session"]
                credentials = LOCAL_CREDENTIALS if endpoint_url else {}
                _clients[key] = session.client(
                    service, region_name=region, endpoint_url=endpoint_url, **credentials
                )
            return _clients[key]

    return client


def _refuse_real_aws(endpoint_url: str | None) -> None:
    if endpoint_url or os.environ.get("AWS_ENDPOINT_URL"):
        return
    try:
        from moto.core.models import botocore_stubber
    except ImportError:  # pragma: no cover - moto is a dependency of the local stack
        botocore_stubber = None
    if botocore_stubber is None or not botocore_stubber.enabled:
        raise RuntimeError(
            "provision() needs a moto endpoint_url or an active moto.mock_aws(); it never touches real AWS"
        )


def _warn_about_environment_clashes(stack: ProvisionedStack) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for function in stack.functions.values():
        for key, value in function.environment.items():
            if key in seen and seen[key][1] != value:
                log.info(
                    "%s=%r in %s but %r in %s: handlers share one environment locally, the later one wins",
                    key,
                    value,
                    function.logical_id,
                    seen[key][1],
                    seen[key][0],
                )
            seen[key] = (function.logical_id, value)
