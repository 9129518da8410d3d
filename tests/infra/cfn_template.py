"""Read a SAM/CloudFormation template as data, and the house rules the infra tests check on it.

The template is read by the local stack's own loader and Globals merge (`switchyard_local.template`):
intrinsic functions keep CloudFormation's JSON form (`!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` ->
{"Fn::GetAtt": ["A", "B"]}, `!Sub s` -> {"Fn::Sub": s}, ...), so a rule can follow a reference to the
resource it names, and the rules see the template exactly as the local stack provisions it. Each rule
is a plain function of a `Template` that returns a list of problems (empty when the rule holds), which
lets tests feed it small hand-written templates too: the queue and state machine rules are proven that
way before the stack has any queue or workflow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from switchyard_local.template import apply_globals, load_yaml

# ------------------------------------------------------------------ template model

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
FUNCTION_TYPES = (SERVERLESS_FUNCTION, LAMBDA_FUNCTION)
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
LAMBDA_DEFAULT_TIMEOUT = 3
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30


@dataclass
class Template:
    body: dict[str, Any]
    root: Path  # folder that CodeUri / ContentUri / DefinitionUri are relative to

    @classmethod
    def from_file(cls, path: Path) -> Template:
        return cls(load_yaml(path.read_text()), path.parent)

    @classmethod
    def from_text(cls, text: str, root: Path | None = None) -> Template:
        return cls(load_yaml(text), root or Path("."))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources") or {}

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Parameters") or {}

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res.get("Type") in types}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties") or {}

    def deployed_props(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with SAM's Globals merged in, as the local stack provisions them."""
        resource = self.resources[logical_id]
        return apply_globals(self.body, resource.get("Type", ""), self.props(logical_id))

    def function_prop(self, logical_id: str, name: str, default: Any = None) -> Any:
        """A function property as deployed (Globals.Function merged in)."""
        return self.deployed_props(logical_id).get(name, default)

    def function_env(self, logical_id: str) -> dict[str, Any]:
        """Environment variables as SAM merges them (Globals first, the function's own win)."""
        return (self.function_prop(logical_id, "Environment") or {}).get("Variables") or {}

    def function_layers(self, logical_id: str) -> list[Any]:
        """Layers as SAM merges them: Globals' list, then the function's own."""
        return self.function_prop(logical_id, "Layers") or []

    def deployed_value(self, value: Any, parameters: dict[str, str] | None = None) -> Any:
        """A property's value with these parameter values (else their Defaults): literals, a Ref to a
        parameter, and Fn::FindInMap on the template's Mappings are resolved; anything else is kept."""
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.parameters:
            name = value["Ref"]
            return (parameters or {}).get(name, self.parameters[name].get("Default"))
        if isinstance(value, dict) and set(value) == {"Fn::FindInMap"}:
            path = [str(self.deployed_value(part, parameters)) for part in value["Fn::FindInMap"][:3]]
            found: Any = self.body.get("Mappings") or {}
            for key in path:
                found = found.get(key) if isinstance(found, dict) else None
            return found
        return value

    def number(self, value: Any, parameters: dict[str, str] | None = None) -> float | None:
        """A literal number, a Ref to a parameter (its Default unless `parameters` say otherwise), or a
        FindInMap of those; None when it cannot be known here."""
        value = self.deployed_value(value, parameters)
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None


