"""DynamoDB storage of accounts and of API keys (keyed by the hash of the secret, listed by account)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from switchyard.account_model import Account, ApiKeyInfo
from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure
from switchyard.caches import cached
from switchyard.settings import get_settings

KEYS_BY_ACCOUNT = "by_account"


class AccountsTable:
    def __init__(self, table_name: str):
        self._table = aws.table(table_name)

    def create(self, account: Account) -> None:
        self._table.put_item(Item=account.to_item(), ConditionExpression="attribute_not_exists(account_id)")

    def get(self, account_id: str) -> Account | None:
        item = self._table.get_item(Key={"account_id": account_id}).get("Item")
        return Account.from_item(item) if item else None

    def all(self) -> list[Account]:
        return [Account.from_item(item) for page in aws.item_pages(self._table.scan) for item in page]


class ApiKeysTable:
    def __init__(self, table_name: str):
        self._table = aws.table(table_name)

    def create(self, key_hash: str, key: ApiKeyInfo) -> None:
        self._table.put_item(Item=key.to_item(key_hash), ConditionExpression="attribute_not_exists(key_hash)")

    def account_of(self, key_hash: str) -> str | None:
        """The account a key belongs to; None for an unknown or revoked key."""
        item = self._table.get_item(Key={"key_hash": key_hash}).get("Item")
        if not item or item.get("revoked_at"):
            return None
        return str(item["account_id"])

    def active_key(self, key_hash: str) -> ApiKeyInfo | None:
        """The key with this hash, unless it is unknown or revoked."""
        item = self._table.get_item(Key={"key_hash": key_hash}).get("Item")
        if not item or item.get("revoked_at"):
            return None
        return ApiKeyInfo.from_item(item)

    def record_use(self, key_hash: str, now_ms: int, unless_since_ms: int) -> bool:
        """Set the key's last use to now, unless it was already recorded at or after `unless_since_ms`
        (so containers racing each other write once); False when nothing was written."""
        try:
            self._table.update_item(
                Key={"key_hash": key_hash},
                UpdateExpression="SET last_used_ms = :now",
                ConditionExpression=(
                    "attribute_exists(key_hash) AND (attribute_not_exists(last_used_ms) OR last_used_ms < :since)"
                ),
                ExpressionAttributeValues={":now": now_ms, ":since": unless_since_ms},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def list_for_account(self, account_id: str) -> list[ApiKeyInfo]:
        return [ApiKeyInfo.from_item(item) for item in self._of_account(account_id)]

    def revoke(self, account_id: str, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        """Revoke one of the account's keys (a second revoke keeps the first time); (hash, key), or None
        when the account has no such key."""
        found = self._of_account(account_id, key_id)
        if not found:
            return None
        key_hash = found[0]["key_hash"]
        item = self._table.update_item(
            Key={"key_hash": key_hash},
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
            ExpressionAttributeValues={":now": int(time.time())},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return key_hash, ApiKeyInfo.from_item(item)

    def _of_account(self, account_id: str, key_id: str | None = None) -> list[dict[str, Any]]:
        # Plain expressions: boto3's Key()/Attr() builder is not safe to share between threads.
        condition = "account_id = :a" + (" AND key_id = :k" if key_id else "")
        values = {":a": account_id, **({":k": key_id} if key_id else {})}
        pages = aws.item_pages(
            self._table.query,
            IndexName=KEYS_BY_ACCOUNT,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return [item for page in pages for item in page]


@cached
def get_accounts_table() -> AccountsTable:
    return AccountsTable(get_settings().accounts_table)


@cached
def get_api_keys_table() -> ApiKeysTable:
    return ApiKeysTable(get_settings().api_keys_table)
