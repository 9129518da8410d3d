"""Accounts and API keys. A key is shown once at creation and stored only as its SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from switchyard.account_model import Account, ApiKeyInfo
from switchyard.adapters.accounts_table import (
    AccountsTable,
    ApiKeysTable,
    get_accounts_table,
    get_api_keys_table,
)
from switchyard.caches import cached
from switchyard.errors import AuthenticationFailed, NotFound
from switchyard.ids import new_id
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import TtlCache

KEY_PREFIX = "sy-"


@dataclass(frozen=True)
class IssuedKey:
    """Returned once, at creation: `secret` is never stored or shown again."""

    key_id: str
    account_id: str
    name: str
    secret: str


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
    def __init__(self, settings: Settings, accounts: AccountsTable, keys: ApiKeysTable):
        self._accounts = accounts
        self._keys = keys
        # Caches only successful lookups, so a new key works at once and a revoked one stops within the TTL.
        # Reloaded in the background in the last quarter of its life: under steady traffic no request
        # waits for the lookup.
        self._auth_cache: TtlCache[str] = TtlCache(
            settings.auth_cache_seconds, refresh_ahead_seconds=settings.auth_cache_seconds / 4
        )

    # -- accounts
    def create_account(self, name: str) -> Account:
        account = Account(account_id=new_id("acct_"), name=name, created_at=int(time.time()))
        self._accounts.create(account)
        return account

    def get_account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise NotFound(f"No account '{account_id}'.")
        return account

    def list_accounts(self) -> list[Account]:
        return sorted(self._accounts.all(), key=lambda a: a.created_at)

    # -- keys
    def create_api_key(self, account_id: str, name: str = "default") -> IssuedKey:
        self.get_account(account_id)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = IssuedKey(key_id=new_id("key_"), account_id=account_id, name=name, secret=secret)
        self._keys.create(
            hash_key(secret),
            ApiKeyInfo(key.key_id, account_id, name, created_at=int(time.time()), revoked_at=None),
        )
        return key

    def list_api_keys(self, account_id: str) -> list[ApiKeyInfo]:
        return self._keys.list_for_account(account_id)

    def revoke_api_key(self, account_id: str, key_id: str) -> ApiKeyInfo:
        revoked = self._keys.revoke(account_id, key_id)
        if revoked is None:
            raise NotFound(f"No key '{key_id}' in account '{account_id}'.")
        key_hash, key = revoked
        self._auth_cache.invalidate(key_hash)
        return key

    def is_api_key(self, secret: str) -> bool:
        """Whether `secret` is a valid key of any account (read from the table, never from the cache)."""
        return self._keys.account_of(hash_key(secret)) is not None

    def authenticate(self, authorization: str | None) -> str:
        """The account id a bearer key belongs to, or AuthenticationFailed."""
        key_hash = hash_key(bearer_token(authorization))
        return self._auth_cache.get_or_load(key_hash, lambda: self._load_account_id(key_hash))

    def _load_account_id(self, key_hash: str) -> str:
        account_id = self._keys.account_of(key_hash)
        if account_id is None:
            raise AuthenticationFailed("Invalid token.")
        return account_id


@cached
def get_accounts_service() -> AccountsService:
    return AccountsService(get_settings(), get_accounts_table(), get_api_keys_table())