def referenced_resource(value: Any) -> str | None:
    """The logical id a {"Ref": X} or {"Fn::GetAtt": [X, ...]} points at."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            return value["Ref"]
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            if isinstance(target, list) and target and isinstance(target[0], str):
                return target[0]
    return None


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def sub_variables(text: str) -> set[str]:
    """Names used as ${Name} or ${Name.Attr} in a Fn::Sub string (${!Literal} excluded)."""
    return {match.split(".")[0] for match in _SUB_VARIABLE.findall(text)}


# ------------------------------------------------------------------ rules: logging


def log_group_problems(t: Template) -> list[str]:
    """Every function logs to a log group of this template that has a retention."""
    problems = []
    log_groups = t.of_type("AWS::Logs::LogGroup")
    for name, group in log_groups.items():
        if (group.get("Properties") or {}).get("RetentionInDays") is None:
            problems.append(f"log group {name} has no RetentionInDays")
    for name in t.of_type(*FUNCTION_TYPES):
        target = referenced_resource((t.function_prop(name, "LoggingConfig") or {}).get("LogGroup"))
        if target is None:
            problems.append(f"function {name} has no LoggingConfig.LogGroup naming a log group of the stack")
        elif target not in log_groups:
            problems.append(f"function {name} logs to {target}, which is not an AWS::Logs::LogGroup here")
    for name in t.of_type("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
        settings = t.props(name).get("AccessLogSettings") or {}
        target = referenced_resource(settings.get("DestinationArn"))
        if target not in log_groups:
            problems.append(f"API {name} has no access log going to a log group of the stack")
    return problems


# ------------------------------------------------------------------ rules: queues


def _queue_consumers(t: Template, queue: str) -> list[tuple[str, float]]:
    """(function, batching window seconds) for every Lambda consumer of the queue."""
    consumers = []
    for fn in t.of_type(SERVERLESS_FUNCTION):
        for event in (t.props(fn).get("Events") or {}).values():
            if event.get("Type") == "SQS":
                ev = event.get("Properties") or {}
                if referenced_resource(ev.get("Queue")) == queue:
                    consumers.append((fn, t.number(ev.get("MaximumBatchingWindowInSeconds")) or 0.0))
    for mapping in t.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping.get("Properties") or {}
        fn = referenced_resource(props.get("FunctionName"))
        if referenced_resource(props.get("EventSourceArn")) == queue and fn in t.resources:
            consumers.append((fn, t.number(props.get("MaximumBatchingWindowInSeconds")) or 0.0))
    return consumers


def queue_problems(t: Template) -> list[str]:
    """Every work queue has a DLQ; its visibility timeout is >= 6x its consumer's timeout.

    AWS's guidance for SQS event sources: visibility timeout at least six times the function timeout,
    plus the batching window when one is set. A queue that is some queue's DLQ needs no DLQ itself.
    """
    problems = []
    queues = t.of_type("AWS::SQS::Queue")
    dead_letter_queues = set()
    for props in (q.get("Properties") or {} for q in queues.values()):
        target = referenced_resource((props.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if target:
            dead_letter_queues.add(target)
    for name, queue in queues.items():
        props = queue.get("Properties") or {}
        if name not in dead_letter_queues:
            redrive = props.get("RedrivePolicy") or {}
            target = referenced_resource(redrive.get("deadLetterTargetArn"))
            if target is None:
                problems.append(f"queue {name} has no RedrivePolicy.deadLetterTargetArn (DLQ)")
            elif target not in queues:
                problems.append(f"queue {name} sends dead letters to {target}, which is not a queue here")
            if target and t.number(redrive.get("maxReceiveCount")) is None:
                problems.append(f"queue {name} has no maxReceiveCount")
        visibility = t.number(props.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT))
        for fn, window in _queue_consumers(t, name):
            timeout = t.number(t.function_prop(fn, "Timeout", LAMBDA_DEFAULT_TIMEOUT))
            if visibility is None or timeout is None:
                problems.append(f"queue {name} / consumer {fn}: timeouts are not literals or defaults")
            elif visibility < 6 * timeout + window:
                problems.append(
                    f"queue {name}: VisibilityTimeout {visibility:g}s < 6 x {fn} Timeout {timeout:g}s"
                    + (f" + batching window {window:g}s" if window else "")
                )
    return problems


# ------------------------------------------------------------------ rules: an async job's timeouts

LAMBDA_MAX_TIMEOUT = 900


def job_timeout_problems(
    t: Template,
    *,
    parameter: str = "JobUpstreamTimeoutSeconds",
    consumer: str = "DispatcherFunction",
    queue: str = "JobsQueue",
    store_seconds: float = 20,
    lease_margin_seconds: float = 15,
) -> list[str]:
    """For every value `parameter` allows: the provider call's deadline P (the consumer's
    JOB_UPSTREAM_TIMEOUT_SECONDS), the consumer's Lambda timeout T, a job's lease L (its
    JOB_LEASE_SECONDS) and the queue's visibility timeout V satisfy

        P + store_seconds <= T <= 900    the call ends with time left to store its result
        T + lease_margin_seconds <= L    the invocation is dead before its job's lease runs out
        V >= 6 T + batching window       AWS's guidance for SQS event sources

    so a provider call can never outlive the claim it runs under (the sweeper re-queues a job only once
    its lease has run out). Every allowed value is checked, so the parameter must list them."""
    spec = t.parameters.get(parameter)
    if spec is None:
        return [f"no parameter {parameter}"]
    allowed = spec.get("AllowedValues")
    if not allowed:
        return [f"parameter {parameter} has no AllowedValues: the timeouts derived from it cannot be checked"]
    windows = [window for fn, window in _queue_consumers(t, queue) if fn == consumer]
    if not windows:
        return [f"{consumer} does not consume {queue}"]
    env = t.function_env(consumer)
    problems = []
    for value in allowed:
        given = {parameter: str(value)}
        p = t.number(env.get("JOB_UPSTREAM_TIMEOUT_SECONDS"), given)
        timeout = t.number(t.function_prop(consumer, "Timeout", LAMBDA_DEFAULT_TIMEOUT), given)
        lease = t.number(env.get("JOB_LEASE_SECONDS"), given)
        visibility = t.number(t.props(queue).get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT), given)
        where = f"{parameter}={value}"
        if None in (p, timeout, lease, visibility):
            problems.append(f"{where}: deadline, timeout, lease or visibility cannot be resolved")
            continue
        assert p is not None and timeout is not None and lease is not None and visibility is not None
        if p + store_seconds > timeout:
            problems.append(
                f"{where}: {consumer} Timeout {timeout:g}s < call deadline {p:g}s + {store_seconds:g}s to store"
            )
        if timeout > LAMBDA_MAX_TIMEOUT:
            problems.append(f"{where}: {consumer} Timeout {timeout:g}s > Lambda's {LAMBDA_MAX_TIMEOUT}s")
        if timeout + lease_margin_seconds > lease:
            problems.append(
                f"{where}: lease {lease:g}s does not outlive {consumer} Timeout {timeout:g}s by {lease_margin_seconds:g}s"
            )
        if visibility < 6 * timeout + windows[0]:
            problems.append(
                f"{where}: {queue} VisibilityTimeout {visibility:g}s < 6 x {timeout:g}s + {windows[0]:g}s"
            )
    return problems


# ------------------------------------------------------------------ rules: runtime and build


def runtime_problems(t: Template, runtime: str = "python3.13", arch: str = "arm64") -> list[str]:
    problems = []
    for name in t.of_type(*FUNCTION_TYPES):
        if t.function_prop(name, "Runtime") != runtime:
            problems.append(f"function {name} runtime is {t.function_prop(name, 'Runtime')!r}, not {runtime}")
        if t.function_prop(name, "Architectures") != [arch]:
            problems.append(f"function {name} architectures are {t.function_prop(name, 'Architectures')!r}")
    for name in t.of_type(*LAYER_TYPES):
        props = t.props(name)
        if runtime not in (props.get("CompatibleRuntimes") or []):
            problems.append(f"layer {name} is not marked compatible with {runtime}")
        if props.get("CompatibleArchitectures") != [arch]:
            problems.append(f"layer {name} CompatibleArchitectures is not [{arch}]")
    return problems


def _has_make_target(makefile: Path, target: str) -> bool:
    return re.search(rf"^{re.escape(target)}\s*:", makefile.read_text(), re.MULTILINE) is not None


def build_problems(t: Template) -> list[str]:
    """Every function and layer is built by its own Makefile target (SAM's Python builder would need
    a python3.13 interpreter on the build machine; the makefile build does not)."""
    problems = []
    for name, res in {**t.of_type(SERVERLESS_FUNCTION), **t.of_type("AWS::Serverless::LayerVersion")}.items():
        uri = t.props(name).get("CodeUri", t.props(name).get("ContentUri"))
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue
        if (res.get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{name} is not built with Metadata.BuildMethod: makefile")
        folder = t.root / uri
        makefile = folder / "Makefile"
        if not folder.is_dir():
            problems.append(f"{name} code folder {uri} does not exist")
        elif not makefile.is_file():
            problems.append(f"{name} has no Makefile in {uri}")
        elif not _has_make_target(makefile, f"build-{name}"):
            problems.append(f"{uri}Makefile has no build-{name} target")
    return problems


# ------------------------------------------------------------------ rules: configuration


def settings_environment_problems(t: Template, required: list[str], layer: str = "SharedLayer") -> list[str]:
    """Every function that runs the shared layer (whose settings refuse to load without their resources)
    gets each required variable from Globals or its own Environment, so a missing one fails review here
    instead of the function's first use of its settings, deployed."""
    problems = []
    for name in t.of_type(*FUNCTION_TYPES):
        if {"Ref": layer} not in t.function_layers(name):
            continue
        env = t.function_env(name)
        for variable in required:
            if env.get(variable) in (None, ""):
                problems.append(f"function {name} runs {layer} but its Environment has no {variable}")
    return problems


