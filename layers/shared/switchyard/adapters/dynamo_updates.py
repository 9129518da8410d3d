"""Build DynamoDB UpdateItem arguments from plain values (one builder for every table adapter)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def update_arguments(
    *,
    set_values: dict[str, Any] | None = None,
    remove: tuple[str, ...] = (),
    add: dict[str, Any] | None = None,
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """UpdateExpression, ConditionExpression and placeholders, every attribute name escaped.

    Conditions may refer to the reserved word `status` as `#status`; `names` maps further placeholders.
    """
    names = dict(names or {})
    values: dict[str, Any] = dict(condition_values or {})
    clauses = []
    sets = []
    for i, (attr, value) in enumerate((set_values or {}).items()):
        names[f"#s{i}"], values[f":s{i}"] = attr, value
        sets.append(f"#s{i} = :s{i}")
    if sets:
        clauses.append("SET " + ", ".join(sets))
    adds = []
    for i, (attr, value) in enumerate((add or {}).items()):
        names[f"#a{i}"], values[f":a{i}"] = attr, value
        adds.append(f"#a{i} :a{i}")
    if adds:
        clauses.append("ADD " + ", ".join(adds))
    removes = []
    for i, attr in enumerate(remove):
        names[f"#r{i}"] = attr
        removes.append(f"#r{i}")
    if removes:
        clauses.append("REMOVE " + ", ".join(removes))
    arguments: dict[str, Any] = {"UpdateExpression": " ".join(clauses), "ReturnValues": "ALL_NEW"}
    if condition:
        if "#status" in condition:
            names["#status"] = "status"
        arguments["ConditionExpression"] = condition
    if names:
        arguments["ExpressionAttributeNames"] = names
    if values:
        arguments["ExpressionAttributeValues"] = values
    return arguments


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )
