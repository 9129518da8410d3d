"""House rules of the shared package's code, checked on its source: services speak in the adapters'
verbs and never in DynamoDB expressions, and no module uses boto3's condition builder."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "switchyard"
# What only a table adapter may write: expressions, and the boto3 Table calls that carry them.
DYNAMODB_SPEAK = re.compile(
    r"Expression\b|ExpressionAttribute|\b(update_item|put_item|get_item|delete_item|batch_writer|batch_get_item)\(|"
    r"\.(query|scan)\b|attribute_(not_)?exists\("
)


def _lines(path: Path):
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        code = line.split("#", 1)[0]
        if code.strip():
            yield number, code


def test_services_write_no_dynamodb_expression_and_call_no_table_method():
    offenders = [
        f"services/{path.name}:{number}: {code.strip()}"
        for path in sorted((PACKAGE / "services").glob("*.py"))
        for number, code in _lines(path)
        if DYNAMODB_SPEAK.search(code)
    ]
    assert offenders == [], "move these into the table's adapter as a named transition:\n" + "\n".join(
        offenders
    )


def test_services_reach_aws_only_through_named_adapters():
    offenders = [
        f"services/{path.name}"
        for path in sorted((PACKAGE / "services").glob("*.py"))
        if re.search(r"from switchyard\.adapters import aws\b|import boto3", path.read_text())
    ]
    assert offenders == []


def test_no_module_uses_boto3s_condition_builder():
    # boto3's Key()/Attr() builder keeps its placeholder counters on the resource shared by every thread
    # (the local stack and the dispatcher run handlers in threads), so concurrent callers could swap
    # each other's placeholders: adapters write plain expression strings instead.
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "boto3.dynamodb.conditions" in path.read_text()
    ]
    assert offenders == []