# ------------------------------------------------------------------ rules: IAM


_NAME_PROPERTIES = ("Name", "TableName", "FunctionName", "QueueName", "BucketName", "StateMachineName")


def _resource_named(t: Template, value: Any) -> str | None:
    """The resource whose fixed name (e.g. `Name: !Sub "${AWS::StackName}-workflow"`) is exactly `value`:
    the way to scope a policy to a resource that a !Ref or !GetAtt would make a circular dependency."""
    for logical_id in t.resources:
        props = t.props(logical_id)
        if any(key in props and props[key] == value for key in _NAME_PROPERTIES):
            return logical_id
    return None


# CloudWatch Logs' log delivery (how Step Functions writes execution logs) takes no resource ARN: AWS
# documents these actions on "*" only, so they are the one grant allowed unscoped.
LOG_DELIVERY_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)


def _policies(t: Template, name: str) -> list[Any]:
    policies = t.props(name).get("Policies") or []
    return policies if isinstance(policies, list) else [policies]


def _names_stack_resource(t: Template, value: Any) -> str | None:
    target = referenced_resource(value) or _resource_named(t, value)
    if target is None and isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        target = next((v for v in sub_variables(text) if v in t.resources), None)
    return target if target in t.resources else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_problems(t: Template, name: str, statements: Any) -> list[str]:
    problems = []
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            problems.append(f"{name}: {statement!r} is not a policy statement")
            continue
        sid = statement.get("Sid", "?")
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{name}: statement {sid} is not a plain Allow")
        if any("*" in action for action in actions):
            problems.append(f"{name}: statement {sid} grants a wildcard action")
        resources = _as_list(statement.get("Resource"))
        if resources == ["*"] and set(actions) <= LOG_DELIVERY_ACTIONS:
            continue
        for resource in resources:
            if _names_stack_resource(t, resource) is None:
                problems.append(
                    f"{name}: statement {sid} Resource {resource!r} names no resource of the stack"
                )
    return problems


