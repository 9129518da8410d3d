"""Read template.yaml the way CloudFormation does, closely enough to provision it locally.

Two jobs: load YAML with CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) into the
long form (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`), and resolve intrinsic functions against parameter
values, conditions, pseudo parameters and the physical names of resources provisioned so far.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

LOCAL_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "switchyard-local"


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be read or resolved."""


class _NoValue:
    """`AWS::NoValue`: the enclosing key or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

# ---------------------------------------------------------------- loading

# Short tags whose long form is `Fn::<Name>`; Ref and Condition have no `Fn::` prefix.
_FN_TAGS = frozenset(
    {
        "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
        "Join", "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform",
    }
)  # fmt: skip


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation tags. Timestamps stay strings, as CloudFormation reads them."""


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)  # the one kind left
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Resource.Attribute.Maybe.Dotted`: the logical id never contains a dot.
        logical_id, _, attribute = value.partition(".")
        value = [logical_id, attribute]
    if tag_suffix not in _FN_TAGS:
        raise TemplateError(f"Unknown CloudFormation tag !{tag_suffix}")
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tagged)
_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """CloudFormation YAML (a template, or a fragment of one) as its JSON form."""
    return yaml.load(text, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def load_template(path: str | Path) -> dict[str, Any]:
    document = load_yaml(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return document


# ---------------------------------------------------------------- parameters and globals


def resolve_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Parameter values as CloudFormation passes them: strings, or lists of strings for list types."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"Unknown parameter(s) in overrides: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"Parameter {name} has no Default and no override")
        value = _parameter_value(spec.get("Type", "String"), raw)
        allowed = [_scalar_text(v) for v in spec.get("AllowedValues") or []]
        if allowed and not isinstance(value, list) and value not in allowed:
            raise TemplateError(f"Parameter {name}={value!r} is not one of {allowed}")
        values[name] = value
    return values


def _parameter_value(parameter_type: str, raw: Any) -> Any:
    if parameter_type.startswith("List<") or parameter_type == "CommaDelimitedList":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return [_scalar_text(item).strip() for item in items]
    return _scalar_text(raw)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_globals(template: Mapping[str, Any], resource_type: str, properties: Mapping[str, Any]) -> dict:
    """SAM's Globals merge: maps merge (the resource wins), lists concatenate, scalars are overridden."""
    section = {
        "AWS::Serverless::Function": "Function",
        "AWS::Serverless::SimpleTable": "SimpleTable",
        "AWS::Serverless::StateMachine": "StateMachine",
        "AWS::Serverless::HttpApi": "HttpApi",
        "AWS::Serverless::Api": "Api",
        "AWS::Serverless::LayerVersion": "LayerVersion",
    }.get(resource_type)
    defaults = ((template.get("Globals") or {}).get(section) or {}) if section else {}
    return _merge(defaults, properties)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *override]
    return override


# ---------------------------------------------------------------- references between resources


def referenced_logical_ids(value: Any) -> Iterator[str]:
    """Every name a value refers to through Ref, GetAtt or Sub (parameters included; filter by caller)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).partition(".")[0]
                if isinstance(target, str):
                    yield target
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if isinstance(text, str):
                    for name in _SUB_VARIABLE.findall(text):
                        yield name.partition(".")[0]
                if isinstance(inner, list) and len(inner) > 1:
                    yield from referenced_logical_ids(inner[1])
            else:
                yield from referenced_logical_ids(inner)
    elif isinstance(value, list):
        for item in value:
            yield from referenced_logical_ids(item)


_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")
_SUB_TOKEN = re.compile(r"\$\{(!?)([^}]*)\}")


# ---------------------------------------------------------------- resolution


@dataclass
class ResourceReference:
    """What a provisioned (or merely declared) resource answers to Ref and GetAtt."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class TemplateResolver:
    """Resolves intrinsic functions. `lookup` returns a provisioned resource's reference, or None."""

    template: Mapping[str, Any]
    parameters: Mapping[str, Any]
    lookup: Callable[[str], ResourceReference | None]
    region: str = DEFAULT_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    stack_name: str = DEFAULT_STACK_NAME
    _conditions: dict[str, bool] = field(default_factory=dict)

    @property
    def pseudo_parameters(self) -> dict[str, Any]:
        partition = "aws-cn" if self.region.startswith("cn-") else "aws"
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
            ),
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"Unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        condition = (self.template["Resources"][logical_id] or {}).get("Condition")
        return True if condition is None else self.condition(condition)

    # -- values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                function = _INTRINSICS.get(key)
                # A one-key map named "Condition" is an intrinsic only with a condition name (IAM
                # policy statements also have a "Condition" key).
                if function is not None and (key != "Condition" or isinstance(argument, str)):
                    return function(self, argument)
            resolved = {key: self.resolve(inner) for key, inner in value.items()}
            return {key: inner for key, inner in resolved.items() if inner is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(inner) for inner in value) if item is not NO_VALUE]
        return value

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self.pseudo_parameters
        if name in pseudo:
            return pseudo[name]
        return self._reference(name).ref

    def get_att(self, logical_id: str, attribute: str) -> Any:
        reference = self._reference(logical_id)
        if attribute in reference.attributes:
            return reference.attributes[attribute]
        raise TemplateError(f"{logical_id} has no attribute {attribute} locally")

    def _reference(self, logical_id: str) -> ResourceReference:
        found = self.lookup(logical_id)
        if found is not None:
            return found
        resources = self.template.get("Resources") or {}
        if logical_id not in resources and not _is_sam_generated(logical_id, resources):
            raise TemplateError(f"Reference to unknown resource or parameter {logical_id}")
        # Declared but not provisioned locally (an API, a layer, an alarm, a SAM-generated role):
        # a stable placeholder keeps the rest of the template resolvable.
        name = f"{self.stack_name}-{logical_id}"
        arn = f"arn:aws:local:{self.region}:{self.account_id}:{logical_id}/{name}"
        return ResourceReference(ref=name, attributes=_PlaceholderAttributes(name=name, arn=arn))

    def substitute(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            literal, name = match.group(1), match.group(2)
            if literal:  # ${!Name} is the literal text ${Name}
                return "${" + name + "}"
            if name in variables:
                return _scalar_text(variables[name])
            if "." in name and name.partition(".")[0] not in self.parameters:
                logical_id, _, attribute = name.partition(".")
                return _scalar_text(self.get_att(logical_id, attribute))
            return _scalar_text(self.ref(name))

        return _SUB_TOKEN.sub(replace, text)


class _PlaceholderAttributes(dict):
    """Every attribute of an unprovisioned resource resolves to something stable and recognizable."""

    def __init__(self, name: str, arn: str):
        super().__init__(Arn=arn, Name=name)
        self._name = name

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"{self._name}.{key}"


def _is_sam_generated(logical_id: str, resources: Mapping[str, Any]) -> bool:
    # SAM derives resources from a function or API: <Function>Role, <Function>Url, <Api>ApiGatewayDefaultStage...
    return any(logical_id.startswith(declared) for declared in resources)


def _fn_ref(resolver: TemplateResolver, argument: Any) -> Any:
    return resolver.ref(resolver.resolve(argument))


def _fn_get_att(resolver: TemplateResolver, argument: Any) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    logical_id, attribute = (resolver.resolve(part) for part in argument)
    return resolver.get_att(logical_id, attribute)


def _fn_sub(resolver: TemplateResolver, argument: Any) -> str:
    if isinstance(argument, list):
        text, variables = argument[0], resolver.resolve(argument[1] if len(argument) > 1 else {})
    else:
        text, variables = argument, {}
    return resolver.substitute(text, variables)


def _fn_join(resolver: TemplateResolver, argument: Any) -> str:
    delimiter, items = argument
    return str(delimiter).join(_scalar_text(item) for item in resolver.resolve(items))


def _fn_select(resolver: TemplateResolver, argument: Any) -> Any:
    index, items = resolver.resolve(argument)
    return items[int(index)]


def _fn_split(resolver: TemplateResolver, argument: Any) -> list[str]:
    delimiter, text = resolver.resolve(argument)
    return str(text).split(str(delimiter))


def _fn_if(resolver: TemplateResolver, argument: Any) -> Any:
    name, when_true, when_false = argument
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


def _fn_equals(resolver: TemplateResolver, argument: Any) -> bool:
    left, right = resolver.resolve(argument)
    return _scalar_text(left) == _scalar_text(right)


def _fn_not(resolver: TemplateResolver, argument: Any) -> bool:
    (value,) = argument if isinstance(argument, list) else [argument]
    return not _truth(resolver, value)


def _fn_and(resolver: TemplateResolver, argument: Any) -> bool:
    return all(_truth(resolver, value) for value in argument)


def _fn_or(resolver: TemplateResolver, argument: Any) -> bool:
    return any(_truth(resolver, value) for value in argument)


def _truth(resolver: TemplateResolver, value: Any) -> bool:
    resolved = resolver.resolve(value)
    return resolved if isinstance(resolved, bool) else _scalar_text(resolved).lower() == "true"


def _fn_condition(resolver: TemplateResolver, argument: Any) -> bool:
    return resolver.condition(argument)


def _fn_find_in_map(resolver: TemplateResolver, argument: Any) -> Any:
    map_name, first, second = (resolver.resolve(part) for part in argument[:3])
    try:
        return resolver.template["Mappings"][map_name][first][second]
    except KeyError as missing:
        raise TemplateError(f"FindInMap {map_name}/{first}/{second} not found") from missing


def _fn_base64(resolver: TemplateResolver, argument: Any) -> str:
    import base64

    return base64.b64encode(_scalar_text(resolver.resolve(argument)).encode()).decode()


def _fn_get_azs(resolver: TemplateResolver, argument: Any) -> list[str]:
    region = resolver.resolve(argument) or resolver.region
    return [f"{region}{zone}" for zone in "abc"]


def _fn_to_json_string(resolver: TemplateResolver, argument: Any) -> str:
    import json

    return json.dumps(resolver.resolve(argument), separators=(",", ":"))


def _fn_length(resolver: TemplateResolver, argument: Any) -> int:
    return len(resolver.resolve(argument))


def _fn_unsupported(name: str) -> Callable[[TemplateResolver, Any], Any]:
    def fail(resolver: TemplateResolver, argument: Any) -> Any:
        raise TemplateError(f"{name} is not supported by the local stack")

    return fail


_INTRINSICS: dict[str, Callable[[TemplateResolver, Any], Any]] = {
    "Ref": _fn_ref,
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": _fn_sub,
    "Fn::Join": _fn_join,
    "Fn::Select": _fn_select,
    "Fn::Split": _fn_split,
    "Fn::If": _fn_if,
    "Fn::Equals": _fn_equals,
    "Fn::Not": _fn_not,
    "Fn::And": _fn_and,
    "Fn::Or": _fn_or,
    "Condition": _fn_condition,
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::Base64": _fn_base64,
    "Fn::GetAZs": _fn_get_azs,
    "Fn::ToJsonString": _fn_to_json_string,
    "Fn::Length": _fn_length,
    "Fn::ImportValue": _fn_unsupported("Fn::ImportValue"),
    "Fn::Cidr": _fn_unsupported("Fn::Cidr"),
    "Fn::Transform": _fn_unsupported("Fn::Transform"),
}
