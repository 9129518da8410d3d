"""What provisioning a template produced: physical resources, functions to run, handler environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchyard_local.template import ResourceReference

_RUNTIME_VARIABLE_PREFIXES = ("AWS_LAMBDA_", "AWS_LWA_")


@dataclass
class PhysicalResource:
    """One provisioned resource. `ref` is what `!Ref` answers; `attributes` what `!GetAtt` answers."""

    logical_id: str
    resource_type: str
    name: str
    arn: str
    ref: str
    url: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def reference(self) -> ResourceReference:
        return ResourceReference(ref=self.ref, attributes={"Arn": self.arn, **self.attributes})


@dataclass(frozen=True)
class EventSourceSpec:
    """One entry of a function's `Events`, resolved. SQS sources carry the queue's URL too."""

    name: str
    event_type: str
    properties: dict[str, Any]
    queue_url: str | None = None


@dataclass
class FunctionSpec:
    """A function as the local runtime needs it: where its code is and how to call it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int = 3
    memory_mb: int = 128
    events: list[EventSourceSpec] = field(default_factory=list)

    def events_of_type(self, *event_types: str) -> list[EventSourceSpec]:
        return [event for event in self.events if event.event_type in event_types]

    def to_json(self) -> dict[str, Any]:
        """What another process needs to run this function's handler and poll its queues."""
        return {
            "logical_id": self.logical_id,
            "name": self.name,
            "arn": self.arn,
            "code_dir": str(self.code_dir),
            "handler": self.handler,
            "timeout_seconds": self.timeout_seconds,
            "memory_mb": self.memory_mb,
            "events": [
                {
                    "name": e.name,
                    "event_type": e.event_type,
                    "properties": e.properties,
                    "queue_url": e.queue_url,
                }
                for e in self.events
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionSpec:
        return cls(
            logical_id=data["logical_id"],
            name=data["name"],
            arn=data["arn"],
            code_dir=Path(data["code_dir"]),
            handler=data["handler"],
            environment={},
            timeout_seconds=int(data["timeout_seconds"]),
            memory_mb=int(data["memory_mb"]),
            events=[EventSourceSpec(**event) for event in data.get("events") or []],
        )


@dataclass
class ProvisionedStack:
    stack_name: str
    region: str
    account_id: str
    endpoint_url: str | None
    template_path: Path
    parameters: dict[str, Any]
    physical: dict[str, PhysicalResource] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    # Declared resources the local stack does not provision (APIs, layers, alarms, ...): logical id -> type.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """The handler environment: the union of every function's resolved variables.

        Handlers share one interpreter locally, so they share one environment: where two functions
        disagree about a name, the later one in the template wins. Variables that configure the Lambda
        runtime itself (AWS_LAMBDA_*, AWS_LWA_* for the Web Adapter) mean nothing in-process and are left out.
        """
        merged: dict[str, str] = {}
        for function in self.functions.values():
            merged.update(
                (name, value)
                for name, value in function.environment.items()
                if not name.startswith(_RUNTIME_VARIABLE_PREFIXES)
            )
        return merged

    def function_by_name(self, name: str) -> FunctionSpec | None:
        for function in self.functions.values():
            if name in (function.name, function.arn, function.logical_id):
                return function
        return None

    def api_function(self) -> FunctionSpec:
        """The function behind the HTTP API: the one with an HttpApi event, else `ApiFunction`.

        Only HttpApi counts: a REST `Api` event belongs to the streaming function, which the local
        front replaces.
        """
        for function in self.functions.values():
            if function.events_of_type("HttpApi"):
                return function
        if "ApiFunction" in self.functions:
            return self.functions["ApiFunction"]
        raise LookupError("The template has no function with an HttpApi or Api event")