def policy_problems(t: Template) -> list[str]:
    """IAM through SAM policy templates, each scoped to one resource of this stack (named by Ref, GetAtt,
    a Sub of its name, or the very expression of its fixed name), or, where a template grants more than
    needed, inline statements of named actions (no wildcard) on resources of this stack; the only grant
    on "*" is CloudWatch Logs' log delivery, which takes no resource."""
    problems = []
    for name in t.of_type(SERVERLESS_FUNCTION, "AWS::Serverless::StateMachine"):
        for policy in _policies(t, name):
            if isinstance(policy, dict) and set(policy) <= {"Version", "Statement"} and "Statement" in policy:
                problems += _statement_problems(t, name, policy["Statement"])
                continue
            if not (isinstance(policy, dict) and len(policy) == 1):
                problems.append(f"{name}: {policy!r} is not a SAM policy template")
                continue
            template_name, params = next(iter(policy.items()))
            if not isinstance(params, dict) or not params:
                problems.append(f"{name}: {template_name} is not scoped to a resource")
                continue
            for key, value in params.items():
                if _names_stack_resource(t, value) is None:
                    problems.append(f"{name}: {template_name}.{key} names no resource of the stack")
    return problems


# What SAM's bucket policy templates grant beyond reading and writing objects (S3CrudPolicy and
# S3WritePolicy include s3:PutObjectAcl and s3:PutLifecycleConfiguration, S3CrudPolicy s3:DeleteObject).
BUCKET_TEMPLATES_GRANTING_MORE = ("S3CrudPolicy", "S3WritePolicy", "S3FullAccessPolicy")
OBJECT_ACTIONS = frozenset({"s3:GetObject", "s3:PutObject"})


def bucket_grant_problems(t: Template) -> list[str]:
    """A function reaches a bucket of the stack through s3:GetObject / s3:PutObject on its objects only:
    none may delete objects, change ACLs or rewrite the bucket's lifecycle (which enforces retention)."""
    buckets = set(t.of_type("AWS::S3::Bucket"))
    problems = []
    for name in t.of_type(SERVERLESS_FUNCTION, "AWS::Serverless::StateMachine"):
        for policy in _policies(t, name):
            if not isinstance(policy, dict):
                continue
            for template_name, params in policy.items():
                scoped = (
                    _names_stack_resource(t, params.get("BucketName")) if isinstance(params, dict) else None
                )
                if template_name in BUCKET_TEMPLATES_GRANTING_MORE and scoped in buckets:
                    problems.append(f"{name}: {template_name} grants more than object reads and writes")
            for statement in _as_list(policy.get("Statement") or []):
                if not isinstance(statement, dict):
                    continue
                targets = {_names_stack_resource(t, r) for r in _as_list(statement.get("Resource"))}
                extra = {str(a) for a in _as_list(statement.get("Action")) if str(a).startswith("s3:")}
                extra -= OBJECT_ACTIONS
                if targets & buckets and extra:
                    problems.append(f"{name}: statement {statement.get('Sid', '?')} grants {sorted(extra)}")
    return problems


