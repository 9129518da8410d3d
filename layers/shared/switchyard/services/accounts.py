"""Accounts and API keys. A key is shown once at creation and stored only as its SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

from switchyard.adapters import aws
from switchyard.errors import AuthenticationFailed, NotFound
from switchyard.ids import new_id
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import TtlCache

KEY_PREFIX = "sy-"


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class IssuedKey:
    """Returned once, at creation: `secret` is never stored or shown again."""

    key_id: str
    account_id: str
    name: str
    secret: str


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    account_id: str
    name: str
    created_at: int
    revoked_at: int | None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed("Authentication credentials were not provided.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Invalid token header. Use 'Authorization: Bearer <api key>'.")
    return token.strip()


class AccountsService:
    def __init__(self, settings: Settings):
        self._accounts = aws.table(settings.accounts_table)
        self._keys = aws.table(settings.api_keys_table)
        # Caches only successful lookups, so a new key works at once and a revoked one stops within the TTL.
        # Reloaded in the background in the last quarter of its life: under steady traffic no request
        # waits for the lookup.
        self._auth_cache: TtlCache[str] = TtlCache(
            settings.auth_cache_seconds,
            refresh_ahead_seconds=settings.auth_cache_seconds / 4,
            keep_warm_seconds=settings.cache_keep_warm_seconds,
        )

    # -- accounts
    def create_account(self, name: str) -> Account:
        account = Account(account_id=new_id("acct_"), name=name, created_at=int(time.time()))
        self._accounts.put_item(
            Item={"account_id": account.account_id, "name": name, "created_at": account.created_at},
            ConditionExpression="attribute_not_exists(account_id)",
        )
        return account

    def get_account(self, account_id: str) -> Account:
        item = self._accounts.get_item(Key={"account_id": account_id}).get("Item")
        if not item:
            raise NotFound(f"No account '{account_id}'.")
        return Account(item["account_id"], item.get("name", ""), int(item.get("created_at", 0)))

    def list_accounts(self) -> list[Account]:
        accounts = [
            Account(i["account_id"], i.get("name", ""), int(i.get("created_at", 0)))
            for page in aws.item_pages(self._accounts.scan)
            for i in page
        ]
        return sorted(accounts, key=lambda a: a.created_at)

    # -- keys
    def create_api_key(self, account_id: str, name: str = "default") -> IssuedKey:
        self.get_account(account_id)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = IssuedKey(key_id=new_id("key_"), account_id=account_id, name=name, secret=secret)
        self._keys.put_item(
            Item={
                "key_hash": hash_key(secret),
                "key_id": key.key_id,
                "account_id": account_id,
                "name": name,
                "created_at": int(time.time()),
            },
            ConditionExpression="attribute_not_exists(key_hash)",
        )
        return key

    def list_api_keys(self, account_id: str) -> list[ApiKeyInfo]:
        page = self._keys.query(
            IndexName="by_account",
            KeyConditionExpression="account_id = :a",
            ExpressionAttributeValues={":a": account_id},
        )
        return [self._key_info(item) for item in page.get("Items", [])]

    def revoke_api_key(self, account_id: str, key_id: str) -> ApiKeyInfo:
        page = self._keys.query(
            IndexName="by_account",
            KeyConditionExpression="account_id = :a AND key_id = :k",
            ExpressionAttributeValues={":a": account_id, ":k": key_id},
        )
        items = page.get("Items", [])
        if not items:
            raise NotFound(f"No key '{key_id}' in account '{account_id}'.")
        item = self._keys.update_item(
            Key={"key_hash": items[0]["key_hash"]},
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
            ExpressionAttributeValues={":now": int(time.time())},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        self._auth_cache.invalidate(items[0]["key_hash"])
        return self._key_info(item)

    def authenticate(self, authorization: str | None) -> str:
        """The account id a bearer key belongs to, or AuthenticationFailed."""
        key_hash = hash_key(bearer_token(authorization))
        account_id = self._auth_cache.get_or_load(key_hash, lambda: self._load_account_id(key_hash))
        return account_id

    def _load_account_id(self, key_hash: str) -> str:
        item = self._keys.get_item(Key={"key_hash": key_hash}).get("Item")
        if not item or item.get("revoked_at"):
            raise AuthenticationFailed("Invalid token.")
        return str(item["account_id"])

    @staticmethod
    def _key_info(item: dict) -> ApiKeyInfo:
        revoked = item.get("revoked_at")
        return ApiKeyInfo(
            key_id=item["key_id"],
            account_id=item["account_id"],
            name=item.get("name", ""),
            created_at=int(item.get("created_at", 0)),
            revoked_at=int(revoked) if revoked else None,
        )


@lru_cache(maxsize=1)
def get_accounts_service() -> AccountsService:
    return AccountsService(get_settings())
