"""switchyard-admin: create accounts, issue and revoke API keys.

Talks to the same DynamoDB tables as the gateway: the running local stack (`--local`, the default when
`.switchyard/local-stack.json` exists) or a deployed stack (`--stack-name`, resolved through CloudFormation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

LOCAL_STATE = Path(".switchyard") / "local-stack.json"
# Template logical id → the environment variable the services read: every resource setting (the settings
# refuse to load without all of them), as template.yaml's Globals set them. A resource's physical id is
# what the variable holds (a table's or bucket's name, the queue's URL, the state machine's ARN).
STACK_RESOURCES = {
    "AccountsTable": "ACCOUNTS_TABLE",
    "ApiKeysTable": "API_KEYS_TABLE",
    "ProvidersTable": "PROVIDERS_TABLE",
    "MediaBucket": "MEDIA_BUCKET",
    "JobsTable": "JOBS_TABLE",
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
    "JobsQueue": "JOBS_QUEUE_URL",
    "RunsTable": "RUNS_TABLE",
    "WorkflowStateMachine": "WORKFLOW_STATE_MACHINE_ARN",
    "BatchesTable": "BATCHES_TABLE",
    "WebhooksTable": "WEBHOOKS_TABLE",
    "WebhookDeliveryQueue": "WEBHOOK_QUEUE_URL",
}


def use_local_stack(state_file: Path) -> None:
    if not state_file.exists():
        sys.exit(f"No running local stack found ({state_file} is missing). Start one with `make up`.")
    state = json.loads(state_file.read_text())
    os.environ.update(state["environment"])
    os.environ.update(
        AWS_ENDPOINT_URL=state["aws_endpoint_url"],
        AWS_DEFAULT_REGION=state.get("region", "us-east-1"),
        AWS_REGION=state.get("region", "us-east-1"),
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
    )


def use_deployed_stack(stack_name: str, region: str | None) -> None:
    import boto3

    cloudformation = boto3.client("cloudformation", region_name=region)
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    missing = [logical for logical in STACK_RESOURCES if logical not in physical]
    if missing:
        sys.exit(f"Stack {stack_name} has no {', '.join(missing)}: is it a Switchyard stack?")
    for logical, variable in STACK_RESOURCES.items():
        os.environ[variable] = physical[logical]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard-admin", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--local", action="store_true", help="use the running local stack (default)")
    target.add_argument("--stack-name", help="use the tables of this deployed CloudFormation stack")
    parser.add_argument("--region", help="AWS region of --stack-name")
    parser.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create-account", help="create an account and its first API key")
    create.add_argument("name")
    commands.add_parser("list-accounts", help="list accounts")
    key = commands.add_parser("create-key", help="issue another API key (shown once)")
    key.add_argument("account_id")
    key.add_argument("--name", default="default")
    keys = commands.add_parser("list-keys", help="list an account's keys (ids only, never secrets)")
    keys.add_argument("account_id")
    revoke = commands.add_parser("revoke-key", help="revoke a key; it stops working within seconds")
    revoke.add_argument("account_id")
    revoke.add_argument("key_id")
    return parser


def run(args: argparse.Namespace) -> dict | list:
    from switchyard.services.accounts import get_accounts_service

    service = get_accounts_service()
    if args.command == "create-account":
        account = service.create_account(args.name)
        key = service.create_api_key(account.account_id, "default")
        return {
            "account_id": account.account_id,
            "name": account.name,
            "key_id": key.key_id,
            "api_key": key.secret,
        }
    if args.command == "list-accounts":
        return [vars(a) for a in service.list_accounts()]
    if args.command == "create-key":
        key = service.create_api_key(args.account_id, args.name)
        return {"account_id": key.account_id, "key_id": key.key_id, "name": key.name, "api_key": key.secret}
    if args.command == "list-keys":
        return [vars(k) for k in service.list_api_keys(args.account_id)]
    if args.command == "revoke-key":
        return vars(service.revoke_api_key(args.account_id, args.key_id))
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    from switchyard.errors import ApiError

    args = build_parser().parse_args(argv)
    if args.stack_name:
        use_deployed_stack(args.stack_name, args.region)
    else:
        use_local_stack(args.state_file)
    try:
        result = run(args)
    except ApiError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if isinstance(result, dict) and "api_key" in result:
        print("The api_key is shown only now; it is stored as a hash.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