# ------------------------------------------------------------------ rules: retention


def retention_problems(t: Template) -> list[str]:
    """Nothing is kept forever by accident: every table has a TTL (or says, under Metadata.RetentionExempt,
    why it keeps its items until they are deleted), and every bucket expires its objects."""
    problems = []
    for name, table in t.of_type("AWS::DynamoDB::Table").items():
        ttl = t.props(name).get("TimeToLiveSpecification") or {}
        exempt = (table.get("Metadata") or {}).get("RetentionExempt")
        if not (ttl.get("Enabled") in (True, "true") and ttl.get("AttributeName")) and not exempt:
            problems.append(
                f"table {name} has no TimeToLiveSpecification (or Metadata.RetentionExempt reason)"
            )
    for name in t.of_type("AWS::S3::Bucket"):
        rules = (t.props(name).get("LifecycleConfiguration") or {}).get("Rules") or []
        expiring = [
            rule
            for rule in rules
            if rule.get("Status") == "Enabled"
            and rule.get("ExpirationInDays") is not None
            and not rule.get("Prefix")
        ]
        if not expiring:
            problems.append(f"bucket {name} has no enabled lifecycle rule expiring every object")
    return problems


# ------------------------------------------------------------------ rules: state machines' grants and logs

_SERVICE_RESOURCE = re.compile(r"^arn:aws:states:::(?:aws-sdk:)?(?P<service>[a-z0-9]+):(?P<action>[A-Za-z]+)")


def _task_resources(machine: dict[str, Any]) -> list[str]:
    found = []
    for state in (machine.get("States") or {}).values():
        if isinstance(state.get("Resource"), str):
            found.append(state["Resource"])
        for branch in state.get("Branches") or []:
            found += _task_resources(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found += _task_resources(state[key])
    return found


def used_actions(definition: dict[str, Any], service: str) -> set[str]:
    """IAM actions of `service` the definition's Task states call (`dynamodb:updateItem.waitForTaskToken`
    and `aws-sdk:dynamodb:updateItem` both call dynamodb:UpdateItem)."""
    actions = set()
    for resource in _task_resources(definition):
        match = _SERVICE_RESOURCE.match(resource)
        if match and match.group("service") == service:
            action = match.group("action")
            actions.add(f"{service}:{action[0].upper()}{action[1:]}")
    return actions


def state_machine_grant_problems(t: Template, definitions: dict[str, dict[str, Any]]) -> list[str]:
    """A state machine is granted exactly the DynamoDB actions its states call (SAM's DynamoDB policy
    templates grant every item and table action), and logs to a log group of the stack."""
    problems = []
    log_groups = t.of_type("AWS::Logs::LogGroup")
    for name, definition in definitions.items():
        granted: set[str] = set()
        for policy in _policies(t, name):
            if not isinstance(policy, dict):
                continue
            for template_name in policy:
                if template_name.startswith("DynamoDB"):
                    problems.append(f"state machine {name}: {template_name} grants more than its states use")
            for statement in _as_list(policy.get("Statement") or []):
                if isinstance(statement, dict):
                    granted |= {
                        str(a) for a in _as_list(statement.get("Action")) if str(a).startswith("dynamodb:")
                    }
        used = used_actions(definition, "dynamodb")
        if granted - used:
            problems.append(f"state machine {name}: granted {sorted(granted - used)} that no state calls")
        if used - granted:
            problems.append(f"state machine {name}: its states call {sorted(used - granted)}, not granted")
        destinations = (t.props(name).get("Logging") or {}).get("Destinations") or []
        targets = {
            referenced_resource((d.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn"))
            for d in destinations
        }
        if not targets & set(log_groups):
            problems.append(f"state machine {name}: no Logging destination that is a log group of the stack")
    return problems


def state_machine_definitions(t: Template) -> dict[str, dict[str, Any]]:
    """Each state machine's definition (from its DefinitionUri file or inline Definition)."""
    found = {}
    for name in t.of_type(*STATE_MACHINE_TYPES):
        props = t.props(name)
        uri = props.get("DefinitionUri")
        if isinstance(uri, str) and (t.root / uri).is_file():
            found[name] = json.loads((t.root / uri).read_text())
        elif isinstance(props.get("Definition"), dict):
            found[name] = props["Definition"]
    return found


# ------------------------------------------------------------------ rules: template layout

SECTION_ORDER = ("Parameters", "Mappings", "Conditions", "Globals", "Resources", "Outputs")


def section_order_problems(t: Template) -> list[str]:
    present = [key for key in t.body if key in SECTION_ORDER]
    expected = sorted(present, key=SECTION_ORDER.index)
    return [] if present == expected else [f"sections are {present}, expected {expected}"]


# ------------------------------------------------------------------ rules: state machines


def _states_problems(where: str, machine: dict[str, Any]) -> list[str]:
    problems = []
    states = machine.get("States") or {}
    if machine.get("QueryLanguage") == "JSONata":
        problems.append(f"{where}: JSONata (use JSONPath; moto cannot run it)")
    if machine.get("StartAt") not in states:
        problems.append(f"{where}: StartAt {machine.get('StartAt')!r} is not a state")
    for state_name, state in states.items():
        here = f"{where}.{state_name}"
        targets = [state.get("Next"), state.get("Default")]
        targets += [choice.get("Next") for choice in state.get("Choices") or []]
        targets += [catch.get("Next") for catch in state.get("Catch") or []]
        for target in filter(None, targets):
            if target not in states:
                problems.append(f"{here}: transition to missing state {target!r}")
        # moto's interpreter (the local stack runs these definitions) fails JSONata and Assign at run
        # time, and has no inline Map concurrency cap: AWS's cap of 40 must be written down.
        if state.get("QueryLanguage") == "JSONata" or "Assign" in state:
            problems.append(f"{here}: JSONata or Assign (use JSONPath; moto cannot run them)")
        if state.get("Type") == "Map" and "MaxConcurrency" not in state and "MaxConcurrencyPath" not in state:
            problems.append(f"{here}: Map without MaxConcurrency")
        if ".waitForTaskToken" in str(state.get("Resource", "")):
            if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                problems.append(f"{here}: callback state without TimeoutSeconds")
            if not state.get("Catch"):
                problems.append(f"{here}: callback state without Catch")
        for i, branch in enumerate(state.get("Branches") or []):
            problems += _states_problems(f"{here}.Branches[{i}]", branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                problems += _states_problems(f"{here}.{key}", state[key])
    return problems


def state_machine_problems(t: Template) -> list[str]:
    """Every DefinitionUri file exists and parses; transitions resolve; callback states have
    TimeoutSeconds and a Catch; every ${Placeholder} comes from DefinitionSubstitutions."""
    problems = []
    for name in t.of_type(*STATE_MACHINE_TYPES):
        props = t.props(name)
        uri = props.get("DefinitionUri")
        if isinstance(uri, str):
            path = t.root / uri
            if not path.is_file():
                problems.append(f"state machine {name}: DefinitionUri {uri} does not exist")
                continue
            text = path.read_text()
            try:
                definition = json.loads(text) if path.suffix == ".json" else load_yaml(text)
            except (ValueError, yaml.YAMLError) as exc:
                problems.append(f"state machine {name}: {uri} does not parse: {exc}")
                continue
        elif isinstance(props.get("Definition"), dict):
            definition, text = props["Definition"], json.dumps(props["Definition"])
        else:
            continue
        problems += _states_problems(f"state machine {name}", definition)
        substitutions = set(props.get("DefinitionSubstitutions") or {})
        for placeholder in sorted(set(re.findall(r"\$\{(\w+)\}", text)) - substitutions):
            problems.append(f"state machine {name}: ${{{placeholder}}} has no DefinitionSubstitutions entry")
    return problems


# ------------------------------------------------------------------ rules: operations (alarms, dashboard)

ALARM = "AWS::CloudWatch::Alarm"
DASHBOARD = "AWS::CloudWatch::Dashboard"
_RUNBOOK = re.compile(r"Runbook: (\S+?)#([a-z0-9-]+)")


def render_sub(t: Template, value: Any) -> str | None:
    """A string or Fn::Sub as text: ${Number parameter} becomes its Default (so a JSON body still parses),
    every other ${Name} becomes "<Name>", the same for the same name wherever it appears."""
    if isinstance(value, str):
        return value
    if not (isinstance(value, dict) and set(value) == {"Fn::Sub"}):
        return None
    text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        parameter = t.parameters.get(name) or {}
        if parameter.get("Type") == "Number" and "Default" in parameter:
            return str(parameter["Default"])
        return f"<{name}>"

    return _SUB_VARIABLE.sub(substitute, text)


def unknown_sub_names(t: Template, value: Any) -> list[str]:
    """${Names} of a Fn::Sub that are neither parameters, resources (or their attributes) nor pseudo."""
    if not (isinstance(value, dict) and "Fn::Sub" in value):
        return []
    text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    known = set(t.parameters) | set(t.resources)
    return sorted(name for name in sub_variables(text) if name not in known and not name.startswith("AWS::"))


@dataclass(frozen=True)
class MetricUse:
    """One metric a widget or an alarm reads: namespace, name, dimension names -> values (rendered)."""

    where: str
    namespace: str
    name: str
    dimensions: dict[str, str | None]  # None: any value (a SEARCH over that dimension)


@dataclass(frozen=True)
class DeclaredMetric:
    """What the code emits (switchyard/metrics.py's METRICS): its dimensions and their allowed values."""

    dimensions: tuple[str, ...]
    values: dict[str, frozenset[str]]


def _alarm_metric_uses(t: Template, name: str) -> list[MetricUse]:
    props = t.props(name)
    uses = []
    if props.get("MetricName"):
        dims = {d["Name"]: _rendered_value(t, d.get("Value")) for d in props.get("Dimensions") or []}
        uses.append(
            MetricUse(f"alarm {name}", render_sub(t, props.get("Namespace")) or "", props["MetricName"], dims)
        )
    for query in props.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric")
        if metric:
            dims = {d["Name"]: _rendered_value(t, d.get("Value")) for d in metric.get("Dimensions") or []}
            namespace = render_sub(t, metric.get("Namespace")) or ""
            uses.append(MetricUse(f"alarm {name}.{query.get('Id')}", namespace, metric["MetricName"], dims))
    return uses


def _rendered_value(t: Template, value: Any) -> str | None:
    """A dimension value as the dashboard body renders it: "<Resource>", "<Resource.Attribute>"."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return render_sub(t, value)


def dashboard_body(t: Template, name: str) -> tuple[dict[str, Any] | None, list[str]]:
    """(the parsed DashboardBody, problems): the body must be a string or Fn::Sub that parses as JSON."""
    body = t.props(name).get("DashboardBody")
    problems = [
        f"dashboard {name}: ${{{unknown}}} is not a parameter or resource"
        for unknown in unknown_sub_names(t, body)
    ]
    text = render_sub(t, body)
    if text is None:
        return None, [*problems, f"dashboard {name}: DashboardBody is not a string or Fn::Sub"]
    try:
        parsed = json.loads(text)
    except ValueError as error:
        return None, [*problems, f"dashboard {name}: DashboardBody is not JSON: {error}"]
    if not isinstance(parsed, dict) or not isinstance(parsed.get("widgets"), list):
        return None, [*problems, f"dashboard {name}: DashboardBody has no widgets list"]
    return parsed, problems


_SEARCH = re.compile(r"SEARCH\(\s*'\{([^}]*)\}\s*(.*?)'\s*,")
_METRIC_NAME = re.compile(r'MetricName\s*=\s*"([^"]+)"')


def _widget_metric_uses(where: str, widget: dict[str, Any]) -> tuple[list[MetricUse], list[str]]:
    uses, problems = [], []
    for index, entry in enumerate((widget.get("properties") or {}).get("metrics") or []):
        here = f"{where} metric {index}"
        if isinstance(entry, list) and entry and isinstance(entry[0], dict):
            expression = entry[0].get("expression", "")
            for schema, term in _SEARCH.findall(expression):
                parts = [part.strip().strip('"') for part in schema.split(",")]
                names = _METRIC_NAME.findall(term)
                if len(names) != 1:
                    problems.append(f'{here}: a SEARCH must name exactly one MetricName="..."')
                    continue
                uses.append(MetricUse(here, parts[0], names[0], dict.fromkeys(parts[1:])))
            if "SEARCH(" in expression and not _SEARCH.search(expression):
                problems.append(f"{here}: SEARCH without a {{namespace,dimensions}} schema")
            continue
        if not isinstance(entry, list) or len(entry) < 2 or not all(isinstance(x, str) for x in entry[:2]):
            problems.append(f"{here}: not [namespace, name, dimension, value, ..., {{options}}]")
            continue
        plain = [x for x in entry if not isinstance(x, dict)]
        if any(x in (".", "...") for x in plain) or len(plain) % 2:
            problems.append(f"{here}: write every metric out (no '.' shorthand, dimension name/value pairs)")
            continue
        uses.append(MetricUse(here, plain[0], plain[1], dict(zip(plain[2::2], plain[3::2], strict=True))))
    return uses, problems


def metric_uses(t: Template) -> tuple[list[MetricUse], list[str]]:
    """Every metric the alarms and dashboards read, and what stops them being read."""
    uses, problems = [], []
    for name in t.of_type(ALARM):
        uses += _alarm_metric_uses(t, name)
    for name in t.of_type(DASHBOARD):
        body, found = dashboard_body(t, name)
        problems += found
        for index, widget in enumerate((body or {}).get("widgets") or []):
            if widget.get("type") == "metric":
                found_uses, found = _widget_metric_uses(f"dashboard {name} widget {index}", widget)
                uses += found_uses
                problems += found
                if not found_uses:
                    problems.append(f"dashboard {name} widget {index}: a metric widget without metrics")
    return uses, problems


def metrics_namespace(t: Template) -> str | None:
    """The namespace the code emits into (POWERTOOLS_METRICS_NAMESPACE in Globals), rendered."""
    env = ((t.body.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    return render_sub(t, (env.get("Variables") or {}).get("POWERTOOLS_METRICS_NAMESPACE"))


def metric_problems(t: Template, declared: dict[str, DeclaredMetric]) -> list[str]:
    """Every metric of our namespace that a widget or alarm reads is one the code declares and emits,
    with exactly its dimensions and only values it emits; every AWS metric's dimension values name a
    resource or parameter of this stack (a hard-coded name watches some other stack)."""
    namespace = metrics_namespace(t)
    uses, problems = metric_uses(t)
    for use in uses:
        if use.namespace.startswith("AWS/"):
            for dimension, value in use.dimensions.items():
                if value is not None and not re.fullmatch(r"<[A-Za-z0-9]+(\.[A-Za-z0-9]+)?>", value):
                    problems.append(
                        f"{use.where}: {use.namespace} {use.name} {dimension}={value!r} is not a resource of the stack"
                    )
            continue
        if use.namespace != namespace:
            problems.append(f"{use.where}: namespace {use.namespace!r} is not the code's {namespace!r}")
            continue
        spec = declared.get(use.name)
        if spec is None:
            problems.append(f"{use.where}: {use.name} is not a metric the code emits")
            continue
        if sorted(use.dimensions) != sorted(spec.dimensions):
            problems.append(
                f"{use.where}: {use.name} is emitted with dimensions {list(spec.dimensions)}, read with {sorted(use.dimensions)}"
            )
            continue
        for dimension, value in use.dimensions.items():
            allowed = spec.values.get(dimension)
            if value is not None and allowed is not None and value not in allowed:
                problems.append(f"{use.where}: {use.name} is never emitted with {dimension}={value!r}")
    return problems


def alarm_problems(t: Template, docs_root: Path | None = None) -> list[str]:
    """Every alarm says what it means and what to check first, names a runbook that exists, and notifies
    a topic of this stack when it fires (and when it recovers)."""
    problems = []
    topics = set(t.of_type("AWS::SNS::Topic"))
    for name in t.of_type(ALARM):
        props = t.props(name)
        description = render_sub(t, props.get("AlarmDescription")) or ""
        if len(description) < 40:
            problems.append(f"alarm {name} has no AlarmDescription saying what it means")
        if "Check first" not in description:
            problems.append(f"alarm {name}: its description does not say what to check first")
        runbook = _RUNBOOK.search(description)
        if runbook is None:
            problems.append(f"alarm {name}: its description names no 'Runbook: <doc>#<anchor>'")
        elif docs_root is not None:
            doc = docs_root / runbook.group(1)
            if not doc.is_file() or runbook.group(2) not in _markdown_anchors(doc.read_text()):
                problems.append(f"alarm {name}: runbook {runbook.group(1)}#{runbook.group(2)} does not exist")
        for key in ("AlarmActions", "OKActions"):
            actions = props.get(key) or []
            if not actions or any(referenced_resource(a) not in topics for a in actions):
                problems.append(f"alarm {name}: {key} must notify an SNS topic of the stack")
        for unknown in unknown_sub_names(t, props.get("AlarmDescription")):
            problems.append(f"alarm {name}: ${{{unknown}}} is not a parameter or resource")
    return problems


def _markdown_anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown document."""
    anchors = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors
